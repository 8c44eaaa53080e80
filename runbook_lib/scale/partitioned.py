"""A full load cut into key-range partitions, each one task; the same target as a local load.

The coordinator (this module, in the stage's process) does what must happen once: refuse a
foreign target, suspend foreign keys, plan each target's partitions from its sources and record
the plan, then hand the partitions to an executor (``dask_engine``, or ``serial`` in this
process) and, when all partitions of a target are in, close it: ids compacted, every source's
checkpoint summed from its partitions', references into the target resolved, statistics
refreshed. Targets still load one after the other, parents before children.

A task (``task.run_task``) runs on a worker: one key range of a source through the local
loader's own streaming code, resumable alone from its checkpoint.

Ids: a partition numbers its rows from its plan's offset (the rows planned before it), in key
order. Rows quarantined leave gaps a local load would not have; ``compact_ids`` closes them in
one pass, keeping the order — which is the local load's order — so every id equals the local one.

A target with a merge (customers, with survivorship across systems) runs as one task: its sources
load one after the other through the local loader, so survivorship sees every record in the same
order as a local load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import groupby

import sqlalchemy as sa

from runbook_lib.db import sequences
from runbook_lib.db.bookkeeping import REJECTS_TABLE, partitions
from runbook_lib.db.lookups import refresh_statistics
from runbook_lib.load import checkpoints, foreign_keys, loader, self_references
from runbook_lib.load.quarantine import ensure_rejects_table
from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.scale import plan
from runbook_lib.scale.plan import Partition
from runbook_lib.scale.task import Connection, LoadTask, run_task


@dataclass(frozen=True)
class PartitionedLoadReport(loader.LoadReport):
    """A load report with the engine, its plan and each task's worker, attempts and time."""

    engine: str = "local"
    workers: int = 0
    tasks: tuple[dict, ...] = field(default_factory=tuple)
    # per target, this attempt's wall seconds: plan, tasks, close (ids, sums, references), stats
    timings: tuple[dict, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "engine": self.engine,
            "workers": self.workers,
            "partitions": list(self.tasks),
            "timings": list(self.timings),
        }

    def render(self) -> str:
        lines = [super().render(), f"engine {self.engine}, {self.workers} worker(s):"]
        for t in self.tasks:
            lines.append(
                f"  {t['label']}: {t['planned_rows']:,} rows planned, "
                f"{t['seconds']:.2f} s on {t['worker']}, {t['attempts']} attempt(s)"
            )
        return "\n".join(lines)


Executor = Callable[[list[LoadTask]], None]


def serial(tasks: list[LoadTask]) -> None:
    """Run the tasks one by one in this process (the executor of tests and of one-core runs)."""
    for task in tasks:
        run_task(task)


class _Clock:
    """Wall seconds of one target's phases, for the evidence and the sizing."""

    def __init__(self, target_name: str) -> None:
        self.seconds: dict = {"target_table": target_name}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[f"{phase}_seconds"] = round(now - self._last, 3)
        self._last = now


def load(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    *,
    connections: dict[str, Connection],
    target_connection: Connection,
    executor: Executor,
    engine_name: str,
    workers: int,
    run_id: str,
    mode: str,
    chunk_size: int,
    max_reject_rate: float,
    target_label: str,
    partition_rows: int,
    max_partitions: int,
    suspend_foreign_keys: bool = True,
    dense_ids: bool = True,
) -> PartitionedLoadReport:
    """Load every source of ``spec`` into ``target`` as tasks run by ``executor``.

    ``sources`` (by system) serve the coordinator's plan and counts; ``connections`` (by system)
    are what the tasks carry to open their own. A load this run started continues: its plan is
    read back, finished partitions are skipped, the others resume from their checkpoints.
    ``dense_ids`` closes the gaps quarantined rows leave (every id the local load's); without
    it the ids stay the plan's (deterministic, gaps where rows were quarantined) and the
    renumbering pass over each table is saved.
    """
    ensure_rejects_table(target)
    checkpoints.ensure_checkpoints_table(target)
    self_references.ensure_table(target)
    plan.ensure_table(target)
    if not checkpoints.has_any(target, run_id, mode):
        loader.refuse_non_empty_target(target, spec.touched_tables())
    if suspend_foreign_keys:
        foreign_keys.suspend(target, spec.touched_tables(), run_id)
    metadata = sa.MetaData()
    metadata.reflect(
        target, only=[*spec.touched_tables(), REJECTS_TABLE, checkpoints.CHECKPOINTS_TABLE]
    )
    planner = _Planner(
        spec,
        sources,
        target,
        connections,
        target_connection,
        run_id,
        mode,
        chunk_size,
        partition_rows,
        max_partitions,
    )
    results: dict[tuple[str, str, str], loader.SourceLoadResult] = {}
    timings: list[dict] = []
    try:
        for target_name, group in groupby(ordered_sources(spec), key=lambda p: p.target_name):
            own = list(group)
            clock = _Clock(target_name)
            todo = [t for t in planner.tasks(own) if not _done(target, t, own)]
            clock.lap("plan")
            if todo:
                executor(todo)
            clock.lap("tasks")
            if own[0].target.merge is None:
                clock.seconds["renumbered"] = _close_target(
                    target, metadata, own, run_id, mode, dense_ids
                )
            if any(p.deferred_references for p in own):
                # references into this very target, once all of its rows exist
                self_references.resolve(target, sources, metadata, own, run_id=run_id, mode=mode)
            clock.lap("close")
            for pipeline in own:
                results[pipeline.identity] = _result(pipeline, sources, target, run_id, mode)
            refresh_statistics(target, spec.tables_of(target_name))
            clock.lap("statistics")
            timings.append(clock.seconds | {"tasks_run": len(todo)})
    except BaseException:
        loader.reinstate_keys_quietly(target, run_id)
        raise
    counters = loader.finish_load(target, spec, run_id)
    return PartitionedLoadReport(
        mode=mode,
        run_id=run_id,
        target=target_label,
        sample_percent=None,
        max_reject_rate=max_reject_rate,
        results=tuple(results.values()),
        counters=tuple(counters),
        engine=engine_name,
        workers=workers,
        tasks=tuple(recorded_tasks(target, spec, run_id, mode)),
        timings=tuple(timings),
    )


@dataclass
class _Planner:
    """The tasks of each target: its recorded plan, planned from the sources on the first attempt."""

    spec: LoadedSpec
    sources: dict[str, sa.Engine]
    target: sa.Engine
    connections: dict[str, Connection]
    target_connection: Connection
    run_id: str
    mode: str
    chunk_size: int
    partition_rows: int
    max_partitions: int

    def _task(self, target_name: str, part: Partition | None, systems) -> LoadTask:
        return LoadTask(
            self.spec,
            target_name,
            part,
            {system: self.connections[system] for system in systems},
            self.target_connection,
            self.run_id,
            self.mode,
            self.chunk_size,
        )

    def tasks(self, own: list[CompiledSource]) -> list[LoadTask]:
        target_name = own[0].target_name
        with self.target.begin() as connection:
            planned = plan.recorded(connection, self.run_id, self.mode, target_name)
            if own[0].target.merge is not None:
                if not planned:  # one task; a plan row holds its attempts, worker and time
                    whole = Partition(target_name, "", "", -1, None, None, 0, 0)
                    plan.record(connection, self.run_id, self.mode, [whole])
                return [self._task(target_name, None, [p.system for p in own])]
        if not planned:
            planned = plan.plan_target(
                own,
                self.sources,
                first_id=_first_id(self.target, own),
                partition_rows=self.partition_rows,
                max_partitions=self.max_partitions,
            )
            with self.target.begin() as connection:
                plan.record(connection, self.run_id, self.mode, planned)
                for pipeline in own:  # the change column's high point, before any row is read
                    watermark = loader._watermark_before_load(
                        pipeline, self.sources[pipeline.system]
                    )
                    key = checkpoints.CheckpointKey(self.run_id, self.mode, *pipeline.identity)
                    checkpoints.write(connection, key, checkpoints.Checkpoint(watermark=watermark))
        return [self._task(target_name, p, [p.source_system]) for p in planned]


def _first_id(target: sa.Engine, own: list[CompiledSource]) -> int:
    """Where a local load would start numbering this target: after its highest id."""
    id_column = own[0].target.id_column
    if not id_column:
        return 1
    table = sa.table(own[0].target_name, sa.column(id_column))
    with target.connect() as connection:
        highest = connection.execute(sa.select(sa.func.max(table.c[id_column]))).scalar()
    return (highest or 0) + 1


def _done(target: sa.Engine, task: LoadTask, own: list[CompiledSource]) -> bool:
    """Whether the task finished in an earlier attempt of this run (nothing to schedule)."""
    if task.partition is None:
        keys = [checkpoints.CheckpointKey(task.run_id, task.mode, *p.identity) for p in own]
    else:
        keys = [task.partition.checkpoint_key(task.run_id, task.mode)]
    with target.connect() as connection:
        return all(checkpoints.read(connection, key).done for key in keys)


def _close_target(
    target: sa.Engine,
    metadata: sa.MetaData,
    own: list[CompiledSource],
    run_id: str,
    mode: str,
    dense_ids: bool,
) -> int:
    """All partitions in: ids compacted and each source's checkpoint summed, in one transaction.

    Returns the rows renumbered.
    """
    keys = [checkpoints.CheckpointKey(run_id, mode, *p.identity) for p in own]
    renumbered = 0
    with target.begin() as connection:
        if all(checkpoints.read(connection, key).done for key in keys):
            return renumbered  # closed by an earlier attempt
        planned = plan.recorded(connection, run_id, mode, own[0].target_name)
        id_column = own[0].target.id_column
        states = {p: checkpoints.read(connection, p.checkpoint_key(run_id, mode)) for p in planned}
        # a partition's rows hold [first_id, first_id + loaded): the ids are dense up to the
        # first partition that wrote fewer rows than it planned, and shift after it
        short = next((p for p in planned if states[p].loaded < p.planned_rows), None)
        if id_column and short is not None and dense_ids:
            renumbered = compact_ids(
                connection,
                metadata.tables[own[0].target_name],
                id_column,
                short.first_id + states[short].loaded,
            )
        for pipeline, key in zip(own, keys, strict=True):
            mine = [states[p] for p in planned if p.identity == pipeline.identity]
            checkpoints.write(connection, key, _summed(checkpoints.read(connection, key), mine))
    return renumbered


def _summed(before: checkpoints.Checkpoint, states: list[checkpoints.Checkpoint]):
    """The source's checkpoint as the sum of its partitions' (the last key is the last one's)."""
    total = replace(before, done=True)
    for state in states:
        total = total.advance(
            last_key=state.last_key if state.last_key is not None else total.last_key,
            rows=state.rows_read,
            loaded=state.loaded,
            merged=state.merged,
            rejected=state.quarantined,
            seconds=state.seconds,
            nulled=state.nulled,
        )
        total = replace(total, chunks=total.chunks - 1 + state.chunks)
    return total


def compact_ids(connection: sa.Connection, table: sa.Table, id_column: str, start: int) -> int:
    """Renumber the ids from ``start`` on densely from ``start``, in their order; rows renumbered.

    The partitions numbered their rows from the plan's offsets, so id order is key order across
    partitions; the gaps quarantined rows left close, and each id becomes the local load's. Two
    passes through negative ids keep every intermediate state unique (PostgreSQL checks a
    primary key row by row). The rows below ``start`` are dense already and stay.
    """
    column = table.c[id_column]
    count, low, high = connection.execute(
        sa.select(sa.func.count(), sa.func.min(column), sa.func.max(column)).where(column >= start)
    ).one()
    if not count or (low == start and high - low + 1 == count):
        return 0
    # PostgreSQL updates a GENERATED ALWAYS identity only as BY DEFAULT: switched for the
    # renumbering, back in the same transaction
    always = sequences.always_identity(connection, table.name)
    quote = connection.dialect.identifier_preparer.quote
    identity = f"ALTER TABLE {quote(table.name)} ALTER COLUMN {quote(id_column)} SET GENERATED"
    if always:
        connection.exec_driver_sql(f"{identity} BY DEFAULT")
    numbered = (
        sa.select(column.label("old_id"), sa.func.row_number().over(order_by=column).label("rn"))
        .where(column >= start)
        .subquery()
    )
    connection.execute(
        table.update()
        .where(column == numbered.c.old_id)
        .values({id_column: -(numbered.c.rn + (start - 1))})
    )
    connection.execute(table.update().where(column < 0).values({id_column: -column}))
    if always:
        connection.exec_driver_sql(f"{identity} ALWAYS")
    return count


def _result(pipeline, sources, target, run_id, mode) -> loader.SourceLoadResult:
    counts = pipeline.count(sources[pipeline.system])
    with target.connect() as connection:
        state = checkpoints.read(
            connection, checkpoints.CheckpointKey(run_id, mode, *pipeline.identity)
        )
    return loader.SourceLoadResult(
        target_table=pipeline.target_name,
        source_system=pipeline.system,
        source_table=pipeline.table,
        source_rows=counts["source_rows"],
        loaded=state.loaded,
        merged=state.merged,
        quarantined=dict(state.quarantined),
        filtered={k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("filtered:")},
        seconds=state.seconds,
        nulled=dict(state.nulled),
    )


def recorded_tasks(target: sa.Engine, spec: LoadedSpec, run_id: str, mode: str) -> list[dict]:
    """Every task of the run's plan with its worker, attempts, seconds and rows, in load order."""
    order = {name: i for i, name in enumerate(spec.spec.targets)}
    c = partitions.c
    with target.connect() as connection:
        rows = (
            connection.execute(sa.select(partitions).where(c.run_id == run_id, c.mode == mode))
            .mappings()
            .all()
        )
        found = []
        for row in sorted(
            rows, key=lambda r: (order.get(r["target_table"], 0), r["first_id"], r["partition_no"])
        ):
            part = plan.recorded_row(row)
            entry = part.to_dict() | {
                "label": part.label
                if part.number >= 0
                else f"{part.target_table} (merge target, one task)",
                "attempts": row["attempts"],
                "retries": max(0, row["attempts"] - 1),
                "worker": row["worker"] or "",
                "seconds": row["seconds"] or 0.0,
            }
            if part.number >= 0:
                state = checkpoints.read(connection, part.checkpoint_key(run_id, mode))
                entry |= {"loaded": state.loaded, "quarantined": sum(state.quarantined.values())}
                entry["rows_per_second"] = (
                    round(part.planned_rows / entry["seconds"]) if entry["seconds"] else None
                )
            found.append(entry)
    return found
