"""References resolved in a chunk: each parent's source key becomes the parent's target id.

The loader's step between transforming a chunk and writing it: the parents belong to targets
loaded before (already committed), so one keyed query per reference column finds their ids; a
row whose parent is not there is an orphan, quarantined as ``orphan_<column>``. A NULL reference
is no reference: it stays NULL (a target column that requires a value quarantines it as
``target_not_null``). References into the target being loaded are not resolved here: the chunk
keeps their parent keys aside (``deferred_parents``) for ``load.self_references``.

With a ``ParentIndex`` (the loader's streams) the lookup is a vectorized join instead: every
parent's (source key, id) of the reference's system is read once per source into two Arrow
arrays, and each chunk's keys are matched by ``pyarrow.compute.index_in``. The parents are
committed before the source starts (earlier targets), so the index is what a per-chunk query
would find; it costs ~20 bytes per parent row, held while the source streams.
"""

from __future__ import annotations

import sqlalchemy as sa

from runbook_lib.mapping.columns import ColumnBatch
from runbook_lib.mapping.compiled import CompiledSource, Reject


def resolve_references(
    connection: sa.Connection,
    pipeline: CompiledSource,
    metadata: sa.MetaData,
    batch: ColumnBatch,
    rejects: list[Reject],
    *,
    deferred_too: bool = False,
    parents: ParentIndex | None = None,
) -> ColumnBatch:
    """Parent source keys replaced by parent target ids; a row without its parent is an orphan.

    ``deferred_too`` also resolves references into the row's own target now (a sync's changed
    rows: their parents are in the target already).
    """
    columns = pipeline.reference_columns if deferred_too else pipeline.immediate_references
    for column in columns:
        name = column.outputs[0]
        parent_keys = batch.columns[name]
        if parents is not None:
            ids = parents.ids(connection, metadata, column, parent_keys)
        else:
            lookup = pipeline.parent_ids(connection, metadata, column, set(parent_keys) - {None})
            found = lookup.get
            ids = [None if key is None else found(key) for key in parent_keys]
        orphans = {
            index
            for index, (key, parent_id) in enumerate(zip(parent_keys, ids, strict=True))
            if key is not None and parent_id is None
        }
        for index in sorted(orphans):
            rejects.append(
                pipeline.reject(
                    batch.raws[index],
                    f"orphan_{name}",
                    f"{name}: no {column.references} row for "
                    f"{pipeline.parents[name].system} key {parent_keys[index]}",
                )
            )
        batch.columns[name] = ids
        batch = batch.without(orphans)
    return batch


class ParentIndex:
    """The parents of one source's references, each read once, matched by a vectorized join."""

    def __init__(self, pipeline: CompiledSource) -> None:
        self.pipeline = pipeline
        self._loaded: dict[str, tuple] = {}

    def ids(
        self, connection: sa.Connection, metadata: sa.MetaData, column, keys: list
    ) -> list[int | None]:
        """The parent id of each key (None for a NULL key and for an orphan's)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        name = column.outputs[0]
        if name not in self._loaded:
            self._loaded[name] = self._read(connection, metadata, column)
        parent_keys, parent_ids = self._loaded[name]
        where = pc.index_in(pa.array(keys, pa.string()), value_set=parent_keys)
        return parent_ids.take(where).to_pylist()

    def _read(self, connection: sa.Connection, metadata: sa.MetaData, column) -> tuple:
        import pyarrow as pa

        pipeline = self.pipeline
        ref = pipeline.parents[column.outputs[0]]
        parent = pipeline.spec.spec.targets[ref.target]
        table = metadata.tables[parent.merge.crosswalk if parent.merge else ref.target]
        query = sa.select(table.c.source_key, table.c[parent.id_column]).where(
            table.c.source_system == ref.system
        )
        keys, ids = [], []
        result = connection.execute(query.execution_options(yield_per=50_000))
        for part in result.partitions():
            for key, parent_id in part:
                keys.append(key)
                ids.append(parent_id)
        return pa.array(keys, pa.string()), pa.array(ids, pa.int64())
