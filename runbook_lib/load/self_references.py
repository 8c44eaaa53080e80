"""References into the target being loaded: a manager in the same ``people``, a category's parent.

A chunk is written before its parents may exist (a row meets its parent later in key order, or in
another source of the same target), so the loader writes such a column NULL and keeps the
parent's source key in ``runbook_pending_references``, in the chunk's own transaction. Once every
source of the target is loaded, ``resolve`` settles them in one transaction:

1. a pending row whose parent is not in the target is an orphan: the row leaves the target and is
   quarantined as ``orphan_<column>`` (its raw row read again from the source); rows that pointed at
   it become orphans in turn, until none is left — the same outcome as for a reference to an
   earlier target, cascades included;
2. every remaining pending column gets its parent's target id;
3. the pending rows go, and a checkpoint marks the target resolved (a resumed load skips it).

The accounting follows: each orphan moves from ``loaded`` to ``quarantined`` in its source's
checkpoint, in the same transaction. A NULL reference is no reference and is never pending.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import BOOKKEEPING, pending_references
from runbook_lib.load import checkpoints
from runbook_lib.load.quarantine import write_rejects
from runbook_lib.mapping.columns import ColumnBatch
from runbook_lib.mapping.compiled import CompiledSource, Reject

RESOLVED = "(references)"  # the source table of the checkpoint that marks a target resolved
_BATCH = 2_000


def ensure_table(engine: sa.Engine) -> None:
    """Create the pending-references table in the target if it is not there yet."""
    BOOKKEEPING.create_all(engine, tables=[pending_references])


def take_pending(
    pipeline: CompiledSource, batch: ColumnBatch, run_id: str, mode: str
) -> list[dict]:
    """The chunk's deferred references as pending rows; their columns are set NULL in ``batch``."""
    pending = []
    deferred = pipeline.deferred_references
    if not deferred:
        return pending
    keys = batch.columns["source_key"]
    raw_keys = [json.dumps(list(pipeline.key_values(raw)), default=str) for raw in batch.raws]
    for column in deferred:
        name = column.outputs[0]
        parent = pipeline.parents[name]
        for index, parent_key in enumerate(batch.columns[name]):
            if parent_key is not None:
                pending.append(
                    {
                        "run_id": run_id,
                        "mode": mode,
                        "target_table": pipeline.target_name,
                        "source_system": pipeline.system,
                        "source_key": keys[index],
                        "column_name": name,
                        "source_table": pipeline.table,
                        "parent_system": parent.system,
                        "parent_key": parent_key,
                        "key_values": raw_keys[index],
                    }
                )
        batch.columns[name] = [None] * len(batch)
    return pending


def write_pending(connection: sa.Connection, rows: list[dict]) -> None:
    """Record a chunk's pending references, in the chunk's own transaction."""
    if rows:
        connection.execute(pending_references.insert(), rows)


def resolve(
    target: sa.Engine,
    sources: dict[str, sa.Engine],
    metadata: sa.MetaData,
    own: list[CompiledSource],
    *,
    run_id: str,
    mode: str,
) -> dict[tuple[str, str, str], Counter]:
    """Settle every pending reference of one target (the sources in ``own``); orphans by source.

    Returns {source identity: orphans by rule} of what this call quarantined (empty when the
    target was resolved already, by an earlier attempt of the same run).
    """
    target_name = own[0].target_name
    marker = checkpoints.CheckpointKey(run_id, mode, target_name, "", RESOLVED)
    table = metadata.tables[target_name]
    by_source = {(p.system, p.table): p for p in own}
    quarantined: dict[tuple[str, str, str], Counter] = {}
    with target.begin() as connection:
        if checkpoints.read(connection, marker).done:
            return quarantined
        pending = pending_references
        mine = sa.and_(
            pending.c.run_id == run_id,
            pending.c.mode == mode,
            pending.c.target_table == target_name,
        )
        parent = table.alias("parent")
        joined = pending.outerjoin(
            parent,
            sa.and_(
                parent.c.source_system == pending.c.parent_system,
                parent.c.source_key == pending.c.parent_key,
            ),
        )
        while True:  # orphans, and the rows that pointed at them, until none is left
            orphans = connection.execute(
                sa.select(
                    pending.c.source_system,
                    pending.c.source_table,
                    pending.c.source_key,
                    pending.c.column_name,
                    pending.c.parent_key,
                    pending.c.key_values,
                )
                .select_from(joined)
                .where(mine, parent.c.source_key.is_(None))
                .order_by(pending.c.source_system, pending.c.source_key, pending.c.column_name)
            ).all()
            if not orphans:
                break
            _quarantine(connection, sources, table, by_source, orphans, run_id, quarantined)
        _fill(connection, table, own, pending, mine, parent)
        connection.execute(pending.delete().where(mine))
        for identity, counts in quarantined.items():
            key = checkpoints.CheckpointKey(run_id, mode, *identity)
            state = checkpoints.read(connection, key)
            moved = dict(state.quarantined)
            for rule, count in counts.items():
                moved[rule] = moved.get(rule, 0) + count
            state = replace(state, loaded=state.loaded - sum(counts.values()), quarantined=moved)
            checkpoints.write(connection, key, state)
        checkpoints.write(connection, marker, checkpoints.Checkpoint(done=True))
    return quarantined


def _quarantine(connection, sources, table, by_source, orphans, run_id, quarantined) -> None:
    """Take the orphan rows out of the target and into quarantine, one reject per row."""
    first: dict[tuple[str, str], tuple] = {}
    for row in orphans:  # a row orphaned in two columns is one reject, its first column's
        first.setdefault((row.source_system, row.source_key), row)
    rejects: list[Reject] = []
    for (system, table_name), rows in _grouped(first.values()).items():
        pipeline = by_source[(system, table_name)]
        raws = _raw_rows(pipeline, sources[system], [json.loads(r.key_values) for r in rows])
        for row in rows:
            name = row.column_name
            parent = pipeline.parents[name]
            raw = raws.get(pipeline.key_of(row.source_key))
            rejects.append(
                Reject(
                    target_table=pipeline.target_name,
                    source_system=system,
                    source_table=table_name,
                    source_key=row.source_key,
                    rule=f"orphan_{name}",
                    message=f"{name}: no {parent.target} row for {parent.system} key "
                    f"{row.parent_key}",
                    raw_row=raw if raw is not None else {"key": row.source_key},
                )
            )
            quarantined.setdefault(pipeline.identity, Counter())[f"orphan_{name}"] += 1
    keys = [{"_system": r.source_system, "_key": r.source_key} for r in first.values()]
    connection.execute(
        table.delete().where(
            table.c.source_system == sa.bindparam("_system"),
            table.c.source_key == sa.bindparam("_key"),
        ),
        keys,
    )
    connection.execute(
        pending_references.delete().where(
            pending_references.c.source_system == sa.bindparam("_system"),
            pending_references.c.source_key == sa.bindparam("_key"),
            pending_references.c.target_table == table.name,
        ),
        keys,
    )
    write_rejects(connection, run_id, rejects)


def _grouped(rows) -> dict[tuple[str, str], list]:
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:
        grouped.setdefault((row.source_system, row.source_table), []).append(row)
    return grouped


def _raw_rows(pipeline: CompiledSource, engine: sa.Engine, keys: list[list]) -> dict[str, dict]:
    """The source rows with these key values, by their key text (what a reject keeps)."""
    found: dict[str, dict] = {}
    query = pipeline.select()
    columns = [query.selected_columns[name] for name in pipeline.key_columns]
    with engine.connect() as connection:
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            if len(columns) == 1:
                condition = columns[0].in_([values[0] for values in batch])
            else:
                condition = sa.tuple_(*columns).in_([tuple(values) for values in batch])
            for row in connection.execute(query.where(condition)):
                found[pipeline.key_of(pipeline.source_key(row))] = pipeline.raw_dict(row)
    return found


def _fill(connection, table, own, pending, mine, parent) -> None:
    """Each pending column gets its parent's id, in batches of keyed updates."""
    id_column = own[0].target.id_column
    columns = sorted({c.outputs[0] for p in own for c in p.deferred_references})
    for name in columns:
        result = connection.execute(
            sa.select(pending.c.source_system, pending.c.source_key, parent.c[id_column])
            .select_from(
                pending.join(
                    parent,
                    sa.and_(
                        parent.c.source_system == pending.c.parent_system,
                        parent.c.source_key == pending.c.parent_key,
                    ),
                )
            )
            .where(mine, pending.c.column_name == name)
        ).all()
        for start in range(0, len(result), _BATCH):
            connection.execute(
                table.update()
                .where(
                    table.c.source_system == sa.bindparam("_system"),
                    table.c.source_key == sa.bindparam("_key"),
                )
                .values({name: sa.bindparam("_parent")}),
                [
                    {"_system": system, "_key": key, "_parent": parent_id}
                    for system, key, parent_id in result[start : start + _BATCH]
                ],
            )
