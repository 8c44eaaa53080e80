"""Bad input is refused before anything is written, by file, field (YAML path) and what was expected.

Each test writes one bad variant of a shipped file (``params/ci.yaml``, ``params/mapping/demo.yaml``)
into the ``project`` copy, or points a connection at something that is not there, and checks the
error: a ``RunbookError`` with exit code 2 naming the file and the field, never a traceback, and
(through the CLI) nothing written to ``outputs/``.
"""

from __future__ import annotations

import sqlite3
import uuid

import pytest
import sqlalchemy as sa
from conftest import MARIADB_ADMIN_URL, _server_or_skip
from helpers import runbook

from runbook_lib.config.params import load_params
from runbook_lib.errors import EXIT_USAGE, ConnectionConfigError, MappingSpecError, ParamsError
from runbook_lib.mapping.model import load_spec
from runbook_lib.run import preflight

CI_FILES = ("legacy_a", "legacy_b", "crm", "target", "trial_target")
# Made up per test session, so no password-like literal stands in the repository.
FAKE_SECRET = f"fake-{uuid.uuid4().hex[:12]}"


def sqlite_files(project, names=CI_FILES) -> None:
    """Real (tiny) SQLite files where the ci params expect them, so a pre-flight can open them."""
    folder = project / "work" / "ci"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        with sqlite3.connect(folder / f"{name}.db") as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")


def ci_params_text(project) -> str:
    return (project / "params" / "ci.yaml").read_text(encoding="utf-8")


def write_ci_params(project, text: str) -> None:
    (project / "params" / "ci.yaml").write_text(text, encoding="utf-8")


def spec_path(project):
    return project / "params" / "mapping" / "demo.yaml"


# --------------------------------------------------------------------------------------------
# 1. Pre-flight: every connection opened before the first notebook


def test_a_missing_sqlite_source_exits_two_naming_it_and_is_not_created(project):
    result = runbook(project, "run", "--env", "ci", timeout=120)

    assert result.returncode == EXIT_USAGE, result.stderr
    assert "connection 'legacy_a'" in result.stderr and "legacy_a.db" in result.stderr
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "outputs").exists()
    assert not (project / "work" / "ci" / "legacy_a.db").exists()


def test_an_unreachable_host_exits_two_naming_the_connection_before_anything_is_written(project):
    sqlite_files(project)
    text = ci_params_text(project)
    old = 'trial_target: {url: "sqlite:///work/ci/trial_target.db"}'
    assert old in text
    # port 1 on the loopback: nothing listens there, so the connection is refused at once
    write_ci_params(
        project,
        text.replace(old, 'trial_target: {url: "postgresql+psycopg://runbook@127.0.0.1:1/x"}'),
    )

    result = runbook(project, "run", "--env", "ci", timeout=120)

    assert result.returncode == EXIT_USAGE, result.stderr
    assert "connection 'trial_target'" in result.stderr and "cannot connect" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "outputs").exists()


def test_a_spec_system_without_a_connection_in_params_is_named_before_the_run(project):
    sqlite_files(project)
    path = spec_path(project)
    text = path.read_text(encoding="utf-8")
    old = "  legacy_a: legacy_a\n"
    assert old in text
    path.write_text(text.replace(old, "  legacy_a: legacy_x\n", 1), encoding="utf-8")

    with pytest.raises(ConnectionConfigError) as info:
        preflight.prepare("ci", project)

    message = str(info.value)
    assert "systems.legacy_a" in message and "'legacy_x'" in message
    assert "legacy_a, legacy_b, crm" in message
    assert info.value.exit_code == EXIT_USAGE
    assert not (project / "outputs").exists()


def test_a_structurally_invalid_spec_exits_two_before_anything_is_written(project):
    sqlite_files(project)
    path = spec_path(project)
    path.write_text(path.read_text(encoding="utf-8").replace("version: 1", "version: 7"))

    result = runbook(project, "run", "--env", "ci", timeout=120)

    assert result.returncode == EXIT_USAGE, result.stderr
    assert "params/mapping/demo.yaml" in result.stderr and "version" in result.stderr
    assert not (project / "outputs").exists()


@pytest.mark.mariadb
def test_a_wrong_password_exits_two_naming_the_connection_and_hiding_the_password(project):
    admin = _server_or_skip(MARIADB_ADMIN_URL, "MariaDB")
    user = f"rb_{uuid.uuid4().hex[:8]}"
    right, wrong_password = f"right-{uuid.uuid4().hex[:12]}", FAKE_SECRET
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{right}'"))
        connection.execute(sa.text(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{right}'"))
    try:
        sqlite_files(project)
        text = ci_params_text(project)
        old = 'crm: {url: "sqlite:///work/ci/crm.db"}'
        write_ci_params(project, text.replace(old, "crm: {url_env: RB_TEST_CRM_URL}"))
        host = sa.engine.make_url(MARIADB_ADMIN_URL)
        wrong = f"mysql+pymysql://{user}:{wrong_password}@{host.host}:{host.port}/test"

        result = runbook(project, "run", "--env", "ci", env={"RB_TEST_CRM_URL": wrong}, timeout=120)

        assert result.returncode == EXIT_USAGE, result.stderr
        assert "connection 'crm'" in result.stderr and "RB_TEST_CRM_URL" in result.stderr
        assert "Access denied" in result.stderr
        assert wrong_password not in result.stderr + result.stdout
        assert not (project / "outputs").exists()
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
            connection.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'localhost'"))
        admin.dispose()


# --------------------------------------------------------------------------------------------
# 2. Duplicate keys


def test_a_duplicate_key_in_params_is_an_error_naming_both_lines(project):
    text = ci_params_text(project)
    assert "  chunk_size: 500\n" in text
    write_ci_params(
        project, text.replace("  chunk_size: 500\n", "  chunk_size: 500\n  chunk_size: 900\n")
    )
    lines = text.splitlines()
    first = lines.index("  chunk_size: 500") + 1

    with pytest.raises(ParamsError) as info:
        load_params("ci", project_root=project)

    message = str(info.value)
    assert "params/ci.yaml" in message
    assert "load.chunk_size" in message
    assert f"line {first}" in message and f"line {first + 1}" in message
    assert info.value.exit_code == 2


def test_a_duplicate_currency_in_the_spec_is_an_error_naming_both_lines(project):
    path = spec_path(project)
    text = path.read_text(encoding="utf-8")
    original = "currency: {value: CNY}"
    assert text.count(original) >= 1
    number = text[: text.index(original)].count("\n") + 1
    indent = text.splitlines()[number - 1][: -len(text.splitlines()[number - 1].lstrip())]
    text = text.replace(original, f"{original}\n{indent}currency: {{value: USD}}", 1)
    path.write_text(text, encoding="utf-8")

    with pytest.raises(MappingSpecError) as info:
        load_spec(path)

    (problem_path, message), *_ = info.value.problems
    assert problem_path.endswith(".columns.currency")
    assert f"line {number}" in message and f"line {number + 1}" in message
    assert "duplicate key" in message
    assert info.value.exit_code == 2


def test_a_key_overriding_a_yaml_merge_is_not_a_duplicate(project):
    # the shipped spec does {<<: *reporting_cny, currency: CNY}: an explicit key beside a merge
    assert load_spec(spec_path(project)).spec.name == "demo-ecommerce-merge"


# --------------------------------------------------------------------------------------------
# 3. Alias bombs and size


BOMB = "\n".join(
    ["version: 1", "name: bomb", "x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"x-{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["systems: *i", "targets: {}"]
)


def test_a_yaml_alias_bomb_in_the_spec_is_refused_at_once(project):
    import time

    path = spec_path(project)
    path.write_text(BOMB + "\n", encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(MappingSpecError) as info:
        load_spec(path)
    assert time.perf_counter() - started < 2
    assert "alias" in str(info.value)


def test_a_yaml_alias_bomb_in_params_is_refused_at_once(project):
    import time

    write_ci_params(
        project, ci_params_text(project) + BOMB.replace("version: 1\nname: bomb\n", "") + "\n"
    )
    started = time.perf_counter()
    with pytest.raises(ParamsError) as info:
        load_params("ci", project_root=project)
    assert time.perf_counter() - started < 2
    assert "params/ci.yaml" in str(info.value) and "alias" in str(info.value)


def test_a_spec_larger_than_the_limit_is_refused_by_its_size(project):
    path = spec_path(project)
    path.write_text(path.read_text(encoding="utf-8") + "#" * (9 * 1024 * 1024) + "\n")
    with pytest.raises(MappingSpecError) as info:
        load_spec(path)
    assert "MiB" in str(info.value)


# --------------------------------------------------------------------------------------------
# 6. A password anywhere in a URL


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app@db.example:5432/legacy?password={secret}",
        "mysql+pymysql://app@db.example/legacy?charset=utf8mb4&passwd={secret}",
        "postgresql+psycopg://app@db.example/legacy?sslmode=require&PGPASSWORD={secret}",
        "sqlite:///work/ci/legacy_a.db?token={secret}",
        "postgresql+psycopg://db.example/legacy?options=-c%20x&dsn=postgresql://u:{secret}@h/d",
    ],
)
def test_a_password_in_the_query_string_of_a_url_is_refused(project, url):
    url = url.format(secret=FAKE_SECRET)
    text = ci_params_text(project)
    old = 'legacy_a: {url: "sqlite:///work/ci/legacy_a.db"}'
    assert old in text
    write_ci_params(project, text.replace(old, f'legacy_a: {{url: "{url}"}}'))

    with pytest.raises(ParamsError) as info:
        load_params("ci", project_root=project)

    message = str(info.value)
    assert "params/ci.yaml" in message and "sources.legacy_a.url" in message
    assert "url_env" in message
    assert FAKE_SECRET not in message


def test_a_query_string_without_a_secret_is_accepted(project):
    text = ci_params_text(project)
    old = 'legacy_a: {url: "sqlite:///work/ci/legacy_a.db"}'
    write_ci_params(
        project, text.replace(old, 'legacy_a: {url: "sqlite:///work/ci/legacy_a.db?mode=ro"}')
    )
    assert load_params("ci", project_root=project).sources["legacy_a"].url.endswith("?mode=ro")


# --------------------------------------------------------------------------------------------
# 4. Non-UTF-8 files, bad option values, typos and SQL errors in the spec, path-like run ids,
#    corrupted evidence and databases


def test_a_params_file_that_is_not_utf8_is_named_with_its_line(project):
    text = ci_params_text(project)
    (project / "params" / "ci.yaml").write_bytes(
        text.replace("Small embedded", "Sm\u00e4ll embedded").encode("latin-1")
    )
    line = text[: text.index("Small embedded")].count("\n") + 1

    with pytest.raises(ParamsError) as info:
        load_params("ci", project_root=project)

    assert "params/ci.yaml" in str(info.value)
    assert "not UTF-8" in str(info.value) and f"line {line}" in str(info.value)


def test_a_spec_that_is_not_utf8_is_named_with_its_line(project):
    path = spec_path(project)
    text = path.read_text(encoding="utf-8")
    assert "\u2192" in text  # the shipped spec has arrows in its comments: not Latin-1
    path.write_bytes(text.replace("demo-ecommerce-merge", "d\u00e9mo").encode("cp1252", "replace"))

    with pytest.raises(MappingSpecError) as info:
        load_spec(path)

    (where, message), *_ = info.value.problems
    assert where == "(file)" and "not UTF-8" in message and "line " in message
    assert "demo.yaml" in str(info.value)


def shipped_spec(project) -> dict:
    import yaml

    return yaml.safe_load(spec_path(project).read_text(encoding="utf-8"))


def write_spec(project, data: dict) -> None:
    import yaml

    spec_path(project).write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def live_schemas(ci_project, ci_demo):
    """(source inspectors by system, target inspector) of the ci demo's SQLite files."""
    from runbook_lib.config.connections import Connections

    params = load_params("ci", project_root=ci_project)
    systems = load_spec(params.mapping_path).spec.systems
    with Connections(params) as connections:
        sources = {system: sa.inspect(connections.engine(name)) for system, name in systems.items()}
        yield sources, sa.inspect(connections.engine("target"))


def spec_problems(project, live_schemas, mutate) -> list[tuple[str, str]]:
    from runbook_lib.mapping.check import check_spec

    data = shipped_spec(project)
    mutate(data)
    write_spec(project, data)
    sources, target = live_schemas
    return check_spec(load_spec(spec_path(project)), sources, target).problems


USERS = "targets.customers.sources.legacy_a.users"
ITEMS = "targets.order_items.sources.legacy_a.order_items"
CARTS = "targets.carts.sources.legacy_a.carts"


def test_an_unknown_phone_region_is_a_spec_error_before_the_assessment_runs(project):
    sqlite_files(project)
    data = shipped_spec(project)
    columns = data["targets"]["customers"]["sources"]["legacy_a.users"]["columns"]
    columns["phone"]["transform"] = {"phone_e164": {"region": "ZZ"}}
    write_spec(project, data)

    with pytest.raises(MappingSpecError) as info:
        preflight.prepare("ci", project)  # the pre-flight: before the first notebook

    assert info.value.problems == [
        (f"{USERS}.columns.phone.transform", "phone_e164: 'ZZ' is not a region phonenumbers knows")
    ]
    assert info.value.exit_code == EXIT_USAGE


def test_a_sample_parent_typo_is_a_spec_error_naming_the_mapped_tables(project, live_schemas):
    def mutate(data):
        data["targets"]["order_items"]["sources"]["legacy_a.order_items"]["sample"]["parent"] = (
            "ordrs"
        )

    problems = spec_problems(project, live_schemas, mutate)

    assert len(problems) == 1, problems
    where, message = problems[0]
    assert where == f"{ITEMS}.sample.parent"
    assert "'ordrs'" in message and "orders" in message


def test_a_sample_parent_key_that_is_not_a_column_is_a_spec_error(project, live_schemas):
    def mutate(data):
        data["targets"]["order_items"]["sources"]["legacy_a.order_items"]["sample"][
            "parent_key"
        ] = "idd"

    problems = spec_problems(project, live_schemas, mutate)

    assert [p for p, _ in problems] == [f"{ITEMS}.sample.parent_key"]
    assert "'idd'" in problems[0][1]


def test_a_filter_with_an_sql_syntax_error_is_a_spec_error_at_its_yaml_path(project, live_schemas):
    def mutate(data):
        source = data["targets"]["carts"]["sources"]["legacy_a.carts"]
        source["filters"][0]["exclude_where"] = "added_at < '2023-01-01' AND AND"

    problems = spec_problems(project, live_schemas, mutate)

    assert len(problems) == 1, problems
    where, message = problems[0]
    assert where == f"{CARTS}.filters.stale_carts.exclude_where"
    assert "not a valid SQL expression" in message  # parsed before any database sees it


def test_a_filter_naming_an_unknown_column_is_a_spec_error(project, live_schemas):
    def mutate(data):
        source = data["targets"]["carts"]["sources"]["legacy_a.carts"]
        source["filters"][0]["exclude_where"] = "added_att < '2023-01-01'"

    problems = spec_problems(project, live_schemas, mutate)

    assert [p for p, _ in problems] == [f"{CARTS}.filters.stale_carts.exclude_where"]
    assert "added_att" in problems[0][1]


def test_an_on_error_typo_is_a_spec_error_naming_the_accepted_values(project):
    data = shipped_spec(project)
    data["targets"]["customers"]["sources"]["legacy_a.users"]["columns"]["email"]["on_error"] = (
        "quarantaine"
    )
    write_spec(project, data)

    with pytest.raises(MappingSpecError) as info:
        load_spec(spec_path(project))

    assert info.value.problems == [
        (f"{USERS}.columns.email.on_error", "expected 'quarantine' or 'null'; found 'quarantaine'")
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--env", "ci", "--run-id", "/tmp/elsewhere"],
        ["run", "--env", "ci", "--run-id", "../dev/20260101T000000Z-aaaaaa"],
        ["run", "--env", "ci", "--resume", "../../x"],
        ["rollback", "--env", "ci", "--run-id", "/etc"],
        ["approve", "--env", "ci", "--run-id", "a/b", "--operator", "x"],
    ],
)
def test_a_run_id_that_is_a_path_exits_two(project, args):
    result = runbook(project, *args, timeout=60)

    assert result.returncode == EXIT_USAGE, result.stderr
    assert "not a run id" in result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert not (project / "outputs").exists()


def test_status_names_a_corrupted_manifest_instead_of_crashing(project):
    from runbook_lib.evidence.record import open_run

    good, bad = "20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"
    for run_id in (good, bad):
        open_run(project / "outputs" / "ci" / run_id, "x", run_id=run_id, env="ci", status="passed")
    manifest = project / "outputs" / "ci" / bad / "manifest.json"
    manifest.write_text('{"run_id": "20260102T0', encoding="utf-8")

    result = runbook(project, "status", "--env", "ci", timeout=60)

    assert result.returncode == 3, result.stderr
    assert good in result.stdout
    assert f"outputs/ci/{bad}/manifest.json" in result.stderr and "not readable" in result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr


def test_a_resume_of_a_run_whose_manifest_is_corrupted_names_the_file(project):
    from runbook_lib.evidence.record import open_run

    run_id = "20260101T000000Z-aaaaaa"
    open_run(project / "outputs" / "ci" / run_id, "x", run_id=run_id, env="ci", status="failed")
    (project / "outputs" / "ci" / run_id / "manifest.json").write_bytes(b"\xff\xfe garbage")

    result = runbook(project, "run", "--env", "ci", "--resume", run_id, timeout=60)

    assert result.returncode == 3, result.stderr
    assert "manifest.json" in result.stderr and "not readable" in result.stderr
    assert "unexpected error" not in result.stderr


def test_a_corrupted_trial_database_is_named_by_the_preflight(project):
    sqlite_files(project)
    (project / "work" / "ci" / "trial_target.db").write_bytes(b"this is not a database\n" * 300)

    result = runbook(project, "run", "--env", "ci", timeout=120)

    assert result.returncode == EXIT_USAGE, result.stderr
    assert "connection 'trial_target'" in result.stderr and "trial_target.db" in result.stderr
    assert "not a readable SQLite database" in result.stderr
    assert not (project / "outputs").exists()


def test_a_stage_opened_by_hand_does_not_create_a_missing_sqlite_source(project):
    from helpers import ci_context

    sqlite_files(project, names=("legacy_b", "crm", "target", "trial_target"))
    context = ci_context(project)

    with pytest.raises(ConnectionConfigError) as info:
        context.source_engines()

    assert "connection 'legacy_a'" in str(info.value) and "legacy_a.db" in str(info.value)
    assert not (project / "work" / "ci" / "legacy_a.db").exists()


def test_a_url_from_the_environment_is_shown_without_its_query_password():
    from runbook_lib.config.connections import redact_url

    user_password = f"user-{uuid.uuid4().hex[:12]}"
    url = sa.engine.make_url(
        f"postgresql+psycopg://app:{user_password}@db/x?sslmode=require&password={FAKE_SECRET}"
    )
    shown = redact_url(url)
    assert FAKE_SECRET not in shown and user_password not in shown
    assert "sslmode=require" in shown and "password=***" in shown
