"""References resolved in a chunk: each parent's source key becomes the parent's target id.

The loader's step between transforming a chunk and writing it: the parents belong to targets
loaded before (already committed), so one keyed query per reference column finds their ids; a
row whose parent is not there is an orphan, quarantined as ``orphan_<column>``. A NULL reference
is no reference: it stays NULL (a target column that requires a value quarantines it as
``target_not_null``). References into the target being loaded are not resolved here: the chunk
keeps their parent keys aside (``deferred_parents``) for ``load.self_references``.
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
) -> ColumnBatch:
    """Parent source keys replaced by parent target ids; a row without its parent is an orphan.

    ``deferred_too`` also resolves references into the row's own target now (a sync's changed
    rows: their parents are in the target already).
    """
    columns = pipeline.reference_columns if deferred_too else pipeline.immediate_references
    for column in columns:
        name = column.outputs[0]
        parent_keys = batch.columns[name]
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
