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
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import runbook_lib.transforms.kernels  # noqa: F401 - registers every kernel
from runbook_lib.errors import RowRejected, TransformError
from runbook_lib.mapping.columns import ColumnBatch, run_column
from runbook_lib.transforms import Transform
from runbook_lib.transforms.kernels.arrays import is_integer, is_text, to_arrow, to_python

# ``mapping.compiled`` imports this module (lazily, for pyarrow's sake), so the compiled objects
# come in as arguments, typed by what is used of them: a CompiledSource's ``system``,
# ``key_columns``, ``columns`` (CompiledColumn: inputs, steps, outputs, constant, references,
# on_error) and ``reject``.
CompiledSource = Any
CompiledColumn = Any

Arrays = tuple[pa.Array, ...]
Errors = dict[int, TransformError]


@dataclass(frozen=True)
class ArrowChunk:
    """A chunk's target columns (rows the mapping kept) beside the source rows they came from."""

    source: pa.RecordBatch
    columns: pa.RecordBatch

    def __len__(self) -> int:
        return self.columns.num_rows

    def to_column_batch(self) -> ColumnBatch:
        """The same chunk as Python values (what ``transform_batch`` gives)."""
        raws = _python_rows(self.source)
        columns = {name: to_python(self.columns.column(name)) for name in self.columns.schema.names}
        return ColumnBatch(raws, columns)


def transform_record_batch(
    source: CompiledSource, batch: pa.RecordBatch
) -> tuple[ArrowChunk, list]:
    """``source``'s target columns for ``batch`` (its select columns by name), and the rejects."""
    count = batch.num_rows
    columns: dict[str, pa.Array] = {
        "source_system": pa.repeat(pa.scalar(source.system, pa.string()), count),
        "source_key": _source_keys(source, batch),
    }
    failed: dict[int, RowRejected] = {}
    for column in source.columns:
        outputs, errors = run_chain(column, batch)
        if errors and column.on_error == "null":
            outputs = tuple(_null_at(output, sorted(errors)) for output in outputs)
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
        return ArrowChunk(batch, target), []
    order = sorted(failed)
    keep = np.ones(count, dtype=bool)
    keep[order] = False
    raws = _python_rows(batch.take(pa.array(order, pa.int64())))
    rejects = [
        source.reject(raw, failed[index].rule, failed[index].message)
        for raw, index in zip(raws, order, strict=True)
    ]
    kept = pa.array(keep)
    return ArrowChunk(batch.filter(kept), target.filter(kept)), rejects


def run_chain(column: CompiledColumn, batch: pa.RecordBatch) -> tuple[Arrays, Errors]:
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
        values, step_errors = run_step(transform, options, values)
        for index, exc in step_errors.items():
            errors.setdefault(index, exc)
    if column.references is not None:  # a parent's key, as text, as the target keeps keys
        values = (_key_text(values[0]),)
    return values, errors


def run_step(transform: Transform, options: dict, inputs: Arrays) -> tuple[Arrays, Errors]:
    """One step over whole columns: its kernel, the per-value function for what it leaves."""
    function = partial(transform.func, **options) if options else transform.func
    width = len(transform.outputs) if transform.outputs else 1
    if len(inputs) == 1 and pa.types.is_null(inputs[0].type):
        return _constant_input(function, width, len(inputs[0]))
    kernel = transform.kernel
    if kernel is not None and len(inputs) == 1 and pa.types.is_union(inputs[0].type):
        return _by_kind(transform, options, inputs[0], width)
    result = kernel(*inputs, **options) if kernel is not None else None
    if result is None:
        return _per_value(function, width, inputs, None)
    if result.undecided is None:
        return result.outputs, {}
    rows = np.flatnonzero(result.undecided.to_numpy(zero_copy_only=False))
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
    function: Callable, width: int, inputs: Arrays, rows: np.ndarray | None
) -> tuple[Arrays, Errors]:
    """The per-value function over ``rows`` of the inputs (all rows for ``None``).

    Returns one array per output (as long as ``rows``) and the errors by row of the batch.
    """
    if rows is not None:
        taken = pa.array(rows, pa.int64())
        inputs = tuple(array.take(taken) for array in inputs)
    python = [to_python(array) for array in inputs]
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
    transform: Transform, options: dict, union: pa.Array, width: int
) -> tuple[Arrays, Errors]:
    """A union column, one kind at a time: each child through the step, then back in row order."""
    codes = union.type_codes.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = union.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    per_child = [
        run_step(transform, options, (union.field(i),)) for i in range(union.type.num_fields)
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
        parts = [result[0][k] for result in per_child]
        if all(part.type == parts[0].type for part in parts):
            bases = np.cumsum([0] + [len(p) for p in parts[:-1]]).astype(np.int64)
            index = bases[child] + offsets
            outputs.append(pa.concat_arrays(parts).take(pa.array(index, pa.int64())))
        else:  # kinds transform to different types: the column takes the type its values need
            values = [to_python(part) for part in parts]
            outputs.append(to_arrow([values[c][o] for c, o in zip(child, offsets, strict=True)]))
    return tuple(outputs), errors


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


def _key_text(array: pa.Array) -> pa.Array:
    """``str(value)`` of each non-NULL value: what the row path makes of a key."""
    if is_text(array):
        return array
    if is_integer(array) or pa.types.is_null(array.type):
        return array.cast(pa.string())
    return to_arrow([None if v is None else str(v) for v in to_python(array)], pa.string())


def _source_keys(source: CompiledSource, batch: pa.RecordBatch) -> pa.Array:
    # the row path writes str(value) of every key part, "None" for a NULL one; so does this
    keys = [pc.fill_null(_key_text(batch.column(name)), "None") for name in source.key_columns]
    if len(keys) == 1:
        return keys[0]
    return pc.binary_join_element_wise(*keys, "|")


def _python_rows(batch: pa.RecordBatch) -> list[tuple]:
    columns = [to_python(batch.column(i)) for i in range(batch.num_columns)]
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(batch.num_rows)]
