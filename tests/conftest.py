"""Shared fixtures.

* ``project`` — a throwaway copy of the project (params/ and notebooks/) in a temp folder, so
  tests write their SQLite files and run folders there, never into the checkout.
* ``ci_demo`` — the ``ci`` environment's demo sources (seed 7, 2,000 orders), built once per
  session; its ``DemoSummary`` says exactly which defects were planted:
  12 duplicate customer records (6 people in two systems, 2 in three, 2 second accounts in
  legacy A), 7 orphan legacy A orders and 3 orphan legacy B sales orders, 4 legacy A orders
  without amount and 4 without order time, 2 with an unknown status code, negative quantities in
  7 legacy A items and 3 legacy B lines, 4 MySQL zero dates in legacy A's logistics.delivered_at;
  products carry a 0/1 ``is_active`` flag. Tests read the counts from the summary, not from here.
* ``postgres_url`` / ``mariadb_url`` — a fresh database on the local server, dropped afterwards;
  skipped when the server is absent, a failure when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parent.parent
HR_SCENARIO = Path(__file__).parent / "scenarios" / "hr_sales"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_ADMIN_URL = os.environ.get(
    "RUNBOOK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get(
    "RUNBOOK_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)


def copy_project(destination: Path) -> Path:
    """params/ and notebooks/ of the checkout, which is all a project needs besides the package."""
    destination.mkdir(parents=True, exist_ok=True)
    for folder in ("params", "notebooks"):
        shutil.copytree(REPO / folder, destination / folder)
    return destination


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def ci_project(tmp_path_factory) -> Path:
    """A project folder shared by the session's read-only tests."""
    return copy_project(tmp_path_factory.mktemp("ci") / "project")


@pytest.fixture(scope="session")
def ci_demo(ci_project):
    from runbook_demo.build import build_demo

    return build_demo("ci", ci_project)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium through playwright (never `playwright install`)."""
    if not CHROMIUM.is_file():
        if IN_CI:
            pytest.fail("chromium is required in CI (CI=true): apt-get install -y chromium")
        pytest.skip(f"no {CHROMIUM}: the browser checks need Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _server_or_skip(url: str, what: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server here"
        engine.dispose()
        if IN_CI:
            pytest.fail(f"{what} is required in CI (CI=true) but unreachable: {type(exc).__name__}")
        pytest.skip(
            f"{what} not reachable at {sa.engine.make_url(url).render_as_string(hide_password=True)}"
        )
    return engine


@pytest.fixture
def postgres_url():
    """A new, empty PostgreSQL database for one test."""
    admin = _server_or_skip(POSTGRES_ADMIN_URL, "PostgreSQL")
    name = f"runbook_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def second_postgres_url(postgres_url):
    """Another new, empty PostgreSQL database beside ``postgres_url`` (e.g. a trial target)."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{postgres_url.database}_2"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def mariadb_url():
    """A new, empty MariaDB database (utf8mb4) for one test."""
    admin = _server_or_skip(MARIADB_ADMIN_URL, "MariaDB")
    name = f"runbook_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(
            sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    try:
        yield sa.engine.make_url(MARIADB_ADMIN_URL).set(database=name, query={"charset": "utf8mb4"})
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


class Databases:
    """Fresh, empty databases of one dialect for one test, all dropped when it ends."""

    def __init__(self, dialect: str, folder: Path) -> None:
        self.dialect = dialect
        self.folder = folder
        self._admin: sa.Engine | None = None
        self._made: list[str] = []
        if dialect == "postgresql":
            self._admin = _server_or_skip(POSTGRES_ADMIN_URL, "PostgreSQL")
        elif dialect == "mariadb":
            self._admin = _server_or_skip(MARIADB_ADMIN_URL, "MariaDB")

    def new(self, label: str = "db") -> sa.URL:
        """The URL of a new, empty database (a SQLite file, or a database on the server)."""
        if self.dialect == "sqlite":
            return sa.engine.make_url(f"sqlite:///{self.folder / f'{label}.db'}")
        name = f"runbook_test_{uuid.uuid4().hex[:10]}"
        with self._admin.connect() as connection:
            if self.dialect == "postgresql":
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            else:
                connection.execute(
                    sa.text(
                        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
        self._made.append(name)
        if self.dialect == "postgresql":
            return sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
        return sa.engine.make_url(MARIADB_ADMIN_URL).set(
            database=name, query={"charset": "utf8mb4"}
        )

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as connection:
            for name in self._made:
                if self.dialect == "postgresql":
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        self._admin.dispose()


# One parametrized fixture for every per-dialect variant: a test that takes ``databases`` runs on
# SQLite, PostgreSQL and MariaDB (the server variants carry their markers); narrow it with
# ``@pytest.mark.parametrize("databases", ["sqlite", "postgresql"], indirect=True)``.
DIALECTS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=DIALECTS)
def databases(request, tmp_path) -> Databases:
    made = Databases(request.param, tmp_path)
    try:
        yield made
    finally:
        made.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hr_project(request, project):
    """The second scenario (HR + sales) as a user sets it up: params/hr.yaml, its legacy store,
    its target DDL, on SQLite or with PostgreSQL targets: (project, planted, target URLs, environ).
    """
    import sys

    sys.path.insert(0, str(HR_SCENARIO.parent))
    from hr_sales.legacy import build_legacy
    from hr_sales.target import create_target

    params = yaml.safe_load((HR_SCENARIO / "params.yaml.template").read_text())
    (project / "tests" / "scenarios").mkdir(parents=True)
    spec = project / "params" / "mapping" / "hr_sales.yaml"
    spec.write_text((HR_SCENARIO / "spec.yaml").read_text())
    params["mapping"] = "params/mapping/hr_sales.yaml"
    # the template accepts the one invoice whose quarantined return line breaks its total
    assert params["gates"]["max_new_check_violations"] == 1
    work = project / "work" / "hr"
    work.mkdir(parents=True)
    planted = build_legacy(f"sqlite:///{work / 'store.db'}")
    environ = {}
    if request.param == "sqlite":
        targets = {
            "target": f"sqlite:///{work / 'target.db'}",
            "trial_target": f"sqlite:///{work / 'trial_target.db'}",
        }
    else:
        url = request.getfixturevalue("postgres_url")
        trial = request.getfixturevalue("second_postgres_url")
        targets = {
            "target": url.render_as_string(hide_password=False),
            "trial_target": trial.render_as_string(hide_password=False),
        }
        params["target"] = {"url_env": "HR_TARGET_URL"}
        params["trial_target"] = {"url_env": "HR_TRIAL_TARGET_URL"}
        environ = {
            "HR_TARGET_URL": targets["target"],
            "HR_TRIAL_TARGET_URL": targets["trial_target"],
        }
    for url in targets.values():
        create_target(url)
    (project / "params" / "hr.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project, planted, targets, environ
