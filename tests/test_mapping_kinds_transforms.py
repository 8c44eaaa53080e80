"""The transforms the new mapping kinds need, the preview of transformed rows, and the widgets.

* currency conversion from minor units and with an implied currency, exact and rounded once;
* ``name_kind``: which rule of ``split_name`` a name takes (the assessment counts them);
* the phone fast path (common shapes of CN mobiles and US numbers skip phonenumbers) agrees
  with the library on every number it accepts — a hypothesis property over separators;
* the masked preview per target table, and the transform playground (headless: nothing).
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import partial

import phonenumbers
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lib import transforms as tr
from runbook_lib.config.params import load_params
from runbook_lib.errors import TransformError
from runbook_lib.mapping.check import check_spec
from runbook_lib.mapping.compiled import compile_spec
from runbook_lib.privacy.masking import mask_value
from runbook_lib.run.context import StageContext
from runbook_lib.ui import preview, widgets

RATES = {"CNY": "1", "USD": "7.1884"}


def test_convert_currency_reads_minor_units_then_multiplies_exactly_and_rounds_once():
    assert tr.convert_currency(4661, "USD", to="CNY", rates=RATES, unit="minor") == Decimal(
        "335.05"
    )  # 46.61 × 7.1884 = 335.051324
    assert tr.convert_currency("4661", "usd", to="CNY", rates=RATES, unit="minor") == Decimal(
        "335.05"
    )
    assert tr.convert_currency(100, "CNY", to="CNY", rates=RATES, unit="minor") == Decimal("1.00")


def test_convert_currency_refuses_a_fraction_of_a_minor_unit():
    with pytest.raises(TransformError) as info:
        tr.convert_currency("12.5", "USD", to="CNY", rates=RATES, unit="minor")
    assert info.value.rule == "invalid_amount"


def test_convert_amount_takes_the_currency_the_source_implies():
    assert tr.convert_amount(Decimal("10.00"), currency="USD", to="CNY", rates=RATES) == Decimal(
        "71.88"
    )
    assert tr.convert_amount(None, currency="USD", to="CNY", rates=RATES) is None
    with pytest.raises(TransformError) as info:
        tr.convert_amount(5, currency="EUR", to="CNY", rates=RATES)
    assert info.value.rule == "unknown_currency"


def test_convert_amount_without_its_options_is_a_spec_error_not_a_row_error():
    with pytest.raises(ValueError, match="currency, to and rates"):
        tr.convert_amount(None, currency="USD")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("王伟", "chinese_single_surname"),
        ("欧阳娜娜", "chinese_compound_surname"),
        ("约翰·史密斯", "chinese_transliterated"),
        ("Mary Smith", "western_two_part"),
        ("Mary Ann Smith", "western_three_plus_parts"),
        ("Emma", "western_single_name"),
        ("Mary  Smith", "western_extra_spaces"),
        (" Mary Smith", "western_extra_spaces"),
    ],
)
def test_name_kind_names_the_rule_that_splits_the_name(name, kind):
    assert tr.name_kind(name) == kind
    assert kind in tr.NAME_KINDS


SEPARATORS = st.sampled_from(["", " ", "-", ".", "(", ")", "  ", " - "])


def _spread(digits: str, seps: list[str]) -> str:
    return "".join(d + s for d, s in zip(digits, seps, strict=False)) + digits[len(seps) :]


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.sampled_from(["", "+86", "+1", "(+86) ", "+86 ", "+1 ", "1"]),
    national=st.one_of(
        st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
        st.from_regex(r"[2-9][0-9]{9}", fullmatch=True),
    ),
    seps=st.lists(SEPARATORS, max_size=12),
    region=st.sampled_from(["CN", "US"]),
)
def test_phone_fast_path_agrees_with_phonenumbers_whenever_it_answers(
    prefix, national, seps, region
):
    text = prefix + _spread(national, seps)
    fast = tr._phone_fast(text, region)
    if fast is None:
        return
    number = phonenumbers.parse(text, region)
    assert phonenumbers.is_valid_number(number), text
    assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == fast


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("(202) 555-0143", "US", "+12025550143"),
        ("202.555.0143", "US", "+12025550143"),
        ("+1 (202) 555-0143", "CN", "+12025550143"),
        ("(+86) 138 1234 5678", "CN", "+8613812345678"),
        ("+86-138-1234-5678", "US", "+8613812345678"),
        ("138-1234-5678", "CN", "+8613812345678"),
    ],
)
def test_the_demos_phone_shapes_take_the_fast_path(text, region, expected):
    assert tr._phone_fast(text, region) == expected
    assert tr.phone_e164(text, region=region) == expected


@pytest.mark.parametrize(
    ("text", "region"), [("2025550143", "CN"), ("1-202-555-0143", "US"), ("N/A", "CN")]
)
def test_anything_else_is_left_to_the_library(text, region):
    assert tr._phone_fast(text, region) is None


# --- preview and widgets ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ctx(ci_project, ci_demo) -> StageContext:
    return StageContext(load_params("ci", project_root=ci_project), None)


@pytest.fixture(scope="module")
def checked(ctx):
    sources = {s: sa.inspect(e) for s, e in ctx.source_engines().items()}
    return check_spec(ctx.spec, sources, sa.inspect(ctx.target_engine()))


def test_preview_shows_transformed_rows_of_every_target_with_personal_values_masked(ctx, checked):
    previews = preview.preview_mapping(ctx.spec, ctx.source_engines(), checked, rows=3)

    assert [p.target for p in previews] == list(ctx.spec.spec.targets)
    customers = next(p for p in previews if p.target == "customers")
    assert len(customers.rows) == 9  # three from each of the three systems
    with ctx.source_engines()["legacy_a"].connect() as connection:
        raw = connection.execute(sa.text("SELECT email, phone FROM users WHERE id <= 3")).all()
    shown = json.dumps(preview.previews_data(previews), ensure_ascii=False)
    for email, phone in raw:
        assert email.strip().lower() not in shown and phone not in shown
    assert all(r["email"] is None or "***@" in r["email"] for r in customers.rows)
    orders = next(p for p in previews if p.target == "orders")
    assert {r["source_system"] for r in orders.rows} == {"legacy_a", "legacy_b"}
    assert all(r["ordered_at"].endswith("+00:00") for r in orders.rows)  # UTC, and says so
    assert "<h4>customers</h4>" in preview.previews_html(previews)


def test_preview_names_the_rule_of_a_row_a_transform_would_quarantine(ctx):

    orders = next(s for s in compile_spec(ctx.spec).in_spec_order if s.table == "orders")
    row = {"id": 5, "user_id": 1, "status": 9, "amount": None, "order_time": "x", "pay_time": None}

    shown = preview.transform_row(orders, row)

    assert shown["_rejected"] == "unmapped_value: status"
    assert shown["order_no"] == "A-00000005"


def test_no_preview_for_a_spec_that_did_not_pass(ctx, checked):
    from dataclasses import replace

    failed = replace(checked, problems=[("targets.x", "broken")])

    assert preview.preview_mapping(ctx.spec, ctx.source_engines(), failed) == []
    assert "did not pass" in preview.previews_html([])


def test_playground_is_nothing_headless_and_a_widget_interactively(ctx):
    assert widgets.transform_playground(ctx.spec, ctx.source_engines(), headless=True) is None
    view = widgets.transform_playground(ctx.spec, ctx.source_engines(), headless=False)
    assert type(view).__name__ == "VBox"


def test_trying_a_chain_masks_values_and_names_rules_and_bad_chains(ctx):
    values = widgets.sample_values(ctx.source_engines()["legacy_a"], "users", "phone", 300)

    tried = widgets.try_chain(values, "{phone_e164: {region: CN}}", partial(mask_value, "phone"))
    bad = widgets.try_chain(values[:1], "[strip, phone_e16]", partial(mask_value, "phone"))

    assert {r["rule"] for r in tried} == {"", "invalid_phone"}
    assert all(r["input"].startswith("***") for r in tried)
    assert all(r["output"] == "" or r["output"].startswith("***") for r in tried)
    assert "did you mean phone_e164" in bad[0]["rule"]
