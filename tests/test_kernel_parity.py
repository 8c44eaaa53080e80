"""Each vectorized kernel gives what its per-value function gives, value for value.

The per-value function is the definition. ``assert_same`` runs a step both ways over the same
values: the per-value function one value at a time, and ``arrow_columns.run_step`` (the kernel,
then the per-value function for the rows the kernel leaves undecided). Values must agree by
``repr`` (``1`` is not ``1.0``, ``Decimal("1.0")`` is not ``Decimal("1.00")``) and failures by
rule and message. Because a kernel that left every row to the per-value function would pass
that trivially, the trap cases also assert that the kernel itself decided the row
(``decided_by_kernel``), and the properties that it decided a good share of the canonical values.

The study's exactness traps (../shared/ENGINE-STUDY.md) are explicit cases here: 2021-02-30,
half-even 0.125, float 2.675, lpad truncation, RE2's ASCII whitespace, DST gaps and folds,
silent NULLs; SQLite's mixed INTEGER/REAL columns are in test_arrow_pipeline.py.
"""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook_lib.errors import TransformError
from runbook_lib.mapping.arrow_columns import RowCounts, run_step
from runbook_lib.transforms import REGISTRY, get_transform
from runbook_lib.transforms.contacts import _CN_MOBILE_SHAPE, _NANP_SHAPE
from runbook_lib.transforms.dates import _to_utc
from runbook_lib.transforms.kernels import contacts as contact_kernels
from runbook_lib.transforms.kernels import dates as date_kernels
from runbook_lib.transforms.kernels import fixed as fixed_numbers
from runbook_lib.transforms.kernels.arrays import PY_WHITESPACE, to_arrow, to_python
from runbook_lib.transforms.registry import register_kernel

SHANGHAI = {
    "formats": ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S"],
    "tz": "Asia/Shanghai",
}
RATES = {"to": "CNY", "rates": {"CNY": "1", "USD": "7.1884"}}
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(function, values: tuple):
    try:
        return ("value", repr(function(*values)))
    except TransformError as exc:
        return ("error", exc.rule, exc.message)
    except Exception as exc:  # noqa: BLE001 - a crash of the definition must be the same crash
        return ("raises", type(exc))


def _vectorized(name: str, options: dict, columns: list[list]) -> tuple[list, RowCounts]:
    transform = get_transform(name)
    counts = RowCounts()
    outputs, errors = run_step(transform, options, tuple(to_arrow(c) for c in columns), counts)
    values = [to_python(output) for output in outputs]
    multi = transform.outputs is not None
    found = []
    for row in range(len(columns[0])):
        if row in errors:
            found.append(("error", errors[row].rule, errors[row].message))
        else:
            value = tuple(v[row] for v in values) if multi else values[0][row]
            found.append(("value", repr(value)))
    return found, counts


def assert_same(name: str, options: dict, *columns: list) -> RowCounts:
    """The step over ``columns`` (one list per input) gives what the per-value function gives."""
    transform = get_transform(name)
    rows = list(zip(*columns, strict=True))
    expected = [_outcome(lambda *v: transform.func(*v, **options), row) for row in rows]
    crashes = {e[1] for e in expected if e[0] == "raises"}
    if crashes:  # the per-value function crashes (a spec error, a bug): so must the step
        with pytest.raises(tuple(crashes)):
            _vectorized(name, options, [list(c) for c in columns])
        return RowCounts()
    found, counts = _vectorized(name, options, [list(c) for c in columns])
    for value, want, got in zip(rows, expected, found, strict=True):
        assert got == want, f"{name}{options} of {value!r}"
    return counts


def decided_by_kernel(name: str, options: dict, *values) -> list[bool]:
    """Per value, whether the kernel itself decided it (single-input transforms, plain arrays)."""
    result = get_transform(name).kernel(to_arrow(list(values)), **options)
    assert result is not None, f"the {name} kernel declined the column"
    if result.undecided is None:
        return [True] * len(values)
    return [not flag for flag in result.undecided.to_pylist()]


# --- the registry -------------------------------------------------------------------------------


def test_every_transform_of_the_engine_brief_carries_a_kernel():
    expected = {
        "parse_datetime",
        "epoch_to_utc",
        "to_decimal",
        "money",
        "convert_currency",
        "convert_amount",
        "to_int",
        "non_negative",
        "strip",
        "lower",
        "upper",
        "required",
        "map_values",
        "prefix",
        "to_bool",
        "split_name",
        "normalize_email",
        "phone_e164",
    }
    assert {name for name in expected if REGISTRY[name].kernel is None} == set()
    assert REGISTRY["join_name"].kernel is None  # two inputs, rare: per value


def test_a_kernel_is_one_registration_for_a_known_transform():
    with pytest.raises(ValueError, match="already has a kernel"):
        register_kernel("strip")(lambda values: None)
    with pytest.raises(ValueError, match="no such transform"):
        register_kernel("no_such_transform")(lambda values: None)


# --- the study's traps, explicitly --------------------------------------------------------------


def test_february_30th_is_unparseable_though_pyarrow_strptime_rolls_it_over():
    rolled = pc.strptime(pa.array(["2021-02-30"]), format="%Y-%m-%d", unit="us")
    assert rolled.to_pylist() == [datetime(2021, 3, 2)]  # the trap
    options = {"formats": ["%Y-%m-%d"], "tz": "UTC"}
    values = ["2021-02-30", "2020-02-29", "2021-02-29", "2021-04-31", "2021-03-02"]
    assert_same("parse_datetime", options, values)
    assert decided_by_kernel("parse_datetime", options, *values) == [
        False,
        True,
        False,
        False,
        True,
    ]
    with pytest.raises(TransformError) as failure:
        get_transform("parse_datetime").func("2021-02-30", **options)
    assert failure.value.rule == "unparseable_datetime"


def test_money_rounds_half_even_in_the_kernel():
    values = ["0.125", "0.135", "-0.125", "2.5", 0.125, Decimal("0.125"), "0.1250000001"]
    for options in ({"scale": 2}, {"scale": 0}):
        assert_same("to_decimal", options, values)
    assert decided_by_kernel("to_decimal", {"scale": 2}, *values[:4]) == [True] * 4
    assert decided_by_kernel("to_decimal", {"scale": 2}, 0.125, -0.125) == [True] * 2
    out, _ = _vectorized("to_decimal", {"scale": 2}, [["0.125", "0.135"]])
    assert out == [("value", "Decimal('0.12')"), ("value", "Decimal('0.14')")]
    assert_same("money", {"unit": "major"}, values)
    # a conversion is one exact product rounded once: 0.5 × 0.25 = 0.125 → 0.12
    assert_same("convert_amount", {"currency": "X", "to": "Y", "rates": {"X": "0.25"}}, ["0.5"])


def test_floats_enter_by_their_shortest_repr_not_their_binary_value():
    exact = pa.array([2.675]).cast(pa.decimal128(10, 2), safe=False)
    assert str(exact[0]) == "2.67"  # the trap: pyarrow casts the binary value 2.67499999...
    values = [2.675, 1.005, 0.285, 1.115, 8.345, 1e16, 1e-05, 123456.785, -2.675]
    assert_same("to_decimal", {"scale": 2}, values)
    assert_same("money", {"unit": "major"}, values)
    out, _ = _vectorized("money", {"unit": "major"}, [[2.675]])
    assert out == [("value", "Decimal('2.68')")]
    assert decided_by_kernel("money", {"unit": "major"}, 2.675, 1.005) == [True, True]


def test_zero_padding_never_truncates_a_longer_value():
    options = {"prefix": "A-", "width": 3}
    values = [12345, 7, "99", "12345678", -42, "+7", "王五", 0]
    assert_same("prefix", options, values)
    out, _ = _vectorized("prefix", options, [[12345, -42]])
    assert out == [("value", "'A-12345'"), ("value", "'A--42'")]
    assert decided_by_kernel("prefix", options, 12345, 7) == [True, True]


@pytest.mark.parametrize("space", ["\u3000", "\u00a0", "\x1c", "\x0b", "\u2028", "\u205f", " \t"])
def test_python_whitespace_not_re2s_ascii_one(space):
    text = f"{space}Mary{space}{space}Jane{space}Smith{space}"
    assert_same("strip", {}, [text, space, f"a{space}b"])
    assert_same("split_name", {}, [text, f"{space}欧阳{space}娜娜", space])
    assert_same("required", {}, [space, f"{space}x"])
    assert_same("to_bool", {}, [f"{space}yes{space}", f"{space}0"])
    assert_same("to_decimal", {"scale": 2}, [f"{space}12.5{space}"])
    assert_same("parse_datetime", SHANGHAI, [f"{space}2023-01-01 10:00:00{space}"])
    assert_same("normalize_email", {}, [f"{space}A@Example.com{space}"])
    assert decided_by_kernel("strip", {}, text) == [True]


# Local times in DST gaps (clocks forward) and folds (clocks back), in zones with 1 h, 30 min
# and midnight transitions, and a zone that skipped a day.
DST_CASES = [
    ("America/New_York", datetime(2023, 3, 12, 2, 30)),  # gap: the offset before applies
    ("America/New_York", datetime(2023, 11, 5, 1, 30)),  # fold: the first occurrence
    ("Europe/London", datetime(2023, 3, 26, 1, 0)),
    ("Europe/London", datetime(2023, 10, 29, 1, 59, 59)),
    ("Australia/Lord_Howe", datetime(2023, 10, 1, 2, 15)),  # a 30-minute shift
    ("Australia/Lord_Howe", datetime(2023, 4, 2, 1, 45)),
    ("America/Santiago", datetime(2023, 9, 3, 0, 30)),  # transitions at midnight
    ("Pacific/Apia", datetime(2011, 12, 30, 12, 0)),  # the day Samoa skipped
    ("Asia/Shanghai", datetime(1991, 4, 14, 2, 30)),  # China's DST era
]


@pytest.mark.parametrize(
    ("zone", "local"), DST_CASES, ids=[f"{z}-{t:%Y%m%dT%H%M}" for z, t in DST_CASES]
)
def test_local_times_in_dst_gaps_and_folds_use_fold_zero(zone, local):
    around = [local + timedelta(minutes=m) for m in (-90, -61, -60, -30, -1, 0, 1, 30, 59, 60, 90)]
    texts = [moment.strftime("%Y-%m-%d %H:%M:%S") for moment in around]
    options = {"formats": ["%Y-%m-%d %H:%M:%S"], "tz": zone}
    assert_same("parse_datetime", options, texts)
    assert_same("parse_datetime", options, around)  # datetimes from the source: localized
    assert all(decided_by_kernel("parse_datetime", options, *texts))
    out, _ = _vectorized("parse_datetime", options, [[texts[5]]])
    assert out == [("value", repr(_to_utc(local, ZoneInfo(zone))))]


def test_pyarrow_assume_timezone_differs_in_a_gap_so_the_kernel_does_not_use_it():
    gap = pa.array([datetime(2023, 3, 12, 2, 30)], pa.timestamp("us"))
    ours = _to_utc(datetime(2023, 3, 12, 2, 30), ZoneInfo("America/New_York"))
    for option in ("earliest", "latest"):
        theirs = pc.assume_timezone(gap, "America/New_York", nonexistent=option)
        assert theirs.cast(pa.int64())[0].as_py() != int(ours.timestamp() * 1_000_000)


@pytest.mark.parametrize(
    ("name", "options", "value", "rule"),
    [
        ("map_values", {"values": {0: "pending", 1: "paid"}}, 7, "unmapped_value"),
        ("map_values", {"values": {"new": "pending"}}, "gone", "unmapped_value"),
        ("parse_datetime", SHANGHAI, "2023-13-01 00:00:00", "unparseable_datetime"),
        ("parse_datetime", SHANGHAI, "2023-00-00 00:00:00", "unparseable_datetime"),
        ("epoch_to_utc", {}, 10**12, "invalid_epoch"),
        ("epoch_to_utc", {}, "12a", "invalid_epoch"),
        ("to_int", {}, "1.5", "invalid_integer"),
        ("to_int", {}, 2.5, "invalid_integer"),
        ("to_decimal", {"scale": 2}, "1,5", "invalid_decimal"),
        ("money", {"unit": "minor"}, "12.5", "invalid_amount"),
        ("money", {"unit": "major"}, float("nan"), "invalid_amount"),
        ("convert_currency", {**RATES}, None, "unknown_currency"),
        ("non_negative", {}, -3, "negative_quantity"),
        ("to_bool", {}, 2, "invalid_boolean"),
        ("to_bool", {}, "maybe", "invalid_boolean"),
        ("required", {}, None, "missing_required"),
        ("normalize_email", {}, "a@@b.com", "invalid_email"),
        ("phone_e164", {"region": "CN"}, "12345", "invalid_phone"),
    ],
)
def test_a_value_a_kernel_gives_no_answer_for_is_a_failure_never_a_silent_null(
    name, options, value, rule
):
    columns = [[value, None]] if name != "convert_currency" else [["12.50", "3"], [value, "CNY"]]
    found, _ = _vectorized(name, options, columns)
    assert found[0][:2] == ("error", rule)
    assert_same(name, options, *columns)


def test_a_column_without_any_currency_is_unknown_currency_row_by_row():
    found, _ = _vectorized("convert_currency", RATES, [["12.50", None], [None, None]])
    assert found[0][:2] == ("error", "unknown_currency") and found[1] == ("value", "None")
    assert_same("convert_currency", RATES, ["12.50", None], [None, None])


def test_mysql_zero_dates_are_no_date_but_a_partly_zero_date_is_unparseable():
    values = ["0000-00-00 00:00:00", "0000-00-00", " 0000-00-00 00:00:00 ", "2023-00-00 00:00:00"]
    found, _ = _vectorized("parse_datetime", SHANGHAI, [values])
    assert [f[:2] for f in found] == [("value", "None")] * 3 + [("error", "unparseable_datetime")]
    assert_same("parse_datetime", SHANGHAI, values)


def test_a_negative_zero_keeps_its_sign_as_a_decimal_does():
    values = ["-0.001", "-0", -0.0, "-0.004", "0.004"]
    assert_same("money", {"unit": "major"}, values)
    assert_same(
        "convert_amount", {"currency": "A", "to": "B", "rates": {"A": "-1"}}, ["0", "0.001"]
    )
    out, _ = _vectorized("money", {"unit": "major"}, [values])
    assert out[0] == ("value", "Decimal('-0.00')")


def test_values_past_int64_and_decimal128_stay_exact():
    big = "9" * 30
    assert_same("to_int", {}, [big, "12", 2**63, -(2**63) - 1])
    assert_same("to_decimal", {"scale": 2}, [big, Decimal(big + ".125"), "1e50", "12"])
    assert_same("money", {"unit": "minor"}, [10**40, 12345])
    assert_same("strip", {}, [10**30, " x "])


def test_email_and_phone_patterns_are_the_per_value_ones():
    # the kernels write these two patterns with named groups; a change there must be mirrored
    assert _CN_MOBILE_SHAPE.pattern == r"(?:\+86)?(1[0-9]{10})"
    assert _NANP_SHAPE.pattern == r"(\+1)?([2-9][0-9]{9})"
    assert contact_kernels._CN_SHAPE == r"^(?:\+86)?(?P<number>1[0-9]{10})$"
    assert contact_kernels._US_SHAPE == r"^(?P<plus>\+1)?(?P<number>[2-9][0-9]{9})$"


def test_unusual_but_valid_emails_and_phones_go_to_the_libraries():
    emails = ["user@xn--mller-kva.de", "Ünïcode@例子.广告", "a.b@sub.example.co.uk", "x@localhost"]
    assert_same("normalize_email", {}, emails)
    assert decided_by_kernel("normalize_email", {}, *emails) == [False, False, True, False]
    phones = ["+44 20 7946 0958", "+86 138 0013 8000", "(415) 555-2671", "+1 415 555 2671 x12"]
    for region in ("CN", "US", "GB"):
        assert_same("phone_e164", {"region": region}, phones)
    assert decided_by_kernel("phone_e164", {"region": "US"}, *phones) == [False, True, True, False]


# --- properties: values the demo never has ------------------------------------------------------

SPACES = st.sampled_from(list(PY_WHITESPACE) + [" ", "  "])
WORDS = st.text(
    alphabet=st.sampled_from(
        list(string.ascii_letters + "éßİſKÅ-'.") + ["欧", "阳", "司", "马", "王", "·"]
    ),
    min_size=0,
    max_size=8,
)
TEXTS = st.lists(st.one_of(WORDS, SPACES), max_size=6).map("".join)


@PROPERTY
@given(values=st.lists(st.one_of(st.none(), TEXTS, st.integers(-5, 5)), max_size=30))
def test_text_kernels_match(values):
    for name in ("strip", "lower", "upper", "required", "split_name", "identity"):
        assert_same(name, {}, values)


@PROPERTY
@given(texts=st.lists(TEXTS, min_size=1, max_size=30))
def test_split_name_kernel_decides_every_text(texts):
    values = [*texts, None]
    assert all(decided_by_kernel("split_name", {}, *values))
    assert_same("split_name", {}, values)


DECIMAL_TEXT = st.from_regex(r"\A[+-]?[0-9]{0,20}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,3})?\Z")
NUMBERS = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(places=3, min_value=-(10**6), max_value=10**6).map(float),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(places=4, min_value=-(10**10), max_value=10**10),
    DECIMAL_TEXT,
    st.tuples(SPACES, DECIMAL_TEXT, SPACES).map("".join),
    st.sampled_from(["", " ", "nan", "inf", "1e999999999999", ".", "+", "-0", "1_000", "١٢"]),
    st.booleans(),
)


@PROPERTY
@given(values=st.lists(NUMBERS, max_size=30), scale=st.integers(0, 6))
def test_number_kernels_match(values, scale):
    assert_same("to_decimal", {"scale": scale}, values)
    assert_same("money", {"unit": "major", "scale": scale}, values)
    assert_same("money", {"unit": "minor", "scale": scale}, values)
    assert_same("to_int", {}, values)
    assert_same("non_negative", {}, values)
    assert_same("epoch_to_utc", {}, values)
    assert_same("to_bool", {}, values)


RATE = st.one_of(
    st.decimals(places=6, min_value=-1000, max_value=1000).map(str),
    st.sampled_from(["7.1884", "1", "0", "-0.5", "1E+3", "0.000001", "x"]),
    st.floats(0.001, 100),
)


@PROPERTY
@given(
    amounts=st.lists(NUMBERS, min_size=1, max_size=20),
    codes=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["USD", " usd ", "CNY", "cny", "EUR", "ｕｓｄ", ""]),
            st.integers(0, 2),
        ),
        min_size=20,
        max_size=20,
    ),
    rate=RATE,
    scale=st.integers(0, 4),
    unit=st.sampled_from(["major", "minor"]),
)
def test_currency_kernels_match(amounts, codes, rate, scale, unit):
    rates = {"CNY": "1", "usd": rate}
    options = {"to": "CNY", "rates": rates, "scale": scale, "unit": unit}
    # a rate that is no number ("x") is a spec error: assert_same wants the same raise both ways
    assert_same("convert_currency", options, amounts, codes[: len(amounts)])
    assert_same("convert_amount", {**options, "currency": "USD"}, amounts)


@PROPERTY
@given(
    values=st.lists(
        st.one_of(st.none(), st.integers(-3, 12), st.booleans(), TEXTS, st.floats(0, 3)),
        max_size=30,
    ),
    with_default=st.booleans(),
)
def test_map_values_kernel_matches(values, with_default):
    options = {"values": {0: "pending", 1: "paid", "x": None, "True": "yes", "2": 5}}
    if with_default:
        options["default"] = "other"
    assert_same("map_values", options, values)


@PROPERTY
@given(
    values=st.lists(
        st.one_of(st.none(), st.integers(-(10**12), 10**12), TEXTS, st.booleans()), max_size=30
    ),
    width=st.integers(-2, 12),
    prefix=st.sampled_from(["A-", "", "SO-", "王"]),
)
def test_prefix_kernel_matches(values, width, prefix):
    assert_same("prefix", {"prefix": prefix, "width": width}, values)


FLAGS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "1",
            "0",
            "Y",
            "n",
            "YES",
            "No",
            "t",
            "F",
            "true",
            "FALSE",
            "on",
            "Off",
            "ſ",
            "yeſ",
            "ｙｅｓ",
            "2",
            "",
        ]
    ),
    st.tuples(SPACES, st.sampled_from(["yes", "0", "off"]), SPACES).map("".join),
    st.integers(-2, 3),
    st.floats(allow_nan=True),
    st.sampled_from([b"\x00", b"\x01", b"\x02", Decimal("1"), Decimal("1.0"), True, False]),
)


@PROPERTY
@given(values=st.lists(FLAGS, max_size=30))
def test_to_bool_kernel_matches(values):
    assert_same("to_bool", {}, values)


def _format(moment: datetime, fmt: str) -> str:
    return moment.strftime(fmt)


MOMENTS = st.datetimes(min_value=datetime(1780, 1, 1), max_value=datetime(2420, 12, 31))
FORMATS = st.sampled_from(
    SHANGHAI["formats"] + ["%m/%d/%Y", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S.%f"]
)
ZONES = st.sampled_from(
    [
        "Asia/Shanghai",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "UTC",
        "Asia/Kathmandu",
        "America/Sao_Paulo",
        "Pacific/Apia",
    ]
)


def _mangled(text: str, draw_index: int) -> str:
    """A near miss: one character changed, dropped or doubled (a digit, a separator)."""
    if not text:
        return text
    i = draw_index % len(text)
    return [
        text[:i] + "9" + text[i + 1 :],
        text[:i] + text[i + 1 :],
        text[:i] + text[i] + text[i:],
    ][draw_index % 3]


DATE_TEXTS = st.one_of(
    st.builds(_format, MOMENTS, FORMATS),
    st.builds(_mangled, st.builds(_format, MOMENTS, FORMATS), st.integers(0, 60)),
    st.tuples(SPACES, st.builds(_format, MOMENTS, FORMATS), SPACES).map("".join),
    st.sampled_from(
        [
            "0000-00-00 00:00:00",
            "0000-00-00",
            "2021-02-30 10:00:00",
            "2023-1-5 1:2:3",
            "20230105",
            "2023-01-05t10:00:00",
            "٢٠٢٣-٠١-٠٥ 10:00:00",
            "2023-01-05 24:00:00",
            "2023-01-05 23:59:60",
            "",
        ]
    ),
    st.none(),
)


@PROPERTY
@given(
    values=st.lists(DATE_TEXTS, max_size=30),
    zone=ZONES,
    formats=st.lists(FORMATS, min_size=1, max_size=3, unique=True),
)
def test_parse_datetime_kernel_matches_on_text(values, zone, formats):
    assert_same("parse_datetime", {"formats": formats, "tz": zone}, values)


@PROPERTY
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            MOMENTS,
            st.dates(min_value=date(1790, 1, 1)),
            MOMENTS.map(lambda m: m.replace(tzinfo=UTC)),
        ),
        max_size=30,
    ),
    zone=ZONES,
)
def test_parse_datetime_kernel_matches_on_datetimes_and_dates(values, zone):
    assert_same("parse_datetime", {"formats": ["%Y-%m-%d"], "tz": zone}, values)


@PROPERTY
@given(
    moments=st.lists(
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)),
        min_size=1,
        max_size=40,
    ),
    zone=ZONES,
)
def test_canonical_local_times_are_decided_by_the_kernel(moments, zone):
    options = {"formats": ["%Y-%m-%d %H:%M:%S"], "tz": zone}
    texts = [m.strftime("%Y-%m-%d %H:%M:%S") for m in moments]
    assert all(decided_by_kernel("parse_datetime", options, *texts))
    assert_same("parse_datetime", options, texts)


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Asia/Shanghai",
        "Europe/Moscow",
        "America/St_Johns",
    ],
)
def test_the_zone_table_agrees_with_zoneinfo_at_every_transition_from_1900_to_2100(zone):
    # every breakpoint the kernel tabled, and a second and a minute around it, in both ways
    tz = ZoneInfo(zone)
    locals_ = []
    for year in range(1900, 2101, 7):
        for start, _offset in date_kernels._year_breaks(tz, year):
            moment = datetime(1970, 1, 1) + timedelta(seconds=start)
            locals_ += [moment + timedelta(seconds=s) for s in (-61, -1, 0, 1, 59, 1800)]
    texts = [m.strftime("%Y-%m-%d %H:%M:%S") for m in locals_]
    assert_same("parse_datetime", {"formats": ["%Y-%m-%d %H:%M:%S"], "tz": zone}, texts)


EMAILS = st.one_of(
    st.emails(),
    st.emails().map(str.upper),
    st.tuples(SPACES, st.emails(), SPACES).map("".join),
    st.builds(
        lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
        st.text(alphabet=string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=12),
        st.lists(
            st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=64),
            min_size=1,
            max_size=3,
        ),
        st.sampled_from(
            ["com", "local", "test", "onion", "invalid", "localhost", "x", "co-op", "例子"]
        ),
    ),
    st.sampled_from(
        [
            "",
            " ",
            "plain",
            "@x.com",
            "a@b",
            "a..b@c.com",
            "a@b.com.",
            "Ünïcode@x.com",
            "a@" + "b" * 250 + ".com",
        ]
    ),
    st.none(),
    st.integers(0, 9),
)


@PROPERTY
@given(values=st.lists(EMAILS, max_size=20))
def test_normalize_email_kernel_matches(values):
    assert_same("normalize_email", {}, values)


PHONES = st.one_of(
    st.builds(lambda d: "1" + d, st.text(alphabet=string.digits, min_size=10, max_size=10)),
    st.builds(lambda d: "+86 1" + d, st.text(alphabet=string.digits, min_size=10, max_size=10)),
    st.builds(
        lambda a, b: f"({a}) {b[:3]}-{b[3:]}",
        st.text(alphabet=string.digits, min_size=3, max_size=3),
        st.text(alphabet=string.digits, min_size=7, max_size=7),
    ),
    st.builds(lambda d: "+1." + d, st.text(alphabet=string.digits + ".", min_size=10, max_size=13)),
    st.text(alphabet=string.digits + " -.()+x", max_size=16),
    st.integers(0, 10**11),
    st.sampled_from(
        [
            "",
            "  ",
            "١٣٨٠٠١٣٨٠٠٠",
            "+86 138 0013 8000",
            "13800138000",
            "2125550123",
            "+44 20 7946 0958",
        ]
    ),
    st.none(),
)


@PROPERTY
@given(values=st.lists(PHONES, max_size=20), region=st.sampled_from(["CN", "US", "GB", "us"]))
def test_phone_e164_kernel_matches(values, region):
    assert_same("phone_e164", {"region": region}, values)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_arrows_float_to_text_cast_writes_the_value_of_repr(values):
    # what the money kernels rely on to read floats by their shortest repr
    texts = pa.array(values, pa.float64()).cast(pa.string()).to_pylist()
    assert [Decimal(t) for t in texts] == [Decimal(repr(v)) for v in values]


MIXED = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=5),
    st.decimals(allow_nan=True),
    st.datetimes(),
    st.datetimes().map(lambda m: m.replace(tzinfo=UTC)),
    st.dates(),
    st.binary(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(MIXED, max_size=30))
def test_arrow_arrays_hold_python_values_exactly(values):
    # ints stay ints beside floats, Decimals keep their exponent and sign, UTC stays datetime.UTC
    assert repr(to_python(to_arrow(values))) == repr(values)


def _fixed_values(values: list[float]) -> list[Decimal | None]:
    numbers = fixed_numbers.fixed_numbers(pa.array(values, pa.float64()))
    return [
        Decimal(int(c)).scaleb(numbers.exponent) if ok else None
        for c, ok in zip(numbers.coefficient, numbers.exact, strict=True)
    ]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(), st.decimals(places=4, min_value=-(10**9), max_value=10**9).map(float)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_floats_read_as_fixed_numbers_are_the_value_of_their_repr(values):
    for value, fixed in zip(values, _fixed_values(values), strict=True):
        if fixed is not None:
            assert fixed == Decimal(repr(value)), value


def test_floats_of_every_magnitude_read_as_their_repr_and_money_like_ones_all_decided():
    rng = np.random.default_rng(20261201)
    bits = rng.integers(0, 2**62, 100_000, dtype=np.int64) * rng.choice([1, -1], 100_000)
    anything = bits.view(np.float64)
    money_like = np.round(rng.uniform(-1e7, 1e7, 100_000), 2)
    for sample in (anything[np.isfinite(anything)], money_like):
        values = sample.tolist()
        fixed = _fixed_values(values)
        for value, found in zip(values, fixed, strict=True):
            assert found is None or found == Decimal(repr(value)), value
    assert None not in _fixed_values(money_like.tolist())


def test_a_product_of_nineteen_digits_rounds_like_the_function():
    """0.0343 × 14.614915336011915 = 0.50129…: a 19-digit coefficient, rounded to scale 0 is 1."""
    options = {"to": "CNY", "rates": {"CNY": "1", "usd": 14.614915336011915}, "scale": 0}
    assert_same("convert_amount", {**options, "currency": "USD"}, [Decimal("0.0343")])
    assert_same("convert_amount", {**options, "currency": "USD"}, [Decimal("-0.0343")])
