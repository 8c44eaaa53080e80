"""Key-range comparison and bisection, on a synthetic table whose differences are known exactly.

``orders_like`` holds 3,000 rows keyed "1".."3000"; the target copy differs in exactly four
keys: 17 changed (amount), 1234 deleted, 9999 added, 2500 present twice (no unique key here).
The comparison must name those four, whatever the leaf size, in Python (SQLite) and in the
database (PostgreSQL).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from runbook_demo.target_schema import ExactDecimal
from runbook_lib.db.canonical import row_hash
from runbook_lib.validate import aggregates, key_ranges
from runbook_lib.validate.target_hashes import KeyRangeSet, SqlTargetRows, TargetRows, target_rows

COLUMNS = ["source_system", "amount", "note"]
CENT = Decimal("0.01")
PLANTED = {"17": "changed", "1234": "missing", "9999": "extra", "2500": "duplicate"}


def _expected_rows() -> dict[str, tuple]:
    return {
        str(i): ("legacy_a", (Decimal(i) / 100).quantize(CENT), f"row {i}" if i % 7 else None)
        for i in range(1, 3001)
    }


def _target(engine: sa.Engine) -> sa.Table:
    metadata = sa.MetaData()
    table = sa.Table(
        "orders_like",
        metadata,
        sa.Column("row_id", sa.Integer, primary_key=True),
        sa.Column("source_system", sa.String(16)),
        sa.Column("source_key", sa.String(64)),
        sa.Column("amount", ExactDecimal(14, 2)),  # text on SQLite, NUMERIC on servers
        sa.Column("note", sa.String(32)),
    )
    metadata.create_all(engine)
    rows = dict(_expected_rows())
    rows["17"] = ("legacy_a", Decimal("99.99"), rows["17"][2])
    del rows["1234"]
    rows["9999"] = ("legacy_a", Decimal("1.00"), "planted")
    records = [
        {"source_key": k, "source_system": v[0], "amount": v[1], "note": v[2]}
        for k, v in rows.items()
    ]
    records.append(records[2499 - 1])  # key "2500" a second time
    with engine.begin() as connection:
        connection.execute(
            table.insert(), [r | {"row_id": i} for i, r in enumerate(records, start=1)]
        )
    return sa.Table("orders_like", sa.MetaData(), autoload_with=engine)


def _compare(target: TargetRows, width: int) -> key_ranges.Comparison:
    want = _expected_rows()
    ours = key_ranges.KeyRanges(width)
    for key, values in want.items():
        ours.add(key, row_hash(key, values))

    def rebuild(ranges):
        inside = KeyRangeSet(ranges)
        return {k: (row_hash(k, v), v) for k, v in want.items() if inside.holds(k)}

    theirs = key_ranges.KeyRanges.from_sums(width, target.bucket_sums(width))
    return key_ranges.compare(ours, theirs, target, rebuild)


def _kinds(comparison: key_ranges.Comparison) -> dict[str, str]:
    return {d.key: d.kind for d in comparison.differences}


@pytest.fixture
def sqlite_target(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 't.db'}")
    yield target_rows(engine, _target(engine), "legacy_a", COLUMNS, chunk_size=500)
    engine.dispose()


@pytest.mark.parametrize("leaf_rows", [64, 4, 1])
def test_bisection_names_exactly_the_planted_keys_at_any_leaf_size(
    sqlite_target, monkeypatch, leaf_rows
):
    monkeypatch.setattr(key_ranges, "LEAF_ROWS", leaf_rows)
    comparison = _compare(sqlite_target, width=2)
    assert _kinds(comparison) == PLANTED
    assert comparison.complete and comparison.difference_count == 4
    # ~12 rows a range at 2 digits: one split gets under 4; a key held twice never splits
    assert comparison.bisection_levels == {64: 0, 4: 1, 1: 3}[leaf_rows]
    changed = next(d for d in comparison.differences if d.kind == "changed")
    assert changed.columns == ("amount",)
    duplicate = next(d for d in comparison.differences if d.kind == "duplicate")
    assert len(duplicate.actual) == 2


@pytest.mark.postgres
def test_bisection_runs_inside_postgresql_and_fetches_only_a_few_hashes(postgres_url, monkeypatch):
    monkeypatch.setattr(key_ranges, "LEAF_ROWS", 4)
    engine = sa.create_engine(postgres_url)
    try:
        target = target_rows(engine, _target(engine), "legacy_a", COLUMNS, chunk_size=500)
        assert isinstance(target, SqlTargetRows)
        comparison = _compare(target, width=2)
        assert _kinds(comparison) == PLANTED
        assert comparison.bisection_levels == 1
        assert comparison.hashes_fetched <= 4 * 4  # a few leaves of at most 4 rows, not 3,000
    finally:
        engine.dispose()


def test_ranges_past_the_drill_limit_count_as_differences_and_mark_it_incomplete(
    sqlite_target, monkeypatch
):
    monkeypatch.setattr(key_ranges, "MAX_DRILLED_RANGES", 1)
    comparison = _compare(sqlite_target, width=3)
    assert not comparison.complete
    assert comparison.differing_ranges == 4 and comparison.undrilled_ranges == 3
    assert len(comparison.differences) == 1 and comparison.difference_count == 4


def test_the_first_width_keeps_ranges_small_and_memory_bounded():
    assert key_ranges.first_width(0) == key_ranges.MIN_WIDTH == 2
    assert key_ranges.first_width(1_000_000) == 3  # 4,096 ranges of ~244 rows
    assert (
        key_ranges.first_width(10**9) == key_ranges.MAX_WIDTH == 4
    )  # then bisection does the rest


def test_equal_sides_have_no_differing_range():
    ours, theirs = key_ranges.KeyRanges(2), key_ranges.KeyRanges(2)
    for key in ("1", "2", "3"):
        ours.add(key, row_hash(key, ("x",)))
    for key in ("3", "1", "2"):
        theirs.add(key, row_hash(key, ("x",)))
    assert ours.differing(theirs) == []
    theirs.add("4", 0)  # a row whose hash is 0 still counts
    assert len(ours.differing(theirs)) == 1


def test_natural_order_of_keys():
    keys = ["10", "9", "SO-000010", "SO-000009", "1|2", "1|10"]
    assert sorted(keys, key=key_ranges.natural_key) == [
        "1|2",
        "1|10",
        "9",
        "10",
        "SO-000009",
        "SO-000010",
    ]


def _stats(*values) -> aggregates.Stats:
    stats = aggregates.Stats()
    for value in values:
        stats.add(value)
    return stats


class _Expected:
    group = None
    columns = ["amount"]
    quarantined: dict = {}

    def __init__(self, stats):
        self.expected = {(None, "amount"): stats}


def test_an_aggregate_mismatch_is_explained_only_by_the_rows_that_account_for_it():
    expected = _Expected(_stats(Decimal("1.00"), Decimal("2.00")))
    target = {(None, "amount"): _stats(Decimal("1.00"), Decimal("5.00"))}
    columns = ["source_system", "amount"]
    row = key_ranges.RowDifference(
        "2", "changed", ("amount",), ("a", Decimal("2.00")), (("a", Decimal("5.00")),)
    )
    (explained,) = aggregates.compare("t", "a", expected, target, [row], columns, True)
    assert explained.status == "explained" and explained.explained_by == 1
    (unexplained,) = aggregates.compare("t", "a", expected, target, [], columns, True)
    assert unexplained.status == "unexplained" and unexplained.unexplained
    wrong = key_ranges.RowDifference(
        "2", "changed", ("amount",), ("a", Decimal("2.00")), (("a", Decimal("4.00")),)
    )
    (still,) = aggregates.compare("t", "a", expected, target, [wrong], columns, True)
    assert still.status == "unexplained"


def test_aggregates_are_exact_decimals_with_nulls_counted():
    stats = _stats(Decimal("0.10"), None, Decimal("0.20"), 3)
    assert stats.to_dict() == {"rows": 4, "nulls": 1, "sum": "3.30", "min": "0.10", "max": "3"}
