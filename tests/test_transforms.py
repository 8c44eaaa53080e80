"""Tests for the named value transforms: registry, each transform, and fast-path agreement."""

from __future__ import annotations

import json
import re
import string
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

import email_validator
import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runbook_lib import transforms as tr
from runbook_lib.errors import TransformError, UnknownTransformError


def rule_of(func, *values, **options) -> str:
    with pytest.raises(TransformError) as info:
        func(*values, **options)
    return info.value.rule


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Registry

BRIEF_NAMES = {
    "identity",
    "strip",
    "lower",
    "upper",
    "to_int",
    "to_decimal",
    "required",
    "non_negative",
    "split_name",
    "join_name",
    "parse_datetime",
    "epoch_to_utc",
    "money",
    "convert_currency",
    "normalize_email",
    "phone_e164",
    "map_values",
    "prefix",
}

# Enough options to call every transform.
SAMPLE_OPTIONS = {
    "parse_datetime": {"formats": ["%Y-%m-%d"], "tz": "UTC"},
    "money": {"unit": "major"},
    "convert_currency": {"to": "USD", "rates": {"EUR": "1.1"}},
    "phone_e164": {"region": "CN"},
    "map_values": {"values": {"A": "active"}},
    "prefix": {"prefix": "ORD-"},
}


def test_every_transform_in_the_brief_is_registered():
    assert BRIEF_NAMES <= set(tr.REGISTRY)


def test_required_options_of_every_transform_are_covered_by_the_samples():
    for transform in tr.REGISTRY.values():
        assert set(transform.required_options) <= set(SAMPLE_OPTIONS.get(transform.name, {}))


def test_options_come_from_keyword_only_parameters_and_required_ones_lack_a_default():
    money = tr.get_transform("money")
    assert money.options == ("unit", "scale")
    assert money.required_options == ("unit",)
    mapping = tr.get_transform("map_values")
    assert mapping.options == ("values", "default")
    assert mapping.required_options == ("values",)
    assert tr.get_transform("strip").options == ()


def test_transform_records_inputs_outputs_and_the_first_docstring_line():
    split = tr.get_transform("split_name")
    assert (split.inputs, split.outputs) == (1, ("first_name", "last_name"))
    assert tr.get_transform("join_name").inputs == 2
    assert tr.get_transform("convert_currency").inputs == 2
    assert tr.get_transform("identity").doc == "Return the value unchanged."
    assert all("\n" not in t.doc and t.doc for t in tr.REGISTRY.values())


def test_calling_a_transform_passes_values_and_options_to_its_function():
    assert tr.get_transform("prefix")(7, prefix="C", width=3) == "C007"
    assert tr.get_transform("join_name")("Ada", "Lovelace") == "Ada Lovelace"


def test_transform_is_frozen():
    with pytest.raises(AttributeError):
        tr.get_transform("strip").name = "other"


def test_registering_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        tr.register("strip")(lambda value: value)


def test_registering_a_function_whose_positional_count_differs_from_inputs_is_refused():
    with pytest.raises(ValueError, match="takes 1 values, not 2"):
        tr.register("never_registered", inputs=2)(lambda value: value)
    assert "never_registered" not in tr.REGISTRY


def test_unknown_transform_suggests_the_close_name():
    with pytest.raises(UnknownTransformError) as info:
        tr.get_transform("split_nmae")
    assert info.value.suggestions[0] == "split_name"
    assert "did you mean split_name" in str(info.value)


def test_unknown_transform_with_nothing_close_suggests_nothing():
    with pytest.raises(UnknownTransformError) as info:
        tr.get_transform("zzzzzz")
    assert info.value.suggestions == []


def test_describe_transforms_is_sorted_json_safe_and_complete():
    rows = tr.describe_transforms()
    assert [r["name"] for r in rows] == sorted(tr.REGISTRY)
    assert json.loads(json.dumps(rows)) == rows
    split = next(r for r in rows if r["name"] == "split_name")
    assert split["outputs"] == ["first_name", "last_name"]
    assert {"name", "inputs", "outputs", "options", "doc"} <= set(split)


@pytest.mark.parametrize("name", sorted(BRIEF_NAMES - {"required"}))
def test_none_in_gives_none_out_for_every_transform_but_required(name):
    transform = tr.get_transform(name)
    expected = None if transform.outputs is None else (None,) * len(transform.outputs)
    values = (None,) * transform.inputs
    assert transform(*values, **SAMPLE_OPTIONS.get(name, {})) == expected


PARSING = [
    "to_bool",
    "to_int",
    "to_decimal",
    "money",
    "parse_datetime",
    "epoch_to_utc",
    "normalize_email",
    "phone_e164",
    "split_name",
]


@pytest.mark.parametrize("name", PARSING)
def test_a_blank_string_is_missing_data_for_parsing_transforms(name):
    transform = tr.get_transform(name)
    expected = None if transform.outputs is None else (None,) * len(transform.outputs)
    assert transform(" \t ", **SAMPLE_OPTIONS.get(name, {})) == expected


# --------------------------------------------------------------------------------------------
# Text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Ada   Lovelace \t", "Ada Lovelace"),
        ("a\u3000b\xa0c\nd", "a b c d"),
        ("", None),
        ("   ", None),
        ("x", "x"),
        (42, 42),
    ],
)
def test_strip_trims_and_collapses_whitespace_and_blank_becomes_none(value, expected):
    assert tr.strip(value) == expected


def test_lower_and_upper_change_strings_and_pass_other_values_through():
    assert tr.lower("AbC") == "abc"
    assert tr.upper("AbC") == "ABC"
    assert tr.lower(5) == 5
    assert tr.identity({"a": 1}) == {"a": 1}


@pytest.mark.parametrize("value", [None, "", "  \t"])
def test_required_rejects_none_and_blank(value):
    assert rule_of(tr.required, value) == "missing_required"


@pytest.mark.parametrize("value", [0, "x", False, Decimal("0")])
def test_required_passes_present_values_through_unchanged(value):
    assert tr.required(value) is value


# --------------------------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        ("  -17 ", -17),
        ("+5", 5),
        ("12.000", 12),
        (Decimal("3.00"), 3),
        (Decimal("1E+3"), 1000),
        (7.0, 7),
        ("", None),
        ("123456789012345678901234567890", 123456789012345678901234567890),
    ],
)
def test_to_int_accepts_whole_numbers_in_any_form(value, expected):
    assert tr.to_int(value) == expected


@pytest.mark.parametrize(
    "value", ["1.5", Decimal("2.5"), 2.5, "1_000", "1e3", "abc", True, float("nan"), "9" * 5000, []]
)
def test_to_int_rejects_fractions_and_non_numbers(value):
    assert rule_of(tr.to_int, value) == "invalid_integer"


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        (0.1 + 0.2, 2, "0.30"),
        ("2.675", 2, "2.68"),
        ("2.665", 2, "2.66"),
        ("0.125", 2, "0.12"),
        ("0.135", 2, "0.14"),
        (".71", 2, "0.71"),
        ("1e2", 0, "100"),
        (Decimal("1.23456"), 4, "1.2346"),
        (7, 2, "7.00"),
    ],
)
def test_to_decimal_is_exact_and_rounds_half_even(value, scale, expected):
    result = tr.to_decimal(value, scale=scale)
    assert result == Decimal(expected)
    assert str(result) == expected


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", float("inf"), float("nan"), Decimal("NaN"), "1,5", "1e999999999"]
)
def test_to_decimal_rejects_non_finite_malformed_and_absurdly_large_values(value):
    assert rule_of(tr.to_decimal, value) == "invalid_decimal"


def test_decimal_results_do_not_depend_on_the_callers_decimal_context():
    with localcontext() as ctx:
        ctx.prec = 3
        assert tr.to_decimal("123456.785") == Decimal("123456.78")
        assert tr.convert_currency(
            "123456.78", "EUR", to="USD", rates={"EUR": "1.23456"}
        ) == Decimal("152414.80")  # exactly 152414.8023168


def test_non_negative_passes_zero_and_positives_and_rejects_negatives():
    assert tr.non_negative(0) == 0
    assert tr.non_negative("5") == "5"
    assert tr.non_negative(Decimal("-0")) == Decimal("-0")
    assert rule_of(tr.non_negative, -1) == "negative_quantity"
    assert rule_of(tr.non_negative, "-0.01") == "negative_quantity"
    assert rule_of(tr.non_negative, "lots") == "invalid_decimal"


# --------------------------------------------------------------------------------------------
# Flags


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, True),
        (0, False),
        (True, True),
        (False, False),
        (Decimal("1.00"), True),
        (0.0, False),
        (b"\x01", True),  # MySQL BIT(1) through PyMySQL
        (b"\x00", False),
        ("Y", True),
        (" n ", False),
        ("TRUE", True),
        ("false", False),
        ("Yes", True),
        ("no", False),
        ("t", True),
        ("F", False),
        ("on", True),
        ("OFF", False),
        ("1", True),
        (" 0", False),
        (None, None),
        ("", None),
    ],
)
def test_to_bool_reads_tinyint_flags_and_yes_no_spellings(value, expected):
    assert tr.to_bool(value) is expected


@pytest.mark.parametrize(
    "value", [2, -1, 127, Decimal("0.5"), float("nan"), "maybe", "10", "yes!", b"\x02", [1]]
)
def test_to_bool_refuses_anything_but_a_flag(value):
    assert rule_of(tr.to_bool, value) == "invalid_boolean"


def test_to_bool_error_describes_the_value_without_showing_it():
    with pytest.raises(TransformError) as info:
        tr.to_bool("Jane Doe")
    assert "'Aaaa Aaa'" in info.value.message and "Jane" not in info.value.message
    assert "y/n" in info.value.message  # what would have been accepted
    with pytest.raises(TransformError) as info:
        tr.to_bool(42)
    assert "42" not in info.value.message


@given(st.text(alphabet="yesnotrufalYESNOTRUFAL \t", max_size=8))
def test_to_bool_accepts_exactly_the_listed_spellings_in_any_case_and_spacing(text):
    word = text.strip().casefold()
    if not word:
        assert tr.to_bool(text) is None
    elif word in ("y", "yes", "t", "true", "on"):
        assert tr.to_bool(text) is True
    elif word in ("n", "no", "f", "false", "off"):
        assert tr.to_bool(text) is False
    else:
        assert rule_of(tr.to_bool, text) == "invalid_boolean"


def test_to_bool_returns_the_boolean_family_so_the_spec_check_accepts_it_into_boolean_columns():
    assert tr.get_transform("to_bool").returns == "boolean"


# --------------------------------------------------------------------------------------------
# Money


def test_money_in_minor_units_becomes_an_exact_major_amount():
    assert tr.money(12345, unit="minor") == Decimal("123.45")
    assert str(tr.money("-5", unit="minor")) == "-0.05"
    assert tr.money(1234, unit="minor", scale=3) == Decimal("1.234")
    assert tr.money(500, unit="minor", scale=0) == Decimal("500")


def test_money_avoids_float_traps():
    assert tr.money(0.1 + 0.2, unit="major") == Decimal("0.30")
    assert tr.money(0.1, unit="major") + tr.money(0.2, unit="major") == Decimal("0.3")
    assert tr.money(1.005, unit="major") == Decimal("1.00")  # repr is 1.005: half-even
    assert tr.money(19.99, unit="major") == Decimal("19.99")


def test_money_reads_point_71_and_0_point_71_as_the_same_amount():
    assert tr.money("0.71", unit="major") == tr.money(".71", unit="major") == Decimal("0.71")
    assert tr.money(0.71, unit="major") == tr.money(Decimal(".71"), unit="major")


@pytest.mark.parametrize("value", ["$5", "1,234.50", "abc", "NaN", True, [1]])
def test_money_rejects_what_is_not_an_amount(value):
    assert rule_of(tr.money, value, unit="major") == "invalid_amount"


def test_money_in_minor_units_rejects_fractional_minor_units():
    assert rule_of(tr.money, "123.4", unit="minor") == "invalid_amount"


def test_money_with_an_unknown_unit_is_a_spec_error_not_a_quarantine():
    with pytest.raises(ValueError) as info:
        tr.money(1, unit="cents")
    assert not isinstance(info.value, TransformError)


@given(cents=st.integers(-(10**15), 10**15), scale=st.integers(0, 4))
def test_money_minor_to_major_round_trip_is_exact(cents, scale):
    major = tr.money(cents, unit="minor", scale=scale)
    assert major.as_tuple().exponent == -scale
    assert major.scaleb(scale) == cents


def test_convert_currency_is_exact_and_rounds_once_half_even():
    assert tr.convert_currency(Decimal("10.00"), "USD", to="CNY", rates={"USD": "7.1234"}) == (
        Decimal("71.23")
    )
    # 0.125 exactly: half-even goes to 0.12, where float arithmetic would give 0.13 or 0.12.
    assert tr.convert_currency("0.25", "EUR", to="USD", rates={"EUR": "0.5"}) == Decimal("0.12")
    assert tr.convert_currency("0.35", "EUR", to="USD", rates={"EUR": Decimal("0.5")}) == (
        Decimal("0.18")
    )


def test_convert_currency_to_the_same_currency_needs_no_rate():
    assert tr.convert_currency("1.005", "usd", to="USD", rates={}) == Decimal("1.00")


def test_convert_currency_matches_codes_case_insensitively():
    assert tr.convert_currency("2", " eur ", to="USD", rates={"EUR": "1.1"}) == Decimal("2.20")
    assert tr.convert_currency("2", "EUR", to="USD", rates={"eur": "1.1"}) == Decimal("2.20")


@pytest.mark.parametrize("currency", ["GBP", None, ""])
def test_convert_currency_without_a_rate_raises_unknown_currency(currency):
    rule = rule_of(tr.convert_currency, "1", currency, to="USD", rates={"EUR": "1.1"})
    assert rule == "unknown_currency"


def test_convert_currency_with_a_malformed_rate_is_a_spec_error():
    with pytest.raises(ValueError) as info:
        tr.convert_currency("1", "EUR", to="USD", rates={"EUR": "about one"})
    assert not isinstance(info.value, TransformError)


# --------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Cher", ("Cher", None)),
        ("Ada Lovelace", ("Ada", "Lovelace")),
        ("John Ronald Reuel Tolkien", ("John Ronald Reuel", "Tolkien")),
        ("  Ada   Lovelace  ", ("Ada", "Lovelace")),
        ("\tMary  Ann\u3000Evans ", ("Mary Ann", "Evans")),
        ("  ", (None, None)),
        ("", (None, None)),
    ],
)
def test_split_name_splits_western_names_at_the_last_space(value, expected):
    assert tr.split_name(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("张伟", ("伟", "张")),
        ("王小明", ("小明", "王")),
        ("欧阳娜娜", ("娜娜", "欧阳")),
        ("司马光", ("光", "司马")),
        ("诸葛亮", ("亮", "诸葛")),
        ("上官婉儿", ("婉儿", "上官")),
        ("歐陽修", ("修", "歐陽")),
        ("张 伟", ("伟", "张")),
        (" 欧阳 娜娜 ", ("娜娜", "欧阳")),
        ("张", (None, "张")),
        ("欧阳", (None, "欧阳")),
    ],
)
def test_split_name_puts_the_chinese_surname_first_and_knows_compound_surnames(value, expected):
    assert tr.split_name(value) == expected


def test_split_name_reads_a_non_string_as_text():
    assert tr.split_name(12345) == ("12345", None)


def test_split_name_keeps_given_name_first_for_transliterated_names_with_a_middle_dot():
    assert tr.split_name("约翰·史密斯") == ("约翰", "史密斯")
    assert tr.split_name("买买提·艾力") == ("买买提", "艾力")
    assert tr.split_name("A·B·史密斯") == ("A·B", "史密斯")


WESTERN_WORD = st.text(
    alphabet=st.characters(categories=("Lu", "Ll"), max_codepoint=0x24F) | st.sampled_from("'-."),
    min_size=1,
    max_size=8,
)
GAP = st.sampled_from([" ", "  ", "\t", "\u3000", "\xa0", " \n "])
CJK_CHAR = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
SURNAME = st.sampled_from(sorted(tr._COMPOUND_SURNAMES) + list("张王李赵刘陈"))


@st.composite
def western_names(draw):
    words = draw(st.lists(WESTERN_WORD, min_size=1, max_size=5))
    gaps = [draw(GAP) for _ in words]
    return draw(GAP) + "".join(w + g for w, g in zip(words, gaps, strict=True))


@st.composite
def chinese_names(draw):
    chars = draw(SURNAME) + "".join(draw(st.lists(CJK_CHAR, max_size=3)))
    return "".join(c + draw(st.sampled_from(["", "", " "])) for c in chars)


@given(western_names())
def test_split_name_never_loses_a_character_of_a_western_name(name):
    first, last = tr.split_name(name)
    collapsed = " ".join(name.split())
    assert (first if last is None else f"{first} {last}") == collapsed
    assert last is None or " " not in last


@given(chinese_names())
def test_split_name_never_loses_a_character_of_a_chinese_name(name):
    first, last = tr.split_name(name)
    assert (last or "") + (first or "") == "".join(name.split())
    assert len(last) in (1, 2)


@given(western_names() | chinese_names())
def test_join_name_inverts_split_name(name):
    joined = tr.join_name(*tr.split_name(name))
    expected = " ".join(name.split())
    if tr.CJK.search(name):
        expected = expected.replace(" ", "")
    assert joined == expected


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Ada", "Lovelace", "Ada Lovelace"),
        ("  Mary  Ann ", " Evans", "Mary Ann Evans"),
        ("Cher", None, "Cher"),
        (None, "Smith", "Smith"),
        ("", "  ", None),
        (None, None, None),
        ("伟", "张", "张伟"),
        ("娜娜", "欧阳", "欧阳娜娜"),
    ],
)
def test_join_name_joins_first_and_last_and_writes_chinese_surname_first(first, last, expected):
    assert tr.join_name(first, last) == expected


# --------------------------------------------------------------------------------------------
# Dates and times

SHANGHAI = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2023-05-01 08:00:00", "%Y-%m-%d %H:%M:%S"),
        ("2023/05/01 08:00", "%Y/%m/%d %H:%M"),
        ("2023/5/1 8:00", "%Y/%m/%d %H:%M"),
        ("01.05.2023 08:00", "%d.%m.%Y %H:%M"),
        ("20230501080000", "%Y%m%d%H%M%S"),
        ("2023-05-01T08:00:00.000000", "%Y-%m-%dT%H:%M:%S.%f"),
        ("01 May 2023 08:00", "%d %b %Y %H:%M"),
        ("05/01/23 08:00 AM", "%m/%d/%y %I:%M %p"),
        ("2023-05-01T08:00:00+0800", "%Y-%m-%dT%H:%M:%S%z"),
        ("2023-05-01T00:00:00+0000", "%Y-%m-%dT%H:%M:%S%z"),
    ],
)
def test_parse_datetime_reads_shanghai_local_text_in_each_format_as_utc(text, fmt):
    result = tr.parse_datetime(text, formats=[fmt], tz=SHANGHAI)
    assert result == utc(2023, 5, 1, 0, 0)
    assert result.utcoffset() == timedelta(0)


def test_parse_datetime_gives_local_midnight_for_a_date_only_format():
    result = tr.parse_datetime("2023-05-01", formats=["%Y-%m-%d"], tz=SHANGHAI)
    assert result == utc(2023, 4, 30, 16, 0)


def test_parse_datetime_tries_formats_in_order_and_strips_the_value():
    formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
    assert tr.parse_datetime(" 2023-05-01 ", formats=formats, tz="UTC") == utc(2023, 5, 1)


def test_parse_datetime_resolves_an_ambiguous_value_by_spec_order_whatever_came_before():
    formats = ["%d/%m/%Y", "%m/%d/%Y"]
    assert tr.parse_datetime("01/02/2023", formats=formats, tz="UTC") == utc(2023, 2, 1)
    assert tr.parse_datetime("12/31/2023", formats=formats, tz="UTC") == utc(2023, 12, 31)
    assert tr.parse_datetime("01/02/2023", formats=formats, tz="UTC") == utc(2023, 2, 1)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2023-01-15 12:00", utc(2023, 1, 15, 17, 0)),  # EST, UTC-5
        ("2023-07-01 12:00", utc(2023, 7, 1, 16, 0)),  # EDT, UTC-4
        ("2023-03-12 01:30", utc(2023, 3, 12, 6, 30)),  # just before spring forward
        ("2023-03-12 03:30", utc(2023, 3, 12, 7, 30)),  # just after
        ("2023-03-12 02:30", utc(2023, 3, 12, 7, 30)),  # nonexistent: pre-change offset
        ("2023-11-05 01:30", utc(2023, 11, 5, 5, 30)),  # ambiguous: first (EDT) occurrence
        ("2023-11-05 02:30", utc(2023, 11, 5, 7, 30)),  # after fall back
    ],
)
def test_parse_datetime_follows_new_york_daylight_saving(local, expected):
    result = tr.parse_datetime(local, formats=["%Y-%m-%d %H:%M"], tz="America/New_York")
    assert result == expected


def test_parse_datetime_error_names_the_shape_of_the_value_not_the_value():
    with pytest.raises(TransformError) as info:
        tr.parse_datetime("2023-13-45 Noon", formats=["%Y-%m-%d %H:%M"], tz=SHANGHAI)
    assert info.value.rule == "unparseable_datetime"
    assert "'9999-99-99 Aaaa'" in info.value.message
    assert "2023" not in info.value.message


@pytest.mark.parametrize("value", ["2023-02-30", "2023-05-01 08:00", "20230501", 20230501, 1.5])
def test_parse_datetime_rejects_impossible_dates_and_other_shapes(value):
    assert rule_of(tr.parse_datetime, value, formats=["%Y-%m-%d"], tz=SHANGHAI) == (
        "unparseable_datetime"
    )


@pytest.mark.parametrize(
    "value", ["0000-00-00 00:00:00", "0000-00-00", " 0000-00-00 00:00:00.000000 "]
)
def test_parse_datetime_reads_a_mysql_zero_date_as_no_date(value):
    # PyMySQL returns a zero DATETIME as this text; it means "no date", not a bad value
    assert tr.parse_datetime(value, formats=["%Y-%m-%d %H:%M:%S"], tz=SHANGHAI) is None


@pytest.mark.parametrize("value", ["2023-00-00 00:00:00", "0000-01-01 00:00:00", "00000000"])
def test_parse_datetime_still_rejects_a_partly_zero_date(value):
    # a month or day of zero next to a real year is a defect to quarantine, not "no date"
    assert rule_of(tr.parse_datetime, value, formats=["%Y-%m-%d %H:%M:%S"], tz=SHANGHAI) == (
        "unparseable_datetime"
    )


def test_parse_datetime_localizes_naive_datetimes_and_converts_aware_ones():
    shanghai = ZoneInfo(SHANGHAI)
    options = {"formats": ["%Y-%m-%d"], "tz": SHANGHAI}
    assert tr.parse_datetime(datetime(2023, 5, 1, 8), **options) == utc(2023, 5, 1)
    aware = datetime(2023, 5, 1, 8, tzinfo=shanghai)
    assert tr.parse_datetime(aware, **options) == utc(2023, 5, 1)
    assert tr.parse_datetime(date(2023, 5, 1), **options) == utc(2023, 4, 30, 16)
    assert tr.parse_datetime("", **options) is None


def test_parse_datetime_accepts_a_single_format_string():
    assert tr.parse_datetime("2023-05-01", formats="%Y-%m-%d", tz="UTC") == utc(2023, 5, 1)


@pytest.mark.parametrize(
    "options",
    [
        {"formats": ["%Y-%m-%d"], "tz": "Mars/Olympus"},
        {"formats": ["%Y-%m-%Q"], "tz": "UTC"},
        {"formats": ["%Y-%m-%d %"], "tz": "UTC"},
        {"formats": ["%Y-%m-%d %Y"], "tz": "UTC"},
        {"formats": [], "tz": "UTC"},
    ],
)
def test_parse_datetime_with_bad_options_is_a_spec_error(options):
    with pytest.raises(ValueError) as info:
        tr.parse_datetime("2023-05-01", **options)
    assert not isinstance(info.value, TransformError)


ZONES = st.sampled_from(
    ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"]
)


@given(
    moment=st.datetimes(datetime(1995, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC)),
    zone=ZONES,
    fmt=st.sampled_from(
        ["%Y-%m-%d %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S.%f", "%d %b %Y %H:%M:%S.%f", "%Y%m%d%H%M%S%f"]
    ),
)
def test_parse_datetime_round_trips_a_formatted_local_time(moment, zone, fmt):
    local = moment.astimezone(ZoneInfo(zone))
    assume(local.fold == 0)  # the repeated hour's second pass cannot be told apart as text
    assert tr.parse_datetime(local.strftime(fmt), formats=[fmt], tz=zone) == moment


@given(
    moment=st.datetimes(datetime(1995, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC)),
    zone=ZONES,
)
def test_parse_datetime_round_trips_a_formatted_aware_time_with_its_offset(moment, zone):
    text = moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    assert tr.parse_datetime(text, formats=["%Y-%m-%dT%H:%M:%S.%f%z"], tz=SHANGHAI) == moment


@given(
    local=st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1)),
    zone=ZONES,
    fold=st.sampled_from([0, 1]),
)
def test_naive_to_utc_shortcut_equals_replace_then_astimezone(local, zone, fold):
    local = local.replace(fold=fold)
    expected = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert repr(tr._to_utc(local, ZoneInfo(zone))) == repr(expected)  # value, tzinfo and fold


FAST_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y",
    "%Y%m%d%H%M%S",
    "%m%d%Y",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d  %H%%",
]


@st.composite
def near_format_text(draw, fmt):
    """Text in the skeleton of ``fmt`` with each field a random, often invalid, number."""

    def field(directive: str) -> str:
        if directive == "%":
            return "%"
        if directive == "f":
            return draw(st.text(string.digits, min_size=0, max_size=7))
        if directive == "Y":
            return draw(st.text(string.digits, min_size=3, max_size=5))
        number = draw(st.integers(0, 99))
        return draw(st.sampled_from([str(number), f"{number:02d}", f" {number}", f"{number:03d}"]))

    text = re.sub(r"%(.)", lambda m: field(m[1]), fmt)
    text = re.sub(r"\s+", lambda m: draw(st.sampled_from([" ", "  ", "\t", ""])), text)
    return draw(st.sampled_from([text, text.upper(), text.lower()]))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), fmt=st.sampled_from(FAST_FORMATS))
def test_fast_datetime_parser_agrees_with_strptime(data, fmt):
    parse = tr._compile_format(fmt)
    assert parse is not None
    text = data.draw(near_format_text(fmt) | st.text("0123456789 -:/.T%", max_size=22))
    try:
        expected = datetime.strptime(text, fmt)
    except ValueError:
        expected = None
    assert parse(text) == expected


@settings(max_examples=300)
@given(
    moment=st.datetimes(datetime(1000, 1, 1), datetime(9999, 12, 31)),
    fmt=st.sampled_from(
        ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]
    ),
)
def test_iso_shaped_text_takes_the_fromisoformat_path_and_parses_as_strptime_does(moment, fmt):
    text = moment.strftime(fmt)
    assert tr._compile_format(fmt)(text) == datetime.strptime(text, fmt)


@pytest.mark.parametrize(
    "text",
    ["2023-02-29 10:00:00", "2023-04-31 00:00:00", "2023-01-01 24:00:00", "2023-01-01 23:59:60"],
)
def test_iso_shaped_text_with_an_impossible_field_does_not_parse(text):
    assert tr._compile_format("%Y-%m-%d %H:%M:%S")(text) is None


@pytest.mark.parametrize(
    ("text", "zone"),
    [("0001-01-01 00:00:00", "Asia/Shanghai"), ("9999-12-31 23:00:00", "America/New_York")],
)
def test_a_time_that_leaves_the_calendar_once_in_utc_is_a_quarantine_not_a_crash(text, zone):
    formats = ["%Y-%m-%d %H:%M:%S"]
    assert rule_of(tr.parse_datetime, text, formats=formats, tz=zone) == "unparseable_datetime"


def test_formats_outside_the_fast_subset_fall_back_to_strptime():
    assert tr._compile_format("%d %b %Y") is None
    assert tr._compile_format("%H:%M") is None  # no date: strptime's 1900 defaults apply
    formats = ["%d %b %Y", "%Y-%m-%d"]
    assert tr.parse_datetime("2023-05-01", formats=formats, tz="UTC") == utc(2023, 5, 1)
    assert rule_of(tr.parse_datetime, "May 1", formats=formats, tz="UTC") == (
        "unparseable_datetime"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, utc(1970, 1, 1)),
        ("1682899200", utc(2023, 5, 1)),
        (-86400, utc(1969, 12, 31)),
        (Decimal("1682899200"), utc(2023, 5, 1)),
        ("", None),
    ],
)
def test_epoch_to_utc_reads_whole_seconds(value, expected):
    assert tr.epoch_to_utc(value) == expected


@pytest.mark.parametrize("value", ["abc", 1.5, True, 10**20, 1682899200000])
def test_epoch_to_utc_rejects_non_integers_and_out_of_range_values_like_milliseconds(value):
    assert rule_of(tr.epoch_to_utc, value) == "invalid_epoch"


# --------------------------------------------------------------------------------------------
# Email


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  John.Doe@Example.COM ", "john.doe@example.com"),
        ("ALICE+tag@Mail.Example.ORG", "alice+tag@mail.example.org"),
        ("x@例子.广告", "x@例子.广告"),
        ("Bob@XN--FSQU00A.XN--4RR70V", "bob@例子.广告"),
        ("user@mail-server.co.uk", "user@mail-server.co.uk"),
        ("", None),
    ],
)
def test_normalize_email_trims_lowercases_and_validates(value, expected):
    assert tr.normalize_email(value) == expected


def test_addresses_differing_only_by_case_normalize_to_the_same_string():
    assert tr.normalize_email("Jane.Roe@Corp.com") == tr.normalize_email("jane.roe@CORP.COM")


@pytest.mark.parametrize(
    "value",
    [
        "plainaddress",
        "john..doe@example.com",
        ".john@example.com",
        "john@example",
        "john@-example.com",
        "john@example.test",
        "john @example.com",
        "John <john@example.com>",
        "john@ab--cd.com",
        42,
    ],
)
def test_normalize_email_rejects_invalid_addresses(value):
    assert rule_of(tr.normalize_email, value) == "invalid_email"


def test_invalid_email_error_masks_the_address():
    with pytest.raises(TransformError) as info:
        tr.normalize_email("secret.person..x@example.com")
    assert "s***@example.com" in info.value.message
    assert "secret" not in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def library_email(address: str) -> str | None:
    try:
        return email_validator.validate_email(address, check_deliverability=False).normalized
    except email_validator.EmailNotValidError:
        return None


LOCAL_ATOM = st.text(string.ascii_lowercase + string.digits + "_%+-", min_size=1, max_size=10)
LABEL = st.from_regex(r"[a-z0-9]{1,10}(-[a-z0-9]{1,5})?", fullmatch=True)
TLD = st.from_regex(r"[a-z]{2,8}", fullmatch=True).filter(
    lambda t: t not in email_validator.SPECIAL_USE_DOMAIN_NAMES
)


@st.composite
def canonical_emails(draw):
    local = ".".join(draw(st.lists(LOCAL_ATOM, min_size=1, max_size=3)))
    labels = draw(st.lists(LABEL, min_size=1, max_size=3))
    return f"{local}@{'.'.join(labels)}.{draw(TLD)}"


@settings(max_examples=300)
@given(canonical_emails())
def test_email_fast_path_takes_canonical_addresses_and_the_library_agrees(address):
    assert tr._email_fast(address) == address
    assert library_email(address) == address


@st.composite
def near_canonical_emails(draw):
    """Addresses one slip away from canonical: stray dots and dashes, long labels, odd TLDs."""
    local = draw(st.text("ab0._%+-", max_size=10) | st.lists(LOCAL_ATOM, min_size=1).map(".".join))
    label = LABEL | st.text("abxn0-", max_size=6) | st.just("b" * draw(st.integers(60, 66)))
    labels = draw(st.lists(label, min_size=1, max_size=4))
    tld = draw(st.sampled_from(["com", "test", "local", "c", "c0m", "arpa", "xn--p1ai", "-com"]))
    return f"{local}@{'.'.join(labels)}.{tld}" + draw(st.sampled_from(["", "", ".", "@x.com"]))


@settings(max_examples=500)
@given(near_canonical_emails() | st.text("abx0n-._%+@", max_size=30))
def test_email_fast_path_accepts_nothing_the_library_would_treat_differently(address):
    fast = tr._email_fast(address)
    assert fast is None or library_email(address) == fast


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("a@" + "b" * 63 + ".com", True),
        ("a@" + "b" * 64 + ".com", False),
        ("a" * 64 + "@" + ".".join(["b" * 61] * 3) + ".com", True),  # 254 characters
        ("a" * 65 + "@" + ".".join(["b" * 61] * 3) + ".com", False),  # 255 characters
    ],
)
def test_email_fast_path_and_library_agree_at_the_length_limits(address, valid):
    assert library_email(address) == (address if valid else None)
    assert tr._email_fast(address) in (None, library_email(address))


def test_email_fast_path_leaves_special_cases_to_the_library():
    for address in ["a@x.test", "a@xn--p1ai.com", "a@ab--c.com", "a@b.c", "ü@x.com", "a@x.c0m"]:
        assert tr._email_fast(address) is None


@given(canonical_emails(), st.sampled_from(["", " ", "\t"]))
def test_normalize_email_of_a_case_and_space_variant_is_the_canonical_address(address, pad):
    assert tr.normalize_email(pad + address.upper() + pad) == address


# --------------------------------------------------------------------------------------------
# Phone


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "008613812345678",
        "8613812345678",
        13812345678,
    ],
)
def test_phone_e164_normalizes_cn_mobile_shapes(value):
    assert tr.phone_e164(value, region="CN") == "+8613812345678"


def test_phone_e164_normalizes_cn_landlines():
    assert tr.phone_e164("010-12345678", region="CN") == "+861012345678"
    assert tr.phone_e164("(021) 6234 5678", region="CN") == "+862162345678"


@pytest.mark.parametrize(
    "value", ["(650) 253-0000", "650-253-0000", "650.253.0000", "+1 650 253 0000", "1-650-253-0000"]
)
def test_phone_e164_normalizes_us_shapes(value):
    assert tr.phone_e164(value, region="US") == "+16502530000"


def test_phone_e164_keeps_foreign_numbers_written_with_a_country_code():
    assert tr.phone_e164("+44 20 7946 0958", region="CN") == "+442079460958"
    assert tr.phone_e164("+86 138 1234 5678", region="US") == "+8613812345678"


def test_phone_e164_region_is_case_insensitive():
    assert tr.phone_e164("13812345678", region="cn") == "+8613812345678"


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("14012345678", "CN"),  # looks like 1[3-9]xxxxxxxxx but no such mobile range exists
        ("12345", "CN"),
        ("not a number", "CN"),
        ("13812345678", "US"),
        ("650-253-0000 ext. 12", "US"),  # E.164 would silently drop the extension
        ("555-0100", "US"),
        (True, "US"),
    ],
)
def test_phone_e164_rejects_invalid_numbers(value, region):
    assert rule_of(tr.phone_e164, value, region=region) == "invalid_phone"


def test_invalid_phone_error_masks_the_number():
    with pytest.raises(TransformError) as info:
        tr.phone_e164("14012345678", region="CN")
    assert "'*********78'" in info.value.message
    assert "1401234" not in info.value.message


def test_phone_e164_with_an_unknown_region_is_a_spec_error():
    with pytest.raises(ValueError) as info:
        tr.phone_e164("13812345678", region="XX")
    assert not isinstance(info.value, TransformError)


def test_phone_cache_is_bounded():
    assert tr._phone_slow.cache_info().maxsize == 65536


def library_phone(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_cn_mobile_fast_path_agrees_with_the_library_for_every_five_digit_prefix():
    taken = 0
    for head in range(10_000, 20_000):
        for tail in ("000000", "987654"):
            text = f"{head}{tail}"
            if tr._CN_MOBILE.match(text):
                taken += 1
                assert library_phone(text, "CN") == "+86" + text
                assert tr.phone_e164(text, region="CN") == "+86" + text
    assert taken > 10_000  # the fast path covers the bulk of real mobile ranges


@settings(max_examples=300)
@given(st.from_regex(r"1[0-9]{10}", fullmatch=True), st.sampled_from(["", "+86"]))
def test_cn_mobile_fast_path_and_library_agree_on_random_numbers(digits, lead):
    expected = library_phone(lead + digits, "CN")
    if tr._CN_MOBILE.match(digits):
        assert expected == "+86" + digits
    try:
        result = tr.phone_e164(lead + digits, region="CN")
    except TransformError:
        result = None
    assert result == expected


# --------------------------------------------------------------------------------------------
# Lookups and keys

STATUS = {1: "active", "2": "suspended", "X": "closed"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, "active"), ("1", "active"), (2, "suspended"), ("2", "suspended"), ("X", "closed")],
)
def test_map_values_compares_keys_as_strings(value, expected):
    assert tr.map_values(value, values=STATUS) == expected


def test_map_values_raises_unmapped_value_naming_the_code_and_the_known_keys():
    with pytest.raises(TransformError) as info:
        tr.map_values("Z", values=STATUS)
    assert info.value.rule == "unmapped_value"
    assert "'Z'" in info.value.message and "1, 2, X" in info.value.message


def test_map_values_uses_the_default_when_the_spec_gives_one_even_none():
    assert tr.map_values("Z", values=STATUS, default="unknown") == "unknown"
    assert tr.map_values("Z", values=STATUS, default=None) is None


def test_map_values_refuses_keys_that_collide_as_strings():
    with pytest.raises(ValueError, match="collide"):
        tr.map_values("1", values={1: "a", "1": "b"})


def test_map_values_sees_a_new_mapping_object_even_at_a_reused_address():
    for n in range(300):
        assert tr.map_values("k", values={"k": n}) == n


def test_prefix_zero_pads_to_the_width():
    assert tr.prefix(123, prefix="ORD-", width=8) == "ORD-00000123"
    assert tr.prefix("77", prefix="C") == "C77"
    assert tr.prefix(123456789, prefix="ORD-", width=4) == "ORD-123456789"
