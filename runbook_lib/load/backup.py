"""Snapshot the target tables a load touches, restore them, and prove the restore by hash.

How a copy is kept depends on the dialect (a registry, like the loaders'):

* SQLite: the database's own backup API writes a copy file beside the target; a restore attaches
  it and copies the tables back.
* PostgreSQL: ``CREATE TABLE runbook_backup.<run>_<table> AS SELECT`` in a backup schema.
* anything else (MySQL/MariaDB): prefixed copies in the same database.

Every snapshot is recorded in ``runbook_snapshots`` in the target itself, so a load killed half-way
can still be rolled back even if its notebook never saved, and a resumed load never snapshots its
own partial output. The content hash of each table is taken before the load and again after a
restore: equal hashes are the proof.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.db import sequences
from runbook_lib.db.bookkeeping import (
    BOOKKEEPING,
    CHECKPOINTS_TABLE,
    COUNTERS_TABLE,
    PARTITIONS_TABLE,
    PENDING_REFERENCES_TABLE,
    REJECTS_TABLE,
    SNAPSHOTS_TABLE,
    counters_before,
    snapshots,
)
from runbook_lib.db.canonical import TableHasher
from runbook_lib.errors import GateFailedError, RunbookError
from runbook_lib.load import foreign_keys, history

BACKUP_SCHEMA = "runbook_backup"


def _tag(run_id: str) -> str:
    return re.sub(r"[^0-9a-z]", "", run_id.lower())[-12:]


def table_digest(connection: sa.Connection, table: sa.Table) -> tuple[int, str]:
    """(rows, sha256) of a table's content, streamed in primary-key order."""
    order = list(table.primary_key.columns) or list(table.columns)
    hasher = TableHasher()
    # options on the statement, not the connection: the connection runs DDL next
    result = connection.execute(
        sa.select(table).order_by(*order).execution_options(stream_results=True, yield_per=10_000)
    )
    for row in result:
        hasher.add(row)
    return hasher.rows, hasher.hexdigest()


class _InDatabaseCopies:
    """``CREATE TABLE copy AS SELECT *``; restore with ``INSERT ... SELECT``."""

    name = "table_copy"

    def __init__(self, schema: str | None = None) -> None:
        self.schema = schema

    def take(
        self, engine: sa.Engine, connection: sa.Connection, run_id: str, tables: list[str]
    ) -> dict[str, str]:
        quote = engine.dialect.identifier_preparer.quote
        if self.schema:
            connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}"))
        locations = {}
        for table in tables:
            copy = f"{_tag(run_id)}_{table}" if self.schema else f"rbk_{_tag(run_id)}_{table}"
            location = (
                f"{quote(self.schema)}.{quote(copy[:60])}" if self.schema else quote(copy[:60])
            )
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {location}"))
            connection.execute(sa.text(f"CREATE TABLE {location} AS SELECT * FROM {quote(table)}"))
            locations[table] = location
        return locations

    def restore(
        self, engine: sa.Engine, connection: sa.Connection, table: sa.Table, location: str
    ) -> None:
        quote = engine.dialect.identifier_preparer.quote
        columns = ", ".join(quote(c.name) for c in table.columns)
        # the snapshot's ids go back as they were, GENERATED ALWAYS identity columns included
        overriding = (
            " OVERRIDING SYSTEM VALUE" if sequences.always_identity(connection, table.name) else ""
        )
        connection.execute(
            sa.text(
                f"INSERT INTO {quote(table.name)} ({columns}){overriding} "
                f"SELECT {columns} FROM {location}"
            )
        )

    def missing(self, engine: sa.Engine, locations: dict[str, str]) -> list[str]:
        inspector = sa.inspect(engine)
        present = {
            f"{self.schema}.{t}" if self.schema else t
            for t in inspector.get_table_names(schema=self.schema)
        }
        return [
            loc
            for loc in locations.values()
            if loc.replace('"', "").replace("`", "") not in present
        ]


class _SqliteBackupFile:
    """SQLite's online backup API copies the whole database file; a restore attaches the copy."""

    name = "sqlite_backup_api"

    def take(
        self, engine: sa.Engine, connection: sa.Connection, run_id: str, tables: list[str]
    ) -> dict[str, str]:
        database = Path(engine.url.database)
        path = database.with_name(f"{database.stem}.backup-{_tag(run_id)}.sqlite")
        source = connection.connection.driver_connection
        destination = sqlite3.connect(path)
        try:
            source.backup(destination)
        finally:
            destination.close()
        return {table: f"{path}#{table}" for table in tables}

    def restore(
        self, engine: sa.Engine, connection: sa.Connection, table: sa.Table, location: str
    ) -> None:
        quote = engine.dialect.identifier_preparer.quote
        columns = ", ".join(quote(c.name) for c in table.columns)
        _path, name = location.rsplit("#", 1)
        connection.execute(
            sa.text(
                f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} FROM rbk.{quote(name)}"
            )
        )

    def missing(self, engine: sa.Engine, locations: dict[str, str]) -> list[str]:
        return sorted(
            {
                loc.rsplit("#", 1)[0]
                for loc in locations.values()
                if not Path(loc.rsplit("#", 1)[0]).is_file()
            }
        )


def _strategy_for(engine: sa.Engine):
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return _SqliteBackupFile()
    if engine.dialect.name == "postgresql":
        return _InDatabaseCopies(schema=BACKUP_SCHEMA)
    return _InDatabaseCopies()


@dataclass(frozen=True)
class Snapshot:
    """The copies of the touched tables and their content before the load."""

    run_id: str
    tables: tuple[str, ...]
    strategy: str
    locations: dict[str, str]
    rows: dict[str, int]
    sha256: dict[str, str]

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "tables": list(self.tables),
            "strategy": self.strategy,
            "rows": dict(self.rows),
            "sha256": dict(self.sha256),
        }

    def render(self) -> str:
        lines = [f"snapshot of {len(self.tables)} target tables before the load ({self.strategy}):"]
        lines += [
            f"  {t:<16} {self.rows[t]:>9,} rows  sha256 {self.sha256[t][:16]}…" for t in self.tables
        ]
        return "\n".join(lines)


def find_snapshot(engine: sa.Engine, run_id: str) -> Snapshot | None:
    """The snapshot a run took before its load, as recorded in the target."""
    if SNAPSHOTS_TABLE not in sa.inspect(engine).get_table_names():
        return None
    with engine.connect() as connection:
        rows = (
            connection.execute(
                sa.select(snapshots)
                .where(snapshots.c.run_id == run_id)
                .order_by(snapshots.c.position)
            )
            .mappings()
            .all()
        )
    if not rows:
        return None
    return Snapshot(
        run_id=run_id,
        tables=tuple(r["table_name"] for r in rows),
        strategy=rows[0]["strategy"],
        locations={r["table_name"]: r["location"] for r in rows},
        rows={r["table_name"]: r["row_count"] for r in rows},
        sha256={r["table_name"]: r["sha256"] for r in rows},
    )


def snapshot(engine: sa.Engine, tables: list[str], run_id: str) -> Snapshot:
    """Copy every table in ``tables`` and record its content hash; a run snapshots only once."""
    existing = find_snapshot(engine, run_id)
    if existing is not None:
        return existing
    BOOKKEEPING.create_all(engine, tables=[snapshots, counters_before])
    metadata = sa.MetaData()
    metadata.reflect(engine, only=tables)
    strategy = _strategy_for(engine)
    rows, digests = {}, {}
    with engine.begin() as connection:
        for name in tables:
            rows[name], digests[name] = table_digest(connection, metadata.tables[name])
        locations = strategy.take(engine, connection, run_id, tables)
        # recorded after the copy: SQLite's backup API waits forever on its own pending write
        states = [state for name in tables for state in sequences.counters(connection, name)]
        if states:
            connection.execute(
                counters_before.insert(),
                [
                    {
                        "run_id": run_id,
                        "table_name": s.table,
                        "column_name": s.column,
                        "value": s.value,
                        "is_called": s.is_called,
                    }
                    for s in states
                ],
            )
        # to the microsecond: the order of runs in a target (``history``) is read from it
        taken_at = datetime.now(UTC).isoformat(timespec="microseconds")
        connection.execute(
            snapshots.insert(),
            [
                {
                    "run_id": run_id,
                    "table_name": name,
                    "position": i,
                    "strategy": strategy.name,
                    "location": locations[name],
                    "row_count": rows[name],
                    "sha256": digests[name],
                    "taken_at": taken_at,
                }
                for i, name in enumerate(tables)
            ],
        )
    return Snapshot(
        run_id=run_id,
        tables=tuple(tables),
        strategy=strategy.name,
        locations=locations,
        rows=rows,
        sha256=digests,
    )


@dataclass(frozen=True)
class RestoreReport:
    """The hashes after a restore, next to the ones taken before the load."""

    run_id: str
    expected: dict[str, str]
    actual: dict[str, str]
    rows: dict[str, int]
    rejects_removed: int
    counters: tuple[sequences.Counter, ...] = ()  # id counters put back to their pre-load state

    @property
    def mismatched(self) -> list[str]:
        return [t for t in self.expected if self.expected[t] != self.actual.get(t)]

    @property
    def passed(self) -> bool:
        return not self.mismatched

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "passed": self.passed,
            "tables": [
                {
                    "table": t,
                    "rows": self.rows.get(t),
                    "sha256_before_load": self.expected[t],
                    "sha256_after_rollback": self.actual.get(t),
                    "equal": self.expected[t] == self.actual.get(t),
                }
                for t in self.expected
            ],
            "rejects_removed": self.rejects_removed,
            "counters_restored": [c.to_dict() for c in self.counters],
        }

    def render(self) -> str:
        lines = [f"rollback of run {self.run_id}:"]
        for t in self.expected:
            mark = "equal" if self.expected[t] == self.actual.get(t) else "DIFFERENT"
            lines.append(
                f"  {t:<16} {self.rows.get(t, 0):>9,} rows  {self.actual.get(t, '')[:16]}…  {mark}"
            )
        lines += [f"  id counter {c.table}.{c.column} back to {c.value}" for c in self.counters]
        lines.append(
            "restored exactly" if self.passed else f"NOT restored: {', '.join(self.mismatched)}"
        )
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise GateFailedError(
                f"rollback of run {self.run_id}: tables differ from before the load: "
                f"{', '.join(self.mismatched)}",
                hint="the snapshot copies are kept: compare the differing tables with them (see the "
                "rollback notebook) before writing anything else to this target",
            )


def _restore_counters(
    connection: sa.Connection, run_id: str, present: set[str]
) -> list[sequences.Counter]:
    """Every id counter back to its state before the run's load (as the snapshot recorded it)."""
    if COUNTERS_TABLE not in present:
        return []
    recorded = connection.execute(
        sa.select(counters_before).where(counters_before.c.run_id == run_id)
    ).all()
    states = [
        sequences.Counter(r.table_name, r.column_name, r.value, bool(r.is_called)) for r in recorded
    ]
    for state in states:
        sequences.restore(connection, state)
    return states


def restore(engine: sa.Engine, snap: Snapshot) -> RestoreReport:
    """Put every snapshotted table back as it was, children emptied first, then prove it.

    The run's rejects and checkpoints go too, so the run could load again from the start.
    Refused (``RollbackOrderError``) while a later run's load or sync is in the target: its
    rows would go too.
    """
    history.refuse_out_of_order(engine, snap.run_id)  # roll back the newest first
    strategy = _strategy_for(engine)
    missing = strategy.missing(engine, snap.locations)
    if missing:
        raise RunbookError(
            f"cannot roll back run {snap.run_id}: the snapshot copies are gone: {', '.join(missing)}"
        )
    present = set(sa.inspect(engine).get_table_names())
    metadata = sa.MetaData()
    metadata.reflect(engine, only=list(snap.tables))
    rejects_removed = 0
    actual, rows = {}, {}
    attached = snap.strategy == "sqlite_backup_api"
    with engine.connect() as connection:
        if attached:
            # before any write: SQLite refuses ATTACH inside a write transaction
            backup_file = next(iter(snap.locations.values())).rsplit("#", 1)[0]
            connection.exec_driver_sql("ATTACH DATABASE ? AS rbk", (backup_file,))
        try:
            for name in reversed(snap.tables):
                connection.execute(metadata.tables[name].delete())
            for name in snap.tables:
                strategy.restore(engine, connection, metadata.tables[name], snap.locations[name])
            # a load killed while the foreign keys were suspended: they come back with the data
            foreign_keys.reinstate(connection, snap.run_id)
            counters = _restore_counters(connection, snap.run_id, present)
            for bookkeeping in (
                REJECTS_TABLE,
                CHECKPOINTS_TABLE,
                PENDING_REFERENCES_TABLE,
                PARTITIONS_TABLE,
            ):
                if bookkeeping in present:
                    removed = connection.execute(
                        sa.text(f"DELETE FROM {bookkeeping} WHERE run_id = :run_id"),
                        {"run_id": snap.run_id},
                    ).rowcount
                    rejects_removed = removed if bookkeeping == REJECTS_TABLE else rejects_removed
            for name in snap.tables:
                rows[name], actual[name] = table_digest(connection, metadata.tables[name])
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if attached:
                connection.exec_driver_sql("DETACH DATABASE rbk")
                connection.commit()
    return RestoreReport(
        run_id=snap.run_id,
        counters=tuple(counters),
        expected=dict(snap.sha256),
        actual=actual,
        rows=rows,
        rejects_removed=rejects_removed,
    )
