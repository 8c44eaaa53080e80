"""Kill the load with SIGKILL at several points, resume it, and prove every row is there exactly once.

The load runs in a child process with small chunks; the test watches the target's checkpoint table
and kills the child when a chosen source has committed a chosen number of chunks (so the kill lands
while the next chunk's transaction is open). Resuming is simply loading the same run again. The
resumed target must be byte-for-byte the target of an uninterrupted load (same ids included), and
validation must pass. A rollback after a killed load must restore the pre-load hashes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from runbook_demo.build import build_demo
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.params import load_params
from runbook_lib.db.bookkeeping import CHECKPOINTS_TABLE
from runbook_lib.load import backup, loader
from runbook_lib.run.context import StageContext
from runbook_lib.validate.validation import validate as run_validation

CHUNK = 97  # odd, so chunk boundaries do not line up with anything in the data

WORKER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import sqlalchemy as sa
    from runbook_lib.load import backup, loader
    from runbook_lib.run.context import StageContext
    from runbook_lib.config.params import load_params

    ctx = StageContext(load_params("ci", project_root=Path(sys.argv[1])), None)
    target = sa.create_engine(os.environ["RESUME_TEST_TARGET"])
    backup.snapshot(target, ctx.spec.touched_tables(), sys.argv[2])
    loader.load(ctx.spec, ctx.source_engines(), target, run_id=sys.argv[2], mode="full",
                 chunk_size=int(sys.argv[3]), max_reject_rate=1.0, target_label="target")
    print("finished")
    """
)


def _start_load(project, target_url: str, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(project), run_id, str(CHUNK)],
        env={**os.environ, "RESUME_TEST_TARGET": target_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _chunks_committed(engine: sa.Engine, source_table: str) -> int:
    try:
        with engine.connect() as connection:
            return (
                connection.execute(
                    sa.text(f"SELECT chunks FROM {CHECKPOINTS_TABLE} WHERE source_table = :t"),
                    {"t": source_table},
                ).scalar()
                or 0
            )
    except sa.exc.DBAPIError:
        return 0  # the table is not created yet


def _kill_when(
    process: subprocess.Popen, engine: sa.Engine, source_table: str, chunks: int
) -> None:
    deadline = time.monotonic() + 120
    while _chunks_committed(engine, source_table) < chunks:
        if process.poll() is not None:
            pytest.fail(f"the load finished before it could be killed:\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the load made no progress")
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def _digests(engine: sa.Engine, tables: list[str]) -> dict[str, tuple[int, str]]:
    with engine.connect() as connection:
        return {
            t: backup.table_digest(connection, sa.Table(t, sa.MetaData(), autoload_with=connection))
            for t in tables
        }


def _validate(ctx: StageContext, target: sa.Engine, run_id: str):
    return run_validation(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id=run_id,
        target_label="target",
        chunk_size=500,
        max_unexplained_differences=0,
    )


def _resume(ctx: StageContext, target: sa.Engine, run_id: str):
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


@pytest.fixture
def demo(project):
    build_demo("ci", project)
    return project, StageContext(load_params("ci", project_root=project), None)


KILL_POINTS = [("users", 2), ("orders", 3), ("order_items", 5), ("user_events", 1)]


def _kill_resume_matches_uninterrupted(demo, killed_url, reference_url):
    project, ctx = demo
    killed, reference = sa.create_engine(killed_url), sa.create_engine(reference_url)
    try:
        for engine in (killed, reference):
            create_target_schema(engine)
        tables = ctx.spec.touched_tables()
        backup.snapshot(reference, tables, "run-k")
        _resume(ctx, reference, "run-k")
        for source_table, chunks in KILL_POINTS:
            process = _start_load(project, killed_url, "run-k")
            _kill_when(process, killed, source_table, chunks)
        report = _resume(ctx, killed, "run-k")
        assert report.passed and all(r.balanced for r in report.results), report.render()
        assert _digests(killed, tables) == _digests(reference, tables)
        # a PostgreSQL load suspends foreign keys: after the resume they are all back
        assert _foreign_keys(killed, tables) == _foreign_keys(reference, tables)
        assert _foreign_keys(killed, tables)
        result = _validate(ctx, killed, "run-k")
        assert result.passed and result.differences == 0, result.render()
        restored = backup.restore(killed, backup.find_snapshot(killed, "run-k"))
        assert restored.passed
    finally:
        killed.dispose()
        reference.dispose()


def _foreign_keys(engine: sa.Engine, tables: list[str]) -> set[tuple]:
    inspector = sa.inspect(engine)
    return {
        (table, tuple(key["constrained_columns"]), key["referred_table"])
        for table in tables
        for key in inspector.get_foreign_keys(table)
    }


def test_sigkill_at_several_points_then_resume_loads_every_row_exactly_once(demo, databases):
    killed, reference = databases.new("killed"), databases.new("reference")
    _kill_resume_matches_uninterrupted(
        demo,
        killed.render_as_string(hide_password=False),
        reference.render_as_string(hide_password=False),
    )


def test_rollback_after_a_killed_load_restores_the_pre_load_hashes(demo):
    project, ctx = demo
    url = f"sqlite:///{project / 'killed.db'}"
    target = sa.create_engine(url)
    try:
        create_target_schema(target)
        with target.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO products (sku, name, currency, source_system, source_key) "
                    "VALUES ('OLD-1', 'already there', 'CNY', 'manual', 'OLD-1')"
                )
            )
        tables = ctx.spec.touched_tables()
        before = _digests(target, tables)
        backup_run = "run-r"
        snap = backup.snapshot(target, tables, backup_run)
        with target.begin() as connection:  # make way for the load, as an operator would
            connection.execute(sa.text("DELETE FROM products"))
        process = _start_load(project, url, backup_run)
        _kill_when(process, target, "orders", 2)
        assert _digests(target, ["orders"]) != {"orders": before["orders"]}
        restored = backup.restore(target, snap)
        assert restored.passed, restored.render()
        assert _digests(target, tables) == before
    finally:
        target.dispose()
