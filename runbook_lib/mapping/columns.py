"""The column-at-a-time execution of a transform chain: the loader's fast path.

A chunk's column goes through each step in one pass. A column whose values repeat (a status
code, a SKU, a price) runs the chain once per distinct value of the chunk (transforms are pure);
any other column maps each step over the whole column. Either way the outcome equals the
row-at-a-time ``CompiledColumn.apply``: the same values, and for a failing value the error the
row path would give it (``tests/test_pipeline_columns.py`` proves it on every demo row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from runbook_lib.errors import TransformError

ColumnResult = tuple[list[list], dict[int, TransformError]]
ColumnRunner = Callable[[list[Sequence], Sequence[tuple]], ColumnResult]
_SAMPLE = 1024
_MISS: Any = object()


def run_column(values: Sequence, functions: list[Callable]) -> tuple[list, dict]:
    """The single-input chain ``functions`` over a column: its outputs and {row: error}."""
    run = _cached_column if _repeats_often(values) else _mapped_column
    return run(values, functions)


def _repeats_often(values: Sequence) -> bool:
    """Whether the chunk's values repeat enough for a cache of results to pay.

    True when a sample across the chunk holds a tenth or more of repeats: not for timestamps or
    keys, but for prices, codes and names of things.
    """
    sample = values[:: max(1, len(values) // _SAMPLE)]
    try:
        return len(set(sample)) * 10 < len(sample) * 9
    except TypeError:  # unhashable values: no cache
        return False


def _mapped_column(values: Sequence, functions: list[Callable]) -> tuple[list, dict]:
    """Each step over the whole column by ``map``; a failing value leaves None and its error.

    A row failing at one step is None for the next ones, whose errors on it do not replace the
    first: the row is rejected with the error the row-at-a-time path would give it.
    """
    errors: dict[int, TransformError] = {}
    for function in functions:
        out: list = []
        remaining = iter(values)
        while True:
            try:
                out.extend(map(function, remaining))  # extend keeps what came before a raise
                break
            except TransformError as exc:
                errors.setdefault(len(out), exc)
                out.append(None)
        values = out
    return list(values), errors


def _cached_column(values: Sequence, functions: list[Callable]) -> tuple[list, dict]:
    """The steps once per distinct value of the column (transforms are pure)."""
    out: list = []
    append = out.append
    errors: dict[int, TransformError] = {}
    # One cache per type: 1 == 1.0 == True would otherwise share an entry. Zero floats stay
    # out (0.0 == -0.0, yet they can transform differently).
    by_text: dict[str, Any] = {}
    by_int: dict[int, Any] = {}
    by_float: dict[float, Any] = {}
    for index, value in enumerate(values):
        kind = type(value)
        if kind is str:
            cache = by_text
        elif kind is int:
            cache = by_int
        elif kind is float and value:
            cache = by_float
        else:
            cache = None
        if cache is not None:
            hit = cache.get(value, _MISS)
            if hit is not _MISS:
                if hit.__class__ is _Failed:
                    errors[index] = hit.error
                    append(None)
                else:
                    append(hit)
                continue
        result = value
        try:
            for function in functions:
                result = function(result)
        except TransformError as exc:
            errors[index] = exc
            append(None)
            if cache is not None:
                cache[value] = _Failed(exc)
            continue
        append(result)
        if cache is not None:
            cache[value] = result
    return out, errors


class _Failed:
    """A cached transform failure: the same value fails the same way on every row."""

    __slots__ = ("error",)

    def __init__(self, error: TransformError) -> None:
        self.error = error


class ColumnBatch:
    """A chunk of target rows held as columns, beside the source rows they came from.

    The loader's working form: references, constraint checks and writes each take one pass
    down a column instead of a dictionary per row.
    """

    def __init__(
        self,
        raws: list[tuple],
        columns: dict[str, list],
        dropped: dict[int, tuple[str, ...]] | None = None,
    ) -> None:
        self.raws = raws
        self.columns = columns
        # row index → the "column:rule" of each value ``on_error: "null"`` dropped in that row
        self.dropped = dropped or {}

    def __len__(self) -> int:
        return len(self.raws)

    def without(self, indices: set[int] | dict[int, Any]) -> ColumnBatch:
        """The batch minus the rows at ``indices``."""
        if not indices:
            return self
        kept = [i for i in range(len(self.raws)) if i not in indices]
        renumbered = {new: self.dropped[old] for new, old in enumerate(kept) if old in self.dropped}
        return ColumnBatch(
            [self.raws[i] for i in kept],
            {name: [values[i] for i in kept] for name, values in self.columns.items()},
            renumbered,
        )

    def subset(self, indices: list[int]) -> ColumnBatch:
        """A copy of the rows at ``indices`` (in that order), safe to change without this batch."""
        position = {old: new for new, old in enumerate(indices)}
        return ColumnBatch(
            [self.raws[i] for i in indices],
            {name: [values[i] for i in indices] for name, values in self.columns.items()},
            {position[i]: d for i, d in self.dropped.items() if i in position},
        )

    def dropped_counts(self) -> dict[str, int]:
        """Values dropped by ``on_error: "null"`` in the rows still in the batch, by column:rule."""
        counts: dict[str, int] = {}
        for drops in self.dropped.values():
            for drop in drops:
                counts[drop] = counts.get(drop, 0) + 1
        return counts

    def rows(self) -> list[tuple]:
        """The target rows as tuples, in the order of ``columns``."""
        return list(zip(*self.columns.values(), strict=True))

    def pairs(self) -> list[tuple[tuple, dict[str, Any]]]:
        """(source row, target row as a dict) pairs, for the row-at-a-time steps (merges, syncs)."""
        names = list(self.columns)
        return [
            (raw, dict(zip(names, values, strict=True)))
            for raw, values in zip(self.raws, self.rows(), strict=True)
        ]
