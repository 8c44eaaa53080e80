"""Every mapping kind of the issue is expressed by the shipped spec, and each new spec error kind.

The shipped ``params/mapping/demo.yaml`` is read as data to show each kind is declared (not
hard-coded anywhere); error variants change one thing in it and check it against the ``ci``
demo's live schemas, expecting exactly one problem at an exact YAML path (as in
tests/test_mapping_spec.py, whose helpers these mirror).
"""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
import yaml

from runbook_demo.target_schema import TARGET_METADATA
from runbook_lib.config.connections import Connections
from runbook_lib.config.params import load_params
from runbook_lib.errors import MappingSpecError
from runbook_lib.mapping.check import check_spec
from runbook_lib.mapping.model import load_spec
from runbook_lib.run.context import StageContext

A_ORDERS = "targets.orders.sources.legacy_a.orders"
A_ITEMS = "targets.order_items.sources.legacy_a.order_items"
MERGE = "targets.customers.merge"


@pytest.fixture(scope="module")
def shipped(ci_project) -> dict:
    params = load_params("ci", project_root=ci_project)
    return yaml.safe_load(params.mapping_path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def schemas(ci_project, ci_demo):
    params = load_params("ci", project_root=ci_project)
    systems = load_spec(params.mapping_path).spec.systems
    with Connections(params) as connections:
        sources = {system: sa.inspect(connections.engine(name)) for system, name in systems.items()}
        yield sources, sa.inspect(connections.engine("target"))


@pytest.fixture
def variant(shipped, schemas, tmp_path):
    def build(mutate):
        data = yaml.safe_load(yaml.safe_dump(shipped, sort_keys=False))
        mutate(data)
        path = tmp_path / "variant.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return check_spec(load_spec(path), *schemas)

    return build


def columns(data: dict, target: str, source: str) -> dict:
    return data["targets"][target]["sources"][source]["columns"]


def only_problem(check, path: str, fragment: str) -> None:
    assert len(check.problems) == 1, check.problems
    assert check.problems[0][0] == path
    assert fragment in check.problems[0][1], check.problems[0][1]


# --- the shipped spec expresses every kind -------------------------------------------------------


def test_rename_and_cast_one_to_one(shipped):
    products = columns(shipped, "products", "legacy_a.products")
    assert products["stock"] == {"from": "stock"}  # a plain rename, types compatible
    assert products["price"]["transform"] == {"money": {"unit": "major"}}  # a cast


def test_one_column_into_several_splits_names(shipped):
    users = columns(shipped, "customers", "legacy_a.users")
    crm = columns(shipped, "customers", "crm.old_crm_customers")
    assert users["first_name, last_name"] == {"from": "full_name", "transform": "split_name"}
    assert crm["first_name, last_name"]["transform"] == "split_name"


def test_two_order_systems_feed_one_table_with_numbers_that_cannot_collide(shipped):
    sources = shipped["targets"]["orders"]["sources"]
    assert set(sources) == {"legacy_a.orders", "legacy_b.sales_orders"}
    a_number = sources["legacy_a.orders"]["columns"]["order_no"]["transform"]
    assert a_number == {"prefix": {"prefix": "A-", "width": 8}}
    # legacy B numbers are SO-000123: no A-prefixed number can equal one
    assert sources["legacy_b.sales_orders"]["columns"]["order_no"]["from"] == "so_number"
    unique = next(
        c for c in TARGET_METADATA.tables["orders"].constraints if c.name == "uq_orders_source"
    )
    assert {column.name for column in unique.columns} == {"source_system", "source_key"}


def test_three_customer_tables_merge_with_match_keys_and_per_field_survivorship(shipped):
    customers = shipped["targets"]["customers"]
    assert len(customers["sources"]) == 3
    merge = customers["merge"]
    assert merge["crosswalk"] == "customer_xref"
    assert merge["match_on"] == ["email", "phone"]
    assert merge["survivorship"] == ["legacy_a", "legacy_b", "crm"]
    assert merge["survivorship_by_field"]["first_name"][0] == "legacy_b"


def test_lookups_map_both_status_vocabularies_to_one(shipped):
    a = columns(shipped, "orders", "legacy_a.orders")["status"]["transform"]["map_values"]
    b = columns(shipped, "orders", "legacy_b.sales_orders")["status"]["transform"]["map_values"]
    assert set(a["values"].values()) == set(b["values"].values())


def test_derived_values_include_a_currency_conversion_by_the_specs_rate_table(shipped):
    rates = shipped["x-rates"]["reporting_cny"]
    assert rates["to"] == "CNY" and "USD" in rates["rates"]
    a = columns(shipped, "order_items", "legacy_a.order_items")["unit_price_cny"]
    b = columns(shipped, "order_items", "legacy_b.sales_order_lines")["unit_price_cny"]
    assert a["transform"]["convert_amount"]["currency"] == "CNY"
    assert b["transform"]["convert_amount"] == rates | {"currency": "USD", "unit": "minor"}


def test_ignores_and_filters_are_named_with_reasons(shipped):
    users = shipped["targets"]["customers"]["sources"]["legacy_a.users"]
    assert all(reason.strip() for reason in users["ignore"].values())
    assert shipped["ignore_tables"]["legacy_a.inventory_log"]["reason"]
    carts = shipped["targets"]["carts"]["sources"]["legacy_a.carts"]
    assert carts["filters"][0]["name"] == "stale_carts" and carts["filters"][0]["reason"]


def test_a_source_column_feeding_two_targets_is_one_coverage_row(variant):
    check = variant(lambda data: None)

    assert check.passed, check.problems
    rows = Counter((r.system, r.table, r.column) for r in check.coverage if r.status == "mapped")
    assert set(rows.values()) == {1}
    price = next(r for r in check.coverage if (r.table, r.column) == ("order_items", "unit_price"))
    assert price.target == "order_items.unit_price; order_items.unit_price_cny"
    assert "convert_amount" in price.detail


# --- spec errors, each at its YAML path -----------------------------------------------------------


def test_a_chain_that_never_casts_text_into_a_datetime_is_refused(variant):
    check = variant(
        lambda d: columns(d, "orders", "legacy_a.orders")["paid_at"].update(transform="strip")
    )

    only_problem(
        check,
        f"{A_ORDERS}.columns.paid_at",
        "source pay_time is text and strip gives text, target paid_at is datetime: add a "
        "transform that casts it (parse_datetime or epoch_to_utc)",
    )


def test_a_lookup_giving_text_into_an_integer_column_is_refused(variant):
    def quantity_as_words(data):
        columns(data, "order_items", "legacy_a.order_items")["quantity"]["transform"] = {
            "map_values": {"values": {1: "one", 2: "two"}}
        }

    check = variant(quantity_as_words)

    only_problem(
        check, f"{A_ITEMS}.columns.quantity", "map_values gives text, target quantity is integer"
    )


def test_a_constant_of_the_wrong_type_is_refused(variant):
    def constant_quantity(data):
        items = data["targets"]["order_items"]["sources"]["legacy_a.order_items"]
        items["columns"]["quantity"] = {"value": "three"}
        items["ignore"] = {"quantity": "kept out of this test"}

    check = variant(constant_quantity)

    only_problem(check, f"{A_ITEMS}.columns.quantity", "value 'three' is text, target quantity")


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (
            lambda c: c["paid_at"].update(
                transform={
                    "parse_datetime": {"formats": ["%Y-%m-%d %H:%M:%S"], "tz": "Asia/Shangai"}
                }
            ),
            f"{A_ORDERS}.columns.paid_at.transform",
            "parse_datetime: 'Asia/Shangai' is not an IANA time zone",
        ),
        (
            lambda c: c["amount"]["transform"][1]["money"].update(unit="cents"),
            f"{A_ORDERS}.columns.amount.transform[1]",
            "money: unit must be 'major' or 'minor'",
        ),
    ],
    ids=["time-zone", "money-unit"],
)
def test_a_bad_option_value_is_found_before_any_data_moves(variant, mutate, path, fragment):
    check = variant(lambda d: mutate(columns(d, "orders", "legacy_a.orders")))

    only_problem(check, path, fragment)


def test_a_conversion_without_its_rate_table_is_refused(variant):
    def no_rates(data):
        step = columns(data, "order_items", "legacy_b.sales_order_lines")["unit_price_cny"]
        del step["transform"]["convert_amount"]["rates"]

    check = variant(no_rates)

    only_problem(
        check,
        "targets.order_items.sources.legacy_b.sales_order_lines.columns.unit_price_cny.transform",
        "give the options currency, to and rates",
    )


@pytest.mark.parametrize(
    ("field", "order", "path_end", "fragment"),
    [
        (
            "nickname",
            ["legacy_b"],
            "nickname",
            "'nickname' is not a mergeable column of the target",
        ),
        ("customer_id", ["legacy_b"], "customer_id", "is not a mergeable column"),
        ("email", ["crm", "legacy_a"], "email", "'email' is a match column"),
        ("last_name", ["legacy_c"], "last_name", "unknown system 'legacy_c'"),
        ("last_name", ["legacy_b", "legacy_b"], "last_name", "a system is listed twice"),
    ],
    ids=["unknown-field", "id-column", "match-column", "unknown-system", "twice"],
)
def test_survivorship_by_field_errors_name_the_field(variant, field, order, path_end, fragment):
    check = variant(
        lambda d: d["targets"]["customers"]["merge"]["survivorship_by_field"].update({field: order})
    )

    only_problem(check, f"{MERGE}.survivorship_by_field.{path_end}", fragment)


def test_a_watermark_on_a_missing_column_is_named(variant):
    check = variant(
        lambda d: d["targets"]["user_events"]["sources"]["legacy_a.user_events"].update(
            watermark={"column": "changed_at"}
        )
    )

    only_problem(
        check,
        "targets.user_events.sources.legacy_a.user_events.watermark.column",
        "no column 'changed_at' in legacy_a.user_events",
    )


def test_a_broken_spec_fails_the_mapping_stage_and_writes_nothing(project, shipped):
    from runbook_demo.build import build_demo
    from runbook_lib.run import stages

    build_demo("ci", project)
    data = yaml.safe_load(yaml.safe_dump(shipped))
    columns(data, "orders", "legacy_a.orders")["paid_at"]["transform"] = "strip"
    (project / "params" / "mapping" / "demo.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    ctx = StageContext(load_params("ci", project_root=project), None)

    check = stages.mapping(ctx)

    with pytest.raises(
        MappingSpecError, match=r"legacy_a\.orders\.columns\.paid_at: source pay_time"
    ):
        check.raise_if_failed()
    with ctx.target_engine().connect() as connection:
        counts = {
            name: connection.execute(sa.text(f"SELECT COUNT(*) FROM {name}")).scalar_one()
            for name in sa.inspect(connection).get_table_names()
        }
    assert counts and set(counts.values()) == {0}
