"""The loader: stream every source through its mapping into the target, chunk by chunk.

Each chunk is one target transaction holding its rows, its crosswalk rows and its rejects, so a
chunk is either wholly loaded or not at all. References to earlier targets (an order's customer)
are resolved per chunk by a keyed query against the target, which keeps memory flat however large
the tables grow. Merge targets (customers) deduplicate on their match keys in survivorship order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from itertools import groupby

import sqlalchemy as sa

from runbook_lib.db import sequences
from runbook_lib.db.bookkeeping import REJECTS_TABLE
from runbook_lib.db.constraints import chunk_checker
from runbook_lib.db.lookups import begin_lookups, refresh_statistics
from runbook_lib.db.refusals import refused_by_target
from runbook_lib.db.writes import savepoint as open_savepoint
from runbook_lib.db.writes import write_rows
from runbook_lib.errors import GateFailedError, RunbookError
from runbook_lib.load import arrow_route, checkpoints, foreign_keys, self_references
from runbook_lib.load.merge import merge_chunk
from runbook_lib.load.quarantine import ensure_rejects_table, write_rejects
from runbook_lib.load.references import ParentIndex, resolve_references
from runbook_lib.mapping.columns import ColumnBatch
from runbook_lib.mapping.compiled import CompiledSource, Reject, ordered_sources
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.stage_table import RowProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceLoadResult:
    """What became of every row of one source table, as the loader saw it."""

    target_table: str
    source_system: str
    source_table: str
    source_rows: int
    loaded: int
    merged: int
    quarantined: dict[str, int]
    filtered: dict[str, int]
    seconds: float
    # values on_error "null" dropped in rows that were loaded, by "column:rule"
    nulled: dict[str, int] = field(default_factory=dict)
    engine: str = "arrow"  # how it was read and transformed (``arrow_route``)
    fallback: str | None = None  # why chunks of the Arrow route went as rows

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def balanced(self) -> bool:
        accounted = self.loaded + self.merged + self.quarantined_total + sum(self.filtered.values())
        return accounted == self.source_rows

    def to_dict(self) -> dict:
        return {
            "target_table": self.target_table,
            "source_system": self.source_system,
            "source_table": self.source_table,
            "source_rows": self.source_rows,
            "loaded": self.loaded,
            "merged": self.merged,
            "quarantined": self.quarantined_total,
            "quarantined_by_rule": dict(self.quarantined),
            "filtered": sum(self.filtered.values()),
            "filtered_by_rule": dict(self.filtered),
            "balanced": self.balanced,
            "seconds": round(self.seconds, 3),
            "nulled_by_column_rule": dict(self.nulled),
            "engine": self.engine,
            "engine_fallback": self.fallback,
        }


@dataclass(frozen=True)
class LoadReport:
    """The outcome of a trial or full load."""

    mode: str
    run_id: str
    target: str
    sample_percent: int | None
    max_reject_rate: float
    results: tuple[SourceLoadResult, ...] = field(default_factory=tuple)
    counters: tuple[
        dict, ...
    ] = ()  # id counters set past the loaded ids: table, column, before, after

    @property
    def source_rows(self) -> int:
        return sum(r.source_rows for r in self.results)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined_total for r in self.results)

    @property
    def reject_rate(self) -> float:
        return self.quarantined / self.source_rows if self.source_rows else 0.0

    @property
    def passed(self) -> bool:
        return all(r.balanced for r in self.results) and self.reject_rate <= self.max_reject_rate

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "run_id": self.run_id,
            "target": self.target,
            "sample_percent": self.sample_percent,
            "source_rows": self.source_rows,
            "loaded": sum(r.loaded for r in self.results),
            "merged": sum(r.merged for r in self.results),
            "quarantined": self.quarantined,
            "filtered": sum(sum(r.filtered.values()) for r in self.results),
            "reject_rate": round(self.reject_rate, 6),
            "max_reject_rate": self.max_reject_rate,
            "passed": self.passed,
            "nulled": _summed(r.nulled for r in self.results),
            "counters": list(self.counters),
            "tables": [r.to_dict() for r in self.results],
        }

    def render(self) -> str:
        header = f"{'source':<28} {'target':<14} {'rows':>9} {'loaded':>9} {'merged':>7} {'quar.':>6} {'filt.':>6}  ok"
        lines = [f"{self.mode} load into {self.target}", header, "-" * len(header)]
        for r in self.results:
            lines.append(
                f"{r.source_system + '.' + r.source_table:<28} {r.target_table:<14} {r.source_rows:>9,} "
                f"{r.loaded:>9,} {r.merged:>7,} {r.quarantined_total:>6,} {sum(r.filtered.values()):>6,}  "
                f"{'yes' if r.balanced else 'NO'}"
            )
        for r in self.results:
            if r.fallback:
                lines.append(f"{r.source_system}.{r.source_table}: not all Arrow: {r.fallback}")
        nulled = _summed(r.nulled for r in self.results)
        if nulled:
            shown = ", ".join(f"{name} {count:,}" for name, count in sorted(nulled.items()))
            lines.append(f"values dropped by on_error null (rows kept): {shown}")
        for counter in self.counters:
            lines.append(
                f"id counter {counter['table']}.{counter['column']}: {counter['before']} → "
                f"{counter['after']} (the next id follows the loaded ones)"
            )
        lines.append(
            f"reject rate {self.reject_rate:.3%} (gate {self.max_reject_rate:.3%}): "
            f"{'passed' if self.passed else 'FAILED'}"
        )
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        unbalanced = [f"{r.source_system}.{r.source_table}" for r in self.results if not r.balanced]
        if unbalanced:
            raise GateFailedError(
                f"{self.mode} load: rows unaccounted for in {', '.join(unbalanced)}",
                hint="compare the source counts with the load table in the notebook; roll the run "
                "back (runbook rollback) before loading again",
            )
        if self.reject_rate > self.max_reject_rate:
            raise GateFailedError(
                f"{self.mode} load: {self.quarantined:,} of {self.source_rows:,} rows quarantined "
                f"({self.reject_rate:.3%}), above the gate of {self.max_reject_rate:.3%}",
                hint="triage the rejects by rule, fix the source or the spec, then roll back and re-run",
            )


def _summed(counts) -> dict[str, int]:
    total: dict[str, int] = {}
    for found in counts:
        for name, count in found.items():
            total[name] = total.get(name, 0) + count
    return total


def refuse_non_empty_target(engine: sa.Engine, tables: Iterable[str]) -> None:
    """A full load starts from an empty target: anything else needs a rollback first."""
    inspector = sa.inspect(engine)
    existing = set(inspector.get_table_names())
    occupied = {}
    with engine.connect() as connection:
        for name in tables:
            if name in existing:
                rows = connection.execute(
                    sa.select(sa.func.count()).select_from(sa.table(name))
                ).scalar_one()
                if rows:
                    occupied[name] = rows
    if occupied:
        listing = ", ".join(f"{name} ({rows:,} rows)" for name, rows in occupied.items())
        raise RunbookError(
            f"the target already holds data in {listing}",
            hint="roll back the earlier run (runbook rollback --env ENV --run-id RUN) "
            "or start from an empty target (for the demo: runbook demo-data --env ENV)",
        )


def load(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    *,
    run_id: str,
    mode: str,
    chunk_size: int,
    max_reject_rate: float,
    target_label: str,
    sample_percent: int | None = None,
    progress: RowProgress | None = None,
    suspend_foreign_keys: bool = True,
    engine: str = "arrow",
) -> LoadReport:
    """Load every source of the spec into ``target``; ``sources`` is keyed by system name.

    A load that this run already started (a crash, a kill, a failed gate) continues from its
    checkpoints; a target holding anybody else's data is refused. Where the dialect supports it
    (PostgreSQL), the loaded tables' foreign keys are suspended while rows stream in and
    validated once at the end (see ``foreign_keys``). ``engine`` is how chunks are transformed
    (``arrow_route``): ``arrow``, by the vectorized kernels (a chunk they cannot take goes as
    rows, logged and reported with the reason), or ``rows``, the reference route.
    """
    ensure_rejects_table(target)
    checkpoints.ensure_checkpoints_table(target)
    self_references.ensure_table(target)
    if not checkpoints.has_any(target, run_id, mode):
        refuse_non_empty_target(target, spec.touched_tables())
    if suspend_foreign_keys:
        foreign_keys.suspend(target, spec.touched_tables(), run_id)
    metadata = sa.MetaData()
    metadata.reflect(
        target, only=[*spec.touched_tables(), REJECTS_TABLE, checkpoints.CHECKPOINTS_TABLE]
    )
    results: dict[tuple[str, str, str], SourceLoadResult] = {}
    try:
        for target_name, group in groupby(ordered_sources(spec), key=lambda p: p.target_name):
            own = list(group)
            for pipeline in own:
                results[pipeline.identity] = _load_source(
                    pipeline,
                    sources[pipeline.system],
                    target,
                    metadata,
                    key=_checkpoint_key(pipeline, run_id, mode),
                    chunk_size=chunk_size,
                    sample_percent=sample_percent,
                    progress=progress,
                    engine=engine,
                )
            if any(p.deferred_references for p in own):
                # references into this very target, once all of its rows exist
                self_references.resolve(target, sources, metadata, own, run_id=run_id, mode=mode)
                for pipeline in own:
                    results[pipeline.identity] = _reread(
                        results[pipeline.identity], target, _checkpoint_key(pipeline, run_id, mode)
                    )
            # Statistics now, not at the end: the next sources look rows up in this table chunk by
            # chunk (their parents, their duplicates), and a planner that still thinks it empty
            # scans it every time.
            refresh_statistics(target, spec.tables_of(target_name))
    except BaseException:
        # The suspended keys come back even when the load stops (a refused chunk, a kill is
        # different: a resume or a rollback reinstates them); a key the partial data breaks
        # stays recorded, so the original error is the one raised.
        reinstate_keys_quietly(target, run_id)
        raise
    counters = finish_load(target, spec, run_id)  # after the statistics: a key check plans a join
    return LoadReport(
        mode=mode,
        run_id=run_id,
        target=target_label,
        sample_percent=sample_percent,
        max_reject_rate=max_reject_rate,
        results=tuple(results.values()),
        counters=tuple(counters),
    )


def finish_load(target: sa.Engine, spec, run_id: str) -> list[dict]:
    """After every source is in: the suspended foreign keys back, id counters past the highest."""
    with target.begin() as connection:
        foreign_keys.reinstate(connection, run_id)
        return set_counters_past_highest(connection, spec.touched_tables())


def set_counters_past_highest(connection: sa.Connection, tables: list[str]) -> list[dict]:
    """Every id counter of the loaded tables past its highest id; what changed, for evidence.

    The application's first INSERT after the cut-over must not collide with a loaded row.
    """
    changed = []
    for table in tables:
        for before, after in sequences.set_past_highest(connection, table):
            changed.append(
                {
                    "table": table,
                    "column": before.column,
                    "before": before.value,
                    "after": after.value,
                }
            )
    return changed


def _checkpoint_key(pipeline: CompiledSource, run_id: str, mode: str) -> checkpoints.CheckpointKey:
    return checkpoints.CheckpointKey(run_id, mode, *pipeline.identity)


def reinstate_keys_quietly(target: sa.Engine, run_id: str) -> None:
    """The suspended foreign keys back after a stopped load; a failure here stays recorded."""
    try:
        with target.begin() as connection:
            foreign_keys.reinstate(connection, run_id)
    except Exception:  # noqa: BLE001 - the load's own error matters; the keys stay recorded
        pass


def _reread(
    result: SourceLoadResult, target: sa.Engine, key: checkpoints.CheckpointKey
) -> SourceLoadResult:
    """``result`` with the counts its checkpoint holds now (after references were resolved)."""
    with target.connect() as connection:
        state = checkpoints.read(connection, key)
    return replace(result, loaded=state.loaded, quarantined=dict(state.quarantined))


def _load_source(
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    *,
    key: checkpoints.CheckpointKey,
    chunk_size: int,
    sample_percent: int | None,
    progress: RowProgress | None,
    engine: str = "arrow",
) -> SourceLoadResult:
    route = arrow_route.choose(engine)
    notes: set[str] = set()  # chunks the Arrow route left to the rows route, and why
    counts = pipeline.count(source, sample_percent=sample_percent)
    filtered = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("filtered:")}
    with target.connect() as connection:
        state = checkpoints.read(connection, key)
    if state.chunks == 0 and state.watermark is None:
        state = replace(state, watermark=_watermark_before_load(pipeline, source))
    if not state.done:
        state = stream_source(
            pipeline,
            source,
            target,
            metadata,
            key,
            state,
            counts,
            chunk_size,
            sample_percent,
            progress,
            route,
            notes,
        )
    return SourceLoadResult(
        target_table=pipeline.target_name,
        source_system=pipeline.system,
        source_table=pipeline.table,
        source_rows=counts["source_rows"],
        loaded=state.loaded,
        merged=state.merged,
        quarantined=dict(state.quarantined),
        filtered=filtered,
        seconds=state.seconds,
        nulled=dict(state.nulled),
        engine=route.engine,
        fallback="; ".join(sorted(notes)) or None,
    )


def _watermark_before_load(pipeline: CompiledSource, source: sa.Engine) -> str | None:
    """The change column's high point before the load: a later sync picks up from there.

    Taken before the first row is read, so a row changed during the load is applied again by the
    sync (an idempotent upsert) rather than missed.
    """
    declared = pipeline.source.watermark
    if declared is None or declared.column in pipeline.key_columns:
        return None
    with source.connect() as connection:
        highest = connection.execute(
            sa.select(sa.func.max(sa.column(declared.column))).select_from(sa.table(pipeline.table))
        ).scalar()
    return None if highest is None else str(highest)


def stream_source(
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    key: checkpoints.CheckpointKey,
    state: checkpoints.Checkpoint,
    counts: dict[str, int],
    chunk_size: int,
    sample_percent: int | None,
    progress: RowProgress | None,
    route: arrow_route.Route | None = None,
    notes: set[str] | None = None,
    *,
    until_key: tuple | None = None,
    first_id: int | None = None,
) -> checkpoints.Checkpoint:
    """Load the rows after the checkpoint, one transaction per chunk, checkpoint included.

    ``route`` (default: the Arrow route) transforms the chunks: as record batches through the
    kernels, or a column at a time; ``notes`` collects why chunks left the Arrow route.
    A partition of a source (``runbook_lib.scale``) reads up to ``until_key`` (inclusive) and
    numbers its rows from ``first_id``; without them the whole source after the checkpoint is
    read and ids continue after the target's highest.

    Reading, transforming and resolving the references of chunk N+1 overlaps with writing chunk
    N: a single writer thread commits the chunks one by one, in order, while this thread reads
    ahead by one chunk. The database does much of a write's work in its own process (COPY,
    indexes), so on two cores the halves run side by side; memory holds three chunks at most.
    """
    write_chunk = _ChunkCommitter(pipeline, target, metadata, key, first_id=first_id)
    expected = counts["source_rows"] - sum(
        v for k, v in counts.items() if k.startswith("filtered:")
    )
    query = pipeline.select(
        sample_percent=sample_percent, after_key=state.last_key, until_key=until_key
    )
    if progress:  # starts the clock for the rate of this table
        progress(pipeline.label, state.rows_read, expected)
    route = route or arrow_route.choose()
    with (
        closing(arrow_route.chunks(pipeline, source, query, chunk_size, route, notes)) as chunks,
        target.connect() as lookups,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="runbook-writer") as writer,
    ):
        pending: Future | None = None
        # a vectorized join needs the target's own key equality to be exact (MySQL/MariaDB
        # collations ignore case and trailing spaces): there the keyed query stays
        exact_keys = target.dialect.name in ("postgresql", "sqlite")
        parents = ParentIndex(pipeline) if route.engine == "arrow" and exact_keys else None
        for batch, rejects, last_key, rows_read in chunks:
            # Parents belong to earlier targets, already committed: safe to look up from here.
            begin_lookups(lookups)
            batch = resolve_references(lookups, pipeline, metadata, batch, rejects, parents=parents)
            lookups.rollback()  # no read transaction held open between chunks
            if pending is not None:
                state = pending.result()
                if progress:
                    progress(pipeline.label, state.rows_read, expected)
            pending = writer.submit(write_chunk, state, batch, rejects, last_key, rows_read)
        if pending is not None:
            state = pending.result()
            if progress:
                progress(pipeline.label, state.rows_read, expected)
    state = replace(state, done=True)
    with target.begin() as connection:
        checkpoints.write(connection, key, state)
    return state


class _ChunkCommitter:
    """Writes one transformed chunk and its checkpoint in one target transaction.

    Called for one chunk at a time, in order (the loader's writer thread), so the id sequence
    and the clock need no lock.
    """

    def __init__(
        self,
        pipeline: CompiledSource,
        target: sa.Engine,
        metadata: sa.MetaData,
        key: checkpoints.CheckpointKey,
        first_id: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.target = target
        self.metadata = metadata
        self.key = key
        self.table = metadata.tables[pipeline.target_name]
        self.id_column = pipeline.target.id_column
        self.next_id = IdSequence(target, self.table, self.id_column, first=first_id)
        self.violations = chunk_checker(
            self.table,
            ["source_system", "source_key", *(n for c in pipeline.columns for n in c.outputs)],
            {self.id_column},
        )
        self.last_commit = time.perf_counter()

    def __call__(
        self,
        state: checkpoints.Checkpoint,
        batch: ColumnBatch,
        rejects: list[Reject],
        last_key: tuple,
        rows_read: int,
    ) -> checkpoints.Checkpoint:
        pipeline = self.pipeline
        with self.target.begin() as connection:
            batch = _quarantine_violations(pipeline, batch, rejects, self.violations)
            batch, new, dup = self._write(connection, batch, rejects)
            write_rejects(connection, self.key.run_id, rejects)
            rejected: dict[str, int] = {}
            for reject in rejects:
                rejected[reject.rule] = rejected.get(reject.rule, 0) + 1
            now = time.perf_counter()
            state = state.advance(
                last_key=last_key,
                rows=rows_read,
                loaded=new,
                merged=dup,
                rejected=rejected,
                seconds=now - self.last_commit,
                nulled=batch.dropped_counts(),
            )
            self.last_commit = now
            checkpoints.write(connection, self.key, state)
        return state

    def _write(
        self, connection: sa.Connection, batch: ColumnBatch, rejects: list[Reject]
    ) -> tuple[ColumnBatch, int, int]:
        """Write the batch; rows the database refuses are isolated and quarantined.

        A constraint the pre-check cannot see (a CHECK, a trigger, an exclusion) refuses the whole
        statement. The batch is then split in halves, each tried in its own savepoint, until the
        refused rows stand alone; each becomes a ``target_constraint`` reject naming the
        constraint, and the rest is written as if they had never been there (ids stay dense).
        """
        refused: dict[int, str] = {}
        new = dup = 0
        for part in self._written_parts(connection, batch, list(range(len(batch))), refused):
            new, dup = new + part[0], dup + part[1]
        for index in sorted(refused):
            rejects.append(
                self.pipeline.reject(
                    batch.raws[index],
                    "target_constraint",
                    f"refused by the target: {refused[index]}",
                )
            )
        return batch.without(refused), new, dup

    def _written_parts(self, connection, batch, indices, refused):
        """Write ``batch`` rows at ``indices`` (in order); yields (new, merged) of each part written."""
        savepoint = open_savepoint(connection)
        mark = self.next_id.mark()
        try:
            written = self._write_rows(connection, batch.subset(indices))
            savepoint.commit()
        except Exception as exc:  # noqa: BLE001 - a refusal is told apart below; the rest re-raised
            savepoint.rollback()
            self.next_id.reset(mark)
            constraint = refused_by_target(exc)
            if constraint is None:
                raise
            if len(indices) == 1:
                refused[indices[0]] = constraint
                return
            middle = len(indices) // 2
            yield from self._written_parts(connection, batch, indices[:middle], refused)
            yield from self._written_parts(connection, batch, indices[middle:], refused)
            return
        yield written

    def _write_rows(self, connection: sa.Connection, batch: ColumnBatch) -> tuple[int, int]:
        """Write the rows of ``batch`` (and their pending references); (new rows, merged rows)."""
        pipeline = self.pipeline
        if not len(batch):
            return 0, 0
        pending = self_references.take_pending(pipeline, batch, self.key.run_id, self.key.mode)
        if pipeline.target.merge:
            new, dup = merge_chunk(
                connection,
                pipeline,
                self.metadata,
                pipeline.target.merge,
                batch.pairs(),
                self.next_id,
            )
        else:
            if self.id_column:
                batch.columns[self.id_column] = self.next_id.take(len(batch))
            write_rows(connection, self.table, list(batch.columns), batch.rows())
            new, dup = len(batch), 0
        self_references.write_pending(connection, pending)
        return new, dup


def _quarantine_violations(
    pipeline: CompiledSource, batch: ColumnBatch, rejects: list[Reject], violations
) -> ColumnBatch:
    """Rows the target would refuse go to quarantine with the constraint they break."""
    found = violations(batch.columns)
    for index in sorted(found):
        rejects.append(pipeline.reject(batch.raws[index], *found[index]))
    return batch.without(found)


class IdSequence:
    """Surrogate ids handed out by the loader, continuing after the highest id in the target."""

    def __init__(
        self, engine: sa.Engine, table: sa.Table, id_column: str | None, first: int | None = None
    ) -> None:
        self._next = 1 if first is None else first
        if id_column and first is None:
            with engine.connect() as connection:
                highest = connection.execute(sa.select(sa.func.max(table.c[id_column]))).scalar()
            self._next = (highest or 0) + 1

    def __call__(self) -> int:
        value = self._next
        self._next += 1
        return value

    def mark(self) -> int:
        """Where the sequence stands (to ``reset`` it when a write is rolled back)."""
        return self._next

    def reset(self, mark: int) -> None:
        self._next = mark

    def take(self, count: int) -> list[int]:
        """The next ``count`` ids."""
        first = self._next
        self._next += count
        return list(range(first, self._next))
