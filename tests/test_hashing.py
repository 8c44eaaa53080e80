"""Tests for canonical value text and row hashing, which reconciliation compares across dialects."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_lib.db.canonical import TableHasher, canonical, key_bucket, row_hash, row_text

UTC_PLUS_8 = timezone(timedelta(hours=8))

# --------------------------------------------------------------------------------------------
# canonical


def test_aware_utc_shanghai_and_naive_utc_of_one_instant_are_the_same_text():
    aware_utc = datetime(2024, 3, 1, 2, 30, 15, 250000, tzinfo=UTC)
    shanghai = datetime(2024, 3, 1, 10, 30, 15, 250000, tzinfo=UTC_PLUS_8)
    naive_utc = datetime(2024, 3, 1, 2, 30, 15, 250000)

    texts = {canonical(aware_utc), canonical(shanghai), canonical(naive_utc)}

    assert texts == {"2024-03-01 02:30:15.250000"}


def test_an_instant_crossing_midnight_in_utc_keeps_the_utc_date():
    shanghai_morning = datetime(2024, 1, 1, 7, 0, tzinfo=UTC_PLUS_8)

    assert canonical(shanghai_morning) == "2023-12-31 23:00:00"


def test_different_instants_give_different_text():
    assert canonical(datetime(2024, 3, 1, 2, 30, tzinfo=UTC)) != canonical(
        datetime(2024, 3, 1, 2, 30, tzinfo=UTC_PLUS_8)
    )


def test_decimal_keeps_its_scale_and_equals_the_same_text():
    assert canonical(Decimal("12.50")) == canonical("12.50") == "12.50"
    assert canonical(Decimal("12.5")) != canonical(Decimal("12.50"))


def test_decimal_in_exponent_form_is_written_out_in_full():
    assert canonical(Decimal("1E+3")) == "1000"
    assert canonical(Decimal("1.5E-7")) == "0.00000015"


def test_none_differs_from_the_empty_string():
    assert canonical(None) != canonical("")
    assert canonical("") == ""


def test_the_text_backslash_n_differs_from_none():
    assert canonical("\\N") != canonical(None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "1"),
        (False, "0"),
        (42, "42"),
        (0.1, "0.1"),
        (date(2024, 2, 29), "2024-02-29"),
        (b"\x00\xff", "00ff"),
        ("李伟", "李伟"),
    ],
)
def test_other_types_have_one_text_each(value, text):
    assert canonical(value) == text


def test_float_and_decimal_of_the_same_short_value_agree():
    assert canonical(2.5) == canonical(Decimal("2.5"))


@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False),
        st.builds(
            lambda digits, exponent: Decimal(digits).scaleb(exponent),
            st.integers(-(10**15), 10**15),
            st.integers(-40, 40),
        ),
    )
)
def test_canonical_decimal_round_trips_through_decimal(value):
    text = canonical(value)

    assert Decimal(text) == value
    assert "E" not in text.upper()
    assert canonical(Decimal(text)) == text


# --------------------------------------------------------------------------------------------
# Rows


ROW = ("A-00000001", Decimal("12.50"), datetime(2024, 3, 1, 2, 30, tzinfo=UTC), None, "paid")


def test_row_text_joins_canonical_fields_with_the_unit_separator():
    assert row_text(ROW) == "A-00000001\x1f12.50\x1f2024-03-01 02:30:00\x1f\\N\x1fpaid"


def test_row_hash_is_a_stable_60_bit_integer():
    digest = row_hash("1", ROW)

    assert digest == row_hash("1", list(ROW))
    assert 0 <= digest < 2**60


def test_row_hash_agrees_for_equal_data_from_different_dialects():
    from_postgres = ("A-1", Decimal("12.50"), datetime(2024, 3, 1, 10, 30, tzinfo=UTC_PLUS_8))
    from_sqlite = ("A-1", "12.50", datetime(2024, 3, 1, 2, 30))

    assert row_hash("1", from_postgres) == row_hash("1", from_sqlite)


@pytest.mark.parametrize(
    "changed",
    [
        ("A-00000002", *ROW[1:]),
        (ROW[0], Decimal("12.51"), *ROW[2:]),
        (*ROW[:2], ROW[2] + timedelta(seconds=1), *ROW[3:]),
        (*ROW[:3], "", ROW[4]),
        (*ROW[:4], "paid "),
        ROW[:4],
    ],
    ids=["text", "decimal", "datetime", "null-to-empty", "trailing-space", "field-dropped"],
)
def test_row_hash_changes_when_any_field_changes(changed):
    assert row_hash("1", changed) != row_hash("1", ROW)


def test_row_hash_changes_when_two_fields_swap():
    assert row_hash("1", ("a", "b")) != row_hash("1", ("b", "a"))


def test_row_hash_depends_on_the_key():
    assert row_hash("1", ROW) != row_hash("2", ROW)


def test_key_bucket_is_stable_and_within_range():
    buckets = [key_bucket(str(key), 1) for key in range(200)]

    assert buckets == [key_bucket(str(key), 1) for key in range(200)]
    assert set(buckets) <= set("0123456789abcdef")
    assert len(set(buckets)) > 8


# --------------------------------------------------------------------------------------------
# TableHasher


def table_digest(rows) -> tuple[str, int]:
    hasher = TableHasher()
    for row in rows:
        hasher.add(row)
    return hasher.hexdigest(), hasher.rows


def test_table_hasher_is_order_sensitive():
    rows = [(1, "a"), (2, "b"), (3, "c")]

    forward, count = table_digest(rows)
    backward, _ = table_digest(reversed(rows))

    assert count == 3
    assert forward != backward


def test_table_hasher_gives_equal_digests_for_equal_rows_in_equal_order():
    rows = [(1, Decimal("1.00"), None), (2, Decimal("2.00"), "x")]

    assert table_digest(rows) == table_digest(list(rows))


def test_table_hasher_tells_a_row_boundary_from_a_field_boundary():
    assert table_digest([("a", "b")]) != table_digest([("a",), ("b",)])


def test_empty_table_has_the_digest_of_no_input():
    digest, count = table_digest([])

    assert count == 0
    assert digest == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
