"""Per-dialect behaviour in one place: how values are bound and how a chunk of rows is written.

A new dialect is one registration here, not an ``if`` in the loader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from runbook_lib.db.type_rules import TYPE_RULES

ValueAdapter = Callable[[object], object]
ChunkWriter = Callable[[sa.Connection, sa.Table, list[str], list[tuple]], None]


def _naive_utc(value: object) -> object:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _decimal_text(value: object) -> object:
    # no decimal type: text keeps the exact digits the mapping produced
    return str(value) if isinstance(value, Decimal) else value


def _decimal_text_naive_utc(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    return _naive_utc(value)


def _server_value(value: object) -> object:
    return value


# (decimal rule, datetime rule) of ``type_rules`` → how a value is bound
_ADAPTER_BY_RULES: dict[tuple[str, str], ValueAdapter] = {
    ("numeric", "aware"): _server_value,
    ("numeric", "naive_utc"): _naive_utc,
    ("text", "aware"): _decimal_text,
    ("text", "naive_utc"): _decimal_text_naive_utc,
}

VALUE_ADAPTERS: dict[str, ValueAdapter] = {
    name: _ADAPTER_BY_RULES[(rules.decimal, rules.datetime)] for name, rules in TYPE_RULES.items()
}


def _executemany(
    connection: sa.Connection, table: sa.Table, names: list[str], rows: list[tuple]
) -> None:
    # Through the table's own types (the SQLite decimal-as-text and UTC datetime decorators).
    connection.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])


def _postgresql_copy(
    connection: sa.Connection, table: sa.Table, names: list[str], rows: list[tuple]
) -> None:
    """COPY ... FROM STDIN through psycopg 3, in the chunk's own transaction."""
    if connection.dialect.driver != "psycopg":
        _executemany(connection, table, names, rows)
        return
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in names)}) FROM STDIN"
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    finally:
        cursor.close()


# MySQL/MariaDB: executemany becomes batched multi-row INSERTs (SQLAlchemy insertmanyvalues and
# PyMySQL's executemany both rewrite it); SQLite: executemany inside the chunk's transaction.
CHUNK_WRITERS: dict[str, ChunkWriter] = {
    "sqlite": _executemany,
    "postgresql": _postgresql_copy,
    "mysql": _executemany,
    "mariadb": _executemany,
}


def register_writer(dialect: str, writer: ChunkWriter) -> None:
    """Install a faster way to write a chunk for ``dialect`` (e.g. PostgreSQL COPY)."""
    CHUNK_WRITERS[dialect] = writer


def adapter_for(dialect: str) -> ValueAdapter:
    """How values are bound for ``dialect``, by its type rules (unknown: as they are)."""
    return VALUE_ADAPTERS.get(dialect, _server_value)


def write_rows(
    connection: sa.Connection, table: sa.Table, names: list[str], rows: list[tuple]
) -> None:
    """Insert ``rows`` (tuples in ``names`` order) by the dialect's fast path, values adapted.

    Executemany unless a faster path is registered for the dialect.
    """
    if not rows:
        return
    dialect = connection.dialect.name
    adapt = adapter_for(dialect)
    if adapt is not _server_value:
        rows = [tuple(map(adapt, row)) for row in rows]
    CHUNK_WRITERS.get(dialect, _executemany)(connection, table, names, rows)


def write_dicts(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert rows given as dicts (all with the keys of the first) by :func:`write_rows`."""
    if rows:
        names = list(rows[0])
        write_rows(connection, table, names, [tuple(row[n] for n in names) for row in rows])


def adapt_rows(dialect: str, rows: list[dict]) -> list[dict]:
    """Rows with every value in the form ``dialect`` stores exactly."""
    adapt = adapter_for(dialect)
    if adapt is _server_value:
        return rows
    return [{name: adapt(value) for name, value in row.items()} for row in rows]


def savepoint(connection: sa.Connection) -> sa.NestedTransaction:
    """A savepoint inside the connection's transaction, which is really open first.

    pysqlite opens SQLite's transaction lazily, before the first INSERT/UPDATE/DELETE; a SAVEPOINT
    issued before that starts a transaction of its own, and releasing it *commits* — rows would
    be committed before their chunk's checkpoint. So on SQLite the transaction is begun
    explicitly before the savepoint.
    """
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        if not driver.in_transaction:
            driver.execute("BEGIN")
    return connection.begin_nested()
