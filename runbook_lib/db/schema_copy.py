"""Empty copies of target tables in another database: the trial's scratch target.

The copy keeps what makes the trial meaningful — columns and types, primary keys, UNIQUE
constraints and unique indexes, foreign keys, NOT NULL, and (same dialect) CHECK constraints,
defaults and identity columns — so the trial refuses what the target would. Across dialects
(a PostgreSQL target, a SQLite trial target) what the other dialect cannot read is left out and
said: CHECK constraint text and server defaults are written in the target's own SQL, and a type
only the target knows becomes its generic form.
"""

from __future__ import annotations

import sqlalchemy as sa


def copy_tables(source: sa.Engine, tables: list[str], destination: sa.Engine) -> list[str]:
    """Create empty copies of ``tables`` (parents first) in ``destination``; notes on what differs.

    Existing tables of those names in ``destination`` are dropped first (children first).
    """
    metadata = sa.MetaData()
    metadata.reflect(source, only=tables)
    notes: list[str] = []
    if source.dialect.name != destination.dialect.name:
        notes = _portable(metadata, destination.dialect)
    present = set(sa.inspect(destination).get_table_names())
    quote = destination.dialect.identifier_preparer.quote
    with destination.begin() as connection:
        for name in reversed(tables):
            if name in present:
                connection.execute(sa.text(f"DROP TABLE {quote(name)}"))
    metadata.create_all(destination)
    return notes


def _portable(metadata: sa.MetaData, dialect: sa.Dialect) -> list[str]:
    """Strip what only the source dialect can read; what was left out, one note each."""
    notes = []
    for table in metadata.sorted_tables:
        for constraint in list(table.constraints):
            if isinstance(constraint, sa.CheckConstraint):
                table.constraints.discard(constraint)
                notes.append(
                    f"{table.name}: CHECK {constraint.name or constraint.sqltext} is written in "
                    f"the target's SQL and was not created on the {dialect.name} trial target"
                )
        for column in table.columns:
            if column.server_default is not None:
                column.server_default = None
            if column.identity is not None:
                column.identity = None
            try:
                column.type.compile(dialect=dialect)
            except Exception:  # noqa: BLE001 - a type the other dialect cannot render
                generic = _generic(column.type)
                notes.append(f"{table.name}.{column.name}: {column.type} becomes {generic}")
                column.type = generic
    return notes


def _generic(kind: sa.types.TypeEngine) -> sa.types.TypeEngine:
    try:
        return kind.as_generic()
    except NotImplementedError:
        return sa.Text()
