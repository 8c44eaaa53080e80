"""The vectorized execution of a compiled spec: a chunk as Arrow arrays through the kernels.

``CompiledSource.transform_arrow`` runs here. Each step of a column's chain runs its kernel over
the whole column (``transforms.kernels``); the rows the kernel leaves undecided — values it
cannot compute exactly and every failing value — go through the step's per-value function,
those rows only, so a failure carries that function's own rule and message. A step without a
kernel runs its per-value function over the column (through ``mapping.columns.run_column``, with
its cache for repeating values). A union column (mixed kinds, see ``kernels.arrays``) runs the
kernel once per kind. The outcome is the one ``CompiledSource.transform_batch`` gives: the same
values, the same rejected rows with the same rule and message, the first failing column wins,
``on_error: "null"`` drops the value and keeps the row (``tests/test_kernel_parity.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import runbook_lib.transforms.kernels  # noqa: F401 - registers every kernel
from runbook_lib.errors import RowRejected, TransformError
from runbook_lib.mapping.columns import ColumnBatch, run_column
from runbook_lib.transforms import Transform
from runbook_lib.transforms.kernels.arrays import (
    child_values,
    is_encoded,
    is_integer,
    is_text,
    to_arrow,
    to_python,
)

# ``mapping.compiled`` imports this module (lazily, for pyarrow's sake), so the compiled objects
# come in as arguments, typed by what is used of them: a CompiledSource's ``system``,
# ``key_columns``, ``columns`` (CompiledColumn: inputs, steps, outputs, constant, references,
# on_error) and ``reject``.
CompiledSource = Any
CompiledColumn = Any

Arrays = tuple[pa.Array, ...]
Errors = dict[int, TransformError]


@dataclass
class RowCounts:
    """Per transform: rows its kernel decided, and rows that went through the per-value function.

    Evidence that the kernels do the work (the parity suite and the benchmark read it): a step
    without a kernel, or a kernel that declines the column, counts every row as per value.
    """

    by_kernel: dict[str, int] = field(default_factory=dict)
    per_value: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, kernel: int, per_value: int) -> None:
        self.by_kernel[name] = self.by_kernel.get(name, 0) + kernel
        self.per_value[name] = self.per_value.get(name, 0) + per_value

    def share_by_kernel(self, name: str) -> float:
        total = self.by_kernel.get(name, 0) + self.per_value.get(name, 0)
        return self.by_kernel.get(name, 0) / total if total else 0.0


@dataclass(frozen=True)
class ArrowChunk:
    """A chunk's target columns (rows the mapping kept) beside the source rows they came from.

    ``dropped``: by row, the ``column:rule`` of each value ``on_error: "null"`` dropped in it;
    ``kept``: the positions in the input batch of the rows kept (``None``: every row).
    """

    source: pa.RecordBatch
    columns: pa.RecordBatch
    dropped: dict[int, tuple[str, ...]] = field(default_factory=dict)
    kept: np.ndarray | None = None

    def __len__(self) -> int:
        return self.columns.num_rows

    def to_column_batch(self, rows: Sequence | None = None) -> ColumnBatch:
        """The same chunk as Python values (what ``transform_batch`` gives).

        ``rows``: the input batch's rows as the driver gave them, kept as the source rows
        instead of converting the batch back.
        """
        if rows is None:
            raws = _python_rows(self.source)
        elif self.kept is None:
            raws = list(rows)
        else:
            raws = [rows[i] for i in self.kept.tolist()]
        columns = {name: to_python(self.columns.column(name)) for name in self.columns.schema.names}
        return ColumnBatch(raws, columns, dict(self.dropped))


def transform_record_batch(
    source: CompiledSource, batch: pa.RecordBatch, counts: RowCounts | None = None
) -> tuple[ArrowChunk, list]:
    """``source``'s target columns for ``batch`` (its select columns by name), and the rejects."""
    count = batch.num_rows
    columns: dict[str, pa.Array] = {
        "source_system": pa.repeat(pa.scalar(source.system, pa.string()), count),
        "source_key": _source_keys(source, batch),
    }
    failed: dict[int, RowRejected] = {}
    dropped: dict[int, tuple[str, ...]] = {}
    for column in source.columns:
        prefix = source.parents[column.outputs[0]].key_prefix if column.references else ""
        outputs, errors = run_chain(column, batch, counts, prefix)
        if errors and column.on_error == "null":
            outputs = tuple(_null_at(output, sorted(errors)) for output in outputs)
            for index, exc in errors.items():
                dropped[index] = (*dropped.get(index, ()), f"{column.outputs[0]}:{exc.rule}")
        elif errors:
            label = ", ".join(column.outputs)
            for index, exc in errors.items():
                if index not in failed:
                    failed[index] = RowRejected(
                        exc.rule, f"{label}: {exc.message}", column.outputs[0]
                    )
        columns.update(zip(column.outputs, outputs, strict=True))
    target = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
    if not failed:
        return ArrowChunk(batch, target, dropped), []
    order = sorted(failed)
    keep = np.ones(count, dtype=bool)
    keep[order] = False
    renumbered = np.cumsum(keep) - 1  # a kept row's position once the failed ones are gone
    dropped = {int(renumbered[i]): d for i, d in dropped.items() if keep[i]}
    raws = _python_rows(batch.take(pa.array(order, pa.int64())))
    rejects = [
        source.reject(raw, failed[index].rule, failed[index].message)
        for raw, index in zip(raws, order, strict=True)
    ]
    kept = pa.array(keep)
    return (
        ArrowChunk(batch.filter(kept), target.filter(kept), dropped, np.flatnonzero(keep)),
        rejects,
    )


def run_chain(
    column: CompiledColumn,
    batch: pa.RecordBatch,
    counts: RowCounts | None = None,
    key_prefix: str = "",
) -> tuple[Arrays, Errors]:
    """A column's chain over the batch: its output arrays and {row: first error}.

    A row failing at one step is NULL for the next ones, whose errors on it do not replace the
    first — as ``mapping.columns`` does, and as the row path that stops at the first error.
    """
    count = batch.num_rows
    if not column.inputs:
        return (_repeat(column.constant, count),), {}
    values: Arrays = tuple(batch.column(name) for name in column.inputs)
    errors: Errors = {}
    for transform, options in column.steps:
        values, step_errors = run_step(transform, options, values, counts)
        for index, exc in step_errors.items():
            errors.setdefault(index, exc)
    if column.references is not None:  # the parent's source key: text after its key prefix
        values = (_key_text(values[0], key_prefix),)
    return values, errors


def run_step(
    transform: Transform, options: dict, inputs: Arrays, counts: RowCounts | None = None
) -> tuple[Arrays, Errors]:
    """One step over whole columns: its kernel, the per-value function for what it leaves."""
    function = partial(transform.func, **options) if options else transform.func
    width = len(transform.outputs) if transform.outputs else 1
    count = len(inputs[0])
    if len(inputs) == 1 and pa.types.is_null(inputs[0].type):
        if counts is not None:
            counts.add(transform.name, count, 0)
        return _constant_input(function, width, count)
    kernel = transform.kernel
    if kernel is not None and len(inputs) == 1 and pa.types.is_union(inputs[0].type):
        return _by_kind(transform, options, inputs[0], width, counts)
    result = kernel(*inputs, **options) if kernel is not None else None
    if result is None:
        if counts is not None:
            counts.add(transform.name, 0, count)
        return _per_value(function, width, inputs, None)
    if result.undecided is None:
        if counts is not None:
            counts.add(transform.name, count, 0)
        return result.outputs, {}
    rows = np.flatnonzero(result.undecided.to_numpy(zero_copy_only=False))
    if counts is not None:
        counts.add(transform.name, count - len(rows), len(rows))
    fallback, errors = _per_value(function, width, inputs, rows)
    return tuple(
        _scatter(out, rows, f) for out, f in zip(result.outputs, fallback, strict=True)
    ), errors


def _constant_input(function: Callable, width: int, count: int) -> tuple[Arrays, Errors]:
    """A column of NULLs: the function once (it is pure), its result or error on every row."""
    try:
        result = function(None)
    except TransformError as exc:
        return tuple(pa.nulls(count) for _ in range(width)), dict.fromkeys(range(count), exc)
    results = tuple(result) if width > 1 else (result,)
    return tuple(_repeat(value, count) for value in results), {}


def _per_value(
    function: Callable,
    width: int,
    inputs: Arrays,
    rows: np.ndarray | None,
    python: list | None = None,
) -> tuple[Arrays, Errors]:
    """The per-value function over ``rows`` of the inputs (all rows for ``None``).

    Returns one array per output (as long as ``rows``) and the errors by row of the batch.
    ``python`` gives a single input's values when they are at hand already.
    """
    if rows is not None:
        taken = pa.array(rows, pa.int64())
        inputs = tuple(array.take(taken) for array in inputs)
    python = [python] if python is not None else [to_python(array) for array in inputs]
    if len(python) == 1 and width == 1:
        out, found = run_column(python[0], [function])
        outputs = [out]
    else:
        outputs = [[] for _ in range(width)]
        found = {}
        for index, values in enumerate(zip(*python, strict=True)):
            try:
                result = function(*values)
                results = tuple(result) if width > 1 else (result,)
            except TransformError as exc:
                found[index] = exc
                results = (None,) * width
            for output, value in zip(outputs, results, strict=True):
                output.append(value)
    errors = found if rows is None else {int(rows[i]): exc for i, exc in found.items()}
    return tuple(to_arrow(output) for output in outputs), errors


def _by_kind(
    transform: Transform, options: dict, union: pa.Array, width: int, counts: RowCounts | None
) -> tuple[Arrays, Errors]:
    """A union column, one kind at a time: each child through the step, then back in row order."""
    codes = union.type_codes.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = union.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    function = partial(transform.func, **options) if options else transform.func
    if counts is not None:
        for i in range(union.type.num_fields):
            if is_encoded(union.type.field(i)):
                counts.add(transform.name, 0, len(union.field(i)))
    per_child = [
        # a child holding its values as text (an int past 64 bits) is not text to a kernel
        _per_value(function, width, (union.field(i),), None, child_values(union, i))
        if is_encoded(union.type.field(i))
        else run_step(transform, options, (union.field(i),), counts)
        for i in range(union.type.num_fields)
    ]
    child_of_code = np.zeros(128, dtype=np.int64)  # type codes are 0..127
    child_of_code[list(union.type.type_codes)] = np.arange(union.type.num_fields)
    child = child_of_code[codes]
    errors: Errors = {}
    for i, (_outputs, child_errors) in enumerate(per_child):
        if child_errors:
            failing = np.array(sorted(child_errors), dtype=np.int64)
            for row in np.flatnonzero((child == i) & np.isin(offsets, failing)):
                errors[int(row)] = child_errors[int(offsets[row])]
    outputs = []
    for k in range(width):
        parts = _common_type([result[0][k] for result in per_child])
        if all(part.type == parts[0].type for part in parts):
            bases = np.cumsum([0] + [len(p) for p in parts[:-1]]).astype(np.int64)
            index = bases[child] + offsets
            outputs.append(pa.concat_arrays(parts).take(pa.array(index, pa.int64())))
        elif not any(pa.types.is_union(part.type) for part in parts):
            # kinds transform to different types (a value passed through): still one union
            outputs.append(
                pa.UnionArray.from_dense(
                    union.type_codes.cast(pa.int8()),
                    union.offsets,
                    parts,
                    [f"kind{i}" for i in range(len(parts))],
                    list(union.type.type_codes),
                )
            )
        else:
            values = [to_python(part) for part in parts]
            outputs.append(to_arrow([values[c][o] for c, o in zip(child, offsets, strict=True)]))
    return tuple(outputs), errors


def _common_type(parts: list[pa.Array]) -> list[pa.Array]:
    """The parts with NULL-typed ones (a kind that gave only None) cast to the others' type."""
    types = {part.type for part in parts if not pa.types.is_null(part.type)}
    if len(types) != 1:
        return parts
    (common,) = types
    return [pa.nulls(len(p), common) if pa.types.is_null(p.type) else p for p in parts]


def _scatter(kernel_output: pa.Array, rows: np.ndarray, fallback: pa.Array) -> pa.Array:
    """The kernel's output with the per-value results put in at ``rows``."""
    if pa.types.is_null(fallback.type) and not pa.types.is_union(kernel_output.type):
        fallback = pa.nulls(len(fallback), kernel_output.type)
    if fallback.type == kernel_output.type and not pa.types.is_union(fallback.type):
        mask = np.zeros(len(kernel_output), dtype=bool)
        mask[rows] = True
        return pc.replace_with_mask(kernel_output, pa.array(mask), fallback)
    # the per-value results need another type (a value past decimal128, a negative zero)
    merged = to_python(kernel_output)
    for row, value in zip(rows, to_python(fallback), strict=True):
        merged[row] = value
    return to_arrow(merged, kernel_output.type)


def _null_at(array: pa.Array, rows: Sequence[int]) -> pa.Array:
    return _scatter(array, np.asarray(rows, dtype=np.int64), pa.nulls(len(rows)))


def _repeat(value: Any, count: int) -> pa.Array:
    return to_arrow([value]).take(pa.array(np.zeros(count, np.int64)))


def _key_text(array: pa.Array, prefix: str = "") -> pa.Array:
    """``f"{prefix}{value}"`` of each non-NULL value: what the row path makes of a key."""
    if is_text(array):
        text = array
    elif is_integer(array) or pa.types.is_null(array.type):
        text = array.cast(pa.string())
    else:
        text = to_arrow([None if v is None else str(v) for v in to_python(array)], pa.string())
    if prefix:
        text = pc.binary_join_element_wise(pa.scalar(prefix), text.cast(pa.string()), "")
    return text


def _source_keys(source: CompiledSource, batch: pa.RecordBatch) -> pa.Array:
    # the row path writes str(value) of every key part, "None" for a NULL one, after the
    # source's key prefix; so does this
    keys = [pc.fill_null(_key_text(batch.column(name)), "None") for name in source.key_columns]
    joined = keys[0] if len(keys) == 1 else pc.binary_join_element_wise(*keys, "|")
    if source.key_prefix:
        joined = pc.binary_join_element_wise(
            pa.scalar(source.key_prefix), joined.cast(pa.string()), ""
        )
    return joined


def _python_rows(batch: pa.RecordBatch) -> list[tuple]:
    columns = [to_python(batch.column(i)) for i in range(batch.num_columns)]
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(batch.num_rows)]
