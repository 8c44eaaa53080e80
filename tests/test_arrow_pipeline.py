"""``CompiledSource.transform_arrow`` gives exactly what ``transform_batch`` gives.

The vectorized execution must be the loader's column path in another form: the same target
values (compared as Python values, by ``repr``), the same rejected rows with the same rule,
message and raw row, the first failing column winning, ``on_error: "null"`` keeping the row.
Checked on every row of the ci demo and of a dev-size demo (20,000 orders), on a SQLite table
whose NUMERIC column holds INTEGER, REAL and TEXT at once, and on hypothesis-generated rows of
every Python type a driver returns. ``RowCounts`` shows the kernels did the work, so the
comparison is not the per-value path against itself.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lib.config.params import load_params
from runbook_lib.mapping.arrow_columns import RowCounts
from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec, MappingSpec
from runbook_lib.run.context import StageContext
from runbook_lib.transforms import REGISTRY
from runbook_lib.transforms.kernels import record_batch_from_rows
from tests.conftest import copy_project

SHANGHAI = {
    "formats": ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S"],
    "tz": "Asia/Shanghai",
}


def assert_same_chunk(pipeline: CompiledSource, rows: list[tuple], counts: RowCounts | None = None):
    """transform_arrow over the rows as a record batch ≡ transform_batch over the rows."""
    expected, expected_rejects = pipeline.transform_batch(rows)
    batch = record_batch_from_rows(rows, pipeline.select_columns)
    chunk, rejects = pipeline.transform_arrow(batch, counts)
    found = chunk.to_column_batch()
    # repr, not ==: 1 == 1.0 == True and Decimal("1.0") == Decimal("1.00") are different
    # loads, and a NaN is not even equal to itself
    assert repr(found.raws) == repr(expected.raws)
    assert list(found.columns) == list(expected.columns)
    for name, values in expected.columns.items():
        assert repr(found.columns[name]) == repr(values), f"{pipeline.label}: {name}"
    assert repr(rejects) == repr(expected_rejects)  # key, rule, message, raw row: all of it
    assert found.dropped == expected.dropped  # the values on_error "null" dropped, by row
    return len(rows), len(rejects)


def _compare_demo(root, env: str, chunk_size: int) -> tuple[int, int, RowCounts]:
    """Every source of the demo at ``root``, chunk by chunk: (rows compared, rejected, counts)."""
    ctx = StageContext(load_params(env, project_root=root), None)
    engines = ctx.source_engines()
    compared = rejected = 0
    counts = RowCounts()
    for pipeline in ordered_sources(ctx.spec):
        with engines[pipeline.system].connect() as connection:
            rows = [tuple(r) for r in connection.execute(pipeline.select())]
        counted = pipeline.count(engines[pipeline.system])
        filtered = sum(v for k, v in counted.items() if k.startswith("filtered:"))
        assert len(rows) == counted["source_rows"] - filtered > 0, pipeline.label
        for start in range(0, len(rows), chunk_size):
            n, r = assert_same_chunk(pipeline, rows[start : start + chunk_size], counts)
            compared, rejected = compared + n, rejected + r
    for engine in engines.values():
        engine.dispose()
    return compared, rejected, counts


# A kernel may leave unusual values to its per-value function; on the demo's data these are
# the least shares each must decide itself (the demo plants bad emails and phones on purpose).
LEAST_SHARE_BY_KERNEL = {"normalize_email": 0.9, "phone_e164": 0.9}


def _assert_kernels_did_the_work(counts: RowCounts) -> None:
    assert counts.by_kernel, "no kernel ran"
    for name in counts.by_kernel:
        if REGISTRY[name].kernel is None:
            continue
        least = LEAST_SHARE_BY_KERNEL.get(name, 0.97)
        assert counts.share_by_kernel(name) >= least, (name, counts.share_by_kernel(name))


def test_every_ci_demo_source_is_the_same_vectorized(ci_project, ci_demo):
    compared, rejected, counts = _compare_demo(ci_project, "ci", 700)
    assert compared > 7_000
    assert rejected > 0  # the demo's planted defects went through both paths
    _assert_kernels_did_the_work(counts)


@pytest.fixture(scope="module")
def dev_project(tmp_path_factory):
    from runbook_demo.build import build_demo

    root = copy_project(tmp_path_factory.mktemp("dev") / "project")
    build_demo("dev", root)
    return root


def test_a_dev_size_demo_of_20000_orders_is_the_same_vectorized(dev_project):
    started = time.perf_counter()
    compared, rejected, counts = _compare_demo(dev_project, "dev", 5000)
    assert compared > 70_000 and rejected > 0
    _assert_kernels_did_the_work(counts)
    assert time.perf_counter() - started < 120  # about 15 s here; a hang is a failure


def _pipeline(columns: dict, key: str | list[str] = "id") -> CompiledSource:
    spec = MappingSpec.model_validate(
        {
            "version": 1,
            "name": "t",
            "systems": {"s": "s"},
            "targets": {"t": {"sources": {"s.src": {"key": key, "columns": columns}}}},
        }
    )
    loaded = LoadedSpec(spec=spec, path=None, sha256="0" * 64)
    (entry,) = loaded.sources()
    return CompiledSource(loaded, *entry)


def test_a_sqlite_numeric_column_holding_integer_real_and_text_is_the_same_vectorized(tmp_path):
    # SQLite types each value, not the column: a NUMERIC column returns int, float and str rows
    # (connectorx fails on this; a float column would turn 2^53 + 1 into 2^53)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'mixed.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE src (id INTEGER PRIMARY KEY, v NUMERIC)"))
        values = [12, 12.5, 2.675, 9007199254740993, "7 ", None, -0.0, 0.125, "x", 10**18]
        connection.execute(
            sa.text("INSERT INTO src VALUES (:id, :v)"),
            [{"id": i, "v": v} for i, v in enumerate(values)],
        )
    pipeline = _pipeline(
        {
            "copied": {"from": "v"},
            "amount": {"from": "v", "transform": {"money": {"unit": "major"}}, "on_error": "null"},
            "whole": {"from": "v", "transform": "to_int", "on_error": "null"},
            "quantity": {"from": "v", "transform": "non_negative", "on_error": "null"},
            "text": {"from": "v", "transform": ["strip", "required"]},
        }
    )
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(pipeline.select())]
    assert {type(v) for _id, v in rows} == {int, float, str, type(None)}
    counts = RowCounts()
    assert_same_chunk(pipeline, rows, counts)
    batch = record_batch_from_rows(rows, pipeline.select_columns)
    copied = pipeline.transform_arrow(batch)[0].to_column_batch().columns["copied"]
    assert 9007199254740993 in copied and 12 in copied  # ints stay ints beside the reals
    assert counts.by_kernel["money"] >= 6


MIXED_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**66), 2**66),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(),
    st.sampled_from([0.0, -0.0, 1.0, 1, True, "1", " 1 ", "", "\u3000", "x", "12.345", "-0.001"]),
    st.decimals(-1000, 1000, places=3, allow_nan=False),
    st.text(" 1.-a欧阳\u3000", max_size=6),
    st.sampled_from(["2023-01-05 10:00:00", "2021-02-30 10:00:00", "20230105103000", "0000-00-00"]),
    st.datetimes(min_value=datetime(1900, 1, 1)).map(lambda m: m.replace(tzinfo=UTC)),
)
COLUMNS = {
    "amount": {"from": "v", "transform": {"money": {"unit": "major"}}},
    "cents": {"from": "v", "transform": {"money": {"unit": "minor"}}, "on_error": "null"},
    "text": {"from": "v", "transform": ["strip", "required"]},
    "number": {"from": "v", "transform": "to_int", "on_error": "null"},
    "at": {"from": "v", "transform": {"parse_datetime": SHANGHAI}, "on_error": "null"},
    "flag": {"from": "v", "transform": "to_bool", "on_error": "null"},
    "code": {"from": "v", "transform": {"prefix": {"prefix": "A-", "width": 5}}},
    "status": {
        "from": "v",
        "transform": {"map_values": {"values": {0: "a", "1": "b"}, "default": "z"}},
    },
    "first_name, last_name": {"from": "w", "transform": "split_name"},
    "parent": {"from": "v", "references": "t"},
    "cny": {
        "from": "v",
        "transform": {
            "convert_amount": {"currency": "USD", "to": "CNY", "rates": {"USD": "7.1884"}}
        },
        "on_error": "null",
    },
    "constant": {"value": "CNY"},
}


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(MIXED_VALUES, MIXED_VALUES), min_size=0, max_size=40))
def test_rows_of_every_driver_type_are_the_same_vectorized(rows):
    pipeline = _pipeline(COLUMNS)
    assert_same_chunk(pipeline, [(index, v, w) for index, (v, w) in enumerate(rows)])


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.one_of(st.integers(0, 3), st.none()), st.text("ab", max_size=2), MIXED_VALUES),
        max_size=30,
    )
)
def test_a_key_of_several_columns_and_the_first_failing_column(rows):
    # text fails on a blank (missing_required) before amount fails on it (invalid_amount)
    pipeline = _pipeline(
        {
            "text": {"from": "v", "transform": ["strip", "required"]},
            "amount": {"from": "v", "transform": {"money": {"unit": "minor"}}},
        },
        key=["a", "b"],
    )
    assert_same_chunk(pipeline, rows)


def test_an_empty_and_a_one_row_chunk():
    pipeline = _pipeline(COLUMNS)
    assert_same_chunk(pipeline, [])
    assert_same_chunk(pipeline, [(1, "12.50", "欧阳修")])
    assert_same_chunk(pipeline, [(1, None, None)])


def test_on_error_null_keeps_the_row_and_a_quarantine_column_rejects_it():
    pipeline = _pipeline(
        {
            "amount": {"from": "v", "transform": {"money": {"unit": "major"}}},
            "number": {"from": "v", "transform": "to_int", "on_error": "null"},
        }
    )
    rows = [(1, "1.50"), (2, "abc"), (3, Decimal("7"))]
    chunk, rejects = pipeline.transform_arrow(record_batch_from_rows(rows, pipeline.select_columns))
    kept = chunk.to_column_batch()
    assert kept.columns["number"] == [None, 7] and [r.source_key for r in rejects] == ["2"]
    assert (rejects[0].rule, rejects[0].message) == (
        "invalid_amount",
        "amount: 'aaa' is not a number",
    )
    assert_same_chunk(pipeline, rows)


def test_the_hr_sales_scenario_with_key_prefixes_and_self_references_is_the_same(tmp_path):
    # a second, unlike spec: two sources into one target told apart by key prefixes,
    # references into the target itself and into another source's prefixed keys
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "scenarios"))
    from hr_sales.legacy import build_legacy

    from runbook_lib.config.connections import make_engine
    from runbook_lib.mapping.model import load_spec

    path = tmp_path / "store.db"
    build_legacy(f"sqlite:///{path}")
    engine = make_engine(sa.engine.make_url(f"sqlite:///{path}"))
    spec = load_spec(Path(__file__).parent / "scenarios" / "hr_sales" / "spec.yaml")
    prefixed = rejected = 0
    counts = RowCounts()
    for pipeline in ordered_sources(spec):
        with engine.connect() as connection:
            rows = [tuple(r) for r in connection.execute(pipeline.select())]
        for start in range(0, len(rows), 300):
            _n, r = assert_same_chunk(pipeline, rows[start : start + 300], counts)
            rejected += r
        prefixed += bool(pipeline.key_prefix)
    engine.dispose()
    assert prefixed >= 2 and rejected > 0
    assert counts.by_kernel
