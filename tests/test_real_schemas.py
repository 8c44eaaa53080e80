"""What a migration lead's own database needs (issue 13), on the second scenario (HR + sales).

The scenario (``tests/scenarios/hr_sales``) is unlike the demo: customers *and* employees of one
system in one ``people`` table (key prefixes), a manager hierarchy and a customer's support rep in
that same table (references into the target being loaded), a category tree, CHECK constraints
the mapping cannot see, identity columns, and cross-table checks. Its builder returns the exact
expected outcome per source table; each test below runs on a SQLite and a PostgreSQL target.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

sys.path.insert(0, str(Path(__file__).parent / "scenarios"))

from hr_sales.legacy import build_legacy  # noqa: E402
from hr_sales.target import create_target  # noqa: E402

from runbook_lib.config.connections import make_engine  # noqa: E402
from runbook_lib.db import sequences  # noqa: E402
from runbook_lib.db.bookkeeping import rejects  # noqa: E402
from runbook_lib.load import backup, loader, sync  # noqa: E402
from runbook_lib.mapping.check import check_spec  # noqa: E402
from runbook_lib.mapping.model import load_spec  # noqa: E402
from runbook_lib.validate.validation import validate  # noqa: E402

SPEC = Path(__file__).parent / "scenarios" / "hr_sales" / "spec.yaml"
TARGETS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture
def store(tmp_path):
    """The legacy store (SQLite, as a real legacy file would be) and what its builder planted."""
    path = tmp_path / "store.db"
    planted = build_legacy(f"sqlite:///{path}")
    engine = make_engine(sa.engine.make_url(f"sqlite:///{path}"))
    yield engine, planted, path
    engine.dispose()


@pytest.fixture(params=TARGETS)
def target(request, tmp_path):
    """An empty new schema (the scenario's DDL) on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        url = sa.engine.make_url(f"sqlite:///{tmp_path / 'target.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
    create_target(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _load(spec, store_engine, target_engine, run_id="run-1", **options):
    backup.snapshot(target_engine, spec.touched_tables(), run_id)
    return loader.load(
        spec,
        {"store": store_engine},
        target_engine,
        run_id=run_id,
        mode="full",
        chunk_size=options.get("chunk_size", 7),  # small: references cross chunk boundaries
        max_reject_rate=1.0,
        target_label="target",
    )


def _validate(spec, store_engine, target_engine, run_id="run-1", **options):
    return validate(
        spec,
        {"store": store_engine},
        target_engine,
        run_id=run_id,
        target_label="target",
        chunk_size=50,
        max_unexplained_differences=0,
        **options,
    )


def _person_ids(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT source_key, person_id FROM people")).all())


def test_every_source_row_of_the_second_scenario_ends_as_its_builder_planted(store, target):
    store_engine, planted, _ = store
    spec = load_spec(SPEC)
    report = _load(spec, store_engine, target)
    outcome = {
        r.source_table: {"rows": r.source_rows, "loaded": r.loaded, "quarantined": r.quarantined}
        for r in report.results
    }
    assert outcome == {
        table: {"rows": t["rows"], "loaded": t["loaded"], "quarantined": t["quarantined"]}
        for table, t in planted["tables"].items()
    }
    assert all(r.balanced for r in report.results)
    result = _validate(spec, store_engine, target, max_new_check_violations=1)
    assert result.passed, result.render()
    assert result.differences == 0 and result.orphans == 0


def test_a_manager_in_the_same_table_is_that_persons_id_and_no_manager_is_null(store, target):
    store_engine, _, path = store
    _load(load_spec(SPEC), store_engine, target)
    ids = _person_ids(target)
    with sqlite3.connect(path) as legacy:
        reports_to = dict(legacy.execute("SELECT EmployeeId, ReportsTo FROM employee"))
    with target.connect() as connection:
        managers = dict(
            connection.execute(
                sa.text("SELECT source_key, manager_id FROM people WHERE kind = 'employee'")
            ).all()
        )
    assert managers  # the loaded employees
    for key, manager_id in managers.items():
        boss = reports_to[int(key.removeprefix("employee:"))]
        assert manager_id == (None if boss is None else ids[f"employee:{boss}"]), key
    assert sum(m is None for m in managers.values()) == 1  # the general manager


def test_a_support_rep_is_the_employee_not_the_customer_with_the_same_number(store, target):
    store_engine, _, path = store
    _load(load_spec(SPEC), store_engine, target)
    ids = _person_ids(target)
    with sqlite3.connect(path) as legacy:
        reps = dict(legacy.execute("SELECT CustomerId, SupportRepId FROM customer"))
    with target.connect() as connection:
        found = dict(
            connection.execute(
                sa.text("SELECT source_key, support_rep_id FROM people WHERE kind = 'customer'")
            ).all()
        )
    assert "customer:3" in ids and "employee:3" in ids  # one number, two people
    for key, rep_id in found.items():
        rep = reps[int(key.removeprefix("customer:"))]
        assert rep_id == (None if rep is None else ids[f"employee:{rep}"]), key


def test_an_orphan_of_a_self_reference_takes_the_rows_beneath_it_into_quarantine(store, target):
    store_engine, planted, path = store
    orphan = planted["defects"]["employee_orphan_manager"]["keys"][0]
    with sqlite3.connect(path) as legacy:  # two more levels beneath the orphan
        leaf, deeper = legacy.execute(
            "SELECT EmployeeId FROM employee WHERE EmployeeId NOT IN "
            "(SELECT ReportsTo FROM employee WHERE ReportsTo IS NOT NULL) "
            "AND EmployeeId NOT IN (SELECT SupportRepId FROM customer WHERE SupportRepId IS NOT NULL) "
            "AND Salary > 0 AND EmployeeId != ? ORDER BY EmployeeId LIMIT 2",
            (orphan,),
        ).fetchall()
        legacy.execute("UPDATE employee SET ReportsTo = ? WHERE EmployeeId = ?", (orphan, leaf[0]))
        legacy.execute(
            "UPDATE employee SET ReportsTo = ? WHERE EmployeeId = ?", (leaf[0], deeper[0])
        )
    spec = load_spec(SPEC)
    report = _load(spec, store_engine, target)
    employees = next(r for r in report.results if r.source_table == "employee")
    assert employees.quarantined["orphan_manager_id"] == 3
    with target.connect() as connection:
        quarantined = set(
            connection.execute(
                sa.select(rejects.c.source_key).where(rejects.c.rule == "orphan_manager_id")
            ).scalars()
        )
    assert quarantined == {f"employee:{k}" for k in (orphan, leaf[0], deeper[0])}
    assert not {f"employee:{k}" for k in (orphan, leaf[0], deeper[0])} & set(_person_ids(target))
    result = _validate(spec, store_engine, target, max_new_check_violations=1)
    assert result.passed, result.render()


def test_rows_the_target_refuses_by_a_check_are_quarantined_naming_it_and_the_load_goes_on(
    store, target
):
    store_engine, planted, _ = store
    report = _load(load_spec(SPEC), store_engine, target)
    assert report.passed
    with target.connect() as connection:
        refused = connection.execute(
            sa.select(rejects.c.source_table, rejects.c.source_key, rejects.c.message).where(
                rejects.c.rule == "target_constraint"
            )
        ).all()
    assert sorted((t, k) for t, k, _ in refused) == sorted(
        [
            ("employee", f"employee:{k}")
            for k in planted["defects"]["employee_salary_not_positive"]["keys"]
        ]
        + [("product", str(k)) for k in planted["defects"]["product_negative_price"]["keys"]]
    )
    messages = {m for _, _, m in refused}
    assert any("ck_people_salary_positive" in m for m in messages), messages
    assert any("ck_products_unit_price" in m for m in messages), messages
    assert not any("4200" in m or "-5" in m for m in messages)  # no row values in evidence


@pytest.mark.postgres
def test_the_suspended_foreign_keys_come_back_when_a_load_stops_midway(store, postgres_url):
    store_engine, _, _ = store
    create_target(postgres_url)
    target = make_engine(postgres_url)
    spec_data = yaml.safe_load(SPEC.read_text())
    # a filter that breaks only when the fourth target is read: the first three are loaded
    spec_data["targets"]["invoices"]["sources"]["store.invoice"]["filters"] = [
        {"name": "broken", "exclude_where": "NoSuchColumn > 0", "reason": "a typo"}
    ]
    spec_file = Path(store_engine.url.database).with_name("broken.yaml")
    spec_file.write_text(yaml.safe_dump(spec_data, sort_keys=False, allow_unicode=True))
    spec = load_spec(spec_file)
    keys_before = _foreign_keys(target)
    with pytest.raises(sa.exc.OperationalError):
        _load(spec, store_engine, target)
    assert _foreign_keys(target) == keys_before
    with target.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM people")).scalar() > 0
    target.dispose()


def _foreign_keys(engine) -> set[tuple]:
    inspector = sa.inspect(engine)
    return {
        (table, tuple(key["constrained_columns"]), key["referred_table"])
        for table in inspector.get_table_names()
        for key in inspector.get_foreign_keys(table)
    }


def test_the_next_id_the_application_takes_follows_the_loaded_ones(store, target):
    store_engine, _, _ = store
    report = _load(load_spec(SPEC), store_engine, target)
    with target.begin() as connection:
        highest = connection.execute(sa.text("SELECT max(invoice_id) FROM invoices")).scalar()
        customer = connection.execute(sa.text("SELECT min(person_id) FROM people")).scalar()
        connection.execute(
            sa.text(
                "INSERT INTO invoices (customer_id, invoiced_at, country, total, source_system, "
                "source_key) VALUES (:c, :t, 'CA', '1.00', 'app', 'app-1')"
            ),
            {"c": customer, "t": "2026-12-01 10:00:00+00"},
        )
        new = connection.execute(
            sa.text("SELECT invoice_id FROM invoices WHERE source_key = 'app-1'")
        ).scalar()
    assert new == highest + 1
    if target.dialect.name == "postgresql":  # the load's evidence says what it moved
        assert {c["table"] for c in report.counters} == {
            "people",
            "categories",
            "products",
            "invoices",
            "invoice_lines",
        }


@pytest.mark.postgres
def test_a_rollback_puts_rows_back_into_generated_always_identity_columns_and_counters_back(
    store, postgres_url
):
    store_engine, _, path = store
    create_target(postgres_url)
    target = make_engine(postgres_url)
    spec = load_spec(SPEC)
    _load(spec, store_engine, target)
    with target.connect() as connection:
        before = {t: sequences.counters(connection, t) for t in spec.touched_tables()}
        digests = _digests(connection, spec.touched_tables())
    with sqlite3.connect(path) as legacy:  # new rows at the source, for a sync
        top = legacy.execute("SELECT max(InvoiceId) FROM invoice").fetchone()[0]
        legacy.execute(
            "INSERT INTO invoice (InvoiceId, CustomerId, InvoiceDate, BillingCountry, Total) "
            "VALUES (?, 1, '2024-12-30 10:00:00', 'CA', 1.00)",
            (top + 1,),
        )
    spec_data = yaml.safe_load(SPEC.read_text())
    spec_data["targets"]["invoices"]["sources"]["store.invoice"]["watermark"] = {
        "column": "InvoiceId"
    }
    synced_spec = Path(path).with_name("synced.yaml")
    synced_spec.write_text(yaml.safe_dump(spec_data, sort_keys=False, allow_unicode=True))
    spec = load_spec(synced_spec)
    backup.snapshot(target, spec.touched_tables(), "run-2")  # of the loaded target
    report = sync.sync(
        spec,
        {"store": store_engine},
        target,
        run_id="run-2",
        chunk_size=7,
        max_reject_rate=1.0,
        target_label="target",
    )
    assert sum(r.inserted for r in report.results) == 1
    restored = backup.restore(target, backup.find_snapshot(target, "run-2"))
    assert restored.passed, restored.render()
    with target.connect() as connection:
        assert _digests(connection, spec.touched_tables()) == digests
        assert {t: sequences.counters(connection, t) for t in spec.touched_tables()} == before
    target.dispose()


def _digests(connection, tables):
    metadata = sa.MetaData()
    metadata.reflect(connection, only=tables)
    return {t: backup.table_digest(connection, metadata.tables[t]) for t in tables}


def test_the_spec_check_refuses_two_tables_of_one_system_whose_keys_can_collide(store, tmp_path):
    store_engine, _, _ = store
    spec_data = yaml.safe_load(SPEC.read_text())
    for source in spec_data["targets"]["people"]["sources"].values():
        source.pop("key_prefix")
    check = _checked(spec_data, store_engine, tmp_path)
    paths = {path for path, _ in check.problems}
    assert {
        "targets.people.sources.store.employee.key_prefix",
        "targets.people.sources.store.customer.key_prefix",
    } <= paths
    assert any("can collide" in message for _, message in check.problems)


def test_a_reference_into_a_target_fed_twice_by_one_system_must_name_its_source(store, tmp_path):
    store_engine, _, _ = store
    spec_data = yaml.safe_load(SPEC.read_text())
    spec_data["targets"]["invoices"]["sources"]["store.invoice"]["columns"]["customer_id"][
        "references"
    ] = "people"
    check = _checked(spec_data, store_engine, tmp_path)
    assert [
        (path, message)
        for path, message in check.problems
        if path == "targets.invoices.sources.store.invoice.columns.customer_id.references"
    ] and "name the one whose keys" in check.render()


def test_a_self_reference_into_a_column_that_requires_a_value_is_refused(store, tmp_path):
    store_engine, _, _ = store
    target_path = tmp_path / "strict.db"
    create_target(f"sqlite:///{target_path}")
    with sqlite3.connect(target_path) as connection:  # parent_id NOT NULL: the loader cannot
        connection.executescript(
            "DROP TABLE products; DROP TABLE categories; CREATE TABLE categories (category_id "
            "INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, parent_id INTEGER NOT NULL, "
            "source_system VARCHAR(16) NOT NULL, source_key VARCHAR(64) NOT NULL);"
            "CREATE TABLE products (product_id INTEGER PRIMARY KEY, name VARCHAR(128) NOT NULL, "
            "category_id INTEGER, unit_price TEXT NOT NULL, source_system VARCHAR(16) NOT NULL, "
            "source_key VARCHAR(64) NOT NULL)"
        )
    target = sa.inspect(sa.create_engine(f"sqlite:///{target_path}"))
    check = check_spec(load_spec(SPEC), {"store": sa.inspect(store_engine)}, target)
    problem = dict(check.problems).get(
        "targets.categories.sources.store.category.columns.parent_id.references", ""
    )
    assert "must be nullable" in problem, check.render()


def test_a_decimal_into_a_sqlite_numeric_column_is_refused_saying_what_to_use(store, tmp_path):
    store_engine, _, _ = store
    target_path = tmp_path / "floats.db"
    create_target(f"sqlite:///{target_path}")
    with sqlite3.connect(target_path) as connection:
        connection.executescript(
            "DROP TABLE invoice_lines; CREATE TABLE invoice_lines (line_id INTEGER PRIMARY KEY, "
            "invoice_id INTEGER NOT NULL, product_id INTEGER NOT NULL, "
            "unit_price NUMERIC(10, 2) NOT NULL, quantity INTEGER NOT NULL, "
            "source_system VARCHAR(16) NOT NULL, source_key VARCHAR(64) NOT NULL)"
        )
    target = sa.inspect(sa.create_engine(f"sqlite:///{target_path}"))
    check = check_spec(load_spec(SPEC), {"store": sa.inspect(store_engine)}, target)
    problem = dict(check.problems)[
        "targets.invoice_lines.sources.store.invoice_line.columns.unit_price"
    ]
    assert "binary floating point" in problem and "ExactDecimal" in problem
    assert len(check.problems) == 1, check.render()


def _checked(spec_data, store_engine, tmp_path):
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(spec_data, sort_keys=False, allow_unicode=True))
    create_target(f"sqlite:///{tmp_path / 'variant_target.db'}")
    target = sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'variant_target.db'}"))
    return check_spec(load_spec(path), {"store": sa.inspect(store_engine)}, target)


def test_the_trial_sample_follows_references_up_the_hierarchy_and_across_the_target(store, target):
    store_engine, planted, _ = store
    spec = load_spec(SPEC)
    report = loader.load(
        spec,
        {"store": store_engine},
        target,
        run_id="trial-1",
        mode="trial",
        chunk_size=7,
        max_reject_rate=1.0,
        target_label="trial",
        sample_percent=20,
    )
    planted_orphans = {
        f"{d['table']}:{k}"
        for d in planted["defects"].values()
        if (d["rule"] or "").startswith("orphan_")
        for k in d["keys"]
    }
    with target.connect() as connection:
        orphans = connection.execute(
            sa.select(rejects.c.source_table, rejects.c.source_key, rejects.c.rule).where(
                rejects.c.rule.like("orphan_%")
            )
        ).all()
    for table, key, rule in orphans:  # only planted orphans, and the rows they take along
        number = key.rpartition(":")[2]
        assert f"{table}:{number}" in planted_orphans or rule in (
            "orphan_customer_id",
            "orphan_invoice_id",
        ), (table, key, rule)
    employees = next(r for r in report.results if r.source_table == "employee")
    # the sample holds whole chains of command up to the general manager
    assert employees.loaded > 0
    with target.connect() as connection:
        no_manager = connection.execute(
            sa.text("SELECT count(*) FROM people WHERE kind = 'employee' AND manager_id IS NULL")
        ).scalar()
    assert no_manager == 1
    result = validate(
        spec,
        {"store": store_engine},
        target,
        run_id="trial-1",
        target_label="trial",
        chunk_size=50,
        max_unexplained_differences=0,
        sample_percent=20,
        max_new_check_violations=10,
    )
    assert result.differences == 0 and result.orphans == 0, result.render()


def test_the_trial_target_keeps_the_targets_unique_constraints(store, target, tmp_path):
    from runbook_lib.db.schema_copy import copy_tables

    scratch = sa.create_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    notes = copy_tables(target, ["people", "invoices"], scratch)
    uniques = {
        tuple(u["column_names"]) for u in sa.inspect(scratch).get_unique_constraints("people")
    }
    assert ("source_system", "source_key") in uniques
    with scratch.begin() as connection:
        row = (
            "INSERT INTO people (person_id, kind, first_name, last_name, source_system, source_key)"
            " VALUES ({}, 'customer', 'A', 'B', 'store', 'customer:1')"
        )
        connection.exec_driver_sql(row.format(1))
        with pytest.raises(sa.exc.IntegrityError):
            connection.exec_driver_sql(row.format(2))
    if target.dialect.name == "postgresql":  # the PostgreSQL CHECK text is said to be left out
        assert any("ck_people_salary_positive" in note for note in notes)
    else:
        assert notes == []


def test_the_checks_run_on_the_source_and_name_what_the_migration_broke(store, target):
    from runbook_lib.assess.findings import check_findings

    store_engine, planted, _ = store
    spec = load_spec(SPEC)
    found = {f.rule: f for f in check_findings(spec, {"store": store_engine})}
    expected = planted["checks"]
    assert (
        found["invoice_total_matches_lines"].count
        == expected["invoice_total_matches_lines"]["source"]["violations"]
    )
    assert found["invoice_has_lines"].count == expected["invoice_has_lines"]["source"]["violations"]
    assert found["invoice_has_lines"].examples[0].startswith("InvoiceId=65")
    _load(spec, store_engine, target)
    strict = _validate(spec, store_engine, target)
    checks = {c.name: c for c in strict.checks}
    total = checks["invoice_total_matches_lines"]
    assert (total.target_violations, total.inherited, total.new_count) == (6, 5, 1)
    assert [v.key for v in total.new] == [
        str(k) for k in expected["invoice_total_matches_lines"]["target"]["introduced"]
    ]
    assert checks["invoice_has_lines"].new_count == 0
    assert not strict.passed and any("new check violation" in f for f in strict.failures)
    assert _validate(spec, store_engine, target, max_new_check_violations=1).passed


def test_values_on_error_null_drops_are_counted_by_the_loader_and_by_validation(tmp_path):
    from conftest import copy_project

    from runbook_demo.build import build_demo
    from runbook_lib.config.params import load_params

    project = copy_project(tmp_path / "project")
    planted = build_demo("ci", project).to_dict()["seeded_defects"]
    spec = load_spec(load_params("ci", project_root=project).mapping_path)
    work = project / "work" / "ci"
    engines = {
        system: make_engine(sa.engine.make_url(f"sqlite:///{work / f'{system}.db'}"))
        for system in ("legacy_a", "legacy_b", "crm")
    }
    target = make_engine(sa.engine.make_url(f"sqlite:///{work / 'target.db'}"))
    options = {"run_id": "run-1", "target_label": "t", "chunk_size": 97}
    report = loader.load(spec, engines, target, mode="full", max_reject_rate=1.0, **options)
    phones = {
        "legacy_a.users": "phone",
        "legacy_b.customers": "mobile",
        "crm.old_crm_customers": "phone",
    }
    for result in report.results:
        where = f"{result.source_system}.{result.source_table}"
        if where in phones:  # invalid emails and phones are dropped, their people kept
            assert result.nulled == {
                "email:invalid_email": planted["invalid_emails"][f"{where}.email"],
                "phone:invalid_phone": planted["invalid_phones"][f"{where}.{phones[where]}"],
            }, where
        else:
            assert result.nulled == {}, where
    checked = validate(spec, engines, target, max_unexplained_differences=0, **options)
    assert checked.to_dict()["nulled"] == report.to_dict()["nulled"]
    assert "values dropped by on_error null" in report.render()
