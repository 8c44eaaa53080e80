"""Foreign keys suspended for a PostgreSQL load come back validated, after a finish, a resume or a
rollback, and a key the data breaks is named rather than silently dropped."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from runbook_demo.build import build_demo
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.params import load_params
from runbook_lib.errors import GateFailedError
from runbook_lib.load import backup, foreign_keys, loader
from runbook_lib.run.context import StageContext

pytestmark = pytest.mark.postgres


def _keys(engine: sa.Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f'"
            )
        ).all()
    return {tuple(row) for row in rows}


@pytest.fixture
def family(postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE parent (id int PRIMARY KEY)")
        connection.exec_driver_sql(
            'CREATE TABLE "Child Rows" (id int PRIMARY KEY, '
            "parent_id int CONSTRAINT child_parent REFERENCES parent (id) ON DELETE CASCADE)"
        )
        connection.exec_driver_sql("INSERT INTO parent VALUES (1), (2)")
    yield engine
    engine.dispose()


def test_suspend_records_then_drops_and_reinstate_validates_and_forgets(family):
    before = _keys(family)
    assert len(before) == 1
    suspended = foreign_keys.suspend(family, ["parent", "Child Rows"], "run-1")
    assert [k.constraint_name for k in suspended] == ["child_parent"]
    assert _keys(family) == set()
    with family.connect() as connection:
        assert foreign_keys.pending(connection, "run-1") == suspended
    assert foreign_keys.suspend(family, ["Child Rows"], "run-1") == []  # a resume: nothing new
    with family.begin() as connection:
        connection.exec_driver_sql('INSERT INTO "Child Rows" VALUES (10, 1), (11, 2)')
        assert foreign_keys.reinstate(connection, "run-1") == suspended
    assert _keys(family) == before  # same definition, ON DELETE CASCADE included
    with family.connect() as connection:
        assert foreign_keys.pending(connection, "run-1") == []


def test_a_key_the_data_breaks_is_named_and_stays_recorded(family):
    foreign_keys.suspend(family, ["Child Rows"], "run-2")
    with family.begin() as connection:
        connection.exec_driver_sql('INSERT INTO "Child Rows" VALUES (10, 1), (11, 99)')
    with pytest.raises(GateFailedError, match=r'"Child Rows"\.child_parent does not hold'):
        with family.begin() as connection:
            foreign_keys.reinstate(connection, "run-2")
    assert _keys(family) == set()
    with family.connect() as connection:
        assert [k.constraint_name for k in foreign_keys.pending(connection, "run-2")] == [
            "child_parent"
        ]


@pytest.fixture
def demo_target(project, postgres_url):
    """The ci demo's sources and an empty target schema on PostgreSQL."""
    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    target = sa.create_engine(postgres_url)
    create_target_schema(target)
    yield ctx, target
    target.dispose()


def test_a_full_load_into_postgresql_ends_with_every_key_back(demo_target):
    ctx, target = demo_target
    before = _keys(target)
    assert len(before) >= 6  # customers' crosswalk, orders, items, carts, shipments, events
    report = loader.load(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id="run-fk",
        mode="full",
        chunk_size=500,
        max_reject_rate=0.05,
        target_label="target",
    )
    assert report.passed
    assert _keys(target) == before
    with target.connect() as connection:
        assert foreign_keys.pending(connection, "run-fk") == []


def test_rollback_of_a_load_that_died_with_its_keys_suspended_restores_them(demo_target):
    ctx, target = demo_target
    before = _keys(target)
    tables = ctx.spec.touched_tables()
    snap = backup.snapshot(target, tables, "run-dead")
    # the load's first steps, then it dies: keys suspended, some rows in
    foreign_keys.suspend(target, tables, "run-dead")
    with target.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO orders (order_id, source_system, source_key, order_no, customer_id, "
            "status, currency, amount, ordered_at) VALUES "
            "(1, 'legacy_a', '1', 'A-00000001', 424242, 'paid', 'CNY', 1.00, now())"
        )
    assert _keys(target) == set()
    report = backup.restore(target, snap)
    assert report.passed
    assert _keys(target) == before
