"""The loader's column-at-a-time transform gives exactly what the row-at-a-time reference gives.

The loader transforms a chunk a column at a time with a per-chunk cache of results; validation
rebuilds rows one at a time through ``CompiledSource.transform``. Both must agree on every value
and on every rejection (rule, message and which row), or validation would be checking a
different mapping from the one that loaded.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lib.config.params import load_params
from runbook_lib.mapping.compiled import (
    CompiledSource,
    ordered_sources,
)
from runbook_lib.mapping.model import LoadedSpec, MappingSpec
from runbook_lib.run.context import StageContext


def _same(column_result, row_result):
    batch, column_rejects = column_result
    good, row_rejects = row_result
    assert [raw for raw, _out in good] == batch.raws
    # repr, not ==: 1 == 1.0 == True and Decimal("1.0") == Decimal("1.00"), but they are
    # different values to load.
    assert repr([out for _raw, out in good]) == repr([out for _raw, out in batch.pairs()])
    assert [(r.source_key, r.rule, r.message) for r in row_rejects] == [
        (r.source_key, r.rule, r.message) for r in column_rejects
    ]


def test_every_demo_source_transforms_the_same_by_column_and_by_row(ci_project, ci_demo):
    ctx = StageContext(load_params("ci", project_root=ci_project), None)
    engines = ctx.source_engines()
    rejected = 0
    for pipeline in ordered_sources(ctx.spec):
        with engines[pipeline.system].connect() as connection:
            rows = [tuple(r) for r in connection.execute(pipeline.select())]
        assert rows, pipeline.label
        for start in range(0, len(rows), 700):  # chunks, so caches start afresh as in a load
            chunk = rows[start : start + 700]
            column_result = pipeline.transform_batch(chunk)
            _same(column_result, pipeline.transform_chunk(chunk))
            rejected += len(column_result[1])
    assert rejected > 0  # the demo's bad rows went through both paths


def _pipeline(columns: dict) -> CompiledSource:
    spec = MappingSpec.model_validate(
        {
            "version": 1,
            "name": "t",
            "systems": {"s": "s"},
            "targets": {"t": {"sources": {"s.src": {"key": "id", "columns": columns}}}},
        }
    )
    loaded = LoadedSpec(spec=spec, path=None, sha256="0" * 64)
    (entry,) = loaded.sources()
    return CompiledSource(loaded, *entry)


MIXED_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False, width=16),
    st.sampled_from([0.0, -0.0, 1.0, 1, True, "1", " 1 ", "", "  ", "x"]),
    st.decimals(-3, 3, places=2, allow_nan=False),
    st.text(" 1.-a", max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(MIXED_VALUES, min_size=1, max_size=40))
def test_values_equal_across_types_are_never_confused_by_the_cache(values):
    # 1, 1.0, True, "1" and Decimal("1.00") hash alike or compare equal; each must get its own
    # result, and a failure must stay with the value that failed.
    pipeline = _pipeline(
        {
            "amount": {"from": "v", "transform": {"money": {"unit": "major"}}},
            "text": {"from": "v", "transform": ["strip", "required"]},
            "number": {"from": "v", "transform": "to_int", "on_error": "null"},
        }
    )
    rows = [(index, value) for index, value in enumerate(values)]
    _same(pipeline.transform_batch(rows), pipeline.transform_chunk(rows))


def test_a_reference_column_keeps_its_key_as_text_by_column_as_by_row():
    pipeline = _pipeline({"parent_id": {"from": "p", "references": "t"}})
    rows = [(1, 7), (2, "7"), (3, None), (4, Decimal("7"))]
    batch, rejects = pipeline.transform_batch(rows)
    assert batch.columns["parent_id"] == ["7", "7", None, "7"]
    assert not rejects
    _same((batch, rejects), pipeline.transform_chunk(rows))


@pytest.mark.parametrize("size", [0, 1])
def test_empty_and_single_row_chunks(size):
    pipeline = _pipeline({"text": {"from": "v", "transform": "strip"}})
    rows = [(1, " a ")][:size]
    batch, rejects = pipeline.transform_batch(rows)
    assert len(batch) == size and not rejects
    assert batch.columns["text"] == ["a"][:size]
    _same((batch, rejects), pipeline.transform_chunk(rows))


def test_row_at_a_time_still_accepts_row_objects_from_sqlalchemy():
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT 1 AS id, ' a ' AS v")).all()
    pipeline = _pipeline({"text": {"from": "v", "transform": "strip"}})
    _same(pipeline.transform_batch(rows), pipeline.transform_chunk(rows))


@pytest.mark.parametrize("bad_at", [(0,), (1_500,), (2_999,), (0, 1, 2, 2_998, 2_999)])
def test_unique_values_with_failures_anywhere_in_a_long_chunk(bad_at):
    # unique timestamps take the mapped path, which restarts after each failing value
    pipeline = _pipeline(
        {
            "at": {
                "from": "v",
                "transform": [
                    "required",
                    {"parse_datetime": {"formats": ["%Y-%m-%d %H:%M:%S"], "tz": "Asia/Shanghai"}},
                ],
            }
        }
    )
    rows = [
        (i, f"2023-01-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}")
        for i in range(3_000)
    ]
    for position, bad in zip(bad_at, ["", "2023-02-30 00:00:00", None, "x", " "], strict=False):
        rows[position] = (position, bad)
    batch, rejects = pipeline.transform_batch(rows)
    assert [r.source_key for r in rejects] == [str(i) for i in bad_at]
    assert len(batch) == 3_000 - len(bad_at)
    _same((batch, rejects), pipeline.transform_chunk(rows))
