"""Column profiles in the database: types, formats with their rows, masked values, flat memory.

Uses the session's ``ci_demo`` (seed 7, 2,000 orders), whose ``seeded_defects`` give the date
formats planted in ``users.created_at`` and ``orders.order_time``; everything else is checked
against the sources directly. The memory test builds a demo ten times larger and asserts the
assessment's Python allocations do not grow with it.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import pytest
import sqlalchemy as sa

from runbook_demo.generate import build_demo_sources
from runbook_lib.assess.assessment import assess_sources
from runbook_lib.assess.profiling import MAX_SHAPES, date_format_of
from runbook_lib.evidence import figures
from runbook_lib.mapping.model import load_spec

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "params" / "mapping" / "demo.yaml"
SYSTEMS = ("legacy_a", "legacy_b", "crm")


def engines_in(folder: Path) -> dict[str, sa.Engine]:
    return {s: sa.create_engine(f"sqlite:///{folder / s}.db") for s in SYSTEMS}


@pytest.fixture(scope="module")
def assessed(ci_project, ci_demo):
    engines = engines_in(ci_project / "work" / "ci")
    report = assess_sources(engines, load_spec(SPEC))
    return report, {f"{c.system}.{c.table}.{c.column}": c for c in report.columns}, engines


def test_every_source_column_is_profiled_once_with_rows_nulls_and_distinct(assessed, ci_demo):
    report, profiles, engines = assessed
    expected = {
        f"{system}.{table}.{column['name']}"
        for system, engine in engines.items()
        for table in sa.inspect(engine).get_table_names()
        for column in sa.inspect(engine).get_columns(table)
    }
    assert set(profiles) == expected and len(report.columns) == len(expected)
    rows = {f"{s}.{t}": n for s, tables in ci_demo.row_counts.items() for t, n in tables.items()}
    assert report.row_counts == rows
    amount = profiles["legacy_a.orders.amount"]
    missing = ci_demo.seeded_defects["missing_required"]["legacy_a.orders.amount"]["orders"]
    assert (amount.rows, amount.nulls) == (rows["legacy_a.orders"], missing)
    with engines["legacy_a"].connect() as connection:
        distinct = connection.execute(sa.text("SELECT COUNT(DISTINCT sku) FROM order_items"))
        assert profiles["legacy_a.order_items.sku"].distinct == distinct.scalar_one()


def test_date_formats_are_named_with_their_rows(assessed, ci_demo):
    _report, profiles, _engines = assessed
    for where, formats in ci_demo.seeded_defects["date_formats"].items():
        assert profiles[where].formats == dict(sorted(formats.items(), key=lambda kv: -kv[1]))
    registered = profiles["legacy_b.customers.registered"]
    assert registered.formats == {"%m/%d/%Y": registered.rows}
    logged = profiles["legacy_a.inventory_log.logged_at"]  # an ignored table: common formats
    assert logged.formats == {"%Y-%m-%d %H:%M:%S": logged.rows}


def test_inferred_types_see_through_text_columns(assessed):
    _report, profiles, _engines = assessed
    assert profiles["legacy_a.orders.order_time"].type == "text"
    assert profiles["legacy_a.orders.order_time"].inferred_type == "datetime"
    assert profiles["legacy_b.customers.registered"].inferred_type == "datetime"
    assert profiles["legacy_a.orders.amount"].inferred_type == "decimal"
    assert profiles["legacy_b.customers.mobile"].inferred_type == "phone"
    assert profiles["legacy_a.logistics.carrier"].inferred_type == "text"


def test_phone_shapes_show_digits_as_nines_and_letters_as_a(assessed):
    _report, profiles, _engines = assessed
    for where in (
        "legacy_a.users.phone",
        "legacy_b.customers.mobile",
        "crm.old_crm_customers.phone",
    ):
        shapes = profiles[where].formats
        assert sum(shapes.values()) == profiles[where].rows - profiles[where].nulls
        assert all(re.fullmatch(r"[9aA +()\-./]+", shape) for shape in shapes), shapes
        assert not any(shape.startswith("%") for shape in shapes)  # a phone is never a date
    assert "(999) 999-9999" in profiles["legacy_b.customers.mobile"].formats


def test_free_text_has_no_format_list_and_personal_text_no_shapes(assessed):
    _report, profiles, _engines = assessed
    names = profiles["legacy_a.products.name"]
    assert names.formats == {} and names.shapes > MAX_SHAPES
    for where in ("legacy_a.users.email", "legacy_a.users.full_name", "legacy_a.users.address"):
        assert profiles[where].formats == {} and profiles[where].shapes == 0


def test_personal_values_are_masked_in_ranges_and_top_values(assessed):
    report, profiles, engines = assessed
    email = profiles["legacy_a.users.email"]
    assert "***@" in email.min and "***@" in email.max
    assert profiles["legacy_a.users.password_hash"].min == "[redacted]"
    assert profiles["legacy_a.orders.status"].top_values[0][1] > 1  # repetitive: top values shown
    with engines["crm"].connect() as connection:
        people = connection.execute(sa.text("SELECT name, email, phone FROM old_crm_customers"))
        rows = people.all()
    text = json.dumps([c.to_dict() for c in report.columns], ensure_ascii=False)
    for name, address, phone in rows:
        assert name.strip() not in text and address.strip() not in text and phone not in text


def test_classification_covers_every_column_by_category(assessed):
    report, profiles, _engines = assessed
    classes = {f"{c['system']}.{c['table']}.{c['column']}": c for c in report.classification()}
    assert set(classes) == set(profiles)
    assert classes["legacy_a.users.password_hash"]["category"] == "credential"
    assert classes["legacy_b.sales_orders.amount_cents"]["category"] == "financial"
    assert classes["crm.old_crm_customers.name"]["classification"] == "name"
    table = figures.classification_table(report.to_dict())
    users = table.set_index("table").loc["legacy_a.users"]
    assert users["personal"] == "username, full_name (name), email, phone, address"
    assert users["credential"] == "password_hash"


@pytest.mark.parametrize(
    ("value", "spec", "expected"),
    [
        ("2021-01-05 10:00:00", (), "%Y-%m-%d %H:%M:%S"),
        ("20210105100000", (), "%Y%m%d%H%M%S"),
        ("13812345678", (), None),  # digits that merely fit are not a date
        ("1/5/2021", (), None),  # not written back identically by a common format
        ("1/5/2021", ("%m/%d/%Y",), "%m/%d/%Y"),  # the spec's own formats are taken as given
        ("SKU-00001", (), None),
        (None, (), None),
    ],
)
def test_date_format_of_names_a_format_only_when_it_reads_the_value(value, spec, expected):
    assert date_format_of(value, spec) == expected


def test_figures_and_tables_come_from_the_glued_report(assessed):
    report, _profiles, _engines = assessed
    data = json.loads(json.dumps(report.to_dict()))

    findings = figures.findings_table(data)
    assert len(findings) == len(report.found) and (findings["rows"] > 0).all()
    figure = figures.findings_by_severity(data)
    assert [t.name for t in figure.data] == ["error", "warning", "info"]
    overview = figures.profile_overview(data)
    assert overview.data[0].type == "heatmap" and len(overview.data) > 4
    assert "formats" in figures.profile_table(data).columns


def test_assessment_memory_does_not_grow_with_the_data(tmp_path):
    spec = load_spec(SPEC)
    peaks = []
    for orders in (1_000, 10_000):
        folder = tmp_path / str(orders)
        folder.mkdir()
        engines = engines_in(folder)
        build_demo_sources(engines, orders=orders, seed=3)
        tracemalloc.start()
        assess_sources(engines, spec)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 3, peaks  # ten times the rows, not ten times the memory
