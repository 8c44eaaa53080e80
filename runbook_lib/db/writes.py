"""Per-dialect behaviour in one place: how values are bound and how a chunk of rows is written.

A new dialect is one registration here, not an ``if`` in the loader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from operator import attrgetter, is_not

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
    """COPY ... FROM STDIN through psycopg 3, in the chunk's own transaction.

    Binary COPY where every value of the chunk has the one Python type whose binary form is
    exactly the column's (``_binary_types``): an int into an integer column, a Decimal into
    numeric, a str into text, an aware datetime into timestamptz, ... A chunk with
    anything else (a naive datetime for a timestamptz, which text COPY reads in the session's
    zone) goes by text COPY, as every chunk did before, so both give the same stored values.
    """
    if connection.dialect.driver != "psycopg":
        _executemany(connection, table, names, rows)
        return
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in names)}) FROM STDIN"
    driver = connection.connection.driver_connection
    oids = _binary_types(driver, table.name, names, rows)
    if oids is not None:
        statement += " (FORMAT binary)"
    cursor = driver.cursor()
    try:
        with cursor.copy(statement) as copy:
            if oids is not None:
                copy.set_types(oids)
            write = copy.write_row
            for row in rows:
                write(row)
    finally:
        cursor.close()


# PostgreSQL type oid → the Python types whose binary COPY form it takes exactly
_BINARY_OIDS: dict[int, frozenset[type]] = {
    20: frozenset({int}),  # int8
    21: frozenset({int}),  # int2
    23: frozenset({int}),  # int4
    1700: frozenset({Decimal}),  # numeric
    25: frozenset({str}),  # text
    1043: frozenset({str}),  # varchar
    16: frozenset({bool}),  # bool
    1082: frozenset({date}),  # date
    1114: frozenset({datetime}),  # timestamp: naive values only (checked)
    1184: frozenset({datetime}),  # timestamptz: aware values only (checked)
}
_INT_RANGES = {21: (-(2**15), 2**15 - 1), 23: (-(2**31), 2**31 - 1), 20: (-(2**63), 2**63 - 1)}
_present = partial(filter, partial(is_not, None))
_tzinfo = attrgetter("tzinfo")


def _binary_types(driver, table: str, names: list[str], rows: list[tuple]) -> list[int] | None:
    """The column type oids for a binary COPY of ``rows``, or None where text COPY must go.

    Every value is checked (by C-level passes down each column): one value of another type,
    an int out of its column's range (the server's refusal, as text COPY gets it), a naive
    datetime for a timestamptz or an aware one for a timestamp sends the chunk by text.
    """
    found = dict(
        driver.execute(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (f'"{table}"',),
        ).fetchall()
    )
    oids = [found.get(name) for name in names]
    for oid, values in zip(oids, zip(*rows, strict=True), strict=True):
        allowed = _BINARY_OIDS.get(oid)
        if allowed is None:
            return None
        kinds = set(map(type, values))
        nulls = type(None) in kinds
        kinds.discard(type(None))
        if not kinds:
            continue
        if not kinds <= allowed:
            return None
        present = list(_present(values)) if nulls else values
        if oid in _INT_RANGES:
            low, high = _INT_RANGES[oid]
            if min(present) < low or max(present) > high:
                return None
        elif oid in (1114, 1184):
            zones = set(map(_tzinfo, present))
            if (None in zones) == (oid == 1184) or (oid == 1114 and zones - {None}):
                return None
    return oids


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
