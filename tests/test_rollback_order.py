"""Rollback order: a run's rollback is refused while a later run's load or sync is in the target.

Restoring run A's snapshot puts the target back as it was before A loaded: every row a later run
B wrote since would go, while B's evidence still says it passed and the next sync would continue
after B's checkpoints, skipping the rows it deleted. So rolling back A while B's load or sync is
still in the target is refused, naming B (roll back the newest first). What counts is the target's
own record (``runbook_snapshots``, ``runbook_checkpoints``), not an outputs folder: a sync run
without a notebook counts too. A rolled-back run no longer counts (its checkpoints went with it),
and the next sync continues from the run before it.

Sources are the ``ci`` demo on SQLite; targets are SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
import sqlite3
from functools import partial

import pytest
import sqlalchemy as sa
from helpers import ci_context
from helpers import runbook as run_cli

from runbook_demo.build import build_demo
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.connections import make_engine
from runbook_lib.errors import RollbackOrderError
from runbook_lib.load import backup, history, loader, sync


def _full_load(ctx, target, run_id: str) -> None:
    backup.snapshot(target, ctx.spec.touched_tables(), run_id)
    report = loader.load(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id=run_id,
        mode="full",
        chunk_size=500,
        max_reject_rate=0.05,
        target_label="target",
    )
    assert report.passed


def _sync(ctx, target, run_id: str, *, snapshot: bool = True) -> sync.SyncReport:
    if snapshot:
        backup.snapshot(target, ctx.spec.touched_tables(), run_id)
    return sync.sync(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id=run_id,
        chunk_size=500,
        max_reject_rate=0.05,
        target_label="target",
    )


def _new_events(project, count: int = 2) -> None:
    with sqlite3.connect(project / "work" / "ci" / "legacy_a.db") as connection:
        top = connection.execute("SELECT max(id) FROM user_events").fetchone()[0]
        connection.executemany(
            "INSERT INTO user_events VALUES (?, 1, 'view', 'SKU-00001', '2024-12-31 09:00:00')",
            [(top + i,) for i in range(1, count + 1)],
        )


def _state(engine: sa.Engine, tables) -> dict[str, str]:
    metadata = sa.MetaData()
    metadata.reflect(engine, only=list(tables))
    with engine.connect() as connection:
        return {t: backup.table_digest(connection, metadata.tables[t])[1] for t in tables}


def _events(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM user_events")).scalar_one()


@pytest.fixture
def ctx(project):
    build_demo("ci", project)
    return ci_context(project)


@pytest.fixture
def target(ctx, databases):
    """The target: the demo's SQLite file, or an empty server database with the demo's schema."""
    if databases.dialect == "sqlite":
        engine = ctx.target_engine()
    else:
        engine = make_engine(databases.new("target"))
        create_target_schema(engine)
    yield engine
    engine.dispose()


def test_rolling_back_a_load_after_a_later_sync_is_refused_naming_it_and_changes_nothing(
    project, ctx, target
):
    _full_load(ctx, target, "run-a")
    _new_events(project)
    _sync(ctx, target, "run-b")
    tables = ctx.spec.touched_tables()
    before = _state(target, tables)

    with pytest.raises(RollbackOrderError) as refused:
        backup.restore(target, backup.find_snapshot(target, "run-a"))

    assert refused.value.later_runs == ("run-b",)
    assert refused.value.message.startswith(
        "run run-a cannot be rolled back: run run-b (sync) loaded or synced this target after "
        "run-a's snapshot"
    )
    assert refused.value.hint == (
        "roll back the newest first: runbook rollback --env ENV --run-id run-b, "
        "then runbook rollback --env ENV --run-id run-a"
    )
    assert refused.value.exit_code == 1
    assert _state(target, tables) == before
    assert [r.run_id for r in history.runs_in_target(target)] == ["run-a", "run-b"]

    assert backup.restore(target, backup.find_snapshot(target, "run-b")).passed
    assert [r.run_id for r in history.runs_in_target(target)] == ["run-a"]
    assert backup.restore(target, backup.find_snapshot(target, "run-a")).passed
    assert _events(target) == 0
    assert history.runs_in_target(target) == []


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_after_the_newest_sync_is_rolled_back_the_next_sync_applies_its_rows_again(
    project, ctx, target
):
    _full_load(ctx, target, "run-a")
    loaded = _events(target)
    _new_events(project)
    assert _events_inserted(_sync(ctx, target, "run-b")) == 2
    assert backup.restore(target, backup.find_snapshot(target, "run-b")).passed
    assert _events(target) == loaded

    again = _sync(ctx, target, "run-c")

    assert _events_inserted(again) == 2
    assert _events(target) == loaded + 2
    assert [r.run_id for r in history.runs_in_target(target)] == ["run-a", "run-c"]


def _events_inserted(report: sync.SyncReport) -> int:
    return next(r.inserted for r in report.results if r.source_table == "user_events")


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_a_later_sync_without_a_snapshot_or_notebook_still_blocks_by_its_checkpoints(
    project, ctx, target
):
    _full_load(ctx, target, "run-a")
    _new_events(project)
    _sync(ctx, target, "run-b", snapshot=False)  # e.g. called from a script: no snapshot taken

    with pytest.raises(RollbackOrderError) as refused:
        backup.restore(target, backup.find_snapshot(target, "run-a"))

    assert refused.value.later_runs == ("run-b",)


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_several_later_runs_are_named_newest_first_with_the_order_to_roll_back(
    project, ctx, target
):
    _full_load(ctx, target, "run-a")
    _new_events(project)
    _sync(ctx, target, "run-b")
    _new_events(project)
    _sync(ctx, target, "run-c")

    with pytest.raises(RollbackOrderError) as refused:
        backup.restore(target, backup.find_snapshot(target, "run-a"))
    with pytest.raises(RollbackOrderError) as also_refused:
        backup.restore(target, backup.find_snapshot(target, "run-b"))

    assert refused.value.later_runs == ("run-c", "run-b")
    assert "runs run-c (sync), run-b (sync) loaded or synced" in refused.value.message
    assert refused.value.hint.endswith(
        "--run-id run-c, then runbook rollback --env ENV --run-id run-b, "
        "then runbook rollback --env ENV --run-id run-a"
    )
    assert also_refused.value.later_runs == ("run-c",)


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_an_earlier_run_never_blocks_the_rollback_of_a_later_one(project, ctx, target):
    _full_load(ctx, target, "run-a")
    _new_events(project)
    _sync(ctx, target, "run-b")

    assert history.later_runs(target, "run-b") == []
    assert backup.restore(target, backup.find_snapshot(target, "run-b")).passed


# --------------------------------------------------------------------------------------------
# the same with the CLI: a full run, a sync run, a refused rollback, the rollbacks in order

runbook = partial(run_cli, operator="rollback-order-test")


def _runs(project) -> list:
    return sorted(p.parent for p in (project / "outputs" / "ci").glob("*/manifest.json"))


def _manifest(run_dir) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> dict:
    from conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("rollback-order") / "project")
    steps: dict = {"project": project}
    runbook(project, "demo-data", "--env", "ci", check=True)
    runbook(project, "run", "--env", "ci", check=True)
    _new_events(project)
    steps["sync"] = runbook(project, "sync", "--env", "ci", check=True)
    steps["load_run"], steps["sync_run"] = _runs(project)
    target = sa.create_engine(f"sqlite:///{project / 'work' / 'ci' / 'target.db'}")
    steps["events_synced"] = _events(target)
    ledger = project / "outputs" / "ci" / "ledger.jsonl"
    before = ledger.read_bytes()
    steps["refused"] = runbook(
        project, "rollback", "--env", "ci", "--run-id", steps["load_run"].name
    )
    steps["ledger_unchanged"] = ledger.read_bytes() == before
    steps["events_after_refusal"] = _events(target)
    steps["rollback_sync"] = runbook(
        project, "rollback", "--env", "ci", "--run-id", steps["sync_run"].name
    )
    steps["events_after_rollback"] = _events(target)
    steps["status"] = runbook(project, "status", "--env", "ci")
    steps["sync_again"] = runbook(project, "sync", "--env", "ci", check=True)
    steps["events_resynced"] = _events(target)
    steps["third_run"] = _runs(project)[-1]
    target.dispose()
    return steps


@pytest.mark.notebooks
def test_the_cli_refuses_to_roll_back_a_load_a_sync_came_after_and_writes_nothing(story):
    refused = story["refused"]
    load_run, sync_run = story["load_run"].name, story["sync_run"].name

    assert refused.returncode == 1
    assert f"run {load_run} cannot be rolled back: run {sync_run} (sync) loaded" in refused.stderr
    assert (
        f"roll back the newest first: runbook rollback --env ci --run-id {sync_run}, "
        f"then runbook rollback --env ci --run-id {load_run}"
    ) in refused.stderr
    assert story["ledger_unchanged"]
    assert story["events_after_refusal"] == story["events_synced"]
    assert _manifest(story["load_run"])["status"] == "passed"
    assert not (story["load_run"] / "05_rollback.ipynb").exists()


@pytest.mark.notebooks
def test_the_newest_sync_rolls_back_and_status_shows_it_rolled_back(story):
    assert story["rollback_sync"].returncode == 0, story["rollback_sync"].stderr
    assert story["events_after_rollback"] == story["events_synced"] - 2
    manifest = _manifest(story["sync_run"])
    assert manifest["status"] == "rolled_back"
    line = next(x for x in story["status"].stdout.splitlines() if story["sync_run"].name in x)
    assert line.split()[2] == "rolled_back"
    assert "rollback:passed" in line
    assert runbook(story["project"], "verify", str(story["sync_run"])).returncode == 0


@pytest.mark.notebooks
def test_the_sync_after_a_rolled_back_sync_applies_its_rows_again(story):
    from runbook_lib.evidence.scraps import read_scraps

    glued = read_scraps(story["third_run"] / "03_full_load.ipynb")["full_load"]
    events = next(t for t in glued["tables"] if t["source_table"] == "user_events")
    assert events["inserted"] == 2
    assert story["events_resynced"] == story["events_synced"]


@pytest.mark.notebooks
def test_a_sync_run_writes_its_report_and_prints_no_kernel_or_papermill_noise(story):
    manifest = _manifest(story["sync_run"])
    assert "report_error" not in manifest
    assert manifest["report"]["file"] == "index.html"
    page = (story["sync_run"] / "index.html").read_text()
    assert '<section id="sync">' in page and "incremental sync: " in page
    for noise in ("IPKernelApp", "Passed unknown parameter", "Unable to parse", "could not"):
        assert noise not in story["sync"].stderr + story["sync"].stdout
