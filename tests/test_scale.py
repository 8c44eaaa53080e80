"""A partitioned full load (``runbook_lib.scale``) gives the very target of a local load.

The demo (``ci``: 2,000 orders, its planted defects quarantining rows in several partitions)
and the second scenario (HR + sales: self-references, key prefixes) are loaded twice — once
by the local loader, once cut into key ranges of ~``PARTITION_ROWS`` rows — and every touched
table's content hash must match, ids included. The partitions run here one after the other
(``partitioned.serial``); ``test_dask_engine.py`` runs them on a ``LocalCluster``.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from runbook_demo.build import build_demo
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.params import ConnectionParams, load_params
from runbook_lib.db.bookkeeping import PARTITIONS_TABLE
from runbook_lib.load import backup, loader
from runbook_lib.run.context import StageContext
from runbook_lib.scale import partitioned, plan
from runbook_lib.scale.dask_engine import connections_of
from runbook_lib.scale.task import Connection
from runbook_lib.validate.validation import validate as run_validation

PARTITION_ROWS = 300
CHUNK = 97


def digests(engine: sa.Engine, tables: list[str]) -> dict[str, tuple[int, str]]:
    with engine.connect() as connection:
        return {
            t: backup.table_digest(connection, sa.Table(t, sa.MetaData(), autoload_with=connection))
            for t in tables
        }


def local_load(ctx: StageContext, target: sa.Engine, run_id: str) -> loader.LoadReport:
    return loader.load(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id=run_id,
        mode="full",
        chunk_size=CHUNK,
        max_reject_rate=1.0,
        target_label="target",
    )


def partitioned_load(
    ctx: StageContext, target_url: str, run_id: str, executor=partitioned.serial, **options
) -> partitioned.PartitionedLoadReport:
    connections, _ = connections_of(ctx.params, ctx.spec)
    target = Connection("target", ConnectionParams(url=target_url), str(ctx.params.project_root))
    engine = target.engine()
    try:
        return partitioned.load(
            ctx.spec,
            ctx.source_engines(),
            engine,
            connections=connections,
            target_connection=target,
            executor=executor,
            engine_name="serial",
            workers=1,
            run_id=run_id,
            mode="full",
            chunk_size=CHUNK,
            max_reject_rate=1.0,
            target_label="target",
            partition_rows=options.get("partition_rows", PARTITION_ROWS),
            max_partitions=options.get("max_partitions", 64),
            dense_ids=options.get("dense_ids", True),
        )
    finally:
        engine.dispose()


@pytest.fixture
def demo(project):
    build_demo("ci", project)
    return project, StageContext(load_params("ci", project_root=project), None)


def test_the_plan_cuts_a_source_into_ranges_of_about_equal_rows_from_the_source(demo):
    _, ctx = demo
    orders = next(p for p in loader.ordered_sources(ctx.spec) if p.identity[2] == "orders")
    source = ctx.source_engines()[orders.system]
    with source.connect() as connection:
        rows = connection.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    cut = plan.cut_source(orders, source, partition_rows=PARTITION_ROWS, max_partitions=64)
    assert len(cut) == -(-rows // PARTITION_ROWS)
    assert sum(r for _, _, r in cut) == rows
    assert max(r for _, _, r in cut) - min(r for _, _, r in cut[:-1]) == 0
    # the ranges touch, in key order, and each holds exactly the rows it planned
    assert cut[0][0] is None and cut[-1][1] is None
    with source.connect() as connection:
        for (after, until, planned), following in zip(
            cut, [*cut[1:], (None, None, 0)], strict=True
        ):
            assert following[0] == until
            counted = connection.execute(
                sa.select(sa.func.count()).select_from(
                    orders.select(after_key=after, until_key=until).subquery()
                )
            ).scalar_one()
            assert counted == planned


def test_a_partitioned_load_gives_the_local_targets_every_table_hash(demo, tmp_path):
    _, ctx = demo
    tables = ctx.spec.touched_tables()
    local = sa.create_engine(f"sqlite:///{tmp_path / 'local.db'}")
    split_url = f"sqlite:///{tmp_path / 'split.db'}"
    split = sa.create_engine(split_url)
    for engine in (local, split):
        create_target_schema(engine)
    reference = local_load(ctx, local, "run-p")
    report = partitioned_load(ctx, split_url, "run-p")
    assert report.passed, report.render()
    assert report.to_dict()["loaded"] == reference.to_dict()["loaded"]
    assert report.quarantined == reference.quarantined > 0
    cut = [t for t in report.tasks if t["partition"] >= 0]
    assert len({t["source"] for t in cut}) < len(cut)  # some sources really are cut
    assert any(t["quarantined"] for t in cut[1:])  # and gaps arise after the first partition
    assert digests(split, tables) == digests(local, tables)
    with split.connect() as connection:
        recorded = connection.execute(sa.text(f"SELECT count(*) FROM {PARTITIONS_TABLE}")).scalar()
    assert recorded == len(report.tasks)
    result = run_validation(
        ctx.spec,
        ctx.source_engines(),
        split,
        run_id="run-p",
        target_label="target",
        chunk_size=500,
        max_unexplained_differences=0,
    )
    assert result.passed and result.differences == 0, result.render()


def test_a_partitioned_load_of_the_second_scenario_matches_the_local_one(hr_project, monkeypatch):
    """Self-references (an employee's manager) across partitions, key prefixes, two systems."""
    project, _, targets, environ = hr_project
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    ctx = StageContext(load_params("hr", project_root=project), None)
    tables = ctx.spec.touched_tables()
    local = sa.create_engine(targets["trial_target"])
    reference = local_load(ctx, local, "run-h")
    report = partitioned_load(ctx, targets["target"], "run-h", partition_rows=7)
    assert report.passed == reference.passed
    assert report.to_dict()["tables"] == [
        t | {"seconds": report.to_dict()["tables"][i]["seconds"]}
        for i, t in enumerate(reference.to_dict()["tables"])
    ]
    assert len(report.tasks) > len(report.results)
    split = sa.create_engine(targets["target"])
    try:
        assert digests(split, tables) == digests(local, tables)
    finally:
        split.dispose()
        local.dispose()


def test_without_dense_ids_the_ids_are_the_plans_and_validation_still_passes(demo, tmp_path):
    """Gaps where rows were quarantined, each row inside its partition's planned id range."""
    _, ctx = demo
    url = f"sqlite:///{tmp_path / 'gaps.db'}"
    target = sa.create_engine(url)
    create_target_schema(target)
    report = partitioned_load(ctx, url, "run-g", dense_ids=False)
    assert report.passed and all(t.get("renumbered", 0) == 0 for t in report.timings)
    with target.connect() as connection:
        for part in (t for t in report.tasks if t["target_table"] == "orders"):
            low, high, rows = connection.execute(
                sa.text(
                    "SELECT min(order_id), max(order_id), count(*) FROM orders "
                    "WHERE source_system = :system AND order_id >= :first AND order_id < :end"
                ),
                {
                    "system": part["source"].split(".")[0],
                    "first": part["first_id"],
                    "end": part["first_id"] + part["planned_rows"],
                },
            ).one()
            assert rows == part["loaded"] and low == part["first_id"]
        highest = connection.execute(sa.text("SELECT max(order_id) FROM orders")).scalar()
        count = connection.execute(sa.text("SELECT count(*) FROM orders")).scalar()
    assert highest > count  # the gaps are there
    result = run_validation(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id="run-g",
        target_label="target",
        chunk_size=500,
        max_unexplained_differences=0,
    )
    target.dispose()
    assert result.passed and result.differences == 0, result.render()


def test_a_rollback_after_a_partitioned_load_restores_the_hashes_and_forgets_the_plan(
    demo, tmp_path
):
    _, ctx = demo
    url = f"sqlite:///{tmp_path / 'rolled.db'}"
    target = sa.create_engine(url)
    create_target_schema(target)
    tables = ctx.spec.touched_tables()
    before = digests(target, tables)
    snap = backup.snapshot(target, tables, "run-r")
    assert partitioned_load(ctx, url, "run-r").passed
    restored = backup.restore(target, snap)
    assert restored.passed, restored.render()
    assert digests(target, tables) == before
    with target.connect() as connection:
        left = connection.execute(
            sa.text(f"SELECT count(*) FROM {PARTITIONS_TABLE} WHERE run_id = 'run-r'")
        ).scalar()
    target.dispose()
    assert left == 0


class _StopAfter:
    """An executor that runs the first ``count`` tasks, then stops the load as a crash would."""

    def __init__(self, count: int) -> None:
        self.left = count

    def __call__(self, tasks) -> None:
        for task in tasks:
            if self.left == 0:
                raise KeyboardInterrupt("stopped mid-load")
            partitioned.run_task(task)
            self.left -= 1


def test_a_partitioned_load_stopped_midway_resumes_its_plan_and_gives_the_local_target(
    demo, tmp_path
):
    _, ctx = demo
    tables = ctx.spec.touched_tables()
    local = sa.create_engine(f"sqlite:///{tmp_path / 'local.db'}")
    url = f"sqlite:///{tmp_path / 'stopped.db'}"
    stopped = sa.create_engine(url)
    for engine in (local, stopped):
        create_target_schema(engine)
    local_load(ctx, local, "run-s")
    with pytest.raises(KeyboardInterrupt):
        partitioned_load(ctx, url, "run-s", executor=_StopAfter(7))
    query = sa.text(
        f"SELECT target_table, source_table, partition_no, after_key, until_key, first_id "
        f"FROM {PARTITIONS_TABLE}"
    )
    with stopped.connect() as connection:
        planned = set(connection.execute(query).all())
    report = partitioned_load(ctx, url, "run-s")
    assert report.passed, report.render()
    with stopped.connect() as connection:
        assert planned < set(connection.execute(query).all())  # read back, not cut again
    ran = {t["target_table"]: t["tasks_run"] for t in report.timings}
    assert ran["products"] == ran["customers"] == 0 and sum(ran.values()) > 0
    assert digests(stopped, tables) == digests(local, tables)
    local.dispose()
    stopped.dispose()


def test_a_sync_continues_after_a_partitioned_load_from_its_summed_checkpoints(project, tmp_path):
    """The source checkpoint a partitioned load leaves is what a sync continues from."""
    import sqlite3

    import yaml

    from runbook_lib.load import sync

    spec_path = project / "params" / "mapping" / "demo.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["targets"]["orders"]["sources"]["legacy_a.orders"]["watermark"] = {"column": "id"}
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    url = f"sqlite:///{tmp_path / 'synced.db'}"
    target = sa.create_engine(url)
    create_target_schema(target)
    assert partitioned_load(ctx, url, "run-1").passed

    def synced(run_id: str) -> dict:
        report = sync.sync(
            ctx.spec,
            ctx.source_engines(),
            target,
            run_id=run_id,
            chunk_size=300,
            max_reject_rate=0.5,
            target_label="target",
        )
        return {f"{r.source_system}.{r.source_table}": r for r in report.results}

    with sqlite3.connect(project / "work" / "ci" / "legacy_a.db") as connection:
        top_order, user = connection.execute("SELECT max(id), min(user_id) FROM orders").fetchone()
    first = synced("run-2")["legacy_a.orders"]
    assert first.inserted == 0 and first.watermark_before == str(top_order)  # the last key
    with sqlite3.connect(project / "work" / "ci" / "legacy_a.db") as connection:
        connection.execute(
            "INSERT INTO orders VALUES (?, ?, 88.80, 1, '2024-12-30 12:00:00', NULL)",
            (top_order + 1, user),
        )
    assert synced("run-3")["legacy_a.orders"].inserted == 1
    target.dispose()
