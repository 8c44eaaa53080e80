"""Assessment: profile every source table and column inside its database, streaming nothing.

Each figure is an aggregate query (``COUNT``, ``COUNT(DISTINCT)``, ``MIN``, ``MAX``, ``GROUP BY ...
HAVING``), so memory does not grow with the table. Personal values (min/max of a name or email)
are masked before they leave this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa

from runbook_lib.classification import classify_column
from runbook_lib.hashing import canonical
from runbook_lib.mapping import LoadedSpec, type_family
from runbook_lib.masking import mask_value


@dataclass(frozen=True)
class ColumnProfile:
    """Aggregates of one source column."""

    system: str
    table: str
    column: str
    type: str
    classification: str
    category: str
    rows: int
    nulls: int
    distinct: int
    min: str | None
    max: str | None

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class DuplicateKey:
    """Values of a key (or a normalized match column) that occur more than once."""

    system: str
    table: str
    key: str
    duplicate_values: int
    duplicate_rows: int


@dataclass(frozen=True)
class AssessmentReport:
    """Profiles of every source table."""

    row_counts: dict[str, int]
    columns: tuple[ColumnProfile, ...]
    duplicates: tuple[DuplicateKey, ...]

    def to_dict(self) -> dict:
        return {
            "row_counts": dict(self.row_counts),
            "columns": [asdict(c) | {"null_rate": round(c.null_rate, 6)} for c in self.columns],
            "duplicates": [asdict(d) for d in self.duplicates],
        }

    def render(self) -> str:
        lines = [f"{len(self.row_counts)} source tables, {sum(self.row_counts.values()):,} rows"]
        lines += [f"  {name:<34} {rows:>10,}" for name, rows in self.row_counts.items()]
        if self.duplicates:
            lines.append("duplicate keys:")
            lines += [
                f"  {d.system}.{d.table} on {d.key}: {d.duplicate_values:,} values in {d.duplicate_rows:,} rows"
                for d in self.duplicates
            ]
        return "\n".join(lines)


def profile_table(
    connection: sa.Connection, system: str, table: str, columns: list[dict]
) -> list[ColumnProfile]:
    """One aggregate query per table: rows, and per column nulls, distinct, min and max."""
    source = sa.table(table, *(sa.column(c["name"]) for c in columns))
    aggregates = [sa.func.count().label("rows")]
    for c in columns:
        col = source.c[c["name"]]
        aggregates += [
            sa.func.count(col),
            sa.func.count(sa.distinct(col)),
            sa.func.min(col),
            sa.func.max(col),
        ]
    values = connection.execute(sa.select(*aggregates).select_from(source)).one()
    rows = values[0]
    profiles = []
    for index, c in enumerate(columns):
        non_null, distinct, low, high = values[1 + 4 * index : 5 + 4 * index]
        classification, category = classify_column(table, c["name"])
        profiles.append(
            ColumnProfile(
                system=system,
                table=table,
                column=c["name"],
                type=type_family(c["type"]),
                classification=classification,
                category=category,
                rows=rows,
                nulls=rows - non_null,
                distinct=distinct,
                min=_shown(classification, low),
                max=_shown(classification, high),
            )
        )
    return profiles


def _shown(classification: str, value: object) -> str | None:
    if value is None:
        return None
    return canonical(mask_value(classification, value))


def duplicate_key(
    connection: sa.Connection, system: str, table: str, expression: sa.ColumnElement, label: str
) -> DuplicateKey:
    """How many values of ``expression`` repeat, and in how many rows."""
    grouped = (
        sa.select(expression.label("k"), sa.func.count().label("n"))
        .select_from(sa.table(table))
        .where(expression.is_not(None))
        .group_by(expression)
        .having(sa.func.count() > 1)
        .subquery()
    )
    values, rows = connection.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(grouped.c.n), 0))
    ).one()
    return DuplicateKey(system, table, label, int(values), int(rows))


def assess_sources(sources: dict[str, sa.Engine], spec: LoadedSpec) -> AssessmentReport:
    """Profile every table of every source system; duplicates on keys and on merge match columns."""
    row_counts: dict[str, int] = {}
    profiles: list[ColumnProfile] = []
    duplicates: list[DuplicateKey] = []
    keys = {(system, table): source.key_columns for _t, _m, system, table, source in spec.sources()}
    match_inputs = _match_inputs(spec)
    for system, engine in sources.items():
        inspector = sa.inspect(engine)
        with engine.connect() as connection:
            for table in sorted(inspector.get_table_names()):
                columns = inspector.get_columns(table)
                table_profiles = profile_table(connection, system, table, columns)
                profiles += table_profiles
                row_counts[f"{system}.{table}"] = table_profiles[0].rows if table_profiles else 0
                key = (
                    keys.get((system, table))
                    or inspector.get_pk_constraint(table)["constrained_columns"]
                )
                if len(key) == 1:
                    duplicates.append(
                        duplicate_key(connection, system, table, sa.column(key[0]), key[0])
                    )
                for column in match_inputs.get((system, table), []):
                    normalized = sa.func.lower(sa.func.trim(sa.column(column)))
                    duplicates.append(
                        duplicate_key(
                            connection, system, table, normalized, f"lower(trim({column}))"
                        )
                    )
    return AssessmentReport(
        row_counts=row_counts,
        columns=tuple(profiles),
        duplicates=tuple(d for d in duplicates if d.duplicate_values),
    )


def _match_inputs(spec: LoadedSpec) -> dict[tuple[str, str], list[str]]:
    """Source columns that feed a merge target's match columns (e.g. every email column)."""
    found: dict[tuple[str, str], list[str]] = {}
    for _name, target, system, table, source in spec.sources():
        if not target.merge:
            continue
        for targets_text, column in source.columns.items():
            outputs = {name.strip() for name in targets_text.split(",")}
            if outputs & set(target.merge.match_on) and len(column.inputs) == 1:
                found.setdefault((system, table), []).append(column.inputs[0])
    return found
