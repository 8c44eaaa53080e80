"""One task of a partitioned load, as a worker runs it: a key range of a source, or a merge target.

The task resolves the connection URLs from the worker's own environment (it carries the params'
connection entries — a variable's name, or a password-free URL — never a secret), reads its key
range after its own checkpoint, and streams it through ``loader.stream_source``, the very code of
a local load: same transforms, references, quarantine, chunk transactions. Killed and retried, it
continues after its last committed chunk, numbering its rows after the highest id it wrote. Each
attempt is counted in the plan's row (``runbook_partitions``), with the worker and the seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.config.connections import make_engine, resolve_url
from runbook_lib.config.params import ConnectionParams
from runbook_lib.db.bookkeeping import REJECTS_TABLE, partitions
from runbook_lib.load import checkpoints, loader
from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.scale.plan import Partition


@dataclass(frozen=True)
class Connection:
    """A connection as a task carries it: the params entry (a variable's name), never the URL."""

    name: str
    params: ConnectionParams
    project_root: str

    def engine(self) -> sa.Engine:
        """The engine, its URL resolved here, from this process's environment."""
        return make_engine(resolve_url(self.name, self.params, Path(self.project_root)))


@dataclass(frozen=True)
class LoadTask:
    """One task: a partition of a source, or (``partition`` None) a whole merge target."""

    spec: LoadedSpec
    target_table: str
    partition: Partition | None
    sources: dict[str, Connection]  # by system
    target: Connection
    run_id: str
    mode: str
    chunk_size: int

    @property
    def key(self) -> str:
        """The task's name on the scheduler and dashboard (no value from any row or URL)."""
        if self.partition is None:
            return f"runbook-load-{self.target_table}-{self.run_id}"
        p = self.partition
        return f"runbook-load-{p.target_table}-{p.source_system}-{p.source_table}-p{p.number}-{self.run_id}"

    @property
    def label(self) -> str:
        if self.partition is None:
            return f"{self.target_table} (merge target, one task)"
        return self.partition.label


def run_task(task: LoadTask, worker: str = "local") -> dict:
    """Load one partition (or one merge target) on this process; what it did, as counts."""
    started = time.perf_counter()
    target = task.target.engine()
    sources = {system: c.engine() for system, c in task.sources.items()}
    try:
        _attempt(target, task, worker)
        own = [p for p in ordered_sources(task.spec) if p.target_name == task.target_table]
        metadata = sa.MetaData()
        metadata.reflect(
            target,
            only=[*task.spec.touched_tables(), REJECTS_TABLE, checkpoints.CHECKPOINTS_TABLE],
        )
        if task.partition is None:
            for pipeline in own:
                loader._load_source(
                    pipeline,
                    sources[pipeline.system],
                    target,
                    metadata,
                    key=checkpoints.CheckpointKey(task.run_id, task.mode, *pipeline.identity),
                    chunk_size=task.chunk_size,
                    sample_percent=None,
                    progress=None,
                )
        else:
            pipeline = next(p for p in own if p.identity == task.partition.identity)
            _load_partition(task, pipeline, sources[pipeline.system], target, metadata)
        seconds = time.perf_counter() - started
        _finished(target, task, seconds)
        return {"task": task.key, "worker": worker, "seconds": round(seconds, 3)}
    finally:
        target.dispose()
        for engine in sources.values():
            engine.dispose()


def _load_partition(
    task: LoadTask,
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
) -> checkpoints.Checkpoint:
    part = task.partition
    key = part.checkpoint_key(task.run_id, task.mode)
    with target.connect() as connection:
        state = checkpoints.read(connection, key)
    if state.done:
        return state
    if state.last_key is None:
        state = replace(state, last_key=part.after_key)
    return loader.stream_source(
        pipeline,
        source,
        target,
        metadata,
        key,
        state,
        {"source_rows": part.planned_rows},
        task.chunk_size,
        None,
        None,
        until_key=part.until_key,
        first_id=_next_id(target, metadata, pipeline, part),
    )


def _next_id(
    target: sa.Engine, metadata: sa.MetaData, pipeline: CompiledSource, part: Partition
) -> int | None:
    """After the highest id this partition wrote (a retried task continues its own numbering)."""
    id_column = pipeline.target.id_column
    if not id_column:
        return None
    column = metadata.tables[pipeline.target_name].c[id_column]
    with target.connect() as connection:
        highest = connection.execute(
            sa.select(sa.func.max(column)).where(
                column >= part.first_id, column < part.first_id + part.planned_rows
            )
        ).scalar()
    return part.first_id if highest is None else highest + 1


def _where(task: LoadTask):
    c = partitions.c
    p = task.partition
    number = -1 if p is None else p.number
    system, table = ("", "") if p is None else (p.source_system, p.source_table)
    return sa.and_(
        c.run_id == task.run_id,
        c.mode == task.mode,
        c.target_table == task.target_table,
        c.source_system == system,
        c.source_table == table,
        c.partition_no == number,
    )


def _attempt(target: sa.Engine, task: LoadTask, worker: str) -> None:
    with target.begin() as connection:
        connection.execute(
            partitions.update()
            .where(_where(task))
            .values(attempts=partitions.c.attempts + 1, worker=worker)
        )


def _finished(target: sa.Engine, task: LoadTask, seconds: float) -> None:
    with target.begin() as connection:
        connection.execute(
            partitions.update()
            .where(_where(task))
            .values(
                seconds=round(seconds, 3),
                finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            )
        )
