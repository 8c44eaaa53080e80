"""Engines from params: URLs resolved from environment variables inside the library, never shown.

A URL's secret is read here and nowhere else; everything that displays a URL goes through
``redact_url``, and error messages name the environment variable rather than its value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from runbook_lib.config.params import SECRET_QUERY_KEY, ConnectionParams, LoadedParams
from runbook_lib.db.type_rules import rules_for
from runbook_lib.errors import ConnectionConfigError
from runbook_lib.privacy.scrub import redact_text

__all__ = ["Connections", "make_engine", "redact_text", "redact_url", "resolve_url"]


def resolve_url(name: str, connection: ConnectionParams, project_root: Path) -> URL:
    """The SQLAlchemy URL of connection ``name``; SQLite relative paths resolve in the project."""
    if connection.url_env is not None:
        raw = os.environ.get(connection.url_env)
        if not raw:
            raise ConnectionConfigError(
                f"connection {name!r}: environment variable {connection.url_env} is not set",
                hint=f"export {connection.url_env}=<SQLAlchemy URL> before running",
            )
        source = f"environment variable {connection.url_env}"
    else:
        raw = connection.url
        source = "params"
    try:
        url = make_url(raw)
    except Exception:
        # the parser's message may quote the URL, password included: drop it
        raise ConnectionConfigError(
            f"connection {name!r}: the URL from {source} is not a SQLAlchemy URL",
            hint="expected dialect+driver://user@host:port/database",
        ) from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        if not database.is_absolute():
            url = url.set(database=str(project_root / database))
    return url


def make_engine(url: URL, **kwargs) -> sa.Engine:
    """An engine with the settings this toolkit relies on for each dialect."""
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    charset = rules_for(backend).charset
    if charset is not None:
        query = dict(url.query)
        query.setdefault("charset", charset)
        url = url.set(query=query)
    # errors must not carry row values (personal data) into logs and evidence
    kwargs.setdefault("hide_parameters", True)
    engine = sa.create_engine(url, **kwargs)
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Connections:
    """The engines of one run, created lazily and disposed together."""

    def __init__(self, params: LoadedParams) -> None:
        self._params = params
        self._engines: dict[str, sa.Engine] = {}

    def names(self) -> list[str]:
        return [*self._params.sources, "target", "trial_target"]

    def params_for(self, name: str) -> ConnectionParams:
        if name == "target":
            return self._params.target
        if name == "trial_target":
            return self._params.trial_target
        try:
            return self._params.sources[name]
        except KeyError:
            raise ConnectionConfigError(
                f"{self._params.path.name}: no connection named {name!r}",
                hint=f"known connections: {', '.join(self.names())}",
            ) from None

    def url(self, name: str) -> URL:
        return resolve_url(name, self.params_for(name), self._params.project_root)

    def engine(self, name: str, *, must_exist: bool = False) -> sa.Engine:
        """The engine of connection ``name``; ``must_exist``: a SQLite file is never made empty."""
        if name not in self._engines:
            url = self.url(name)
            if must_exist and url.get_backend_name() == "sqlite":
                problem = _open_sqlite(url, may_be_new=False)
                if problem:
                    raise ConnectionConfigError(
                        f"connection {name!r} ({self._origin(name)}): {problem}",
                        hint="fix its URL in params, or build the demo's databases: "
                        f"runbook demo-data --env {self._params.env}",
                    )
            self._engines[name] = make_engine(url)
        return self._engines[name]

    def check_resolvable(self) -> None:
        """Fail before a run starts if any connection's environment variable is unset."""
        for name in self.names():
            self.url(name)

    def preflight(self, names: list[str] | None = None) -> None:
        """Open every connection once, before anything is written; one error lists every failure.

        A server must accept the login (wrong password, unreachable host, unknown database); a
        SQLite source or target must be an existing, readable database file (opening a missing
        one would create it empty). The trial target may be a SQLite file not made yet.
        ``names``: only these connections (default: all).
        """
        problems = []
        for name in names or self.names():
            try:
                url = self.url(name)
            except ConnectionConfigError as exc:
                problems.append(exc.message)
                continue
            problem = _open_once(url, may_be_new=name == "trial_target")
            if problem:
                problems.append(f"connection {name!r} ({self._origin(name)}): {problem}")
        if problems:
            lines = "\n".join(f"  {line}" for line in problems)
            raise ConnectionConfigError(
                f"{self._shown()}: pre-flight: {len(problems)} connection(s) cannot be opened:"
                f"\n{lines}",
                hint="fix the URL, the password or the server named above (the demo's databases: "
                f"runbook demo-data --env {self._params.env}); nothing was written",
            )

    def _shown(self) -> str:
        try:
            return str(self._params.path.relative_to(self._params.project_root))
        except ValueError:
            return str(self._params.path)

    def _origin(self, name: str) -> str:
        connection = self.params_for(name)
        if connection.url_env is not None:
            return f"URL from environment variable {connection.url_env}"
        return f"url in {self._shown()}"

    def describe(self) -> dict[str, str]:
        """Connection name → redacted URL, for evidence."""
        return {name: redact_url(self.url(name)) for name in self.names()}

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc) -> None:
        self.dispose()


# seconds a pre-flight waits for a server before calling it unreachable
CONNECT_TIMEOUT = 10
_TIMEOUT_ARGUMENT = {"postgresql": "connect_timeout", "mysql": "connect_timeout"}


def _open_once(url: URL, *, may_be_new: bool = False) -> str | None:
    """Why ``url`` cannot be opened (scrubbed, one line), or None when it opens."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _open_sqlite(url, may_be_new=may_be_new)
    timeout = _TIMEOUT_ARGUMENT.get("mysql" if backend == "mariadb" else backend)
    engine = None
    try:
        engine = make_engine(
            url,
            poolclass=sa.pool.NullPool,
            connect_args={timeout: CONNECT_TIMEOUT} if timeout else {},
        )
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        return f"cannot connect to {redact_url(url)}: {_first_line(exc.orig)}"
    except Exception as exc:  # noqa: BLE001 - a missing driver, a bad option: said, not raised
        return f"cannot connect to {redact_url(url)}: {type(exc).__name__}: {_first_line(exc)}"
    finally:
        if engine is not None:
            engine.dispose()
    return None


def _open_sqlite(url: URL, *, may_be_new: bool) -> str | None:
    import sqlite3

    if not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    if not path.is_file():
        if may_be_new:
            return None
        return f"no such file {path}: a SQLite database is never created empty by a run"
    try:
        with sqlite3.connect(path) as connection:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        connection.close()
    except sqlite3.Error as exc:
        return f"{path} is not a readable SQLite database ({exc})"
    return None


def _first_line(error: BaseException | None) -> str:
    from runbook_lib.privacy.scrub import scrub_error

    text = str(error or "").strip().splitlines()
    return scrub_error(text[0] if text else type(error).__name__)[:300]


def redact_url(url: URL | str) -> str:
    """The URL with any password replaced by ``***``, secret query values (``?password=``) too."""
    if isinstance(url, URL):
        shown = url.render_as_string(hide_password=True)
        return _QUERY_VALUE.sub(
            lambda m: m["key"] + ("***" if SECRET_QUERY_KEY.search(m["key"]) else m["value"]),
            shown,
        )
    return redact_text(url)


_QUERY_VALUE = re.compile(r"(?P<key>[?&][^=&]*=)(?P<value>[^&]*)")


def ensure_database(url: sa.URL) -> None:
    """Create the database a server URL names if it is not there (SQLite files create themselves)."""
    backend = url.get_backend_name()
    if backend == "sqlite" or not url.database:
        return
    if backend == "postgresql":
        admin_url, exists, create = (
            url.set(database="postgres"),
            "SELECT 1 FROM pg_database WHERE datname = :name",
            f'CREATE DATABASE "{url.database}"',
        )
    elif backend in ("mysql", "mariadb"):
        admin_url, exists, create = (
            url.set(database=""),
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = :name",
            f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
    else:
        return
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if connection.execute(sa.text(exists), {"name": url.database}).first() is None:
                connection.execute(sa.text(create))
    finally:
        admin.dispose()
