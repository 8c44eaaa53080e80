"""Identity columns and sequences of a target table, per dialect: read, set past the data, restore.

The loader assigns ids itself (deterministic, resumable), so the database's own counter is left
behind: the application's first INSERT after the cut-over would be given id 1 and collide. After a
load or a sync every counter of a loaded table is set past its highest id; the snapshot records
each counter's state before the load, and a rollback puts it back, so a rolled-back target is
the target it was.

* PostgreSQL: ``serial``/``bigserial`` and ``GENERATED ... AS IDENTITY`` columns, through
  ``pg_get_serial_sequence`` and ``setval``; ``GENERATED ALWAYS`` also needs ``OVERRIDING SYSTEM
  VALUE`` when a restore inserts ids (``always_identity``).
* MySQL/MariaDB: the table's ``AUTO_INCREMENT``.
* SQLite: ``INTEGER PRIMARY KEY AUTOINCREMENT`` tables' row in ``sqlite_sequence`` (a plain
  ``INTEGER PRIMARY KEY`` takes the highest id + 1 by itself: nothing to keep).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Counter:
    """The state of one table's id counter: ``value`` as the dialect keeps it."""

    table: str
    column: str
    value: int | None  # PostgreSQL last_value, MySQL next AUTO_INCREMENT, SQLite seq
    is_called: bool = True  # PostgreSQL: whether last_value has been handed out

    def to_dict(self) -> dict:
        return asdict(self)


def counters(connection: sa.Connection, table: str) -> list[Counter]:
    """The current state of every id counter of ``table`` (none where the dialect keeps none)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        found = []
        for column in _pg_sequenced_columns(connection, table):
            sequence = _pg_sequence(connection, table, column)
            value, called = connection.exec_driver_sql(
                f"SELECT last_value, is_called FROM {sequence}"
            ).one()
            found.append(Counter(table, column, int(value), bool(called)))
        return found
    if dialect in ("mysql", "mariadb"):
        column = _mysql_auto_increment_column(connection, table)
        if column is None:
            return []
        value = connection.execute(
            sa.text(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table"
            ),
            {"table": table},
        ).scalar()
        return [Counter(table, column, None if value is None else int(value))]
    if dialect == "sqlite" and _sqlite_autoincrement(connection, table):
        value = connection.exec_driver_sql(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
        ).scalar()
        column = _sqlite_rowid_column(connection, table)
        return [Counter(table, column, None if value is None else int(value))]
    return []


def set_past_highest(connection: sa.Connection, table: str) -> list[tuple[Counter, Counter]]:
    """Set every counter of ``table`` so the next id follows the highest one; (before, after)."""
    changed = []
    quote = connection.dialect.identifier_preparer.quote
    for before in counters(connection, table):
        highest = connection.exec_driver_sql(
            f"SELECT MAX({quote(before.column)}) FROM {quote(table)}"
        ).scalar()
        after = _set(connection, before, None if highest is None else int(highest))
        changed.append((before, after))
    return changed


def restore(connection: sa.Connection, state: Counter) -> None:
    """Put a counter back to a recorded state (a rollback)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        sequence = _pg_sequence(connection, state.table, state.column)
        connection.exec_driver_sql(
            f"SELECT setval('{sequence}', {int(state.value)}, {'true' if state.is_called else 'false'})"
        )
    elif dialect in ("mysql", "mariadb") and state.value is not None:
        quote = connection.dialect.identifier_preparer.quote
        connection.exec_driver_sql(
            f"ALTER TABLE {quote(state.table)} AUTO_INCREMENT = {int(state.value)}"
        )
    elif dialect == "sqlite":
        connection.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (state.table,))
        if state.value is not None:
            connection.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (state.table, state.value)
            )


def always_identity(connection: sa.Connection, table: str) -> bool:
    """Whether ``table`` has a ``GENERATED ALWAYS AS IDENTITY`` column (PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        return False
    return bool(
        connection.execute(
            sa.text(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(:table) "
                "AND attidentity = 'a' AND NOT attisdropped"
            ),
            {"table": _pg_name(connection, table)},
        ).first()
    )


def _set(connection: sa.Connection, before: Counter, highest: int | None) -> Counter:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        after = (
            Counter(before.table, before.column, highest, True)
            if highest is not None
            else Counter(before.table, before.column, 1, False)
        )
    elif dialect in ("mysql", "mariadb"):
        after = Counter(before.table, before.column, (highest or 0) + 1)
    else:
        after = Counter(before.table, before.column, highest or 0)
    restore(connection, after)
    return after


def _pg_name(connection: sa.Connection, table: str) -> str:
    return connection.dialect.identifier_preparer.quote(table)


def _pg_sequence(connection: sa.Connection, table: str, column: str) -> str:
    return connection.execute(
        sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": _pg_name(connection, table), "column": column},
    ).scalar()


def _pg_sequenced_columns(connection: sa.Connection, table: str) -> list[str]:
    rows = connection.execute(
        sa.text(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:table) "
            "AND attnum > 0 AND NOT attisdropped "
            "AND pg_get_serial_sequence(:table, attname) IS NOT NULL ORDER BY attnum"
        ),
        {"table": _pg_name(connection, table)},
    )
    return [name for (name,) in rows]


def _mysql_auto_increment_column(connection: sa.Connection, table: str) -> str | None:
    return connection.execute(
        sa.text(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = :table AND EXTRA LIKE '%auto_increment%'"
        ),
        {"table": table},
    ).scalar()


def _sqlite_autoincrement(connection: sa.Connection, table: str) -> bool:
    sql = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar()
    return bool(sql) and "AUTOINCREMENT" in sql.upper()


def _sqlite_rowid_column(connection: sa.Connection, table: str) -> str:
    quote = connection.dialect.identifier_preparer.quote
    for row in connection.exec_driver_sql(f"PRAGMA table_info({quote(table)})"):
        if row[5] == 1 and str(row[2]).upper() == "INTEGER":
            return row[1]
    return "rowid"
