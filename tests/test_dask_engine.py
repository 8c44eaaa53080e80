"""``engine: dask`` on a ``LocalCluster`` of two worker processes: same target, no secret, faults.

* The partitioned load on the cluster gives every table the local load's hash (ids included);
  validation on the cluster passes it, and finds one planted difference by its key.
* The target's URL reaches the workers only through their own environment: a scheduler plugin
  records every task the scheduler is given (its pickled run spec and key), and the test password
  is in none of them — while the name of the variable that holds it is (the inspection sees the
  task's arguments).
* A worker process SIGKILLed while it holds a partition (its checkpoint has committed chunks, the
  partition is not done): the scheduler runs the task again, the partition continues from its
  checkpoint, and the target is the local load's, row for row — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
import yaml
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from test_scale import digests, local_load

from runbook_demo.build import build_demo
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.params import load_params
from runbook_lib.db.bookkeeping import CHECKPOINTS_TABLE, PARTITIONS_TABLE
from runbook_lib.errors import PartitionFailedError
from runbook_lib.run.context import StageContext
from runbook_lib.scale import dask_engine

pytestmark = pytest.mark.cluster

PASSWORD = "Tr0ub4dor-dask-test-secret"
TARGET_VARIABLE = "RUNBOOK_SCALE_TEST_TARGET_URL"
CHUNK = 20


class TaskRecorder(SchedulerPlugin):
    """Every task the scheduler holds, as it holds it: key and pickled run spec."""

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler
        self.seen: dict[str, bytes] = {}

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        state = self.scheduler.tasks.get(key)
        if state is not None and state.run_spec is not None:
            self.seen[str(key)] = pickle.dumps(state.run_spec)


@contextmanager
def local_cluster():
    """Two worker processes; they inherit the environment as it is when they start."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as made,
        Client(made) as client,
    ):
        yield made, client


def _target_url(databases, label: str) -> sa.URL:
    url = databases.new(label)
    if url.get_backend_name() == "sqlite":  # no password in a file URL: the secret is its name
        return url.set(database=str(url.database).replace(label, f"{label}-{PASSWORD}"))
    return url.set(password=PASSWORD)  # the local server trusts; the password travels anyway


def _dask_ctx(project, scheduler: str, partition_rows: int, retries: int = 2) -> StageContext:
    path = project / "params" / "ci.yaml"
    data = yaml.safe_load(path.read_text())
    data["target"] = {"url_env": TARGET_VARIABLE}
    data["engine"] = {
        "dask": {"scheduler": scheduler, "partition_rows": partition_rows, "retries": retries}
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return StageContext(load_params("ci", project_root=project), None)


def _load(ctx: StageContext, target: sa.Engine, run_id: str):
    return dask_engine.load(
        ctx.spec,
        ctx.source_engines(),
        target,
        params=ctx.params,
        run_id=run_id,
        mode="full",
        chunk_size=CHUNK,
        max_reject_rate=1.0,
        target_label="target",
    )


def _prepare(project, databases, monkeypatch):
    build_demo("ci", project)
    split_url = _target_url(databases, "split")
    monkeypatch.setenv(TARGET_VARIABLE, split_url.render_as_string(hide_password=False))
    reference_url = databases.new("reference")
    split, reference = sa.create_engine(split_url), sa.create_engine(reference_url)
    for engine in (split, reference):
        create_target_schema(engine)
    return split, reference


@pytest.mark.parametrize(
    "databases", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_on_a_local_cluster_the_target_is_the_local_ones_and_no_task_holds_the_password(
    project, databases, monkeypatch
):
    split, reference = _prepare(project, databases, monkeypatch)
    with local_cluster() as (made, _):
        _check_target_and_tasks(project, made, split, reference)


def _check_target_and_tasks(project, made, split, reference) -> None:
    recorder = TaskRecorder(made.scheduler)
    made.scheduler.add_plugin(recorder)
    try:
        ctx = _dask_ctx(project, made.scheduler_address, partition_rows=700)
        local_load(ctx, reference, "run-d")
        report = _load(ctx, split, "run-d")
        assert report.passed, report.render()
        tables = ctx.spec.touched_tables()
        assert digests(split, tables) == digests(reference, tables)
        assert report.workers == 2
        assert len({t["worker"] for t in report.tasks}) == 2  # both workers took partitions
        # validation on the cluster: each source group's check a task, only its result back
        assert _validate(ctx, split, "run-d").differences == 0
        with split.begin() as connection:  # one planted difference, found by its key
            connection.execute(sa.text("UPDATE orders SET status = 'tampered' WHERE order_id = 17"))
            key = connection.execute(
                sa.text("SELECT source_key FROM orders WHERE order_id = 17")
            ).scalar_one()
        found = _validate(ctx, split, "run-d")
        assert not found.passed and found.differences == 1
        assert [(d.table, d.source_key, d.kind) for t in found.tables for d in t.differences] == [
            ("orders", key, "changed")
        ]
        assert {k.split("-")[1] for k in recorder.seen} == {"load", "validate"}
        assert recorder.seen and all(key.startswith("runbook-") for key in recorder.seen)
        assert any(TARGET_VARIABLE.encode() in spec for spec in recorder.seen.values())
        for key, spec in recorder.seen.items():
            assert PASSWORD not in key
            assert PASSWORD.encode() not in spec, key
    finally:
        split.dispose()
        reference.dispose()


def _validate(ctx: StageContext, target: sa.Engine, run_id: str):
    return dask_engine.validate(
        ctx.spec,
        ctx.source_engines(),
        target,
        params=ctx.params,
        run_id=run_id,
        target_label="target",
        chunk_size=500,
        max_unexplained_differences=0,
    )


def _running_partition(engine: sa.Engine, chunks: int):
    """(source_table, worker) of a partition with ``chunks`` committed and not done, or None."""
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sa.text(
                    f"SELECT c.source_table, p.worker FROM {CHECKPOINTS_TABLE} c "
                    f"JOIN {PARTITIONS_TABLE} p ON p.run_id = c.run_id "
                    "AND p.target_table = c.target_table AND p.source_system = c.source_system "
                    "AND c.source_table = p.source_table || '#p' || p.partition_no "
                    "WHERE c.chunks >= :chunks AND NOT c.done AND p.worker IS NOT NULL "
                    "AND p.planned_rows >= 1000"  # dozens of chunks still to go
                ),
                {"chunks": chunks},
            ).first()
    except sa.exc.DBAPIError:
        return None  # the bookkeeping tables are not created yet
    return found


@pytest.mark.parametrize(
    "databases", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_worker_killed_mid_partition_is_retried_and_the_partition_resumes_exactly_once(
    project, databases, monkeypatch
):
    split, reference = _prepare(project, databases, monkeypatch)
    with local_cluster() as (made, client):
        _kill_and_check(project, made, client, split, reference)


def _kill_and_check(project, made, client, split, reference) -> None:
    try:
        ctx = _dask_ctx(project, made.scheduler_address, partition_rows=2000)
        local_load(ctx, reference, "run-k")
        outcome: dict = {}

        def coordinate():
            try:
                outcome["report"] = _load(ctx, split, "run-k")
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                outcome["error"] = exc

        pids = client.run(os.getpid)  # asked now: at the kill, every millisecond counts
        coordinator = threading.Thread(target=coordinate)
        coordinator.start()
        deadline = time.monotonic() + 120
        while (running := _running_partition(split, 3)) is None:
            assert coordinator.is_alive(), f"the load ended before a kill: {outcome}"
            assert time.monotonic() < deadline, "no partition made progress"
            time.sleep(0.005)
        source_table, worker = running
        os.kill(pids[worker], signal.SIGKILL)
        with split.connect() as connection:
            killed = connection.execute(
                sa.text(f"SELECT chunks, done FROM {CHECKPOINTS_TABLE} WHERE source_table = :t"),
                {"t": source_table},
            ).one()
        coordinator.join(timeout=240)
        assert "error" not in outcome, outcome.get("error")
        report = outcome["report"]
        assert report.passed, report.render()
        tables = ctx.spec.touched_tables()
        assert digests(split, tables) == digests(reference, tables)
        retried = [t for t in report.tasks if t["retries"]]
        assert killed.done in (0, False) or retried, "the kill landed after the partition ended"
        assert retried, report.render()
        assert f"{retried[0]['source'].split('.')[1]}#p{retried[0]['partition']}" == source_table
    finally:
        split.dispose()
        reference.dispose()


def test_partitions_failing_past_their_retries_fail_the_load_naming_each_key_range(
    project, monkeypatch
):
    """Workers started before the target's variable was set cannot reach it: named, not hidden."""
    build_demo("ci", project)
    url = f"sqlite:///{project / 'unreachable.db'}"
    with local_cluster() as (made, _):
        monkeypatch.setenv(TARGET_VARIABLE, url)  # the coordinator's only, not the workers'
        ctx = _dask_ctx(project, made.scheduler_address, partition_rows=5000, retries=1)
        target = sa.create_engine(url)
        try:
            create_target_schema(target)
            with pytest.raises(PartitionFailedError) as failed:
                _load(ctx, target, "run-f")
        finally:
            target.dispose()
    # the first target's one partition, named by source, number and key range; nothing later ran
    assert list(failed.value.failed) == ["legacy_a.products → products partition 0 (start, end)"]
    assert all(TARGET_VARIABLE in error for error in failed.value.failed.values())
    assert "after 1 retries" in str(failed.value) and "--resume" in str(failed.value)
