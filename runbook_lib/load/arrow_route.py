"""The loader's two routes from a source to transformed chunks: Arrow kernels, or rows.

Both read the source the same way — rows from the source's own driver, streamed in chunks of
``chunk_size`` — and differ in how a chunk is transformed:

* the **Arrow route** turns the chunk into an exact record batch (``record_batch_from_rows``)
  and runs it through the vectorized kernels (``CompiledSource.transform_arrow``);
* the **rows route** transforms it a column at a time (``CompiledSource.transform_batch``): the
  reference, and what validation's rebuild stays on.

Both give the same chunk — the same target values, the same rejects with the same rule,
message and raw row (the driver's own row objects), the same last key for the checkpoint — so
everything after (references, constraint checks, merges, writes, checkpoints) is shared and a
resume may even switch routes without changing a byte (``tests/test_arrow_route.py``).

Why rows from the source's driver and not ``db.arrow_io``'s ADBC batches: the ADBC SQLite
driver carries its own copy of the SQLite library, and two copies in one process do not see
each other's POSIX locks: when the ADBC connection closes it takes itself for the last one,
checkpoints and deletes the WAL under the process's other connections (``test_sync`` read
"database disk image is malformed" from a source right after). ADBC PostgreSQL gives
``timestamptz`` in UTC where psycopg gives the session's zone, so a reject's raw row would
differ. The conversion to Arrow costs a few percent of a chunk's time
(``bench/bench_transforms.py``, "to Arrow").

A chunk holding a value with no exact Arrow form takes the rows route, that chunk alone; the
reason is logged and kept for the load report, as is a source that asked for ``rows``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.mapping.columns import ColumnBatch
from runbook_lib.mapping.compiled import CompiledSource, Reject

ENGINES = ("arrow", "rows")
log = logging.getLogger(__name__)

Chunk = tuple[ColumnBatch, list[Reject], tuple, int]  # batch, rejects, last key read, rows read


@dataclass(frozen=True)
class Route:
    """How one source's chunks are transformed: ``engine`` and, for the rows route, why."""

    engine: str
    reason: str | None = None


def choose(wanted: str = "arrow") -> Route:
    """The route ``wanted`` (``arrow`` or ``rows``)."""
    if wanted not in ENGINES:
        raise ValueError(f"unknown load engine {wanted!r}; valid: {', '.join(ENGINES)}")
    if wanted == "rows":
        return Route("rows", "the rows route was asked for (engine: rows)")
    return Route("arrow")


def chunks(
    pipeline: CompiledSource,
    source: sa.Engine,
    query: sa.Select,
    chunk_size: int,
    route: Route,
    notes: set[str] | None = None,
) -> Iterator[Chunk]:
    """The transformed chunks of ``query``'s rows by ``route``; ``notes`` collects fallbacks."""
    with source.connect() as connection:
        result = connection.execute(
            query.execution_options(stream_results=True, yield_per=chunk_size)
        )
        if route.engine == "rows":
            partitions = result.partitions(chunk_size)
            transform = _by_columns
        else:
            partitions = _driver_rows(result, chunk_size)
            transform = _by_kernels
        for partition in partitions:
            batch, rejects = transform(pipeline, partition, notes)
            yield batch, rejects, pipeline.key_values(partition[-1]), len(partition)


def _driver_rows(result: sa.CursorResult, size: int):
    """The result's rows as the driver gives them (tuples), ``size`` at a time, in order.

    No ``Row`` objects: the columns go to Arrow and only rejects need a source row, which a
    tuple gives as a Row would (the untyped select runs no result processors). Read through
    the result's own fetch strategy, so a row it buffered already (streamed results prefetch
    one) is not lost.
    """
    while True:
        # looked up each time: a result that ran out (or had no rows) has closed its cursor
        # and swapped its strategy for one that gives no rows
        rows = result.cursor_strategy.fetchmany(result, result.cursor, size)
        if not rows:
            return
        yield rows


def transform(
    pipeline: CompiledSource, rows, route: Route | None = None, notes: set[str] | None = None
) -> tuple[ColumnBatch, list[Reject]]:
    """One chunk of source rows transformed by ``route`` (default: the Arrow route)."""
    by = _by_columns if route is not None and route.engine == "rows" else _by_kernels
    return by(pipeline, rows, notes)


def _by_columns(pipeline: CompiledSource, partition, _notes) -> tuple[ColumnBatch, list[Reject]]:
    return pipeline.transform_batch(partition)


def _by_kernels(pipeline: CompiledSource, partition, notes) -> tuple[ColumnBatch, list[Reject]]:
    import pyarrow as pa  # on demand: a rows-only process never loads it

    from runbook_lib.transforms.kernels.arrays import record_batch_from_rows

    try:
        batch = record_batch_from_rows(partition, pipeline.select_columns)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        reason = f"a value with no exact Arrow form ({type(exc).__name__}): chunk taken as rows"
        if notes is not None and reason not in notes:
            notes.add(reason)
            log.warning("%s: %s", pipeline.label, reason)
        return pipeline.transform_batch(partition)
    chunk, rejects = pipeline.transform_arrow(batch)
    return chunk.to_column_batch(partition), rejects
