"""Loader, validation and rollback on the ci demo, in SQLite and (marked) PostgreSQL targets.

Each test builds its own ci demo in a temp project (about a second), loads it, and checks the
outcome against the generator's own record of the defects it planted.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from runbook_demo.build import build_demo
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.params import load_params
from runbook_lib.errors import RunbookError
from runbook_lib.load import backup, loader
from runbook_lib.run import stages
from runbook_lib.run.context import StageContext
from runbook_lib.validate.validation import validate as run_validation


def _context(project) -> StageContext:
    return StageContext(load_params("ci", project_root=project), None)


def _full_load(ctx: StageContext, target: sa.Engine | None = None):
    target = target or ctx.target_engine()
    return loader.load(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id="run-1",
        mode="full",
        chunk_size=300,
        max_reject_rate=0.05,
        target_label="target",
    )


def _validate(ctx: StageContext, target: sa.Engine | None = None, sample_percent=None):
    return run_validation(
        ctx.spec,
        ctx.source_engines(),
        target or ctx.target_engine(),
        run_id="run-1",
        target_label="target",
        chunk_size=300,
        max_unexplained_differences=0,
        sample_percent=sample_percent,
    )


@pytest.fixture
def loaded(project):
    summary = build_demo("ci", project)
    ctx = _context(project)
    report = _full_load(ctx)
    return ctx, summary, report


def _by_source(report) -> dict:
    return {f"{r['source_system']}.{r['source_table']}": r for r in report.to_dict()["tables"]}


def test_full_load_accounts_for_every_planted_defect(loaded):
    _ctx, summary, report = loaded
    defects = summary.seeded_defects
    tables = _by_source(report)
    assert report.passed
    assert all(t["balanced"] for t in tables.values())
    merged = sum(
        tables[n]["merged"]
        for n in ("legacy_a.users", "legacy_b.customers", "crm.old_crm_customers")
    )
    assert merged == defects["duplicates"]["duplicate_records"]
    a_orders = tables["legacy_a.orders"]["quarantined_by_rule"]
    assert a_orders["orphan_customer_id"] == defects["orphans"]["legacy_a.orders"]
    assert a_orders["missing_required"] == sum(
        v["orders"] for v in defects["missing_required"].values()
    )
    assert a_orders["unmapped_value"] == sum(
        defects["unknown_status_codes"]["legacy_a.orders.status"].values()
    )
    assert tables["legacy_b.sales_orders"]["quarantined_by_rule"] == {
        "orphan_customer_id": defects["orphans"]["legacy_b.sales_orders"]
    }
    assert (
        tables["legacy_a.order_items"]["quarantined_by_rule"]["negative_quantity"]
        == defects["negative_quantities"]["legacy_a.order_items"]
    )
    assert (
        tables["legacy_b.sales_order_lines"]["quarantined_by_rule"]["negative_quantity"]
        == defects["negative_quantities"]["legacy_b.sales_order_lines"]
    )


def test_clean_load_validates_with_zero_differences_and_balanced_accounting(loaded):
    ctx, _summary, _report = loaded
    result = _validate(ctx)
    assert result.passed, result.render()
    assert result.differences == 0
    assert all(t.balanced for t in result.tables)


def test_every_quarantined_row_keeps_its_raw_row_and_rule(loaded):
    ctx, _summary, report = loaded
    with ctx.target_engine().connect() as connection:
        rows = connection.execute(
            sa.text("SELECT rule, raw_row, message FROM runbook_rejects")
        ).all()
    assert len(rows) == report.quarantined
    assert all(rule and raw.startswith("{") and message for rule, raw, message in rows)


@pytest.mark.parametrize(
    "tamper, kind",
    [
        (
            "UPDATE orders SET amount = '1.00' WHERE source_key = '{key}' AND source_system = 'legacy_a'",
            "changed",
        ),
        (
            "DELETE FROM order_items WHERE order_id = -1 OR (source_key = '{key}' AND source_system = 'legacy_a')",
            "missing",
        ),
        (
            "UPDATE customers SET email = 'someone.else@example.com' "
            "WHERE source_key = '{key}' AND source_system = 'legacy_a'",
            None,
        ),
    ],
    ids=["changed-amount", "deleted-row", "changed-email"],
)
def test_tampered_target_fails_validation_naming_the_exact_key(loaded, tamper, kind):
    ctx, _summary, _report = loaded
    table = {"changed": "orders", "missing": "order_items", None: "customers"}[kind]
    order = "customer_id" if table == "customers" else "source_key"
    with ctx.target_engine().begin() as connection:
        key = connection.execute(
            sa.text(
                f"SELECT source_key FROM {table} WHERE source_system = 'legacy_a' ORDER BY {order} LIMIT 1 OFFSET 5"
            )
        ).scalar_one()
        connection.execute(sa.text(tamper.format(key=key)))
    result = _validate(ctx)
    kind = kind or "changed"
    assert not result.passed
    found = [
        (d.table, d.source_system, d.source_key, d.kind)
        for t in result.tables
        for d in t.differences
    ]
    assert found == [(table, "legacy_a", key, kind)]


def test_extra_and_time_shifted_rows_are_named(loaded):
    ctx, _summary, _report = loaded
    engine = ctx.target_engine()
    with engine.begin() as connection:
        row = (
            connection.execute(sa.text("SELECT * FROM shipments ORDER BY shipment_id LIMIT 1"))
            .mappings()
            .one()
        )
        extra = dict(row) | {"shipment_id": 10**6, "source_key": "999999"}
        connection.execute(
            sa.text(
                "INSERT INTO shipments ("
                + ", ".join(extra)
                + ") VALUES ("
                + ", ".join(f":{k}" for k in extra)
                + ")"
            ),
            extra,
        )
    metadata = sa.MetaData()
    shipments = sa.Table("shipments", metadata, autoload_with=engine)
    with engine.begin() as connection:
        shifted = (
            connection.execute(sa.select(shipments).where(shipments.c.shipment_id == 3))
            .mappings()
            .one()
        )
        connection.execute(
            shipments.update()
            .where(shipments.c.shipment_id == 3)
            .values(shipped_at=shifted["shipped_at"] + timedelta(hours=8))
        )
    result = _validate(ctx)
    found = {(d.source_key, d.kind) for t in result.tables for d in t.differences}
    assert found == {("999999", "extra"), (shifted["source_key"], "changed")}
    assert not result.passed


def test_full_load_refuses_a_target_holding_another_runs_data(loaded):
    ctx, _summary, _report = loaded
    with pytest.raises(RunbookError, match="already holds data in products"):
        loader.load(
            ctx.spec,
            ctx.source_engines(),
            ctx.target_engine(),
            run_id="run-2",
            mode="full",
            chunk_size=300,
            max_reject_rate=0.05,
            target_label="target",
        )


def test_rerunning_a_finished_load_of_the_same_run_changes_nothing(loaded):
    ctx, _summary, report = loaded
    with ctx.target_engine().connect() as connection:
        before = {
            t: backup.table_digest(connection, sa.Table(t, sa.MetaData(), autoload_with=connection))
            for t in ctx.spec.touched_tables()
        }
    again = _full_load(ctx)

    def counts(load_report):
        return [
            {k: v for k, v in t.items() if k != "seconds"} for t in load_report.to_dict()["tables"]
        ]

    assert counts(again) == counts(report)
    with ctx.target_engine().connect() as connection:
        after = {
            t: backup.table_digest(connection, sa.Table(t, sa.MetaData(), autoload_with=connection))
            for t in ctx.spec.touched_tables()
        }
    assert after == before


def test_rollback_restores_pre_existing_rows_exactly_and_proves_it(project):
    build_demo("ci", project)
    ctx = _context(project)
    engine = ctx.target_engine()
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO products (sku, name, currency, price, source_system, source_key) "
                "VALUES ('KEEP-1', 'kept product', 'EUR', '9.99', 'manual', 'KEEP-1')"
            )
        )
    tables = ctx.spec.touched_tables()
    snap = backup.snapshot(engine, tables, "run-1")
    assert snap.rows["products"] == 1
    with (
        engine.begin() as connection
    ):  # the load refuses a non-empty target: clear the way as an operator would
        connection.execute(sa.text("DELETE FROM products"))
    _full_load(ctx)
    restored = backup.restore(engine, snap)
    assert restored.passed, restored.render()
    assert restored.actual == snap.sha256
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT sku FROM products")).scalars().all() == ["KEEP-1"]
        assert connection.execute(sa.text("SELECT count(*) FROM runbook_rejects")).scalar_one() == 0


def test_restore_detects_a_snapshot_that_was_tampered_with(project):
    build_demo("ci", project)
    ctx = _context(project)
    engine = ctx.target_engine()
    snap = backup.snapshot(engine, ctx.spec.touched_tables(), "run-1")
    assert snap.strategy == "sqlite_backup_api"
    backup_file = snap.locations["products"].rsplit("#", 1)[0]
    with sqlite3.connect(backup_file) as copy:
        copy.execute(
            "INSERT INTO products (sku, name, currency, source_system, source_key) "
            "VALUES ('X', 'planted', 'CNY', 'manual', 'X')"
        )
    result = backup.restore(engine, snap)
    assert not result.passed and result.mismatched == ["products"]


def test_trial_sample_is_deterministic_and_referentially_whole(project):
    build_demo("ci", project)
    ctx = _context(project)
    digests = []
    for _ in range(2):
        stages.reset_scratch_target(ctx)
        report = loader.load(
            ctx.spec,
            ctx.source_engines(),
            ctx.trial_engine(),
            run_id="run-1",
            mode="trial",
            chunk_size=300,
            max_reject_rate=0.05,
            target_label="trial",
            sample_percent=20,
        )
        assert report.passed
        with ctx.trial_engine().connect() as connection:
            digests.append(
                backup.table_digest(
                    connection, sa.Table("orders", sa.MetaData(), autoload_with=connection)
                )
            )
            # every sampled order item's order, and every order's customer, came along
            assert (
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM order_items i "
                        "LEFT JOIN orders o ON o.order_id = i.order_id WHERE o.order_id IS NULL"
                    )
                ).scalar_one()
                == 0
            )
            orders = connection.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    assert digests[0] == digests[1]
    assert 0 < orders < 2000
    assert _validate(ctx, ctx.trial_engine(), sample_percent=20).passed


def test_amounts_are_exact_decimals_in_major_units(loaded):
    ctx, _summary, _report = loaded
    orders = sa.Table("orders", sa.MetaData(), autoload_with=ctx.target_engine())
    with ctx.target_engine().connect() as connection:
        b_amount, b_key = connection.execute(
            sa.select(orders.c.amount, orders.c.source_key)
            .where(orders.c.source_system == "legacy_b")
            .limit(1)
        ).one()
    with ctx.source_engines()["legacy_b"].connect() as connection:
        cents = connection.execute(
            sa.text("SELECT amount_cents FROM sales_orders WHERE so_number = :k"), {"k": b_key}
        ).scalar_one()
    assert Decimal(b_amount) == Decimal(cents) / 100


@pytest.mark.postgres
def test_load_validate_and_rollback_into_postgresql(project, postgres_url):
    build_demo("ci", project)
    ctx = _context(project)
    target = sa.create_engine(postgres_url)
    try:
        create_target_schema(target)
        snap = backup.snapshot(target, ctx.spec.touched_tables(), "run-1")
        report = _full_load(ctx, target)
        assert report.passed
        result = _validate(ctx, target)
        assert result.passed, result.render()
        with target.begin() as connection:
            key = connection.execute(
                sa.text(
                    "SELECT source_key FROM orders WHERE source_system='legacy_b' ORDER BY 1 LIMIT 1"
                )
            ).scalar_one()
            connection.execute(
                sa.text("UPDATE orders SET amount = amount + 0.01 WHERE source_key = :k"),
                {"k": key},
            )
        tampered = _validate(ctx, target)
        assert [(d.source_key, d.kind) for t in tampered.tables for d in t.differences] == [
            (key, "changed")
        ]
        restored = backup.restore(target, snap)
        assert restored.passed
    finally:
        target.dispose()


@pytest.mark.parametrize("server", [None, pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_row_the_target_cannot_hold_is_quarantined_not_fatal(project, server, request):
    build_demo("ci", project)
    ctx = _context(project)
    with ctx.source_engines()["legacy_a"].begin() as connection:
        connection.execute(
            sa.text("UPDATE users SET full_name = :n WHERE id = 7"),
            {"n": "Bartholomew" * 12 + " Smith"},
        )
    target = ctx.target_engine()
    if server:
        target = sa.create_engine(request.getfixturevalue("postgres_url"))
        create_target_schema(target)
    report = _full_load(ctx, target)
    users = _by_source(report)["legacy_a.users"]
    assert users["quarantined_by_rule"] == {"target_too_long": 1}
    assert users["balanced"] and report.passed
    with target.connect() as connection:
        message = connection.execute(
            sa.text("SELECT message FROM runbook_rejects WHERE rule = 'target_too_long'")
        ).scalar_one()
    assert message == "first_name: 132 characters, the target allows 64"
