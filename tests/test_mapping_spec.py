"""Tests for the mapping spec: the shipped spec checks clean, and each error kind has its path.

Every error test loads the shipped ``params/mapping/demo.yaml``, changes one thing, writes the
variant to ``tmp_path`` and checks it against the ``ci`` demo's live SQLite schemas. Where a
change has a second, legitimate consequence (a renamed table is then also unmapped), the test
says so and expects both problems; otherwise each variant has exactly one problem.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
import sqlalchemy as sa
import yaml

from runbook_lib.config.connections import Connections
from runbook_lib.config.params import load_params
from runbook_lib.errors import MappingSpecError
from runbook_lib.mapping.check import SpecCheck, check_spec
from runbook_lib.mapping.model import LoadedSpec, load_spec

USERS = ("customers", "legacy_a.users")
A_ORDERS = ("orders", "legacy_a.orders")
A_ORDERS_PATH = "targets.orders.sources.legacy_a.orders"


@pytest.fixture(scope="module")
def schemas(ci_project, ci_demo):
    """(source inspectors by system, target inspector) of the ci demo's SQLite files."""
    params = load_params("ci", project_root=ci_project)
    systems = load_spec(params.mapping_path).spec.systems
    with Connections(params) as connections:
        sources = {system: sa.inspect(connections.engine(name)) for system, name in systems.items()}
        yield sources, sa.inspect(connections.engine("target"))


@pytest.fixture(scope="module")
def shipped(ci_project) -> dict:
    """The shipped spec as plain data (YAML anchors expanded)."""
    params = load_params("ci", project_root=ci_project)
    return yaml.safe_load(params.mapping_path.read_text(encoding="utf-8"))


@pytest.fixture
def variant(shipped, schemas, tmp_path):
    """``variant(mutate)`` → the SpecCheck of the shipped spec changed by ``mutate(data)``."""

    def build(mutate) -> SpecCheck:
        data = yaml.safe_load(yaml.safe_dump(shipped, sort_keys=False))
        mutate(data)
        path = tmp_path / "variant.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        sources, target = schemas
        return check_spec(load_spec(path), sources, target)

    return build


def source(data: dict, where: tuple[str, str]) -> dict:
    target, name = where
    return data["targets"][target]["sources"][name]


def assert_problems(check: SpecCheck, expected: list[tuple[str, str]]) -> None:
    """Exactly these problems: each (exact YAML path, a fragment of its message)."""
    remaining = list(check.problems)
    for path, fragment in expected:
        match = next((p for p in remaining if p[0] == path and fragment in p[1]), None)
        assert match is not None, f"no problem at {path} with {fragment!r} in {check.problems}"
        remaining.remove(match)
    assert remaining == [], f"unexpected problems: {remaining}"


# --------------------------------------------------------------------------------------------
# The shipped spec


def test_shipped_spec_checks_clean_against_the_ci_demo(ci_project, schemas):
    params = load_params("ci", project_root=ci_project)
    sources, target = schemas

    check = check_spec(load_spec(params.mapping_path), sources, target)

    assert check.problems == []
    assert check.passed
    assert check.render().startswith("mapping spec demo.yaml (")
    assert "is valid" in check.render()
    check.raise_if_failed()


def test_shipped_spec_survives_the_yaml_round_trip_used_by_the_variants(variant):
    check = variant(lambda data: None)

    assert check.problems == []


def test_coverage_lists_every_source_column_once_besides_keys(ci_project, schemas):
    params = load_params("ci", project_root=ci_project)
    loaded = load_spec(params.mapping_path)
    sources, target = schemas

    check = check_spec(loaded, sources, target)

    expected = {
        (system, table, column["name"])
        for system, inspector in sources.items()
        for table in inspector.get_table_names()
        for column in inspector.get_columns(table)
    }
    non_key = Counter((r.system, r.table, r.column) for r in check.coverage if r.status != "key")
    keys = Counter((r.system, r.table, r.column) for r in check.coverage if r.status == "key")
    assert [column for column, count in non_key.items() if count != 1] == []
    assert [column for column, count in keys.items() if count != 1] == []
    assert set(non_key) | set(keys) == expected
    key_tables = Counter((system, table) for system, table, _ in keys)
    assert set(key_tables.values()) == {1}
    ignored_tables = {tuple(name.split(".")) for name in loaded.spec.ignore_tables}
    assert len(key_tables) == len({(s, t) for s, t, _ in expected} - ignored_tables)


def test_coverage_records_ignored_columns_with_their_reason(ci_project, schemas):
    params = load_params("ci", project_root=ci_project)
    sources, target = schemas

    check = check_spec(load_spec(params.mapping_path), sources, target)

    ignored = {
        (r.system, r.table, r.column): r.detail for r in check.coverage if r.status == "ignored"
    }
    inventory = {
        ("legacy_a", "inventory_log", c) for c in ("id", "sku", "change_qty", "reason", "logged_at")
    }
    assert (
        set(ignored)
        == {
            ("legacy_a", "users", "username"),
            ("legacy_a", "users", "password_hash"),
            ("legacy_a", "users", "address"),
        }
        | inventory
    )
    assert ignored[("legacy_a", "inventory_log", "sku")].startswith("stock history stays")
    assert ignored[("legacy_a", "users", "password_hash")].startswith("credentials are never")


# --------------------------------------------------------------------------------------------
# One test per error kind


def test_unknown_source_table_lists_the_tables_of_that_system(variant):
    def rename(data):
        sources = data["targets"]["orders"]["sources"]
        sources["legacy_a.orderz"] = sources.pop("legacy_a.orders")

    check = variant(rename)

    # the real legacy_a.orders is now neither mapped nor ignored: a second, expected problem
    assert_problems(
        check,
        [
            ("targets.orders.sources.legacy_a.orderz", "no table 'orderz' in legacy_a; tables:"),
            ("ignore_tables.legacy_a.orders", "neither mapped nor ignored"),
        ],
    )
    message = dict(check.problems)["targets.orders.sources.legacy_a.orderz"]
    assert "'orders'" in message
    assert "'inventory_log'" in message


def test_unknown_source_column_in_from_lists_the_table_columns(variant):
    def misspell(data):
        orders = source(data, A_ORDERS)
        orders["columns"]["paid_at"]["from"] = "paytime"
        orders["ignore"] = {"pay_time": "kept out of this test"}

    check = variant(misspell)

    assert_problems(
        check,
        [
            (
                f"{A_ORDERS_PATH}.columns.paid_at.from",
                "no column 'paytime' in legacy_a.orders; columns: ['amount', 'id',",
            )
        ],
    )


def test_unknown_target_column_names_the_target_table(variant):
    def rename(data):
        columns = source(data, A_ORDERS)["columns"]
        columns["paid_on"] = columns.pop("paid_at")

    check = variant(rename)

    assert_problems(
        check,
        [(f"{A_ORDERS_PATH}.columns.paid_on", "no column 'paid_on' in target table orders")],
    )


def test_unknown_transform_suggests_the_closest_name(variant):
    check = variant(
        lambda d: source(d, USERS)["columns"]["first_name, last_name"].update(
            transform="split_nmae"
        )
    )

    assert_problems(
        check,
        [
            (
                "targets.customers.sources.legacy_a.users.columns.first_name, last_name.transform",
                "unknown transform 'split_nmae'; did you mean split_name?",
            )
        ],
    )


def test_unknown_transform_in_a_chain_is_located_by_its_index(variant):
    check = variant(
        lambda d: source(d, A_ORDERS)["columns"]["amount"].update(
            transform=["required", {"mony": {"unit": "major"}}]
        )
    )

    assert_problems(
        check,
        [(f"{A_ORDERS_PATH}.columns.amount.transform[1]", "unknown transform 'mony'")],
    )


def test_unknown_transform_option_lists_the_accepted_options(variant):
    check = variant(
        lambda d: source(d, A_ORDERS)["columns"]["order_no"].update(
            transform={"prefix": {"prefix": "A-", "widht": 8}}
        )
    )

    assert_problems(
        check,
        [
            (
                f"{A_ORDERS_PATH}.columns.order_no.transform",
                "prefix: unknown option(s) ['widht']; accepted: ['prefix', 'width']",
            )
        ],
    )


def test_missing_required_transform_option_is_named(variant):
    check = variant(
        lambda d: source(d, A_ORDERS)["columns"]["order_no"].update(
            transform={"prefix": {"width": 8}}
        )
    )

    assert_problems(
        check,
        [
            (
                f"{A_ORDERS_PATH}.columns.order_no.transform",
                "prefix: missing required option(s) ['prefix']",
            )
        ],
    )


def test_split_name_into_one_column_is_an_output_arity_mismatch(variant):
    def one_column(data):
        columns = source(data, USERS)["columns"]
        columns["first_name"] = columns.pop("first_name, last_name")

    check = variant(one_column)

    assert_problems(
        check,
        [
            (
                "targets.customers.sources.legacy_a.users.columns.first_name",
                "the mapping produces 2 value(s) for 1 target column(s)",
            )
        ],
    )


def test_two_input_transform_given_one_input_is_an_input_arity_mismatch(variant):
    def join_one(data):
        columns = source(data, USERS)["columns"]
        del columns["first_name, last_name"]
        columns["first_name"] = {"from": "full_name", "transform": "join_name"}

    check = variant(join_one)

    assert_problems(
        check,
        [
            (
                "targets.customers.sources.legacy_a.users.columns.first_name.transform",
                "join_name takes 2 input(s), gets 1",
            )
        ],
    )


def test_required_target_column_left_unmapped_is_named(variant):
    def drop_amount(data):
        orders = source(data, A_ORDERS)
        del orders["columns"]["amount"]
        orders["ignore"] = {"amount": "kept out of this test"}

    check = variant(drop_amount)

    assert_problems(
        check,
        [(f"{A_ORDERS_PATH}.columns", "required target column orders.amount is not mapped")],
    )


def test_text_into_a_datetime_column_without_a_cast_is_refused(variant):
    check = variant(lambda d: source(d, A_ORDERS)["columns"]["paid_at"].pop("transform"))

    assert_problems(
        check,
        [
            (
                f"{A_ORDERS_PATH}.columns.paid_at",
                "source pay_time is text, target paid_at is datetime: add a transform that casts",
            )
        ],
    )


def test_text_into_an_integer_column_without_a_cast_is_refused(variant):
    def quantity_from_sku(data):
        items = source(data, ("order_items", "legacy_a.order_items"))
        items["columns"]["quantity"] = {"from": "sku"}
        items["ignore"] = {"quantity": "kept out of this test"}

    check = variant(quantity_from_sku)

    assert_problems(
        check,
        [
            (
                "targets.order_items.sources.legacy_a.order_items.columns.quantity",
                "source sku is text, target quantity is integer",
            )
        ],
    )


def test_a_legacy_integer_flag_into_a_boolean_column_needs_to_bool(variant):
    products = ("products", "legacy_a.products")
    check = variant(lambda d: source(d, products)["columns"]["is_active"].pop("transform"))

    assert_problems(
        check,
        [
            (
                "targets.products.sources.legacy_a.products.columns.is_active",
                "source is_active is integer, target is_active is boolean: add a transform that "
                "casts it (to_bool)",
            )
        ],
    )


def test_coverage_shows_the_flag_going_from_the_sources_integer_to_the_targets_boolean(variant):
    check = variant(lambda data: None)

    flag = next(r for r in check.coverage if (r.table, r.column) == ("products", "is_active"))
    assert (flag.status, flag.detail, flag.types) == (
        "mapped",
        "is_active → to_bool",
        "INTEGER → BOOLEAN",
    )


def test_integer_into_a_text_column_needs_no_cast(variant):
    check = variant(
        lambda d: source(d, A_ORDERS)["columns"]["status"].pop("transform"),
    )

    assert check.problems == []


def test_source_column_neither_mapped_nor_ignored_is_named(variant):
    check = variant(lambda d: source(d, USERS)["ignore"].pop("username"))

    assert_problems(
        check,
        [
            (
                "targets.customers.sources.legacy_a.users.columns",
                "source column 'username' is neither mapped nor ignored",
            )
        ],
    )


@pytest.mark.parametrize("reason", ["", "   "])
def test_ignored_column_with_an_empty_reason_is_refused(variant, reason):
    check = variant(lambda d: source(d, USERS)["ignore"].update(address=reason))

    assert_problems(
        check,
        [
            (
                "targets.customers.sources.legacy_a.users.ignore.address",
                "an ignored column needs a reason",
            )
        ],
    )


def test_ignoring_a_column_the_source_lacks_is_refused(variant):
    check = variant(lambda d: source(d, USERS)["ignore"].update(nickname="never existed"))

    assert_problems(
        check,
        [
            (
                "targets.customers.sources.legacy_a.users.ignore.nickname",
                "no column 'nickname' in legacy_a.users",
            )
        ],
    )


def test_filter_with_an_empty_reason_is_refused(variant):
    check = variant(
        lambda d: source(d, ("carts", "legacy_a.carts"))["filters"][0].update(reason="")
    )

    assert_problems(
        check,
        [("targets.carts.sources.legacy_a.carts.filters.stale_carts", "a filter needs a reason")],
    )


def test_reference_to_a_target_loaded_later_lists_the_earlier_ones(variant):
    check = variant(
        lambda d: source(d, A_ORDERS)["columns"]["customer_id"].update(references="carts")
    )

    assert_problems(
        check,
        [
            (
                f"{A_ORDERS_PATH}.columns.customer_id.references",
                "'carts' is not a target loaded before orders; "
                "loaded before: ['products', 'customers']",
            )
        ],
    )


def test_reference_to_a_target_without_id_column_is_refused(variant):
    check = variant(
        lambda d: source(d, A_ORDERS)["columns"]["customer_id"].update(references="products")
    )

    assert_problems(
        check,
        [
            (
                f"{A_ORDERS_PATH}.columns.customer_id.references",
                "'products' has no id_column to reference",
            )
        ],
    )


def test_source_table_neither_mapped_nor_ignored_is_named(variant):
    check = variant(lambda d: d.pop("ignore_tables"))

    assert_problems(
        check,
        [("ignore_tables.legacy_a.inventory_log", "source table is neither mapped nor ignored")],
    )


def rename_user_events_target(data):
    targets = data["targets"]
    targets["user_event"] = targets.pop("user_events")


def test_target_table_missing_from_the_target_lists_its_tables(variant):
    check = variant(rename_user_events_target)

    messages = [message for path, message in check.problems if path == "targets.user_event"]
    assert len(messages) == 1
    assert messages[0].startswith("no table 'user_event' in the target; tables: ['carts',")


def test_missing_target_table_does_not_report_its_mapped_sources_as_unmapped(variant):
    check = variant(rename_user_events_target)

    assert [path for path, _ in check.problems] == ["targets.user_event"]


def test_column_both_mapped_and_ignored_is_a_contradiction(variant):
    check = variant(
        lambda d: source(d, USERS)["ignore"].update(email="contradicts the email mapping")
    )

    assert [path for path, _ in check.problems] == [
        "targets.customers.sources.legacy_a.users.ignore.email"
    ]


# --------------------------------------------------------------------------------------------
# Structure, hash and raising


def test_unknown_key_in_a_column_mapping_raises_with_its_yaml_path(shipped, tmp_path):
    data = yaml.safe_load(yaml.safe_dump(shipped, sort_keys=False))
    source(data, A_ORDERS)["columns"]["paid_at"]["transfrom"] = "strip"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

    with pytest.raises(MappingSpecError) as info:
        load_spec(path)

    assert info.value.problems == [(f"{A_ORDERS_PATH}.columns.paid_at.transfrom", "unknown key")]
    assert info.value.source == str(path)
    assert f"{A_ORDERS_PATH}.columns.paid_at.transfrom: unknown key" in str(info.value)


def test_missing_top_level_key_raises_with_its_name(shipped, tmp_path):
    data = {key: value for key, value in shipped.items() if key != "systems"}
    path = tmp_path / "no_systems.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

    with pytest.raises(MappingSpecError) as info:
        load_spec(path)

    assert info.value.problems == [("systems", "required key is missing")]


def test_spec_that_is_not_yaml_raises_a_file_level_problem(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("targets: {orders: [unclosed\n", encoding="utf-8")

    with pytest.raises(MappingSpecError) as info:
        load_spec(path)

    assert [p for p, _ in info.value.problems] == ["(file)"]
    assert info.value.problems[0][1].startswith("not valid YAML")


def test_sha256_is_the_hash_of_the_file_bytes_and_changes_with_one_byte(ci_project, tmp_path):
    original = load_params("ci", project_root=ci_project).mapping_path.read_bytes()
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_bytes(original)
    changed = original.replace(b"name: demo-ecommerce-merge", b"name: demo-ecommerce-mergf", 1)
    assert len(changed) == len(original) and changed != original
    second.write_bytes(changed)

    loaded, edited = load_spec(first), load_spec(second)

    assert isinstance(loaded, LoadedSpec)
    assert loaded.sha256 == hashlib.sha256(original).hexdigest()
    assert edited.sha256 != loaded.sha256
    assert load_spec(first).sha256 == loaded.sha256


def test_raise_if_failed_lists_every_problem(variant):
    def two_problems(data):
        source(data, USERS)["ignore"].pop("username")
        source(data, A_ORDERS)["columns"]["customer_id"]["references"] = "carts"

    check = variant(two_problems)

    assert len(check.problems) == 2
    with pytest.raises(MappingSpecError) as info:
        check.raise_if_failed()

    error = info.value
    assert error.problems == check.problems
    assert "the mapping spec has 2 problem(s)" in str(error)
    for path, message in check.problems:
        assert f"  {path}: {message}" in str(error)
    assert error.hint == "fix the spec; nothing was written"


def test_failed_check_renders_and_serialises_each_problem(variant):
    check = variant(lambda d: source(d, USERS)["ignore"].pop("username"))

    rendered = check.render()
    data = check.to_dict()

    assert rendered.startswith("mapping spec variant.yaml has 1 problem(s):")
    assert data["passed"] is False
    assert data["problems"] == [
        {
            "path": "targets.customers.sources.legacy_a.users.columns",
            "message": "source column 'username' is neither mapped nor ignored",
        }
    ]
    assert data["spec_sha256"] == check.spec.sha256
