"""Foreign keys of the loaded tables: suspended for a bulk load, validated once after it.

PostgreSQL checks a foreign key row by row during COPY, locking each parent row as it goes; at
millions of rows that is most of the time the database spends on a load (measured: 200,000 order
rows take 1.6 s to COPY without their foreign key and 4.0 s with it). The loader needs no such
check while it writes: it resolves every reference against the target itself and quarantines the
orphans. So a PostgreSQL load drops the foreign keys *of the tables it writes* and adds them back
when it ends, and PostgreSQL then validates each in one set-based pass: the same guarantee,
checked once.

Each definition is recorded in the target (``runbook_suspended_keys``) in the transaction that
drops it, so a crash never loses a constraint: a resumed load reinstates it when it finishes, a
rollback after restoring the data. Other dialects keep their keys (the registry below is where a
dialect would opt in).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import SUSPENDED_TABLE, suspended_keys
from runbook_lib.errors import GateFailedError


@dataclass(frozen=True)
class SuspendedKey:
    """A foreign key taken off a table for a load, with what re-creates it."""

    table_name: str  # as the database spells it (already quoted where it must be)
    constraint_name: str
    definition: str  # FOREIGN KEY (...) REFERENCES ...

    def describe(self) -> str:
        return f"{self.table_name}.{self.constraint_name}"


@dataclass(frozen=True)
class _Catalog:
    """How a dialect lists a table's foreign keys, with their definitions, from its catalog."""

    list_keys: str  # :table_name → (table as spelled, constraint name, definition)
    key_exists: str  # :table_name, :constraint_name → a row when the key is there


# Dialects whose foreign keys are suspended during a load.
_CATALOGS = {
    "postgresql": _Catalog(
        list_keys="""
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint c
            WHERE c.contype = 'f' AND c.conrelid = to_regclass(:table_name)
            ORDER BY c.conname
        """,
        key_exists="""
            SELECT 1 FROM pg_constraint
            WHERE conrelid = to_regclass(:table_name) AND conname = :constraint_name
        """,
    ),
}


def supported(engine: sa.Engine) -> bool:
    """Whether a load into ``engine`` suspends foreign keys."""
    return engine.dialect.name in _CATALOGS


def suspend(engine: sa.Engine, tables: Iterable[str], run_id: str) -> list[SuspendedKey]:
    """Drop the foreign keys of ``tables`` for ``run_id``'s load, recording each first.

    Idempotent: a resumed load finds the keys already dropped (and still recorded) and does
    nothing. Returns the keys suspended by this call.
    """
    if not supported(engine):
        return []
    suspended_keys.create(engine, checkfirst=True)
    quote = engine.dialect.identifier_preparer.quote
    found: list[SuspendedKey] = []
    with engine.begin() as connection:
        for table in tables:
            rows = connection.execute(
                sa.text(_CATALOGS[engine.dialect.name].list_keys), {"table_name": quote(table)}
            ).all()
            found.extend(SuspendedKey(*row) for row in rows)
        for key in found:
            connection.execute(
                suspended_keys.insert().values(
                    run_id=run_id,
                    table_name=key.table_name,
                    constraint_name=key.constraint_name,
                    definition=key.definition,
                )
            )
            connection.exec_driver_sql(
                f"ALTER TABLE {key.table_name} DROP CONSTRAINT {quote(key.constraint_name)}"
            )
    return found


def pending(connection: sa.Connection, run_id: str) -> list[SuspendedKey]:
    """The keys ``run_id`` has suspended and not yet reinstated."""
    if not sa.inspect(connection).has_table(SUSPENDED_TABLE):
        return []
    rows = connection.execute(
        sa.select(
            suspended_keys.c.table_name,
            suspended_keys.c.constraint_name,
            suspended_keys.c.definition,
        )
        .where(suspended_keys.c.run_id == run_id)
        .order_by(suspended_keys.c.table_name, suspended_keys.c.constraint_name)
    ).all()
    return [SuspendedKey(*row) for row in rows]


def reinstate(connection: sa.Connection, run_id: str) -> list[SuspendedKey]:
    """Add back every key ``run_id`` suspended, validating each against the data.

    Runs in the caller's transaction. Raises ``GateFailedError`` naming the key the data breaks
    (the transaction is then the caller's to roll back, and the key stays recorded).
    """
    keys = pending(connection, run_id)
    quote = connection.dialect.identifier_preparer.quote
    for key in keys:
        if _exists(connection, key):  # put back already (a scratch target rebuilt since)
            _forget(connection, run_id, key)
            continue
        statement = (
            f"ALTER TABLE {key.table_name} ADD CONSTRAINT {quote(key.constraint_name)} "
            f"{key.definition}"
        )
        try:
            with connection.begin_nested():
                connection.exec_driver_sql(statement)
        except sa.exc.IntegrityError as exc:
            raise GateFailedError(
                f"foreign key {key.describe()} does not hold after run {run_id}'s load: "
                f"{str(exc.orig).splitlines()[0]}",
                hint=f"the key stays suspended (recorded in {SUSPENDED_TABLE}); roll back the run "
                "(runbook rollback), which restores the data and the key",
            ) from None
        _forget(connection, run_id, key)
    return keys


def _exists(connection: sa.Connection, key: SuspendedKey) -> bool:
    query = sa.text(_CATALOGS[connection.dialect.name].key_exists)
    found = connection.execute(
        query, {"table_name": key.table_name, "constraint_name": key.constraint_name}
    )
    return found.first() is not None


def _forget(connection: sa.Connection, run_id: str, key: SuspendedKey) -> None:
    connection.execute(
        suspended_keys.delete().where(
            suspended_keys.c.run_id == run_id,
            suspended_keys.c.table_name == key.table_name,
            suspended_keys.c.constraint_name == key.constraint_name,
        )
    )
