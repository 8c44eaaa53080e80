"""Incremental sync after the full load: apply what changed at the sources since, report deletions.

Each source declares a watermark in the spec (``watermark: {column: id}``):

* the **key** as watermark (append-only tables such as the behaviour log): rows with a key above
  the last loaded key are loaded exactly as the full load would, merges and quarantine included;
* another **column** (``updated_at``): rows whose watermark moved past the last one seen are
  upserted — updated in place (ids kept) when the target has them, inserted otherwise.

Where the last load or sync stopped is read from the target's checkpoints, and the sync writes its
own, chunk by chunk, so a killed sync resumes like a killed load. Rows deleted at the source are
never deleted in the target: they are counted and listed (keys only) for the migration lead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from itertools import groupby

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import REJECTS_TABLE
from runbook_lib.db.lookups import key_in, refresh_statistics
from runbook_lib.db.refusals import refused_by_target
from runbook_lib.db.type_rules import type_family
from runbook_lib.db.writes import adapt_rows, write_dicts
from runbook_lib.db.writes import savepoint as open_savepoint
from runbook_lib.errors import GateFailedError
from runbook_lib.load import arrow_route, checkpoints, self_references
from runbook_lib.load.loader import IdSequence, set_counters_past_highest, stream_source
from runbook_lib.load.quarantine import ensure_rejects_table, write_rejects
from runbook_lib.load.references import resolve_references
from runbook_lib.mapping.compiled import (
    CompiledSource,
    ordered_sources,
)
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.stage_table import RowProgress

MAX_LISTED_DELETIONS = 50


@dataclass(frozen=True)
class SourceSyncResult:
    """What a sync did for one source."""

    target_table: str
    source_system: str
    source_table: str
    watermark: str | None
    watermark_before: str | None
    watermark_after: str | None
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    deleted_at_source: int = 0
    deleted_keys: tuple[str, ...] = ()
    skipped: str | None = None
    deletes: str = "report"  # what the spec says to do with rows gone from the source
    deleted_applied: int = 0  # target rows the sync deleted (deletes: apply)
    deletes_refused: tuple[
        str, ...
    ] = ()  # kept: the target refused their delete (still referenced)
    rejects_cleared: int = 0  # rejects of rows gone from the source, no longer owed

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["quarantined_by_rule"] = data.pop("quarantined")
        data["quarantined"] = sum(self.quarantined.values())
        data["deleted_keys"] = list(self.deleted_keys)
        data["deletes_refused"] = list(self.deletes_refused)
        return data


@dataclass(frozen=True)
class SyncReport:
    """The outcome of one incremental sync."""

    run_id: str
    target: str
    max_reject_rate: float
    results: tuple[SourceSyncResult, ...] = ()
    counters: tuple[dict, ...] = ()  # id counters set past the synced ids

    @property
    def applied(self) -> int:
        return sum(
            r.inserted + r.updated + r.merged + sum(r.quarantined.values()) for r in self.results
        )

    @property
    def quarantined(self) -> int:
        return sum(sum(r.quarantined.values()) for r in self.results)

    @property
    def reject_rate(self) -> float:
        return self.quarantined / self.applied if self.applied else 0.0

    @property
    def passed(self) -> bool:
        return self.reject_rate <= self.max_reject_rate

    def to_dict(self) -> dict:
        return {
            "mode": "incremental",
            "run_id": self.run_id,
            "target": self.target,
            "applied": self.applied,
            "inserted": sum(r.inserted for r in self.results),
            "updated": sum(r.updated for r in self.results),
            "merged": sum(r.merged for r in self.results),
            "quarantined": self.quarantined,
            "deleted_at_source": sum(r.deleted_at_source for r in self.results),
            "deleted_applied": sum(r.deleted_applied for r in self.results),
            "reject_rate": round(self.reject_rate, 6),
            "max_reject_rate": self.max_reject_rate,
            "passed": self.passed,
            "counters": list(self.counters),
            "tables": [r.to_dict() for r in self.results],
        }

    def render(self) -> str:
        header = (
            f"{'source':<28} {'watermark':<12} {'inserted':>8} {'updated':>8} {'merged':>7} "
            f"{'quar.':>6} {'deleted':>8}"
        )
        lines = [f"incremental sync into {self.target}", header, "-" * len(header)]
        for r in self.results:
            name = f"{r.source_system}.{r.source_table}"
            if r.skipped:
                lines.append(f"{name:<28} skipped: {r.skipped}")
                continue
            lines.append(
                f"{name:<28} {r.watermark or '':<12} {r.inserted:>8,} {r.updated:>8,} {r.merged:>7,} "
                f"{sum(r.quarantined.values()):>6,} {r.deleted_at_source:>8,}"
            )
            if r.deletes == "apply" and r.deleted_at_source:
                kept = (
                    f", {len(r.deletes_refused):,} kept (still referenced)"
                    if r.deletes_refused
                    else ""
                )
                lines.append(f"    deleted in the target: {r.deleted_applied:,}{kept}")
        lines.append(
            f"reject rate {self.reject_rate:.3%} (gate {self.max_reject_rate:.3%}): "
            f"{'passed' if self.passed else 'FAILED'}"
        )
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise GateFailedError(
                f"incremental sync: {self.quarantined:,} of {self.applied:,} changed rows quarantined "
                f"({self.reject_rate:.3%}), above the gate of {self.max_reject_rate:.3%}",
                hint="triage this sync's rejects by rule; roll the sync run back (runbook rollback "
                "--env ENV --run-id SYNC_RUN), fix the source or the spec, and sync again",
            )


def sync(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    *,
    run_id: str,
    chunk_size: int,
    max_reject_rate: float,
    target_label: str,
    progress: RowProgress | None = None,
) -> SyncReport:
    """Apply source changes since the last load or sync of every source that declares a watermark."""
    ensure_rejects_table(target)
    checkpoints.ensure_checkpoints_table(target)
    self_references.ensure_table(target)
    metadata = sa.MetaData()
    metadata.reflect(
        target, only=[*spec.touched_tables(), REJECTS_TABLE, checkpoints.CHECKPOINTS_TABLE]
    )
    results = []
    for _target_name, group in groupby(ordered_sources(spec), key=lambda p: p.target_name):
        own = list(group)
        results += [
            _sync_source(
                p,
                sources[p.system],
                target,
                metadata,
                run_id=run_id,
                chunk_size=chunk_size,
                progress=progress,
            )
            for p in own
        ]
        if any(p.deferred_references for p in own):
            self_references.resolve(target, sources, metadata, own, run_id=run_id, mode="sync")
    pipelines = {p.identity: p for p in ordered_sources(spec)}
    for index in reversed(range(len(results))):  # children before their parents
        result = results[index]
        pipeline = pipelines[(result.target_table, result.source_system, result.source_table)]
        if pipeline.source.deletes == "apply" and result.skipped is None:
            results[index] = _apply_deletes(
                result, pipeline, sources[pipeline.system], target, metadata, chunk_size
            )
    refresh_statistics(target, spec.touched_tables())
    with target.begin() as connection:
        counters = set_counters_past_highest(connection, spec.touched_tables())
    return SyncReport(
        run_id=run_id,
        target=target_label,
        max_reject_rate=max_reject_rate,
        results=tuple(results),
        counters=tuple(counters),
    )


def _sync_source(
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    *,
    run_id: str,
    chunk_size: int,
    progress: RowProgress | None,
) -> SourceSyncResult:
    base = {
        "target_table": pipeline.target_name,
        "source_system": pipeline.system,
        "source_table": pipeline.table,
    }
    declared = pipeline.source.watermark
    if declared is None:
        return SourceSyncResult(
            **base,
            watermark=None,
            watermark_before=None,
            watermark_after=None,
            skipped="no watermark declared in the spec",
        )
    previous = checkpoints.latest_done(
        target, pipeline.target_name, pipeline.system, pipeline.table
    )
    if previous is None:
        return SourceSyncResult(
            **base,
            watermark=declared.column,
            watermark_before=None,
            watermark_after=None,
            skipped="never loaded: run the full load first",
        )
    key = checkpoints.CheckpointKey(
        run_id, "sync", pipeline.target_name, pipeline.system, pipeline.table
    )
    with target.connect() as connection:
        state = checkpoints.read(connection, key)
    if state.chunks == 0 and not state.done:  # a fresh sync starts where the last load stopped
        state = checkpoints.Checkpoint(last_key=previous.last_key, watermark=previous.watermark)
    by_key = declared.column in pipeline.key_columns
    if not state.done:
        if by_key:
            state = stream_source(
                pipeline,
                source,
                target,
                metadata,
                key,
                state,
                {"source_rows": 0},
                chunk_size,
                None,
                progress,
            )
        else:
            state = _upsert_changed(
                pipeline, source, target, metadata, key, state, declared.column, chunk_size
            )
    deleted, listed, _gone = _deleted_at_source(pipeline, source, target, metadata, chunk_size)
    before = _text(previous.last_key) if by_key else previous.watermark
    after = _text(state.last_key) if by_key else state.watermark
    # the sync's own checkpoint counts from zero: merged means "matched an existing entity" for a
    # key watermark and "updated in place" for a column watermark
    return SourceSyncResult(
        **base,
        watermark=declared.column,
        watermark_before=before,
        watermark_after=after,
        inserted=state.loaded,
        updated=0 if by_key else state.merged,
        merged=state.merged if by_key else 0,
        quarantined=dict(state.quarantined),
        deleted_at_source=deleted,
        deleted_keys=listed,
        deletes=pipeline.source.deletes,
    )


def _apply_deletes(
    result: SourceSyncResult,
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    chunk_size: int,
) -> SourceSyncResult:
    """Delete the target rows whose source row is gone (``deletes: apply``), and their rejects.

    A delete the target refuses (a row still referenced by a child that stayed) keeps its row and
    names it. Rows quarantined earlier whose source row is gone are no longer owed anything: their
    rejects go too (the sync's snapshot holds the reject table, so a rollback brings them back).
    """
    table = metadata.tables[pipeline.target_name]
    _count, _listed, gone = _deleted_at_source(pipeline, source, target, metadata, chunk_size)
    applied, refused = 0, []
    for start in range(0, len(gone), chunk_size):
        batch = gone[start : start + chunk_size]
        with target.begin() as connection:
            applied += _delete_rows(connection, table, pipeline.system, batch, refused)
    cleared = _clear_stale_rejects(pipeline, source, target, metadata, chunk_size)
    return replace(
        result, deleted_applied=applied, deletes_refused=tuple(refused), rejects_cleared=cleared
    )


def _delete_rows(connection, table, system: str, keys: list[str], refused: list[str]) -> int:
    """Delete rows by key in a savepoint; a refused batch is retried row by row."""
    where = sa.and_(table.c.source_system == system, table.c.source_key.in_(keys))
    savepoint = open_savepoint(connection)
    try:
        deleted = connection.execute(table.delete().where(where)).rowcount
        savepoint.commit()
        return deleted
    except Exception as exc:  # noqa: BLE001 - a refusal is told apart; anything else re-raised
        savepoint.rollback()
        if refused_by_target(exc) is None:
            raise
    if len(keys) == 1:
        refused.append(keys[0])
        return 0
    return sum(_delete_rows(connection, table, system, [key], refused) for key in keys)


def _clear_stale_rejects(pipeline, source, target, metadata, chunk_size) -> int:
    """Delete the rejects of this source whose source row is gone; how many."""
    rejects_table = metadata.tables[REJECTS_TABLE]
    mine = sa.and_(
        rejects_table.c.target_table == pipeline.target_name,
        rejects_table.c.source_system == pipeline.system,
        rejects_table.c.source_table == pipeline.table,
    )
    with target.connect() as connection:
        keys = sorted(
            set(connection.execute(sa.select(rejects_table.c.source_key).where(mine)).scalars())
        )
    present = _present_at_source(pipeline, source, keys)
    stale = [k for k in keys if k not in present]
    with target.begin() as connection:
        for start in range(0, len(stale), chunk_size):
            connection.execute(
                rejects_table.delete().where(
                    mine, rejects_table.c.source_key.in_(stale[start : start + chunk_size])
                )
            )
    return len(stale)


def _present_at_source(pipeline: CompiledSource, source: sa.Engine, keys: list[str]) -> set[str]:
    """The source keys (target form, prefix included) of ``keys`` still in the source."""
    key_name = pipeline.key_columns[0]
    key_column = sa.column(key_name)
    family = next(
        (
            type_family(c["type"])
            for c in sa.inspect(source).get_columns(pipeline.table)
            if c["name"] == key_name
        ),
        "text",
    )
    as_source = int if family == "integer" else str
    present: set[str] = set()
    with source.connect() as connection:
        for condition in key_in(
            key_column, [as_source(pipeline.key_of(k)) for k in keys], source.dialect.name
        ):
            found = connection.execute(
                sa.select(key_column)
                .select_from(sa.table(pipeline.table, key_column))
                .where(condition)
            )
            present.update(f"{pipeline.key_prefix}{k}" for k in found.scalars())
    return present


def _text(key: tuple | None) -> str | None:
    return None if key is None else "|".join(str(part) for part in key)


def _upsert_changed(
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    key: checkpoints.CheckpointKey,
    state: checkpoints.Checkpoint,
    column: str,
    chunk_size: int,
) -> checkpoints.Checkpoint:
    """Rows whose watermark column passed the last one seen: update in place or insert."""
    if pipeline.target.merge:
        raise GateFailedError(
            f"{pipeline.label}: a merge target syncs by its key only",
            hint=f"declare watermark: {{column: {pipeline.key_columns[0]}}} for this source in the spec",
        )
    table = metadata.tables[pipeline.target_name]
    id_column = pipeline.target.id_column
    next_id = IdSequence(target, table, id_column)
    dialect = target.dialect.name
    query = pipeline.select(changed_since=(column, state.watermark))
    started = time.perf_counter()
    with source.connect() as source_connection:
        result = source_connection.execute(
            query.execution_options(stream_results=True, yield_per=chunk_size)
        )
        for partition in result.partitions(chunk_size):
            marks = [row[-1] for row in partition]
            batch, rejects = arrow_route.transform(pipeline, [tuple(row[:-1]) for row in partition])
            with target.begin() as connection:
                batch = resolve_references(
                    connection, pipeline, metadata, batch, rejects, deferred_too=True
                )
                rows = [out for _raw, out in batch.pairs()]
                existing = set()
                for condition in key_in(
                    table.c.source_key, [r["source_key"] for r in rows], dialect
                ):
                    existing.update(
                        connection.execute(
                            sa.select(table.c.source_key).where(
                                table.c.source_system == pipeline.system, condition
                            )
                        ).scalars()
                    )
                updates = [r for r in rows if r["source_key"] in existing]
                inserts = [r for r in rows if r["source_key"] not in existing]
                for row in adapt_rows(dialect, updates):
                    values = {
                        k: v for k, v in row.items() if k not in ("source_system", "source_key")
                    }
                    connection.execute(
                        table.update()
                        .where(
                            table.c.source_system == pipeline.system,
                            table.c.source_key == row["source_key"],
                        )
                        .values(**values)
                    )
                if id_column:
                    for row in inserts:
                        row[id_column] = next_id()
                if inserts:
                    write_dicts(connection, table, inserts)
                    _forget_old_rejects(
                        connection, metadata, pipeline, [r["source_key"] for r in inserts]
                    )
                write_rejects(connection, key.run_id, rejects)
                counts: dict[str, int] = {}
                for reject in rejects:
                    counts[reject.rule] = counts.get(reject.rule, 0) + 1
                now = time.perf_counter()
                state = state.advance(
                    last_key=pipeline.key_values(partition[-1]),
                    rows=len(partition),
                    loaded=len(inserts),
                    merged=len(updates),
                    rejected=counts,
                    seconds=now - started,
                )
                seen = [m for m in marks if m is not None]
                if seen:
                    state = replace(state, watermark=str(max(seen)))
                started = now
                checkpoints.write(connection, key, state)
    state = replace(state, done=True)
    with target.begin() as connection:
        checkpoints.write(connection, key, state)
    return state


def _forget_old_rejects(
    connection: sa.Connection, metadata: sa.MetaData, pipeline: CompiledSource, keys: list[str]
) -> None:
    """A row quarantined by an earlier run and loaded now (fixed at the source) is no longer a reject."""
    rejects = metadata.tables[REJECTS_TABLE]
    for condition in key_in(rejects.c.source_key, keys, connection.dialect.name):
        connection.execute(
            rejects.delete().where(
                rejects.c.target_table == pipeline.target_name,
                rejects.c.source_system == pipeline.system,
                rejects.c.source_table == pipeline.table,
                condition,
            )
        )


def _deleted_at_source(
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    chunk_size: int,
) -> tuple[int, tuple[str, ...], list[str]]:
    """Target rows whose source row is gone, found chunk by chunk (flat memory).

    Returns the count, a few keys, and for ``deletes: apply`` all of them.
    """
    if pipeline.target.merge:
        table = metadata.tables[pipeline.target.merge.crosswalk]
    else:
        table = metadata.tables[pipeline.target_name]
    if len(pipeline.key_columns) != 1:
        return 0, (), []
    key_name = pipeline.key_columns[0]
    key_column = sa.column(key_name)
    source_table = sa.table(pipeline.table, key_column)
    # compare in the source's own key type, so the source can use its index
    family = next(
        (
            type_family(c["type"])
            for c in sa.inspect(source).get_columns(pipeline.table)
            if c["name"] == key_name
        ),
        "text",
    )
    as_source = int if family == "integer" else str
    deleted, listed, gone_all = 0, [], []
    query = sa.select(table.c.source_key).where(pipeline.owns(table))
    with target.connect() as target_connection, source.connect() as source_connection:
        result = target_connection.execute(
            query.execution_options(stream_results=True, yield_per=chunk_size)
        )
        for partition in result.partitions(chunk_size):
            keys = [row[0] for row in partition]
            present = set()
            own_keys = [as_source(pipeline.key_of(k)) for k in keys]
            for condition in key_in(key_column, own_keys, source.dialect.name):
                found = source_connection.execute(
                    sa.select(key_column).select_from(source_table).where(condition)
                )
                present.update(f"{pipeline.key_prefix}{k}" for k in found.scalars())
            gone = [k for k in keys if k not in present]
            deleted += len(gone)
            listed.extend(gone[: MAX_LISTED_DELETIONS - len(listed)])
            if pipeline.source.deletes == "apply":
                gone_all.extend(gone)
    return deleted, tuple(listed), gone_all
