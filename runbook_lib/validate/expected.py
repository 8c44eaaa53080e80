"""The rows the mapping says the target holds, rebuilt from a source in chunks.

The source query, the transforms and the reference lookups are the compiled spec's own
(``CompiledSource.select``, ``.transform_chunk``, ``.parent_ids``), the ones the loader runs, so validation
rebuilds exactly what the spec says, not what the loader happened to write. A row whose parent
is not in the target is what the loader quarantines as an orphan; it is yielded as a reject with
the same rule. ``only`` keeps just the rows whose source key it accepts, before any transform, so
rebuilding a few key ranges costs a read of the source, not a second mapping of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import REJECTS_TABLE
from runbook_lib.db.constraints import as_columns, chunk_checker
from runbook_lib.db.refusals import refused_by_target
from runbook_lib.db.writes import savepoint as open_savepoint
from runbook_lib.db.writes import write_rows
from runbook_lib.mapping.compiled import CompiledSource, Reject


@dataclass
class ExpectedChunk:
    """One chunk of a source: the target rows it should become, and its rejects."""

    rows: list[tuple[str, dict]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    read: int = 0
    # values on_error "null" dropped in the rows kept, by "column:rule"
    nulled: Counter = field(default_factory=Counter)


def compared_columns(pipeline: CompiledSource) -> list[str]:
    """The target columns one source's rows are compared on (after the key)."""
    names = ["source_system"]
    for column in pipeline.columns:
        names.extend(column.outputs)
    return names


def expected_chunks(
    pipeline: CompiledSource,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    *,
    chunk_size: int,
    sample_percent: int | None,
    only: Callable[[str], bool] | None = None,
) -> Iterator[ExpectedChunk]:
    """Chunks of (source key, target row) with references resolved, in source key order.

    With ``only``, the source is first scanned for its keys alone, and just the rows whose key
    ``only`` accepts are read in full and mapped.
    """
    query = pipeline.select(sample_percent=sample_percent)
    with source.connect() as source_connection, target.connect() as target_connection:
        refused = _refused_keys(target_connection, metadata, pipeline)
        if only is None:
            result = source_connection.execution_options(
                stream_results=True, yield_per=chunk_size
            ).execute(query)
            partitions = result.partitions(chunk_size)
        else:
            partitions = _rows_by_key(pipeline, source_connection, query, chunk_size, only)
        for partition in partitions:
            # plain tuples: the transform asks each row whether it has ``values``, which a
            # SQLAlchemy Row answers by raising an exception inside, a million times
            rows = [tuple(row) for row in partition]
            yield _map_chunk(pipeline, rows, target_connection, metadata, refused)


def _rows_by_key(pipeline, connection, query, chunk_size, only) -> Iterator[list]:
    """The rows of ``query`` whose key ``only`` accepts: scan the keys, then read those rows."""
    columns = [query.selected_columns[name] for name in pipeline.key_columns]
    positions = [pipeline.select_columns.index(name) for name in pipeline.key_columns]
    width = len(pipeline.select_columns)
    wanted = []
    result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
        query.with_only_columns(*columns)
    )
    for values in result:
        row = [None] * width
        for position, value in zip(positions, values, strict=True):
            row[position] = value
        if only(pipeline.source_key(row)):
            wanted.append(tuple(values))
    step = max(1, min(chunk_size, 500))
    for start in range(0, len(wanted), step):
        batch = wanted[start : start + step]
        if len(columns) == 1:
            condition = columns[0].in_([values[0] for values in batch])
        else:
            condition = sa.tuple_(*columns).in_(batch)
        yield list(connection.execute(query.where(condition)))


def _refused_keys(connection: sa.Connection, metadata: sa.MetaData, pipeline) -> set[str]:
    """Source keys the loader recorded as refused by the target database (``target_constraint``)."""
    rejects = metadata.tables.get(REJECTS_TABLE)
    if rejects is None:
        return set()
    query = sa.select(rejects.c.source_key).where(
        rejects.c.rule == "target_constraint",
        rejects.c.target_table == pipeline.target_name,
        rejects.c.source_system == pipeline.system,
        rejects.c.source_table == pipeline.table,
    )
    return set(connection.execute(query).scalars())


def _target_refuses(connection: sa.Connection, table: sa.Table, pipeline, out: dict) -> str | None:
    """Whether the target still refuses the expected row, tried in a savepoint rolled back.

    What a CHECK or a trigger refuses cannot be rebuilt from the mapping; it is proven by asking
    the database again, so a row quarantined as ``target_constraint`` that the target would in
    fact take shows as missing.
    """
    row = {name: out[name] for name in pipeline.output_columns if name in table.c}
    id_column = pipeline.target.id_column
    if id_column:
        highest = connection.execute(sa.select(sa.func.max(table.c[id_column]))).scalar()
        row[id_column] = (highest or 0) + 1
    savepoint = open_savepoint(connection)
    try:
        write_rows(connection, table, list(row), [tuple(row.values())])
    except Exception as exc:  # noqa: BLE001 - a refusal is told apart below; the rest re-raised
        savepoint.rollback()
        refused = refused_by_target(exc)
        if refused is None:
            raise
        return refused
    savepoint.rollback()
    return None


def _map_chunk(pipeline, rows, target_connection, metadata, refused=frozenset()) -> ExpectedChunk:
    chunk = ExpectedChunk(read=len(rows))
    dropped: dict[str, list[str]] = {}
    good, chunk.rejects = pipeline.transform_chunk(rows, dropped)
    for column in pipeline.reference_columns:
        name = column.outputs[0]
        keys = {out[name] for _raw, out in good if out[name] is not None}
        lookup = pipeline.parent_ids(target_connection, metadata, column, keys)
        kept = []
        for raw, out in good:
            if out[name] is None:  # no reference: stays NULL
                kept.append((raw, out))
            elif out[name] in lookup:
                out[name] = lookup[out[name]]
                kept.append((raw, out))
            else:
                chunk.rejects.append(pipeline.reject(raw, f"orphan_{name}", "", out))
        good = kept
    table = metadata.tables.get(pipeline.target_name)
    if table is not None:  # the loader quarantines rows the target's columns cannot hold
        outputs = pipeline.output_columns
        found = chunk_checker(table, outputs, {pipeline.target.id_column})(
            as_columns([out for _raw, out in good], outputs)
        )
        for index in sorted(found):
            raw, out = good[index]
            chunk.rejects.append(pipeline.reject(raw, *found[index], out))
        good = [pair for index, pair in enumerate(good) if index not in found]
        kept = []
        for raw, out in good:
            constraint = (
                _target_refuses(target_connection, table, pipeline, out)
                if out["source_key"] in refused
                else None
            )
            if constraint is None:
                kept.append((raw, out))
            else:
                chunk.rejects.append(
                    pipeline.reject(
                        raw, "target_constraint", f"refused by the target: {constraint}", out
                    )
                )
        good = kept
    chunk.rows = [(out["source_key"], out) for _raw, out in good]
    for key, _out in chunk.rows:
        chunk.nulled.update(dropped.get(key, ()))
    return chunk
