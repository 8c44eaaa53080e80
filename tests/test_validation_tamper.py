"""Validation against a tampered target: each kind of planted difference is named by its key.

The ci demo (``tests/conftest.py`` lists what it plants) is built and loaded once per module into
each target dialect; every test tampers with its own copy (SQLite: the backup API; PostgreSQL:
``CREATE DATABASE ... TEMPLATE``), validates, and expects exactly the planted keys, with their
kind and the columns that differ. The same plants run on SQLite (hashes made in Python) and on
PostgreSQL (hashes made inside the database); MariaDB gets one load and one tampered validation.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, _server_or_skip, copy_project

from runbook_demo.build import build_demo
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.connections import make_engine
from runbook_lib.config.params import load_params
from runbook_lib.errors import GateFailedError, RunbookError
from runbook_lib.load import loader
from runbook_lib.run.context import StageContext
from runbook_lib.validate.validation import ValidationReport
from runbook_lib.validate.validation import validate as run_validation

RUN_ID = "run-1"


@dataclass
class Loaded:
    ctx: StageContext
    make_target: object  # () -> engine of a fresh copy of the loaded target


def _load(ctx: StageContext, target: sa.Engine) -> None:
    report = loader.load(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id=RUN_ID,
        mode="full",
        chunk_size=300,
        max_reject_rate=0.05,
        target_label="target",
    )
    assert report.passed, report.render()


def validate(ctx: StageContext, target: sa.Engine, **options) -> ValidationReport:
    return run_validation(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id=RUN_ID,
        target_label="target",
        chunk_size=300,
        max_unexplained_differences=0,
        **({"max_reject_rate": 0.05} | options),
    )


def found(report: ValidationReport) -> set[tuple]:
    return {
        (d.table, d.source_system, d.source_key, d.kind, d.columns)
        for t in report.tables
        for d in t.differences
    }


@pytest.fixture(scope="module")
def ci_loaded(tmp_path_factory):
    """The ci demo built and loaded into its SQLite target once for the module."""
    project = copy_project(tmp_path_factory.mktemp("tamper") / "project")
    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    _load(ctx, ctx.target_engine())
    ctx.target_engine().dispose()
    return project, ctx


@pytest.fixture(scope="module")
def postgres_template(ci_loaded):
    """A PostgreSQL database holding the loaded ci demo, used as a template per test."""
    _project, ctx = ci_loaded
    admin = _server_or_skip(POSTGRES_ADMIN_URL, "PostgreSQL")
    name = f"runbook_test_tmpl_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        engine = sa.create_engine(sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name))
        create_target_schema(engine)
        _load(ctx, engine)
        engine.dispose()
        yield admin, name
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def loaded(request, ci_loaded, tmp_path):
    """A fresh copy of the loaded target, in each dialect."""
    project, ctx = ci_loaded
    if request.param == "sqlite":
        copy = tmp_path / "target.db"
        with sqlite3.connect(project / "work" / "ci" / "target.db") as source:
            with sqlite3.connect(copy) as destination:
                source.backup(destination)
        engine = make_engine(sa.engine.make_url(f"sqlite:///{copy}"))
        yield ctx, engine
        engine.dispose()
        return
    admin, template = request.getfixturevalue("postgres_template")
    name = f"runbook_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine = sa.create_engine(sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name))
    try:
        yield ctx, engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- planting ---------------------------------------------------------------------------------


def _table(connection, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=connection)


def _value(connection, value):
    """A decimal as the dialect stores it (ExactDecimal is text on SQLite)."""
    if isinstance(value, Decimal) and connection.dialect.name == "sqlite":
        return str(value)
    return value


def _row(connection, table: str, where: str, offset: int = 3) -> dict:
    """One row as the dialect's types read it (the ``offset``-th by primary key)."""
    t = _table(connection, table)
    query = (
        sa.select(t).where(sa.text(where)).order_by(*t.primary_key.columns).limit(1).offset(offset)
    )
    return dict(connection.execute(query).mappings().one())


def _set(connection, table: str, row: dict, **values) -> None:
    t = _table(connection, table)
    pk = next(iter(t.primary_key.columns))
    values = {k: _value(connection, v) for k, v in values.items()}
    connection.execute(t.update().where(pk == row[pk.name]).values(**values))


def changed_amount(c):
    row = _row(c, "orders", "source_system = 'legacy_a'", 5)
    _set(c, "orders", row, amount=Decimal(row["amount"]) + Decimal("0.01"))
    return {("orders", "legacy_a", row["source_key"], "changed", ("amount",))}


def changed_dollar_amount(c):
    row = _row(c, "orders", "source_system = 'legacy_b'", 7)
    _set(c, "orders", row, amount=Decimal("1.00"))
    return {("orders", "legacy_b", row["source_key"], "changed", ("amount",))}


def deleted_row(c):
    row = _row(c, "user_events", "source_system = 'legacy_a'", 11)
    c.execute(sa.text("DELETE FROM user_events WHERE event_id = :i"), {"i": row["event_id"]})
    return {("user_events", "legacy_a", row["source_key"], "missing", ())}


def extra_row(c):
    row = _row(c, "shipments", "1 = 1", 0)
    t = _table(c, "shipments")
    c.execute(t.insert().values(row | {"shipment_id": 10**6, "source_key": "999999"}))
    return {("shipments", "legacy_a", "999999", "extra", ())}


def changed_email(c):
    """The email of a customer that other records were merged into by email."""
    row = _row(
        c,
        "customers",
        "source_system = 'legacy_a' AND customer_id IN "
        "(SELECT customer_id FROM customer_xref WHERE match_rule = 'match:email')",
        0,
    )
    _set(c, "customers", row, email=f"someone.else.{row['customer_id']}@example.com")
    return {("customers", "legacy_a", row["source_key"], "changed", ("email",))}


def shifted_time(c):
    row = _row(c, "orders", "source_system = 'legacy_a'", 13)
    _set(c, "orders", row, ordered_at=row["ordered_at"] + timedelta(hours=8))
    return {("orders", "legacy_a", row["source_key"], "changed", ("ordered_at",))}


def changed_name(c):
    """The first name of a customer only one record supplied."""
    row = _row(
        c,
        "customers",
        "source_system = 'legacy_a' AND first_name IS NOT NULL AND customer_id IN "
        "(SELECT customer_id FROM customer_xref GROUP BY customer_id HAVING count(*) = 1)",
        4,
    )
    _set(c, "customers", row, first_name="Zebedee")
    return {("customers", "legacy_a", row["source_key"], "changed", ("first_name",))}


def changed_status(c):
    row = _row(c, "orders", "source_system = 'legacy_b' AND status <> 'cancelled'", 17)
    _set(c, "orders", row, status="cancelled")
    return {("orders", "legacy_b", row["source_key"], "changed", ("status",))}


def nulled_value(c):
    row = _row(c, "orders", "source_system = 'legacy_a' AND paid_at IS NOT NULL", 19)
    _set(c, "orders", row, paid_at=None)
    return {("orders", "legacy_a", row["source_key"], "changed", ("paid_at",))}


def repointed_reference(c):
    row = _row(c, "order_items", "source_system = 'legacy_b'", 23)
    other = c.execute(
        sa.text("SELECT min(order_id) FROM orders WHERE order_id <> :i"), {"i": row["order_id"]}
    ).scalar_one()
    _set(c, "order_items", row, order_id=other)
    return {("order_items", "legacy_b", row["source_key"], "changed", ("order_id",))}


def changed_quantity_and_price(c):
    row = _row(c, "order_items", "source_system = 'legacy_a'", 29)
    _set(c, "order_items", row, quantity=row["quantity"] + 1, unit_price=Decimal("0.00"))
    return {("order_items", "legacy_a", row["source_key"], "changed", ("quantity", "unit_price"))}


def extra_customer(c):
    """A customers row that no crosswalk entry owns."""
    row = _row(c, "customers", "source_system = 'legacy_a'", 0)
    t = _table(c, "customers")
    c.execute(
        t.insert().values(
            row | {"customer_id": 10**6, "source_key": "999999", "email": "new@example.com"}
        )
    )
    return {("customers", "legacy_a", "999999", "extra", ())}


PLANTS = [
    changed_amount,
    changed_dollar_amount,
    deleted_row,
    extra_row,
    changed_email,
    shifted_time,
    changed_name,
    changed_status,
    nulled_value,
    repointed_reference,
    changed_quantity_and_price,
    extra_customer,
]


# --- tests --------------------------------------------------------------------------------------


def test_a_clean_load_validates_with_nothing_to_explain(loaded):
    ctx, target = loaded
    report = validate(ctx, target)
    assert report.passed, report.render()
    assert report.differences == 0 and report.unexplained == 0
    assert all(t.balanced and t.quarantine_matches for t in report.tables)
    assert all(t.balanced for t in report.totals)
    assert report.aggregates and all(a.status == "match" for a in report.aggregates)
    assert report.integrity and report.orphans == 0
    methods = {t.comparison["method"] for t in report.tables}
    assert methods == {"python" if target.dialect.name == "sqlite" else "in-database (postgresql)"}


@pytest.mark.parametrize("plant", PLANTS, ids=[p.__name__ for p in PLANTS])
def test_a_planted_difference_fails_validation_naming_exactly_its_key(loaded, plant):
    ctx, target = loaded
    with target.begin() as connection:
        planted = plant(connection)
    report = validate(ctx, target)
    assert not report.passed
    assert found(report) == planted, report.render()
    assert report.differences == len(planted)


def test_every_kind_planted_at_once_is_named_key_by_key(loaded):
    ctx, target = loaded
    planted = set()
    with target.begin() as connection:
        for plant in PLANTS:
            planted |= plant(connection)
    report = validate(ctx, target)
    assert found(report) == planted, report.render()
    kinds = report.to_dict()["differences_by_kind"]
    assert kinds == {"missing": 1, "extra": 2, "changed": len(planted) - 3, "duplicate": 0}
    events = next(t for t in report.tables if t.target_table == "user_events")
    assert not events.balanced  # the deleted row is also missing from the accounting


def test_changed_values_are_shown_masked(loaded):
    ctx, target = loaded
    with target.begin() as connection:
        (email_key,) = changed_email(connection)
        (amount_key,) = changed_dollar_amount(connection)
    shown = {
        d.source_key: dict((c, (e, a)) for c, e, a in d.values)
        for t in validate(ctx, target).tables
        for d in t.differences
    }
    expected, actual = shown[email_key[2]]["email"]
    assert "***@" in expected and actual.startswith("s***@")  # never a whole address
    assert shown[amount_key[2]]["amount"][1] == "1.00"  # amounts are not personal


def test_aggregate_mismatches_are_explained_by_the_row_differences(loaded):
    ctx, target = loaded
    with target.begin() as connection:
        changed_amount(connection)
        changed_dollar_amount(connection)
    report = validate(ctx, target)
    moved = {
        (a.source_system, a.column, a.group): a for a in report.aggregates if a.status != "match"
    }
    assert set(moved) == {("legacy_a", "amount", "CNY"), ("legacy_b", "amount", "USD")}
    assert all(a.status == "explained" and a.explained_by == 1 for a in moved.values())
    assert report.unexplained_aggregates == 0
    cny = moved[("legacy_a", "amount", "CNY")]
    assert cny.target.total - cny.expected.total == Decimal("0.01")


def test_quarantined_amounts_explain_the_source_total(loaded):
    ctx, target = loaded
    report = validate(ctx, target)
    amounts = next(
        a
        for a in report.to_dict()["aggregates"]
        if (a["source_system"], a["column"]) == ("legacy_a", "amount")
    )
    source = Decimal(amounts["source_sum_through_mapping"])
    assert source == Decimal(amounts["expected"]["sum"]) + Decimal(amounts["quarantined_sum"])
    assert Decimal(amounts["quarantined_sum"]) > 0  # orphan orders kept out of the target
    assert amounts["expected"] == amounts["target"]


def test_an_orphan_reference_is_counted_and_its_key_named(loaded):
    ctx, target = loaded
    with target.connect() as connection:
        if target.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        else:
            connection.exec_driver_sql("SET session_replication_role = replica")
        row = _row(connection, "order_items", "source_system = 'legacy_a'", 31)
        _set(connection, "order_items", row, order_id=10**7)
        connection.commit()
    report = validate(ctx, target)
    (orphaned,) = [c for c in report.integrity if c.orphans]
    assert (orphaned.reference.table, orphaned.reference.column) == ("order_items", "order_id")
    assert orphaned.orphans == 1 and orphaned.sample_keys == (f"legacy_a:{row['source_key']}",)
    assert found(report) == {
        ("order_items", "legacy_a", row["source_key"], "changed", ("order_id",))
    }
    assert report.unexplained == 2 and not report.passed


def test_a_row_removed_from_quarantine_unbalances_its_source(loaded):
    ctx, target = loaded
    with target.begin() as connection:
        reject = connection.execute(
            sa.text(
                "SELECT reject_id, source_table, rule FROM runbook_rejects "
                "WHERE source_table = 'orders' ORDER BY reject_id LIMIT 1"
            )
        ).one()
        connection.execute(
            sa.text("DELETE FROM runbook_rejects WHERE reject_id = :i"), {"i": reject.reject_id}
        )
    report = validate(ctx, target)
    orders = next(t for t in report.tables if t.label == "legacy_a.orders")
    assert not orders.balanced and not orders.quarantine_matches
    assert dict(orders.expected_quarantined_by_rule)[reject.rule] == (
        dict(orders.quarantined_by_rule).get(reject.rule, 0) + 1
    )
    assert report.differences == 0 and not report.passed
    assert any("legacy_a.orders" in reason for reason in report.failures)


def test_a_relinked_crosswalk_entry_is_named_by_its_record(loaded):
    """A merged record pointed at another customer: its match column no longer agrees."""
    ctx, target = loaded
    with target.begin() as connection:
        record = connection.execute(
            sa.text(
                "SELECT source_system, source_key, customer_id, match_rule FROM customer_xref "
                "WHERE match_rule LIKE 'match:%' AND source_system = 'crm' "
                "ORDER BY source_key LIMIT 1"
            )
        ).one()
        other = connection.execute(
            sa.text(
                "SELECT min(customer_id) FROM customers WHERE customer_id <> :c AND "
                "first_name IS NOT NULL AND last_name IS NOT NULL AND email IS NOT NULL AND "
                "phone IS NOT NULL AND created_at IS NOT NULL"
            ),
            {"c": record.customer_id},
        ).scalar_one()
        connection.execute(
            sa.text(
                "UPDATE customer_xref SET customer_id = :o WHERE source_system = 'crm' AND source_key = :k"
            ),
            {"o": other, "k": record.source_key},
        )
    report = validate(ctx, target)
    column = record.match_rule.partition(":")[2]
    keys = {(t, s, k, kind) for t, s, k, kind, _c in found(report)}
    assert ("customers", "crm", record.source_key, "changed") in keys
    crm = next(d for t in report.tables for d in t.differences if d.source_key == record.source_key)
    assert column in crm.columns and not report.passed


def test_the_reject_rate_gate_fails_validation_with_its_reason(loaded):
    ctx, target = loaded
    report = validate(ctx, target, max_reject_rate=0.001)
    assert report.differences == 0 and not report.passed
    assert report.failures == [f"reject rate {report.reject_rate:.3%} above the gate of 0.100%"]
    with pytest.raises(GateFailedError, match="reject rate"):
        report.raise_if_failed()


def test_validation_can_be_limited_to_some_target_tables(loaded):
    ctx, target = loaded
    report = validate(ctx, target, tables=["orders"])
    assert {t.target_table for t in report.tables} == {"orders"}
    assert [t.table for t in report.totals] == ["orders"]
    assert {c.reference.table for c in report.integrity} == {"orders"}
    with pytest.raises(RunbookError, match="no target table 'ordres'"):
        validate(ctx, target, tables=["ordres"])


@pytest.mark.mariadb
def test_mariadb_target_loads_and_validates_with_hashes_made_in_the_database(ci_loaded):
    _project, ctx = ci_loaded
    admin = _server_or_skip(MARIADB_ADMIN_URL, "MariaDB")
    name = f"runbook_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(
            sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    url = sa.engine.make_url(MARIADB_ADMIN_URL).set(database=name, query={"charset": "utf8mb4"})
    target = sa.create_engine(url)
    try:
        create_target_schema(target)
        _load(ctx, target)
        clean = validate(ctx, target)
        assert clean.passed, clean.render()
        assert {t.comparison["method"] for t in clean.tables} == {"in-database (mysql)"}
        planted = set()
        with target.begin() as connection:
            for plant in (changed_amount, deleted_row, extra_row, changed_email, shifted_time):
                planted |= plant(connection)
        assert found(validate(ctx, target)) == planted
    finally:
        target.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def test_worker_processes_give_the_same_report_as_one_process(loaded):
    ctx, target = loaded
    with target.begin() as connection:
        changed_email(connection)
        deleted_row(connection)
        changed_amount(connection)
    alone = validate(ctx, target, workers=1).to_dict()
    parallel = validate(ctx, target, workers=2).to_dict()
    assert (alone.pop("workers"), parallel.pop("workers")) == (1, 2)
    alone.pop("seconds"), parallel.pop("seconds")
    assert parallel == alone and alone["differences"] == 3
