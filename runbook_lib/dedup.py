"""Deduplication of a merge target: match keys, survivorship, and the crosswalk.

Source records of one real entity (a person in three systems) become one target row. Records are
processed in survivorship order; a record matching an existing entity on a declared match column
(normalized email first, then E.164 phone) is linked to it in the crosswalk, and only fills the
survivor's empty fields. State lives in the target (keyed queries per chunk), so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from runbook_lib.dialects import adapt_rows, writer_for
from runbook_lib.mapping import MergeSpec
from runbook_lib.pipeline import SourcePipeline

_IN_BATCH = 2_000


def merge_chunk(
    connection: sa.Connection,
    pipeline: SourcePipeline,
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
    existing = matching_rows(connection, table, merge.match_on, [out for _raw, out in good])
    index = {
        (col, row[col]): row[id_column]
        for row in existing.values()
        for col in merge.match_on
        if row[col] is not None
    }
    new_rows: dict[int, dict] = {}
    changed: set[int] = set()
    xref_rows = []
    protected = {id_column, "source_system", "source_key"}
    for _raw, out in good:
        match = next(
            (
                (col, index[(col, out[col])])
                for col in merge.match_on
                if out.get(col) is not None and (col, out[col]) in index
            ),
            None,
        )
        if match is None:
            entity_id = next_id()
            out[id_column] = entity_id
            new_rows[entity_id] = out
            survivor, rule = out, "new"
        else:
            column, entity_id = match
            survivor = new_rows.get(entity_id) or existing[entity_id]
            rule = f"match:{column}"
            for name, value in out.items():
                # survivorship: the earlier system keeps its values; later ones only fill gaps
                if name not in protected and value is not None and survivor.get(name) is None:
                    survivor[name] = value
                    if entity_id in existing:
                        changed.add(entity_id)
        for col in merge.match_on:
            if survivor.get(col) is not None:
                index.setdefault((col, survivor[col]), entity_id)
        xref_rows.append(
            {
                "source_system": out["source_system"],
                "source_key": out["source_key"],
                id_column: entity_id,
                "match_rule": rule,
            }
        )
    write = writer_for(dialect)
    if new_rows:
        write(connection, table, adapt_rows(dialect, list(new_rows.values())))
    for entity_id in sorted(changed):
        values = {k: v for k, v in existing[entity_id].items() if k not in protected}
        connection.execute(
            table.update().where(table.c[id_column] == entity_id), adapt_rows(dialect, [values])[0]
        )
    if xref_rows:
        write(connection, xref, xref_rows)
    return len(new_rows), len(good) - len(new_rows)


def matching_rows(
    connection: sa.Connection, table: sa.Table, match_on: list[str], rows: list[dict]
) -> dict[int, dict]:
    """Target rows (by id) that share any match-column value with ``rows``."""
    id_column = next(iter(table.primary_key.columns)).name
    found: dict[int, dict] = {}
    for col in match_on:
        values = sorted({row[col] for row in rows if row.get(col) is not None})
        for start in range(0, len(values), _IN_BATCH):
            query = sa.select(table).where(table.c[col].in_(values[start : start + _IN_BATCH]))
            for row in connection.execute(query).mappings():
                found[row[id_column]] = dict(row)
    return found
