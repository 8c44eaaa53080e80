"""Keyed reads per dialect: ``IN`` lists or PostgreSQL arrays, lookup tuning, fresh statistics.

The loader and validation look rows up by key in tables a load has just written (parents of a
chunk's rows, survivors of a merge); these are the dialect-aware pieces of that.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_IN_BATCH = 2_000


def key_in(column: sa.ColumnElement, values: list, dialect: str) -> list[sa.ColumnElement]:
    """Conditions selecting rows whose ``column`` is in ``values``, one per round trip.

    PostgreSQL takes the whole list as one array parameter (``= ANY``): no statement with
    thousands of placeholders to build and parse. Others get ``IN`` lists in batches.
    """
    if not values:
        return []
    if dialect == "postgresql":
        element = column.type
        if isinstance(element, sa.types.NullType):
            element = sa.Integer() if isinstance(values[0], int) else sa.String()
        return [column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(element)))]
    return [column.in_(values[i : i + _IN_BATCH]) for i in range(0, len(values), _IN_BATCH)]


# Keyed lookups into tables the load has just written (parents of the chunk's rows): their
# pages are in cache, so a random read costs what a sequential one does. PostgreSQL's default
# random_page_cost (4, for spinning disks) makes the planner scan a million-row parent table
# for a few thousand keys instead of probing its unique index: measured 167 ms against 29 ms for
# 6,000 order keys among 1,000,000 orders.
_LOOKUP_SETTINGS = {"postgresql": ["SET LOCAL random_page_cost = 1.1"]}


def begin_lookups(connection: sa.Connection) -> None:
    """Start a read transaction tuned for keyed lookups into freshly loaded tables."""
    for statement in _LOOKUP_SETTINGS.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)


def refresh_statistics(engine: sa.Engine, tables: list[str]) -> None:
    """ANALYZE the tables a bulk load filled.

    Without statistics PostgreSQL plans the joins that follow (validation, integrity checks) as if
    the tables were empty: a nested loop over millions of rows.
    """
    quote = engine.dialect.identifier_preparer.quote
    statement = {
        "postgresql": "ANALYZE {}",
        "sqlite": "ANALYZE {}",
        "mysql": "ANALYZE TABLE {}",
        "mariadb": "ANALYZE TABLE {}",
    }.get(engine.dialect.name)
    if statement is None:
        return
    with engine.begin() as connection:
        for table in tables:
            connection.exec_driver_sql(statement.format(quote(table)))
