"""Deduplication of a merge target: match keys, survivorship, and the crosswalk.

Source records of one real entity (a person in three systems) become one target row. Records are
processed in the default survivorship order; a record matching an existing entity on a declared
match column (normalized email first, then E.164 phone) is linked to it in the crosswalk.

Survivorship decides, field by field, which record's value the survivor keeps: the system that
ranks first for that field (``MergeSpec.order_for``) among the records that have a value. By
default that is the first system, so later records only fill gaps; a per-field override such
as ``first_name: [legacy_b, legacy_a, crm]`` lets a later-loaded system replace an earlier
value. Within one system the earlier record wins. The crosswalk's ``supplied_fields`` records
which fields each source record supplied, which is both the audit trail ("which system won
which field") and the state that lets a later chunk apply the rule. State lives in the target
(keyed queries per chunk), so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from runbook_lib.db.lookups import key_in
from runbook_lib.db.writes import adapt_rows, write_dicts
from runbook_lib.mapping.compiled import CompiledSource
from runbook_lib.mapping.model import AUTO_COLUMNS, SUPPLIED_FIELDS, MergeSpec


@dataclass
class _Entity:
    """One survivor during a chunk: its row and which record supplied each field."""

    row: dict
    stored: bool  # already in the target before this chunk
    suppliers: dict[str, tuple[str, str]] = field(default_factory=dict)
    changed: bool = False


def merge_chunk(
    connection: sa.Connection,
    pipeline: CompiledSource,
    metadata: sa.MetaData,
    merge: MergeSpec,
    good: list[tuple[dict, dict]],
    next_id: Callable[[], int],
) -> tuple[int, int]:
    """Insert new entities and link duplicates to their survivor; returns (new, merged)."""
    table = metadata.tables[pipeline.target_name]
    xref = metadata.tables[merge.crosswalk]
    id_column = pipeline.target.id_column
    dialect = connection.dialect.name
    tracked = SUPPLIED_FIELDS in xref.c
    protected = {id_column, *AUTO_COLUMNS}
    fields = [c.name for c in table.columns if c.name not in protected]
    existing = matching_rows(connection, table, merge.match_on, [out for _raw, out in good])
    entities = {
        entity_id: _Entity(row, stored=True, suppliers=_stored_suppliers(row, fields))
        for entity_id, row in existing.items()
    }
    supplied = _read_supplied(connection, xref, id_column, list(entities)) if tracked else {}
    for (system, key), (entity_id, names) in supplied.items():
        for name in names:
            entities[entity_id].suppliers[name] = (system, key)
    index = {
        (col, entity.row[col]): entity_id
        for entity_id, entity in entities.items()
        for col in merge.match_on
        if entity.row[col] is not None
    }
    xref_rows: dict[tuple[str, str], dict] = {}
    new_ids: list[int] = []
    for _raw, out in good:
        record = (out["source_system"], out["source_key"])
        entity_id = next(
            (
                index[(col, out[col])]
                for col in merge.match_on
                if out.get(col) is not None and (col, out[col]) in index
            ),
            None,
        )
        if entity_id is None:
            entity_id = next_id()
            out[id_column] = entity_id
            entity = entities[entity_id] = _Entity(out, stored=False)
            new_ids.append(entity_id)
            rule = "new"
            won = [name for name in fields if out.get(name) is not None]
            entity.suppliers.update(dict.fromkeys(won, record))
        else:
            entity = entities[entity_id]
            rule = next(
                f"match:{col}"
                for col in merge.match_on
                if out.get(col) is not None and index.get((col, out[col])) == entity_id
            )
            won = _survive(merge, entity, out, fields, record, xref_rows, supplied)
        for col in merge.match_on:
            if entity.row.get(col) is not None:
                index.setdefault((col, entity.row[col]), entity_id)
        xref_rows[record] = {
            "source_system": record[0],
            "source_key": record[1],
            id_column: entity_id,
            "match_rule": rule,
        } | ({SUPPLIED_FIELDS: _joined(won)} if tracked else {})
    write_dicts(connection, table, [entities[i].row for i in new_ids])
    changed = [
        {"_entity_id": entity_id}
        | {k: v for k, v in entities[entity_id].row.items() if k not in protected}
        for entity_id in sorted(i for i, e in entities.items() if e.stored and e.changed)
    ]
    if changed:  # one executemany, not a round trip per survivor
        connection.execute(
            table.update().where(table.c[id_column] == sa.bindparam("_entity_id")),
            adapt_rows(dialect, changed),
        )
    lost = [
        {"_system": system, "_key": key, SUPPLIED_FIELDS: _joined(list(names))}
        for (system, key), (_entity_id, names) in sorted(supplied.items())
        if (system, key) not in xref_rows and names.lost
    ]
    if lost:
        connection.execute(
            xref.update().where(
                xref.c.source_system == sa.bindparam("_system"),
                xref.c.source_key == sa.bindparam("_key"),
            ),
            lost,
        )
    write_dicts(connection, xref, list(xref_rows.values()))
    return len(new_ids), len(good) - len(new_ids)


class _Supplied(list):
    """The fields a stored crosswalk row supplied; ``lost`` once a later record takes one."""

    lost = False


def _survive(
    merge: MergeSpec,
    entity: _Entity,
    out: dict,
    fields: list[str],
    record: tuple[str, str],
    xref_rows: dict[tuple[str, str], dict],
    supplied: dict[tuple[str, str], tuple[int, _Supplied]],
) -> list[str]:
    """Apply survivorship for a record linked to ``entity``; the fields it wins."""
    won = []
    for name in fields:
        value = out.get(name)
        if value is None:
            continue
        current = entity.suppliers.get(name)
        if entity.row.get(name) is not None and current is not None:
            if merge.rank(name, record[0]) >= merge.rank(name, current[0]):
                continue
            _take_from(current, name, xref_rows, supplied)
        elif entity.row.get(name) is not None:
            continue
        entity.row[name] = value
        entity.suppliers[name] = record
        entity.changed = True
        won.append(name)
    return won


def _take_from(
    loser: tuple[str, str],
    name: str,
    xref_rows: dict[tuple[str, str], dict],
    supplied: dict[tuple[str, str], tuple[int, _Supplied]],
) -> None:
    """Remove ``name`` from the fields the record ``loser`` supplied."""
    if loser in xref_rows and xref_rows[loser].get(SUPPLIED_FIELDS):
        kept = [f for f in xref_rows[loser][SUPPLIED_FIELDS].split(",") if f != name]
        xref_rows[loser][SUPPLIED_FIELDS] = _joined(kept)
    elif loser in supplied:
        names = supplied[loser][1]
        if name in names:
            names.remove(name)
            names.lost = True


def _joined(names: list[str]) -> str | None:
    return ",".join(names) or None


def _stored_suppliers(row: dict, fields: list[str]) -> dict[str, tuple[str, str]]:
    """Without crosswalk records, a stored value counts as its row's own record's."""
    record = (row["source_system"], row["source_key"])
    return {name: record for name in fields if row.get(name) is not None}


def _read_supplied(
    connection: sa.Connection, xref: sa.Table, id_column: str, entity_ids: list[int]
) -> dict[tuple[str, str], tuple[int, _Supplied]]:
    """(system, key) → (entity id, fields supplied) of the crosswalk rows of ``entity_ids``."""
    found: dict[tuple[str, str], tuple[int, _Supplied]] = {}
    for condition in key_in(xref.c[id_column], sorted(entity_ids), connection.dialect.name):
        query = sa.select(
            xref.c.source_system, xref.c.source_key, xref.c[id_column], xref.c[SUPPLIED_FIELDS]
        ).where(condition)
        for system, key, entity_id, names in connection.execute(query).all():
            found[(system, key)] = (entity_id, _Supplied((names or "").split(",") if names else []))
    return found


def matching_rows(
    connection: sa.Connection, table: sa.Table, match_on: list[str], rows: list[dict]
) -> dict[int, dict]:
    """Target rows (by id) that share any match-column value with ``rows``."""
    id_column = next(iter(table.primary_key.columns)).name
    found: dict[int, dict] = {}
    for col in match_on:
        values = sorted({row[col] for row in rows if row.get(col) is not None})
        for condition in key_in(table.c[col], values, connection.dialect.name):
            for row in connection.execute(sa.select(table).where(condition)).mappings().all():
                found[row[id_column]] = dict(row)
    return found
