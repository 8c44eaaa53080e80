"""Privacy hardening (issue 14, items 7-10): no row values, credentials or personal data leak.

Fixtures are tiny and their values known exactly:

* ``PERSON`` — one person (``O'Hara``, ``Scarlett``, phone ``555-0147``, born ``1990-01-02``)
  whose values must never appear in an error's text, on any dialect;
* ``_contacts_source`` — a SQLite legacy ``crm.contacts`` table of three rows: row 2 repeats
  row 1's name (the target's unique key refuses it), row 3 has the phone ``bad-phone-0199``
  (the target's CHECK refuses it);
* ``_people_target`` — the target ``people`` with ``uq_people_name`` and ``ck_people_phone``.
"""

from __future__ import annotations

import json
import traceback

import pytest
import sqlalchemy as sa
import yaml

from runbook_lib.errors import failure_data, failure_text
from runbook_lib.privacy.scrub import scrub_error, scrub_text

PERSON = {"id": 1, "last": "O'Hara", "first": "Scarlett", "phone": "555-0147", "born": "1990-01-02"}
VALUES = ("O'Hara", "O''Hara", "Scarlett", "555-0147", "Wilkes", "Ashley", "bad-phone-0199")


def _people_ddl(dialect: str) -> list[str]:
    key = "id INTEGER PRIMARY KEY" if dialect != "mariadb" else "id INT PRIMARY KEY"
    return [
        "CREATE TABLE people ("
        f" {key}, last_name VARCHAR(40) NOT NULL, first_name VARCHAR(40),"
        " phone VARCHAR(40), born DATE,"
        " CONSTRAINT uq_people_name UNIQUE (last_name, first_name),"
        " CONSTRAINT ck_people_phone CHECK (SUBSTR(phone, 1, 3) <> 'bad'))",
        "CREATE TABLE visits (id INTEGER PRIMARY KEY, person_id INTEGER,"
        " CONSTRAINT fk_visits_person FOREIGN KEY (person_id) REFERENCES people (id))",
    ]


def _refused_statements() -> dict[str, tuple[str, dict]]:
    """Statements each target refuses because of a row value (the values are the person's).

    Bound parameters, as the loader writes: the statement text itself holds no value.
    """
    insert = (
        "INSERT INTO people (id, last_name, first_name, phone, born) VALUES (:i, :l, :f, :p, :b)"
    )
    row = {"l": "Wilkes", "f": "Ashley", "p": "555-0147", "b": None}
    return {
        "unique key": (insert, {**row, "i": 2, "l": "O'Hara", "f": "Scarlett"}),
        "primary key": (insert, {**row, "i": 1}),
        "check": (insert, {**row, "i": 4, "p": "bad-phone-0199"}),
        "not null": (insert, {**row, "i": 5, "l": None}),
        "foreign key": ("INSERT INTO visits (id, person_id) VALUES (1, :p)", {"p": 555014}),
        "bad date": (insert, {**row, "i": 6, "b": "1990-13-45"}),
    }


def _error_texts(exc: BaseException) -> dict[str, str]:
    """Every way a database error becomes text that leaves a run."""
    from IPython.core.ultratb import AutoFormattedTB

    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    # what a stage notebook's kernel writes: IPython's own traceback, line by line
    kernel = AutoFormattedTB(mode="Context").structured_traceback(type(exc), exc, exc.__traceback__)
    return {
        "kernel traceback": "\n".join(scrub_error(line) for line in kernel),
        "scrub_error": scrub_error(str(exc)),
        "scrub_text": scrub_text(str(exc)),
        "failure_text": scrub_error(failure_text(failure_data(exc))),
        "traceback": scrub_error(trace),
    }


def test_database_errors_become_text_without_the_rows_values(databases):
    engine = sa.create_engine(databases.new("values"))
    try:
        with engine.begin() as connection:
            if databases.dialect == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            for statement in _people_ddl(databases.dialect):
                connection.exec_driver_sql(statement)
            connection.execute(
                sa.text("INSERT INTO people VALUES (:id, :last, :first, :phone, :born)"), PERSON
            )
        refused = 0
        for what, (statement, parameters) in _refused_statements().items():
            try:
                with engine.begin() as connection:
                    if databases.dialect == "sqlite":
                        connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                    if databases.dialect == "mariadb":
                        connection.exec_driver_sql("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
                    connection.execute(sa.text(statement), parameters)
            except sa.exc.DBAPIError as exc:
                refused += 1
                raw = str(exc)
                for how, text in _error_texts(exc).items():
                    # the raw text of an error holding a literal carries it; the scrubbed never
                    shown = [v for v in (*VALUES, "555014", "1990-13-45") if v in text]
                    assert shown == [], (databases.dialect, what, how, text, raw)
                    assert text.strip(), (what, how)
        assert refused >= 4
    finally:
        engine.dispose()


def test_the_text_keeps_what_refused_the_row_but_not_the_values():
    postgres = (
        '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "uq"\n'
        "DETAIL:  Key (last_name, first_name)=(O'Hara, Scarlett) already exists.\n"
        "[SQL: INSERT INTO people VALUES (%(a)s)]"
    )
    shown = scrub_error(postgres)
    assert 'unique constraint "uq"' in shown and "Key (last_name, first_name)=" in shown
    assert "already exists" in shown and "[SQL: INSERT INTO people" in shown
    assert "Scarlett" not in shown
    mysql = "(1062, \"Duplicate entry 'O'Hara-Scarlett' for key 'uq_people_name'\")"
    shown = scrub_error(mysql)
    assert "for key 'uq_people_name'" in shown and "Scarlett" not in shown
    check = 'new row violates check constraint "ck"\nDETAIL:  Failing row contains (4, Ashley).'
    assert "Ashley" not in scrub_error(check) and '"ck"' in scrub_error(check)
    copy = 'invalid input syntax for type integer: "Tara"\nCONTEXT:  COPY people, line 1: "Tara\tx"'
    assert "Tara" not in scrub_error(copy) and "COPY people" in scrub_error(copy)


def _contacts_source(path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, surname TEXT, given TEXT, tel TEXT)"
        )
        connection.exec_driver_sql(
            "INSERT INTO contacts VALUES (1, 'O''Hara', 'Scarlett', '555-0147'),"
            " (2, 'O''Hara', 'Scarlett', '555-0148'), (3, 'Wilkes', 'Ashley', 'bad-phone-0199')"
        )
    return engine


def _people_target(url, dialect: str) -> sa.Engine:
    engine = sa.create_engine(url)
    key = "person_id INTEGER PRIMARY KEY"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE people ({key}, source_system VARCHAR(16) NOT NULL,"
            " source_key VARCHAR(64) NOT NULL, last_name VARCHAR(40), first_name VARCHAR(40),"
            " phone VARCHAR(40),"
            " CONSTRAINT uq_people_source UNIQUE (source_system, source_key),"
            " CONSTRAINT uq_people_name UNIQUE (last_name, first_name),"
            " CONSTRAINT ck_people_phone CHECK (SUBSTR(phone, 1, 3) <> 'bad'))"
        )
    return engine


CONTACTS_SPEC = {
    "version": 1,
    "name": "privacy-contacts",
    "systems": {"crm": "crm"},
    "targets": {
        "people": {
            "id_column": "person_id",
            "sources": {
                "crm.contacts": {
                    "key": "id",
                    "columns": {
                        "last_name": {"from": "surname"},
                        "first_name": {"from": "given"},
                        "phone": {"from": "tel"},
                    },
                }
            },
        }
    },
}


def _write_spec(folder, data) -> object:
    from runbook_lib.mapping.model import load_spec

    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return load_spec(path)


def test_a_row_the_target_refuses_is_quarantined_naming_the_constraint_not_its_values(
    databases, tmp_path
):
    from runbook_lib.db.bookkeeping import rejects
    from runbook_lib.load import loader

    source = _contacts_source(tmp_path / "crm.db")
    target = _people_target(databases.new("target"), databases.dialect)
    try:
        report = loader.load(
            _write_spec(tmp_path, CONTACTS_SPEC),
            {"crm": source},
            target,
            run_id="run-1",
            mode="full",
            chunk_size=10,
            max_reject_rate=1.0,
            target_label="target",
        )
        with target.connect() as connection:
            refused = connection.execute(
                sa.select(rejects.c.source_key, rejects.c.rule, rejects.c.message).order_by(
                    rejects.c.source_key
                )
            ).all()
    finally:
        source.dispose()
        target.dispose()
    assert [(key, rule) for key, rule, _ in refused] == [
        ("2", "target_constraint"),
        ("3", "target_constraint"),
    ], report
    messages = [message for _, _, message in refused]
    # SQLite names the unique key by its columns; the servers by the constraint's name
    assert ("last_name" if databases.dialect == "sqlite" else "uq_people_name") in messages[0]
    assert "ck_people_phone" in messages[1], messages
    assert not [v for v in VALUES if any(v in m for m in messages)], messages


# --- 8. filters are predicates on their own table -------------------------------------------


def _shop(tmp_path) -> tuple[sa.Engine, sa.Engine]:
    """A legacy shop (``users`` with a password hash, ``carts``) and a target ``carts``."""
    source = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with source.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT, password_hash TEXT)"
        )
        connection.exec_driver_sql(
            "CREATE TABLE carts (id INTEGER PRIMARY KEY, user_id INTEGER, qty INTEGER,"
            " added_at TEXT, session_token TEXT)"
        )
    target = sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    with target.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE carts (cart_id INTEGER PRIMARY KEY, source_system VARCHAR(16) NOT NULL,"
            " source_key VARCHAR(64) NOT NULL, user_ref INTEGER, qty INTEGER, login TEXT,"
            " last_name TEXT)"
        )
    return source, target


def _shop_spec(exclude_where: str | None = None, **cart_columns) -> dict:
    carts = {
        "key": "id",
        "columns": {"user_ref": {"from": "user_id"}, "qty": {"from": "qty"}, **cart_columns},
        "ignore": {
            "added_at": "kept in the legacy archive",
            "session_token": "a web session, meaningless in the new shop",
        },
    }
    for name in cart_columns.values():
        carts["ignore"].pop(name.get("from"), None)
    if exclude_where is not None:
        carts["filters"] = [{"name": "old", "exclude_where": exclude_where, "reason": "stale"}]
    return {
        "version": 1,
        "name": "privacy-shop",
        "systems": {"shop": "shop"},
        "targets": {"carts": {"id_column": "cart_id", "sources": {"shop.carts": carts}}},
        "ignore_tables": {"shop.users": {"reason": "accounts are re-created in the new shop"}},
    }


def _problems(tmp_path, data) -> dict[str, str]:
    from runbook_lib.mapping.check import check_spec

    source, target = _shop(tmp_path)
    try:
        checked = check_spec(
            _write_spec(tmp_path, data), {"shop": sa.inspect(source)}, sa.inspect(target)
        )
    finally:
        source.dispose()
        target.dispose()
    found: dict[str, str] = {}
    for path, message in checked.problems:
        found[path] = f"{found[path]}; {message}" if path in found else message
    return found


FILTER = "targets.carts.sources.shop.carts.filters.old.exclude_where"


@pytest.mark.parametrize(
    ("exclude_where", "expected"),
    [
        ("user_id IN (SELECT id FROM users WHERE password_hash IS NULL)", "subquery"),
        ("EXISTS (SELECT 1 FROM users WHERE users.id = user_id)", "subquery"),
        ("users.password_hash IS NULL", "reads table 'users'"),
        ("session_token IS NULL", "credential"),
        ("qty > 0; DELETE FROM users", "one SQL expression"),
        ("qty >", "not a valid SQL expression"),
    ],
)
def test_a_filter_that_reads_beyond_its_own_tables_columns_is_a_spec_error(
    tmp_path, exclude_where, expected
):
    problems = _problems(tmp_path, _shop_spec(exclude_where))
    assert FILTER in problems, problems
    assert expected in problems[FILTER]


def test_a_filter_on_its_own_tables_columns_passes_the_mapping_check(tmp_path):
    spec = _shop_spec("added_at < '2023-01-01' AND carts.qty <= 0 OR julianday(added_at) < 5")
    assert _problems(tmp_path, spec) == {}


def test_a_filter_reaching_beyond_its_table_is_never_executed_by_any_stage(tmp_path):
    from runbook_lib.errors import ExpressionError
    from runbook_lib.mapping.compiled import compile_spec

    spec = _write_spec(tmp_path, _shop_spec("users.password_hash LIKE '$2b$%'"))
    (carts,) = compile_spec(spec).in_load_order
    with pytest.raises(ExpressionError, match="reads table 'users'"):
        carts.select()  # what the trial, the full load and validation read
    with pytest.raises(ExpressionError, match="reads table 'users'"):
        carts.count_queries()  # the accounting of filtered rows


# --- 9. credentials stay out of the target --------------------------------------------------

COLUMNS = "targets.carts.sources.shop.carts.columns"


def test_a_credential_mapped_into_the_target_is_a_spec_error_naming_the_column(tmp_path):
    spec = _shop_spec(last_name={"from": "session_token"})
    problems = _problems(tmp_path, spec)
    assert f"{COLUMNS}.last_name.from" in problems, problems
    message = problems[f"{COLUMNS}.last_name.from"]
    assert "session_token" in message and "credential" in message
    assert "allow_credential" in message  # the way out is named


def test_a_credential_mapped_with_a_reason_passes_and_the_reason_is_in_the_coverage(tmp_path):
    from runbook_lib.mapping.check import check_spec

    reason = "the new shop validates the old sessions once, then drops them"
    spec = _shop_spec(last_name={"from": "session_token", "allow_credential": reason})
    source, target = _shop(tmp_path)
    try:
        checked = check_spec(
            _write_spec(tmp_path, spec), {"shop": sa.inspect(source)}, sa.inspect(target)
        )
    finally:
        source.dispose()
        target.dispose()
    assert checked.passed, checked.problems
    row = next(r for r in checked.coverage if r.column == "session_token")
    assert reason in row.detail


def test_an_empty_allow_credential_reason_is_no_reason(tmp_path):
    spec = _shop_spec(last_name={"from": "session_token", "allow_credential": "  "})
    assert "allow_credential" in _problems(tmp_path, spec).get(f"{COLUMNS}.last_name.from", "")


def test_a_column_the_assessment_classified_credential_by_its_values_is_refused_too(tmp_path):
    from runbook_lib.mapping.check import check_spec
    from runbook_lib.privacy.masking import EvidenceMasker

    glued = [{"system": "shop", "table": "carts", "column": "qty", "classification": "credential"}]
    masker = EvidenceMasker.from_classification(glued)
    source, target = _shop(tmp_path)
    try:
        checked = check_spec(
            _write_spec(tmp_path, _shop_spec()),
            {"shop": sa.inspect(source)},
            sa.inspect(target),
            classify=masker.classification,
        )
    finally:
        source.dispose()
        target.dispose()
    assert f"{COLUMNS}.qty.from" in dict(checked.problems)


def test_a_target_column_filled_from_a_credential_is_redacted_in_evidence(tmp_path):
    from runbook_lib.privacy.masking import EvidenceMasker

    reason = "kept for the one-time session hand-over"
    spec = _write_spec(
        tmp_path, _shop_spec(last_name={"from": "session_token", "allow_credential": reason})
    )
    masker = EvidenceMasker.from_classification([], spec)
    assert masker.mask("carts", "last_name", "tok-9f8e7d") == "[redacted]"
    assert masker.mask("shop.carts", "session_token", "tok-9f8e7d") == "[redacted]"


# --- 10. classification from the values too ---------------------------------------------------

# a table whose name says nothing about people, whose columns' names say nothing either
VISITS = [
    (
        1,
        "met at the fair, write to scarlett@tara.example",
        "+1 404-555-0147",
        "scarlett@tara.example",
        "12 Peachtree Street",
        "Tara Holdings LLC",
        "1990-01-02",
        "30303",
        "3",
    ),
    (
        2,
        "call back on +1 404 555 0148 after six",
        "(404) 555-0148",
        "ashley@wilkes.example",
        "7 Twelve Oaks Road",
        "Wilkes Lumber Inc.",
        "1988-07-14",
        "30305",
        "1",
    ),
    (
        3,
        "prefers post",
        "+1 404 555 0149",
        "melanie@wilkes.example",
        "40 Peachtree Avenue",
        "Hamilton & Co. Ltd",
        "1991-03-30",
        "30308",
        "2",
    ),
]
CLEAR = (
    "scarlett@tara",
    "555-0147",
    "555 0148",
    "555-0148",
    "0149",
    "ashley@wilkes",
    "Peachtree",
    "Twelve Oaks",
    "Tara Holdings",
    "Wilkes Lumber",
    "Hamilton",
    "1990-01-02",
    "1988-07-14",
    "30303",
    "30305",
)


def _visits(tmp_path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'fair.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE visits (id INTEGER PRIMARY KEY, notes TEXT, contact TEXT, reach TEXT,"
            " line1 TEXT, org TEXT, dob TEXT, zip TEXT, visits TEXT)"
        )
        connection.exec_driver_sql(
            "INSERT INTO visits VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(VISITS)),
            tuple(value for row in VISITS for value in row),
        )
    return engine


VISITS_SPEC = {
    "version": 1,
    "name": "privacy-fair",
    "systems": {"fair": "fair"},
    "targets": {
        "leads": {
            "id_column": "lead_id",
            "sources": {
                "fair.visits": {
                    "key": "id",
                    "columns": {
                        "remark": {"from": "notes"},
                        "line": {"from": "contact"},
                        "mail": {"from": "reach"},
                        "place": {"from": "line1"},
                        "firm": {"from": "org"},
                        "day": {"from": "dob"},
                        "area": {"from": "zip"},
                        "times": {"from": "visits"},
                    },
                }
            },
        }
    },
}


def test_personal_values_in_innocently_named_columns_are_classified_and_masked(tmp_path):
    from runbook_lib.assess.assessment import assess_sources

    source = _visits(tmp_path)
    try:
        report = assess_sources({"fair": source}, _write_spec(tmp_path, VISITS_SPEC))
    finally:
        source.dispose()
    kinds = {row["column"]: row["classification"] for row in report.classification()}
    assert kinds["contact"] == "phone" and kinds["reach"] == "email", kinds
    assert kinds["line1"] == "address" and kinds["org"] == "company", kinds
    assert kinds["dob"] == "birth_date" and kinds["zip"] == "postal_code", kinds
    assert kinds["notes"] not in ("other", None), kinds  # free text holding contacts
    assert kinds["visits"] == "other" and kinds["id"] == "other"
    shown = json.dumps(report.to_dict(), ensure_ascii=False) + report.render()
    assert [clear for clear in CLEAR if clear in shown] == []


def test_every_masked_view_uses_the_glued_classification(tmp_path):
    from runbook_lib.assess.assessment import assess_sources
    from runbook_lib.mapping.check import check_spec
    from runbook_lib.privacy.masking import EvidenceMasker
    from runbook_lib.ui.preview import preview_mapping

    source = _visits(tmp_path)
    target = sa.create_engine(f"sqlite:///{tmp_path / 'leads.db'}")
    with target.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE leads (lead_id INTEGER PRIMARY KEY, source_system VARCHAR(16) NOT NULL,"
            " source_key VARCHAR(64) NOT NULL, remark TEXT, line TEXT, mail TEXT,"
            " place TEXT, firm TEXT, day TEXT, area TEXT, times TEXT)"
        )
    spec = _write_spec(tmp_path, VISITS_SPEC)
    try:
        glued = assess_sources({"fair": source}, spec).classification()
        masker = EvidenceMasker.from_classification(glued, spec)
        checked = check_spec(spec, {"fair": sa.inspect(source)}, sa.inspect(target))
        assert checked.passed, checked.problems
        (preview,) = preview_mapping(spec, {"fair": source}, checked, masker=masker)
    finally:
        source.dispose()
        target.dispose()
    shown = repr(preview.rows)
    assert [clear for clear in CLEAR if clear in shown] == [], shown
    assert {row["times"] for row in preview.rows} == {"1", "2", "3"}  # other values stay readable
    # the same classification masks the target's own columns in validation examples and rejects
    assert masker.mask("leads", "line", "+1 404-555-0147") == "***47"
    reject = {"source_system": "fair", "source_table": "visits", "raw_row": {"org": "Tara LLC"}}
    assert "Tara" not in repr(masker.mask_reject(reject))


def _refusing_stage(project) -> None:
    """Replace 00_assessment by a notebook whose database refuses a row: printed, then raised."""
    import nbformat

    path = project / "notebooks" / "00_assessment.ipynb"
    notebook = nbformat.read(path, as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import os\n"
            "import sqlalchemy as sa\n"
            "from runbook_lib.run.kernel import prepare_kernel\n"
            "prepare_kernel()\n"
            "engine = sa.create_engine(os.environ['RUNBOOK_PRIVACY_URL'])\n"
            "import json\n"
            "row = json.loads(os.environ['RUNBOOK_PRIVACY_ROW'])  # the values are not in the code\n"
            "insert = sa.text('INSERT INTO people VALUES (:i, :l, :f, :p)')\n"
            "with engine.begin() as connection:\n"
            "    connection.exec_driver_sql('CREATE TABLE people (id INT PRIMARY KEY,"
            " last_name VARCHAR(40), first_name VARCHAR(40), phone VARCHAR(40),"
            " CONSTRAINT uq_people_name UNIQUE (last_name, first_name),"
            " CONSTRAINT ck_people_phone CHECK (SUBSTR(phone, 1, 3) <> \\'bad\\'))')\n"
            "    connection.execute(insert, {**row, 'i': 1, 'p': row['p1']})\n"
            "try:\n"
            "    with engine.begin() as connection:\n"
            "        connection.execute(insert, {**row, 'i': 2})\n"
            "except sa.exc.DBAPIError as exc:  # MariaDB: a CHECK is an OperationalError\n"
            "    print('the target refused:', exc)"
        ),
        nbformat.v4.new_code_cell(
            "with engine.begin() as connection:\n"
            "    connection.execute(insert, {**row, 'i': 3, 'p': row['p3']})"
        ),
    ]
    nbformat.write(notebook, path)


@pytest.mark.notebooks
@pytest.mark.parametrize("databases", ["postgresql", "mariadb"], indirect=True)
def test_a_refused_row_is_nowhere_in_a_failed_stages_evidence_or_output(databases, tmp_path):
    from conftest import copy_project
    from helpers import runbook

    project = copy_project(tmp_path / "project")
    environ = {
        "RUNBOOK_PRIVACY_URL": databases.new("refusing").render_as_string(),
        "RUNBOOK_PRIVACY_ROW": json.dumps(
            {"l": "O'Hara", "f": "Scarlett", "p": "bad-phone-0199", "p1": "555-0147", "p3": "555-0"}
        ),
    }
    built = runbook(project, "demo-data", "--env", "ci", env=environ, check=True)
    _refusing_stage(project)
    failed = runbook(project, "run", "--env", "ci", "--stages", "assessment", env=environ)
    assert failed.returncode == 1, failed.stderr[-3000:]
    (run,) = [p for p in (project / "outputs" / "ci").iterdir() if p.is_dir()]
    for name in ("00_assessment.ipynb", "00_assessment.html", "manifest.json", "index.html"):
        assert (run / name).is_file(), name
    assert "uq_people_name" in (run / "manifest.json").read_text()  # what refused it stays
    leaks = [
        (str(path.relative_to(project)), value)
        for path in (project / "outputs").rglob("*")
        if path.is_file()
        for value in VALUES
        if value.encode() in path.read_bytes()
    ]
    leaks += [("terminal", v) for v in VALUES if v in failed.stdout + failed.stderr + built.stdout]
    assert leaks == []


def test_every_stage_after_the_assessment_masks_by_the_glued_classification():
    from runbook_lib.stage_table import STAGES

    # the rollback shows hashes and counts, never a row
    showing = [name for name in STAGES if name not in ("assessment", "rollback")]
    assert [n for n in showing if ("assessment", "classification") not in STAGES[n].reads] == []


def test_hiding_row_values_stays_fast_on_text_that_never_closes_a_value():
    import time

    from runbook_lib.privacy.scrub import hide_row_values

    for opening in ("Key (a)=(b ", "Failing row contains (", "Duplicate entry '"):
        started = time.perf_counter()
        shown = hide_row_values(opening * 20_000)
        assert time.perf_counter() - started < 5, opening
        assert " b " not in shown
    long_value = "DETAIL:  Key (a)=(" + "z" * 3000 + ") already exists.\nnext line"
    assert hide_row_values(long_value) == "DETAIL:  Key (a)=(values hidden)\nnext line"
