"""Referential integrity of the target, counted in SQL: every reference points at a row.

The references come from the spec (every column mapped with ``references:``, and every merge
target's crosswalk), not from the target's foreign keys, which SQLite may not enforce and a
target may not declare. Each check is one anti-join count plus a few sample keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.mapping.model import LoadedSpec

SAMPLE_KEYS = 5


@dataclass(frozen=True)
class Reference:
    """``table.column`` must name an existing ``parent.parent_column``."""

    table: str
    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class OrphanCheck:
    """Rows of ``reference.table`` whose reference points at no row."""

    reference: Reference
    rows: int
    orphans: int
    sample_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        r = self.reference
        return {
            "table": r.table,
            "column": r.column,
            "references": f"{r.parent}.{r.parent_column}",
            "rows": self.rows,
            "orphans": self.orphans,
            "sample_keys": list(self.sample_keys),
        }


def references(spec: LoadedSpec, tables: Iterable[str] | None = None) -> list[Reference]:
    """Every reference the spec creates, for child tables in ``tables`` (all when None)."""
    chosen = None if tables is None else set(tables)
    found: dict[tuple[str, str], Reference] = {}
    for name, target in spec.spec.targets.items():
        if target.merge and target.id_column:
            crosswalk = target.merge.crosswalk
            found[(crosswalk, target.id_column)] = Reference(
                crosswalk, target.id_column, name, target.id_column
            )
        for source in target.sources.values():
            for outputs, column in source.columns.items():
                parent = spec.spec.targets.get(column.parent_target or "")
                if parent is None or parent.id_column is None:
                    continue
                output = outputs.split(",")[0].strip()
                found[(name, output)] = Reference(
                    name, output, column.parent_target, parent.id_column
                )
    return [
        r
        for r in found.values()
        if chosen is None
        or r.table in chosen
        or (r.parent in chosen and r.table not in spec.spec.targets)
    ]


def check_integrity(
    engine: sa.Engine, metadata: sa.MetaData, checks: Iterable[Reference]
) -> list[OrphanCheck]:
    """Count the orphans of each reference in the target."""
    results = []
    with engine.connect() as connection:
        for reference in checks:
            child = metadata.tables[reference.table]
            # aliased: a self-reference (a manager in the same table) must not correlate to itself
            parent = metadata.tables[reference.parent].alias("parent")
            column = child.c[reference.column]
            orphan = sa.and_(
                column.is_not(None),
                ~sa.exists().where(parent.c[reference.parent_column] == column),
            )
            rows = connection.execute(sa.select(sa.func.count()).select_from(child)).scalar_one()
            orphans = connection.execute(
                sa.select(sa.func.count()).select_from(child).where(orphan)
            ).scalar_one()
            sample: tuple[str, ...] = ()
            if orphans and {"source_system", "source_key"} <= set(child.c.keys()):
                query = (
                    sa.select(child.c.source_system, child.c.source_key)
                    .where(orphan)
                    .order_by(child.c.source_system, child.c.source_key)
                    .limit(SAMPLE_KEYS)
                )
                sample = tuple(f"{s}:{k}" for s, k in connection.execute(query))
            results.append(OrphanCheck(reference, rows, orphans, sample))
    return results
