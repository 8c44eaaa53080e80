"""The assessment finds every seeded defect class of the demo with its exact count.

Two builds: the session's ``ci_demo`` (seed 7, 2,000 orders) and, here, one of another size and
seed (seed 11, 5,000 orders), so that no count can match by accident. Every expected count is
read from the build's own ``DemoSummary.seeded_defects``; nothing is hard-coded but the rule
names. Conversely, every error and warning the assessment raises must be one of the seeded
classes: no finding without a planted cause.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from runbook_demo.generate import build_demo_sources
from runbook_lib.assess.assessment import AssessmentReport, assess_sources
from runbook_lib.mapping.model import load_spec

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "params" / "mapping" / "demo.yaml"
SYSTEMS = ("legacy_a", "legacy_b", "crm")


def engines_in(folder: Path) -> dict[str, sa.Engine]:
    return {s: sa.create_engine(f"sqlite:///{folder / s}.db") for s in SYSTEMS}


@pytest.fixture(scope="module")
def ci_assessment(ci_project, ci_demo) -> tuple[AssessmentReport, dict]:
    engines = engines_in(ci_project / "work" / "ci")
    return assess_sources(engines, load_spec(SPEC)), ci_demo.seeded_defects


@pytest.fixture(scope="module")
def other_assessment(tmp_path_factory) -> tuple[AssessmentReport, dict]:
    folder = tmp_path_factory.mktemp("other-demo")
    engines = engines_in(folder)
    summary = build_demo_sources(engines, orders=5_000, seed=11)
    return assess_sources(engines, load_spec(SPEC)), summary.seeded_defects


@pytest.fixture(params=["ci_assessment", "other_assessment"])
def assessed(request) -> tuple[AssessmentReport, dict]:
    return request.getfixturevalue(request.param)


def one(report: AssessmentReport, rule: str, where: str):
    """The finding of ``rule`` at ``system.table[.column]`` (None if it found nothing there)."""
    found = [f for f in report.findings if f.rule == rule and f.where == where]
    assert len(found) <= 1, found
    return found[0] if found and found[0].count else None


def count(report: AssessmentReport, rule: str, where: str) -> int:
    finding = one(report, rule, where)
    return finding.count if finding else 0


def test_invalid_emails_and_phones_are_counted_exactly_per_column(assessed):
    report, seeded = assessed
    for where, n in seeded["invalid_emails"].items():
        assert count(report, "invalid_email", where) == n, where
    for where, n in seeded["invalid_phones"].items():
        assert count(report, "invalid_phone", where) == n, where


def test_untrimmed_emails_are_counted_exactly(assessed):
    report, seeded = assessed
    for where, n in seeded["untrimmed_emails"].items():
        assert count(report, "untrimmed_text", where) == n, where


def test_duplicate_people_within_and_across_systems_match_the_seeded_persons(assessed):
    report, seeded = assessed
    dup = seeded["duplicates"]
    across = one(
        report, "duplicate_person_across_systems", "legacy_a+legacy_b+crm.customers.email, phone"
    )
    assert across.count == dup["persons_in_two_systems"] + dup["persons_in_three_systems"]
    assert across.breakdown["persons_in_two_systems"] == dup["persons_in_two_systems"]
    assert across.breakdown["persons_in_three_systems"] == dup["persons_in_three_systems"]
    pairs = {k: v for k, v in across.breakdown.items() if "+" in k}
    assert pairs == dup["persons_in_two_systems_by_pair"]
    assert across.breakdown["duplicate_records"] == dup["duplicate_records"]
    assert across.breakdown["distinct_persons"] == dup["distinct_persons"]
    assert across.breakdown["source_records"] == dup["source_customer_records"]
    within = count(report, "duplicate_person_within_system", "legacy_a.users.email, phone")
    assert within == dup["within_legacy_a_duplicate_accounts"]
    assert count(report, "duplicate_person_within_system", "legacy_b.customers.email, phone") == 0
    assert (
        count(report, "duplicate_person_within_system", "crm.old_crm_customers.email, phone") == 0
    )


def test_every_date_format_is_found_with_its_rows(assessed):
    report, seeded = assessed
    for where, formats in seeded["date_formats"].items():
        finding = one(report, "mixed_date_formats", where)
        assert finding.breakdown == formats
        assert finding.count == sum(formats.values()) - max(formats.values())
    profiles = {f"{c.system}.{c.table}.{c.column}": c for c in report.columns}
    assert profiles["legacy_b.customers.registered"].date_formats == {
        "%m/%d/%Y": profiles["legacy_b.customers.registered"].rows
    }


def test_amount_units_and_currencies_are_known_for_every_money_column(assessed):
    report, seeded = assessed
    for where, unit in seeded["amount_units"].items():
        found = report.amount_units[where]
        assert found["currency"] == unit["currency"], where
        assert found["unit"] == ("minor" if unit["unit"] == "cents" else "major"), where
    for where in ("orders.amount", "order_items.unit_price"):
        mixed = one(report, "mixed_amount_units", f"legacy_a+legacy_b.{where}")
        assert set(mixed.breakdown.values()) == {"CNY major", "USD minor"}


def test_orphans_are_counted_exactly_including_rows_of_orphaned_parents(assessed):
    report, seeded = assessed
    columns = {
        "legacy_a.orders": "user_id",
        "legacy_a.order_items": "order_id",
        "legacy_a.logistics": "order_id",
        "legacy_b.sales_orders": "customer_id",
        "legacy_b.sales_order_lines": "so_number",
    }
    for table, n in seeded["orphans"].items():
        assert count(report, "orphan_foreign_key", f"{table}.{columns[table]}") == n, table


def test_negative_quantities_are_counted_exactly(assessed):
    report, seeded = assessed
    columns = {"legacy_a.order_items": "quantity", "legacy_b.sales_order_lines": "qty"}
    for table, n in seeded["negative_quantities"].items():
        assert count(report, "negative_quantity", f"{table}.{columns[table]}") == n, table


def test_missing_required_fields_and_the_rows_that_fall_with_them_are_counted(assessed):
    report, seeded = assessed
    for where, counts in seeded["missing_required"].items():
        assert count(report, "missing_required", where) == counts["orders"], where
        label = f"missing_required in {where}"
        for child in ("order_items", "logistics"):
            cascade = one(report, "parent_quarantined", f"legacy_a.{child}.order_id")
            assert cascade.breakdown[label] == counts[child], (where, child)


def test_unknown_status_codes_are_found_with_their_values(assessed):
    report, seeded = assessed
    codes = seeded["unknown_status_codes"]["legacy_a.orders.status"]
    finding = one(report, "unmapped_value", "legacy_a.orders.status")
    assert finding.count == sum(codes.values())
    assert finding.breakdown == codes


def test_zero_dates_are_counted_exactly_per_column_with_example_keys(assessed):
    report, seeded = assessed
    for where, n in seeded["zero_dates"].items():
        finding = one(report, "zero_date", where)
        assert finding.count == n, where
        assert finding.severity == "warning"  # loaded, as NULL: altered, not quarantined
        assert finding.breakdown == {"0000-00-00 00:00:00": n}
        assert len(finding.examples) == min(n, 3)
        assert all(e.startswith("id=") and "0000-00-00 00:00:00" in e for e in finding.examples)
    # the column parses clean otherwise: a zero date is no unparseable_datetime
    assert one(report, "unparseable_datetime", "legacy_a.logistics.delivered_at") is None


def test_one_field_names_are_counted_by_how_they_split(assessed):
    report, seeded = assessed
    for where, kinds in seeded["name_kinds"].items():
        finding = one(report, "irregular_names", where)
        assert finding.breakdown == {k: n for k, n in kinds.items() if n}
        regular = kinds["western_two_part"] + kinds["chinese_single_surname"]
        assert finding.count == sum(kinds.values()) - regular


def test_time_zones_of_every_source_time_are_named(assessed):
    report, seeded = assessed
    zones = report.time_zones
    assert zones["legacy_b.sales_orders.created_epoch"].startswith("UTC")
    assert zones["legacy_b.customers.registered"].startswith("America/New_York")
    assert all(z.startswith("Asia/Shanghai") for w, z in zones.items() if w.startswith("legacy_a."))
    assert one(report, "mixed_time_zones", "legacy_a+legacy_b.orders.ordered_at") is not None
    assert "time_zones" in seeded


def test_every_error_and_warning_has_a_seeded_cause(assessed):
    report, seeded = assessed
    expected = {("invalid_email", w) for w in seeded["invalid_emails"]}
    expected |= {("invalid_phone", w) for w in seeded["invalid_phones"]}
    expected |= {("mixed_date_formats", w) for w in seeded["date_formats"]}
    expected |= {("missing_required", w) for w in seeded["missing_required"]}
    expected |= {("unmapped_value", w) for w in seeded["unknown_status_codes"]}
    expected |= {("zero_date", w) for w in seeded["zero_dates"]}
    expected |= {
        ("orphan_foreign_key", w)
        for w in (
            "legacy_a.orders.user_id",
            "legacy_a.order_items.order_id",
            "legacy_a.logistics.order_id",
            "legacy_b.sales_orders.customer_id",
            "legacy_b.sales_order_lines.so_number",
        )
    }
    expected |= {
        ("parent_quarantined", f"legacy_a.{t}.order_id") for t in ("order_items", "logistics")
    }
    expected |= {
        ("negative_quantity", "legacy_a.order_items.quantity"),
        ("negative_quantity", "legacy_b.sales_order_lines.qty"),
        ("duplicate_person_within_system", "legacy_a.users.email, phone"),
        ("duplicate_person_across_systems", "legacy_a+legacy_b+crm.customers.email, phone"),
        ("mixed_amount_units", "legacy_a+legacy_b.orders.amount"),
        ("mixed_amount_units", "legacy_a+legacy_b.order_items.unit_price_cny"),
        ("mixed_amount_units", "legacy_a+legacy_b.order_items.unit_price"),
    }
    raised = {(f.rule, f.where) for f in report.found if f.severity in ("error", "warning")}
    assert raised == expected


def test_examples_name_source_keys_and_never_show_a_personal_value_in_full(
    ci_assessment, ci_project
):
    report, _seeded = ci_assessment
    invalid = one(report, "invalid_email", "legacy_a.users.email")
    assert len(invalid.examples) == invalid.count
    assert all(e.startswith("id=") and "***" in e for e in invalid.examples)
    engine = engines_in(ci_project / "work" / "ci")["legacy_a"]
    with engine.connect() as connection:
        personal = connection.execute(sa.text("SELECT email, phone, full_name FROM users")).all()
    text = json.dumps(report.to_dict(), ensure_ascii=False, default=str)
    for email, phone, name in personal:
        assert email.strip() not in text
        assert phone not in text
        assert name.strip() not in text


def test_report_is_json_safe_and_renders_every_finding_with_rows(ci_assessment):
    report, _seeded = ci_assessment
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert {"row_counts", "columns", "classification", "findings", "amount_units"} <= set(data)
    text = report.render()
    for finding in report.found:
        assert finding.rule in text
    assert data["findings_by_severity"]["error"] == sum(f.severity == "error" for f in report.found)


def test_a_rule_the_spec_makes_impossible_becomes_a_finding_not_a_crash(
    ci_project, ci_demo, tmp_path
):
    import yaml

    data = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    carts = data["targets"]["carts"]["sources"]["legacy_a.carts"]
    carts["filters"][0]["exclude_where"] = "no_such_column < 3"
    data["targets"]["orders"]["sources"]["legacy_a.orders"]["columns"]["status"]["transform"] = (
        "lookup"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    report = assess_sources(engines_in(ci_project / "work" / "ci"), load_spec(broken))

    failed = [f for f in report.findings if f.rule == "check_failed"]
    assert {f.where for f in failed} == {"legacy_a.carts"}  # its own checks, and its references
    assert one(report, "unmapped_value", "legacy_a.orders.status") is None  # column left out
    assert one(report, "invalid_email", "legacy_a.users.email") is not None
