"""Advisory locks in a target database, per dialect: one runbook run at a time per target.

A lock is held by a session of its own (autocommit, so it holds no transaction open) for as long
as a run lasts, and the server frees it when that session ends, however it ends: a killed
process's lock goes with its connection. A registry like the loaders': PostgreSQL
``pg_try_advisory_lock`` (one key per database), MySQL/MariaDB ``GET_LOCK`` (named after the
database, as its locks are server-wide). SQLite has none: the lock file beside the evidence
stands alone there.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

# pg_try_advisory_lock(int4, int4): "runb" and 1, shown in pg_locks as classid and objid
PG_KEYS = (0x72756E62, 1)


class _PostgresLock:
    """A session-level advisory lock; the session's ``application_name`` says who holds it."""

    def acquire(self, connection: sa.Connection, owner: str) -> bool:
        connection.execute(
            sa.text("SELECT set_config('application_name', :owner, false)"), {"owner": owner[:63]}
        )
        return bool(
            connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:a, :b)"),
                dict(zip("ab", PG_KEYS, strict=True)),
            ).scalar()
        )

    def holder(self, connection: sa.Connection) -> str:
        row = connection.execute(
            sa.text(
                "SELECT a.pid, a.application_name, a.usename, a.client_addr, a.backend_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :a AND l.objid = :b "
                "AND l.objsubid = 2 AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            dict(zip("ab", PG_KEYS, strict=True)),
        ).first()
        if row is None:
            return "a session that has just ended"
        where = row.client_addr or "a local socket"
        return (
            f"session {row.application_name or 'without a name'!r} (server pid {row.pid}, user "
            f"{row.usename}, from {where}, connected {row.backend_start:%Y-%m-%d %H:%M:%S %Z})"
        )

    def release(self, connection: sa.Connection) -> None:
        connection.execute(
            sa.text("SELECT pg_advisory_unlock(:a, :b)"), dict(zip("ab", PG_KEYS, strict=True))
        )


class _MysqlLock:
    """``GET_LOCK`` on a name made from the database's (locks are server-wide in MySQL)."""

    @staticmethod
    def _name(connection: sa.Connection) -> str:
        database = connection.execute(sa.text("SELECT DATABASE()")).scalar() or ""
        name = f"runbook_lib:{database}"
        if len(name) > 64:
            name = f"runbook_lib:{hashlib.sha256(database.encode()).hexdigest()[:40]}"
        return name

    def acquire(self, connection: sa.Connection, owner: str) -> bool:
        name = self._name(connection)
        return (
            connection.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar() == 1
        )

    def holder(self, connection: sa.Connection) -> str:
        name = self._name(connection)
        session = connection.execute(sa.text("SELECT IS_USED_LOCK(:name)"), {"name": name}).scalar()
        if session is None:
            return "a session that has just ended"
        row = connection.execute(
            sa.text(
                "SELECT USER, HOST, TIME FROM information_schema.PROCESSLIST WHERE ID = :session"
            ),
            {"session": session},
        ).first()
        if row is None:
            return f"connection {session}"
        return f"connection {session} ({row[0]} from {row[1]}, for {row[2]} s)"

    def release(self, connection: sa.Connection) -> None:
        connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": self._name(connection)})


LOCKS = {"postgresql": _PostgresLock(), "mysql": _MysqlLock(), "mariadb": _MysqlLock()}


def advisory_lock(dialect: str) -> _PostgresLock | _MysqlLock | None:
    """The advisory lock of ``dialect``; None where the database has none (SQLite)."""
    return LOCKS.get(dialect)
