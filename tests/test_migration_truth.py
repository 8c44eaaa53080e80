"""The loaded target against the generator's ground truth: people, names, amounts, times.

One ci demo (seed 7, 2,000 orders) is built in a temporary project and fully loaded with
``loader.load``, as tests/test_loading.py does. ``work/ci/truth.db`` holds what the generator
knows and the product never reads: ``people`` (one row per real person, with first and last name,
normalized email, E.164 phone) and ``person_sources`` (every source customer record → its person).
Each expectation below is recomputed from the sources or the truth by its own means (strptime,
zoneinfo, Decimal arithmetic), never through the mapping's transforms.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from runbook_demo import target_schema as schema
from runbook_demo.build import build_demo
from runbook_lib.config.params import load_params
from runbook_lib.load import loader
from runbook_lib.run.context import StageContext

SHANGHAI, NEW_YORK = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")
A_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S")
CENT = Decimal("0.01")


class Loaded:
    """The loaded ci demo: query helpers over the target, the sources and the truth."""

    def __init__(self, project) -> None:
        self.summary = build_demo("ci", project)
        self.ctx = StageContext(load_params("ci", project_root=project), None)
        self.report = loader.load(
            self.ctx.spec,
            self.ctx.source_engines(),
            self.ctx.target_engine(),
            run_id="truth-run",
            mode="full",
            chunk_size=300,
            max_reject_rate=0.05,
            target_label="target",
        )
        self.truth = sa.create_engine(f"sqlite:///{project / 'work' / 'ci' / 'truth.db'}")
        self.spec_data = yaml.safe_load(self.ctx.params.mapping_path.read_text(encoding="utf-8"))

    def rows(self, where: str, sql: str) -> list[dict]:
        engines = {"target": self.ctx.target_engine(), "truth": self.truth}
        engine = engines.get(where) or self.ctx.source_engines()[where]
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(sa.text(sql)).mappings()]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Loaded:
    from conftest import copy_project

    return Loaded(copy_project(tmp_path_factory.mktemp("truth") / "project"))


def person_of(loaded: Loaded) -> dict[tuple[str, str], int]:
    rows = loaded.rows("truth", "SELECT person_id, source_system, source_key FROM person_sources")
    return {(r["source_system"], r["source_key"]): r["person_id"] for r in rows}


def customer_of(loaded: Loaded) -> dict[tuple[str, str], int]:
    rows = loaded.rows("target", "SELECT source_system, source_key, customer_id FROM customer_xref")
    return {(r["source_system"], r["source_key"]): r["customer_id"] for r in rows}


def test_the_load_passed_and_every_source_customer_has_a_crosswalk_row(loaded):
    assert loaded.report.passed, loaded.report.render()
    assert set(customer_of(loaded)) == set(person_of(loaded))


def test_one_customer_per_real_person_across_the_three_systems(loaded):
    persons, customers = person_of(loaded), customer_of(loaded)
    customers_of_person, persons_of_customer = defaultdict(set), defaultdict(set)
    for record, person in persons.items():
        customers_of_person[person].add(customers[record])
        persons_of_customer[customers[record]].add(person)

    assert all(len(c) == 1 for c in customers_of_person.values())
    assert all(len(p) == 1 for p in persons_of_customer.values())
    people = loaded.rows("truth", "SELECT COUNT(*) AS n FROM people")[0]["n"]
    target = loaded.rows("target", "SELECT COUNT(*) AS n FROM customers")[0]["n"]
    assert target == people == loaded.summary.seeded_defects["duplicates"]["distinct_persons"]


def _customers_with_truth(loaded: Loaded) -> list[tuple[dict, dict]]:
    persons = person_of(loaded)
    truth = {r["person_id"]: r for r in loaded.rows("truth", "SELECT * FROM people")}
    customers = loaded.rows("target", "SELECT * FROM customers")
    return [(c, truth[persons[(c["source_system"], c["source_key"])]]) for c in customers]


def test_names_are_split_as_the_truth_has_them_chinese_and_western(loaded):
    pairs = _customers_with_truth(loaded)

    wrong = [
        (c["customer_id"], c["first_name"], c["last_name"])
        for c, p in pairs
        if (c["first_name"], c["last_name"]) != (p["first_name"], p["last_name"])
    ]
    assert wrong == []
    kinds = loaded.summary.seeded_defects["name_kinds"]["legacy_a.users.full_name"]
    assert min(kinds.values()) >= 2  # every kind of name was there to be split
    compound = {"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐"}
    assert any(c["last_name"] in compound for c, _p in pairs)
    assert any(c["last_name"] is None for c, _p in pairs)  # one-word names
    assert any(" " in (c["first_name"] or "") for c, _p in pairs)  # three or more parts


def test_emails_are_normalized_and_phones_e164_as_in_the_truth(loaded):
    pairs = _customers_with_truth(loaded)

    assert [c["customer_id"] for c, p in pairs if c["email"] != p["email_normalized"]] == []
    assert [c["customer_id"] for c, p in pairs if c["phone"] != p["phone_e164"]] == []


def test_order_amounts_are_exact_decimals_in_major_units(loaded):
    a_source = {str(r["id"]): r for r in loaded.rows("legacy_a", "SELECT id, amount FROM orders")}
    b_source = {
        r["so_number"]: r
        for r in loaded.rows("legacy_b", "SELECT so_number, amount_cents FROM sales_orders")
    }
    orders = loaded.rows("target", "SELECT source_system, source_key, currency, amount FROM orders")

    for order in orders:
        amount = Decimal(str(order["amount"]))
        if order["source_system"] == "legacy_a":
            assert amount == Decimal(str(a_source[order["source_key"]]["amount"])), order
            assert order["currency"] == "CNY"
        else:
            cents = b_source[order["source_key"]]["amount_cents"]
            assert amount == Decimal(cents) / 100, order
            assert order["currency"] == "USD"
        assert amount == amount.quantize(CENT)
    assert len(orders) == loaded.rows("target", "SELECT COUNT(*) AS n FROM orders")[0]["n"] > 0


def test_order_lines_add_up_to_their_order_and_convert_at_the_approved_rate(loaded):
    rate = Decimal(loaded.spec_data["x-rates"]["reporting_cny"]["rates"]["USD"])
    lines = loaded.rows(
        "target",
        "SELECT o.order_id, o.amount, o.source_system, o.source_key, i.quantity, i.unit_price, "
        "i.unit_price_cny FROM order_items i JOIN orders o ON o.order_id = i.order_id",
    )
    totals, amounts, systems = defaultdict(Decimal), {}, {}
    for line in lines:
        price, cny = Decimal(str(line["unit_price"])), Decimal(str(line["unit_price_cny"]))
        expected = price if line["source_system"] == "legacy_a" else price * rate
        assert cny == expected.quantize(CENT, rounding=ROUND_HALF_EVEN), line
        totals[line["order_id"]] += line["quantity"] * price
        amounts[line["order_id"]] = Decimal(str(line["amount"]))
        systems[line["order_id"]] = (line["source_system"], line["source_key"])
    source_lines = defaultdict(int)
    for r in loaded.rows("legacy_a", "SELECT order_id FROM order_items"):
        source_lines[("legacy_a", str(r["order_id"]))] += 1
    for r in loaded.rows("legacy_b", "SELECT so_number FROM sales_order_lines"):
        source_lines[("legacy_b", r["so_number"])] += 1
    loaded_lines = defaultdict(int)
    for line in lines:
        loaded_lines[line["order_id"]] += 1
    complete = [o for o in totals if loaded_lines[o] == source_lines[systems[o]]]
    assert len(complete) > len(totals) * 0.95
    assert [o for o in complete if totals[o] != amounts[o]] == []


def _local(text: str, zone: ZoneInfo) -> datetime:
    for fmt in A_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=zone).astimezone(UTC)
        except ValueError:
            continue
    raise AssertionError(f"no format reads {text!r}")


def test_order_and_shipment_times_are_utc_instants(loaded):
    a_times = {
        str(r["id"]): r
        for r in loaded.rows("legacy_a", "SELECT id, order_time, pay_time FROM orders")
    }
    b_times = {
        r["so_number"]: r["created_epoch"]
        for r in loaded.rows("legacy_b", "SELECT so_number, created_epoch FROM sales_orders")
    }
    with loaded.ctx.target_engine().connect() as connection:  # typed: UtcDateTime reads aware
        rows = connection.execute(sa.select(schema.orders)).mappings().all()
        shipments = connection.execute(sa.select(schema.shipments)).mappings().all()

    for order in rows:
        assert order["ordered_at"].tzinfo is UTC
        if order["source_system"] == "legacy_a":
            source = a_times[order["source_key"]]
            assert order["ordered_at"] == _local(source["order_time"], SHANGHAI)
            if source["pay_time"]:
                assert order["paid_at"] == _local(source["pay_time"], SHANGHAI)
        else:
            expected = datetime.fromtimestamp(b_times[order["source_key"]], UTC)
            assert order["ordered_at"] == expected
    shipped = {
        str(r["id"]): r["shipped_at"]
        for r in loaded.rows("legacy_a", "SELECT id, shipped_at FROM logistics")
    }
    for shipment in shipments:
        assert shipment["shipped_at"] == _local(shipped[shipment["source_key"]], SHANGHAI)


def test_zero_delivery_dates_load_as_no_date_and_other_deliveries_as_utc(loaded):
    delivered = {
        str(r["id"]): r["delivered_at"]
        for r in loaded.rows("legacy_a", "SELECT id, delivered_at FROM logistics")
    }
    with loaded.ctx.target_engine().connect() as connection:
        shipments = connection.execute(sa.select(schema.shipments)).mappings().all()

    zero = 0
    for shipment in shipments:
        source = delivered[shipment["source_key"]]
        if source == "0000-00-00 00:00:00":
            zero += 1
            assert shipment["delivered_at"] is None
        elif source is None:
            assert shipment["delivered_at"] is None
        else:
            assert shipment["delivered_at"] == _local(source, SHANGHAI)
    # every planted zero date reached the target (none sat on a quarantined shipment)
    assert zero == loaded.summary.seeded_defects["zero_dates"]["legacy_a.logistics.delivered_at"]


def test_product_flags_load_as_booleans(loaded):
    flags = {
        r["sku"]: r["is_active"]
        for r in loaded.rows("legacy_a", "SELECT sku, is_active FROM products")
    }
    with loaded.ctx.target_engine().connect() as connection:
        products = connection.execute(sa.select(schema.products)).mappings().all()

    assert len(products) == len(flags)
    assert {p["sku"]: p["is_active"] for p in products} == {s: f == 1 for s, f in flags.items()}
    assert {type(p["is_active"]) for p in products} == {bool}
    recorded = loaded.summary.seeded_defects["flags"]["legacy_a.products.is_active"]
    assert sum(p["is_active"] for p in products) == recorded["1"]


def test_customer_creation_times_are_the_survivors_local_times_in_utc(loaded):
    users = {
        str(r["id"]): r["created_at"]
        for r in loaded.rows("legacy_a", "SELECT id, created_at FROM users")
    }
    registered = {
        str(r["customer_id"]): r["registered"]
        for r in loaded.rows("legacy_b", "SELECT customer_id, registered FROM customers")
    }
    with loaded.ctx.target_engine().connect() as connection:
        customers = connection.execute(sa.select(schema.customers)).mappings().all()

    for c in customers:
        if c["source_system"] == "legacy_a":
            assert c["created_at"] == _local(users[c["source_key"]], SHANGHAI)
        elif c["source_system"] == "legacy_b":
            day = datetime.strptime(registered[c["source_key"]], "%m/%d/%Y")
            assert c["created_at"] == day.replace(tzinfo=NEW_YORK).astimezone(UTC)
        else:
            assert c["created_at"] is None  # the CRM never recorded when


def test_orders_of_every_system_point_at_the_person_who_placed_them(loaded):
    persons, customers = person_of(loaded), customer_of(loaded)
    a = {
        str(r["id"]): str(r["user_id"])
        for r in loaded.rows("legacy_a", "SELECT id, user_id FROM orders")
    }
    b = {
        r["so_number"]: str(r["customer_id"])
        for r in loaded.rows("legacy_b", "SELECT so_number, customer_id FROM sales_orders")
    }
    orders = loaded.rows("target", "SELECT source_system, source_key, customer_id FROM orders")

    for order in orders:
        placed_by = (
            ("legacy_a", a[order["source_key"]])
            if order["source_system"] == "legacy_a"
            else ("legacy_b", b[order["source_key"]])
        )
        assert order["customer_id"] == customers[placed_by]
        person = persons[placed_by]
        assert {customers[r] for r, p in persons.items() if p == person} == {order["customer_id"]}
