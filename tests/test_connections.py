"""Tests for connections: URLs from environment variables, SQLite paths, and redaction.

The secrets used here are fake and distinctive (``SECRET``) so that a leak is found by a plain
substring check on whatever the library prints.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from runbook_lib.config.connections import (
    Connections,
    make_engine,
    redact_text,
    redact_url,
    resolve_url,
)
from runbook_lib.config.params import ConnectionParams, load_params
from runbook_lib.errors import ConnectionConfigError

SECRET = "Hunter2-xyzzy"
STAGING_URLS = {
    "STAGING_LEGACY_A_URL": f"mysql+pymysql://migrator:{SECRET}@mariadb.internal:3306/legacy_a",
    "STAGING_TARGET_URL": f"postgresql+psycopg://loader:{SECRET}@pg.internal:5432/platform",
    "STAGING_TRIAL_TARGET_URL": f"postgresql+psycopg://loader:{SECRET}@pg.internal:5432/scratch",
}


@pytest.fixture
def staging(project, monkeypatch):
    """The staging params with every URL variable set to a URL carrying ``SECRET``."""
    for name, url in STAGING_URLS.items():
        monkeypatch.setenv(name, url)
    return load_params("staging")


# --------------------------------------------------------------------------------------------
# resolve_url


def test_unset_url_env_names_the_variable_and_how_to_set_it(project, monkeypatch):
    monkeypatch.delenv("RUNBOOK_TEST_UNSET_URL", raising=False)
    connection = ConnectionParams(url_env="RUNBOOK_TEST_UNSET_URL")

    with pytest.raises(ConnectionConfigError) as info:
        resolve_url("target", connection, project)

    assert info.value.message == (
        "connection 'target': environment variable RUNBOOK_TEST_UNSET_URL is not set"
    )
    assert info.value.hint == "export RUNBOOK_TEST_UNSET_URL=<SQLAlchemy URL> before running"


def test_empty_url_env_counts_as_unset(project, monkeypatch):
    monkeypatch.setenv("RUNBOOK_TEST_EMPTY_URL", "")

    with pytest.raises(ConnectionConfigError, match="RUNBOOK_TEST_EMPTY_URL is not set"):
        resolve_url("crm", ConnectionParams(url_env="RUNBOOK_TEST_EMPTY_URL"), project)


def test_url_env_set_resolves_to_the_full_url_with_its_password(project, monkeypatch):
    monkeypatch.setenv("RUNBOOK_TEST_URL", f"postgresql+psycopg://bob:{SECRET}@db:5432/shop")

    url = resolve_url("target", ConnectionParams(url_env="RUNBOOK_TEST_URL"), project)

    assert isinstance(url, URL)
    assert (url.drivername, url.username, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "bob",
        "db",
        5432,
        "shop",
    )
    assert url.password == SECRET


def test_redact_url_hides_the_password_of_a_resolved_url(project, monkeypatch):
    monkeypatch.setenv("RUNBOOK_TEST_URL", f"postgresql+psycopg://bob:{SECRET}@db:5432/shop")
    url = resolve_url("target", ConnectionParams(url_env="RUNBOOK_TEST_URL"), project)

    shown = redact_url(url)

    assert shown == "postgresql+psycopg://bob:***@db:5432/shop"


def test_redact_url_of_a_string_hides_the_password_too():
    assert redact_url(f"mysql+pymysql://root:{SECRET}@127.0.0.1/test") == (
        "mysql+pymysql://root:***@127.0.0.1/test"
    )


def test_describe_shows_every_connection_without_a_password(staging):
    with Connections(staging) as connections:
        described = connections.describe()

    assert list(described) == ["legacy_a", "legacy_b", "crm", "target", "trial_target"]
    assert SECRET not in repr(described)
    assert described["legacy_a"] == "mysql+pymysql://migrator:***@mariadb.internal:3306/legacy_a"
    assert described["target"] == "postgresql+psycopg://loader:***@pg.internal:5432/platform"


def test_describe_fails_on_the_first_unset_variable(staging, monkeypatch):
    monkeypatch.delenv("STAGING_TRIAL_TARGET_URL")

    with Connections(staging) as connections, pytest.raises(ConnectionConfigError) as info:
        connections.check_resolvable()

    assert "'trial_target'" in info.value.message
    assert "STAGING_TRIAL_TARGET_URL" in info.value.message


def test_relative_sqlite_path_resolves_under_the_project_root(project):
    connection = ConnectionParams(url="sqlite:///work/dev/legacy_a.db")

    url = resolve_url("legacy_a", connection, project)

    assert url.database == str(project / "work" / "dev" / "legacy_a.db")


def test_absolute_sqlite_path_and_memory_database_are_left_alone(project, tmp_path):
    absolute = tmp_path / "elsewhere" / "x.db"

    assert resolve_url("a", ConnectionParams(url=f"sqlite:///{absolute}"), project).database == (
        str(absolute)
    )
    assert resolve_url("b", ConnectionParams(url="sqlite:///:memory:"), project).database == (
        ":memory:"
    )


def test_staging_mixes_environment_urls_and_project_sqlite_files(staging, project):
    with Connections(staging) as connections:
        assert connections.url("legacy_a").password == SECRET
        assert connections.url("legacy_b").database == str(
            project.resolve() / "work" / "staging" / "legacy_b.db"
        )


def test_unparsable_url_from_the_environment_does_not_echo_the_value(project, monkeypatch):
    monkeypatch.setenv("RUNBOOK_TEST_URL", f"not a url, password {SECRET}")

    with pytest.raises(ConnectionConfigError) as info:
        resolve_url("legacy_a", ConnectionParams(url_env="RUNBOOK_TEST_URL"), project)

    error = info.value
    assert "environment variable RUNBOOK_TEST_URL is not a SQLAlchemy URL" in error.message
    assert SECRET not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_unknown_connection_name_lists_the_known_ones(staging):
    with Connections(staging) as connections, pytest.raises(ConnectionConfigError) as info:
        connections.url("warehouse")

    assert info.value.message == "staging.yaml: no connection named 'warehouse'"
    assert info.value.hint == "known connections: legacy_a, legacy_b, crm, target, trial_target"


def test_sqlite_engine_creates_its_folder_and_enforces_foreign_keys(tmp_path):
    url = sa.engine.make_url(f"sqlite:///{tmp_path / 'new' / 'folder' / 'x.db'}")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        engine.dispose()

    assert (tmp_path / "new" / "folder").is_dir()
    assert (foreign_keys, journal) == (1, "wal")


# --------------------------------------------------------------------------------------------
# redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"could not connect to postgresql+psycopg://bob:{SECRET}@db:5432/shop: timeout",
            "could not connect to postgresql+psycopg://bob:***@db:5432/shop: timeout",
            id="postgresql",
        ),
        pytest.param(
            f"mysql+pymysql://root:{SECRET}@127.0.0.1:3306/test?charset=utf8mb4",
            "mysql+pymysql://root:***@127.0.0.1:3306/test?charset=utf8mb4",
            id="mysql-with-query",
        ),
        pytest.param(
            f"mssql+pyodbc://sa:{SECRET}@dsn", "mssql+pyodbc://sa:***@dsn", id="mssql-no-path"
        ),
        pytest.param(
            f"fetch https://deploy:{SECRET}@git.example.com/repo.git",
            "fetch https://deploy:***@git.example.com/repo.git",
            id="https",
        ),
        pytest.param(
            f"a=postgresql://a:{SECRET}@h1/x b=mysql://b:{SECRET}@h2/y",
            "a=postgresql://a:***@h1/x b=mysql://b:***@h2/y",
            id="two-urls-in-one-line",
        ),
    ],
)
def test_redact_text_hides_passwords_of_embedded_urls(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql+psycopg://bob@db:5432/shop",
        "sqlite:///work/dev/legacy_a.db",
        "see https://example.com:8443/docs for help",
        "no URL here: user:pass but no scheme",
    ],
)
def test_redact_text_leaves_text_without_a_url_password_alone(text):
    assert redact_text(text) == text


def test_redact_text_hides_a_password_given_without_a_user():
    text = f"cache at redis://:{SECRET}@cache.internal:6379/0 refused the connection"

    assert SECRET not in redact_text(text)
