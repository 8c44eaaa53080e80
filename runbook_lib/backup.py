"""Snapshot the target tables a load touches, restore them, and prove the restore by hash.

The snapshot is an in-database copy (``CREATE TABLE ... AS SELECT``), which keeps every value in
its own column type on every dialect and needs no dump tool. The content hash of each table is
taken before the load and again after a restore: equal hashes are the proof.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.errors import GateFailedError, RunbookError
from runbook_lib.hashing import TableHasher
from runbook_lib.quarantine import REJECTS_TABLE


def backup_table_name(run_id: str, table: str) -> str:
    """A name that fits every dialect's identifier limit and ties the copy to its run."""
    tag = re.sub(r"[^0-9a-z]", "", run_id.lower())[-12:]
    return f"rbk_{tag}_{table}"[:60]


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


@dataclass(frozen=True)
class Snapshot:
    """The copies of the touched tables and their content before the load."""

    run_id: str
    tables: tuple[str, ...]
    copies: dict[str, str]
    rows: dict[str, int]
    sha256: dict[str, str]

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "tables": list(self.tables),
            "copies": dict(self.copies),
            "rows": dict(self.rows),
            "sha256": dict(self.sha256),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Snapshot:
        return cls(
            run_id=data["run_id"],
            tables=tuple(data["tables"]),
            copies=dict(data["copies"]),
            rows=dict(data["rows"]),
            sha256=dict(data["sha256"]),
        )

    def render(self) -> str:
        lines = [f"snapshot of {len(self.tables)} target tables before the load:"]
        lines += [
            f"  {t:<16} {self.rows[t]:>9,} rows  sha256 {self.sha256[t][:16]}…" for t in self.tables
        ]
        return "\n".join(lines)


def snapshot(engine: sa.Engine, tables: list[str], run_id: str) -> Snapshot:
    """Copy every table in ``tables`` and record its content hash."""
    metadata = sa.MetaData()
    metadata.reflect(engine, only=tables)
    copies, rows, digests = {}, {}, {}
    preparer = engine.dialect.identifier_preparer
    with engine.begin() as connection:
        for name in tables:
            copy = backup_table_name(run_id, name)
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {preparer.quote(copy)}"))
            connection.execute(
                sa.text(
                    f"CREATE TABLE {preparer.quote(copy)} AS SELECT * FROM {preparer.quote(name)}"
                )
            )
            copies[name] = copy
            rows[name], digests[name] = table_digest(connection, metadata.tables[name])
    return Snapshot(run_id=run_id, tables=tuple(tables), copies=copies, rows=rows, sha256=digests)


@dataclass(frozen=True)
class RestoreReport:
    """The hashes after a restore, next to the ones taken before the load."""

    run_id: str
    expected: dict[str, str]
    actual: dict[str, str]
    rows: dict[str, int]
    rejects_removed: int

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
        }

    def render(self) -> str:
        lines = [f"rollback of run {self.run_id}:"]
        for t in self.expected:
            mark = "equal" if self.expected[t] == self.actual.get(t) else "DIFFERENT"
            lines.append(
                f"  {t:<16} {self.rows.get(t, 0):>9,} rows  {self.actual.get(t, '')[:16]}…  {mark}"
            )
        lines.append(
            "restored exactly" if self.passed else f"NOT restored: {', '.join(self.mismatched)}"
        )
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise GateFailedError(
                f"rollback of run {self.run_id}: tables differ from before the load: {', '.join(self.mismatched)}"
            )


def restore(engine: sa.Engine, snap: Snapshot, *, drop_copies: bool = False) -> RestoreReport:
    """Put every snapshotted table back as it was, children emptied first, then prove it."""
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names())
    missing = [snap.copies[t] for t in snap.tables if snap.copies[t] not in present]
    if missing:
        raise RunbookError(
            f"cannot roll back run {snap.run_id}: snapshot tables are gone: {', '.join(missing)}"
        )
    metadata = sa.MetaData()
    metadata.reflect(engine, only=list(snap.tables))
    preparer = engine.dialect.identifier_preparer
    rejects_removed = 0
    actual, rows = {}, {}
    with engine.begin() as connection:
        for name in reversed(snap.tables):
            connection.execute(metadata.tables[name].delete())
        for name in snap.tables:
            columns = ", ".join(preparer.quote(c.name) for c in metadata.tables[name].columns)
            connection.execute(
                sa.text(
                    f"INSERT INTO {preparer.quote(name)} ({columns}) "
                    f"SELECT {columns} FROM {preparer.quote(snap.copies[name])}"
                )
            )
        if REJECTS_TABLE in present:
            rejects_removed = connection.execute(
                sa.text(f"DELETE FROM {REJECTS_TABLE} WHERE run_id = :run_id"),
                {"run_id": snap.run_id},
            ).rowcount
        for name in snap.tables:
            rows[name], actual[name] = table_digest(connection, metadata.tables[name])
        if drop_copies:
            for name in snap.tables:
                connection.execute(sa.text(f"DROP TABLE {preparer.quote(snap.copies[name])}"))
    return RestoreReport(
        run_id=snap.run_id,
        expected=dict(snap.sha256),
        actual=actual,
        rows=rows,
        rejects_removed=rejects_removed,
    )
