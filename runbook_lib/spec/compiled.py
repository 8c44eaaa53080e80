"""A source mapping compiled into what the loader and the validator both execute.

``SourcePipeline`` turns one source row into one target row (or a rejection with a rule), and
builds the source query with the spec's named filters and the trial sample. Loading and
validation share it, so validation rebuilds exactly the rows the spec says should exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlalchemy as sa

from runbook_lib.errors import TransformError
from runbook_lib.spec.model import LoadedSpec, SourceMapping, TargetMapping
from runbook_lib.transforms import Transform, get_transform

# Knuth's multiplicative hash folded to 32 bits: the same integer arithmetic in every dialect.
_SAMPLE_HASH = "(({column} * 2654435761) % 4294967296) % 100 < {percent}"


class RowRejected(Exception):
    """A source row that cannot become a target row; it goes to quarantine with ``rule``."""

    def __init__(self, rule: str, message: str, column: str | None = None) -> None:
        self.rule = rule
        self.message = message
        self.column = column
        super().__init__(f"{rule}: {message}")


@dataclass(frozen=True)
class CompiledColumn:
    """One column mapping, with its transforms looked up and bound to their options once."""

    outputs: tuple[str, ...]
    inputs: tuple[str, ...]
    constant: Any
    steps: tuple[tuple[Transform, dict], ...]
    references: str | None
    on_error: str

    def bind(self, positions: dict[str, int]) -> Callable[[tuple], tuple]:
        """A function from a source row (a tuple in select order) to this column's values.

        The common case (one input, single-output steps) becomes a plain loop over bound
        functions: this runs once per value on millions of rows.
        """
        calls = [
            (partial(t.func, **options) if options else t.func, t.outputs is not None)
            for t, options in self.steps
        ]
        index = [positions[name] for name in self.inputs]
        as_key = self.references is not None
        if not index:
            constant = (self.constant,)
            return lambda row: constant
        if len(index) == 1 and not any(multi for _f, multi in calls):
            functions = [f for f, _multi in calls]
            (i,) = index

            def single(row: tuple) -> tuple:
                value = row[i]
                for function in functions:
                    value = function(value)
                if as_key:
                    return (None if value is None else str(value),)
                return (value,)

            return single

        def general(row: tuple) -> tuple:
            values = tuple(row[i] for i in index)
            for function, multi in calls:
                result = function(*values)
                values = tuple(result) if multi else (result,)
            if as_key:
                return (None if values[0] is None else str(values[0]),)
            return values

        return general

    def bind_column(self, positions: dict[str, int]) -> ColumnRunner:
        """A function from a chunk's source columns to this column's output columns.

        The loader's form of :meth:`bind`: one pass down each column. A column whose values
        repeat (a status code, a SKU, a price) runs each transform once per distinct value of the
        chunk (transforms are pure); any other column maps each step over the whole column.
        Returns the output columns and {row index: error} for the rows whose value failed.
        """
        per_row = self.bind(positions)
        width = len(self.outputs)
        if not self.inputs:
            constant = self.constant
            return lambda columns, rows: ([[constant] * len(rows)], {})
        calls = [
            (partial(t.func, **options) if options else t.func, t.outputs is not None)
            for t, options in self.steps
        ]
        if len(self.inputs) > 1 or any(multi for _f, multi in calls):

            def general(columns: list[Sequence], rows: Sequence[tuple]) -> ColumnResult:
                outputs: list[list] = [[] for _ in range(width)]
                errors: dict[int, TransformError] = {}
                for index, row in enumerate(rows):
                    try:
                        values = per_row(row)
                    except TransformError as exc:
                        errors[index] = exc
                        values = (None,) * width
                    for output, value in zip(outputs, values, strict=True):
                        output.append(value)
                return outputs, errors

            return general
        functions = [f for f, _multi in calls]
        position = positions[self.inputs[0]]
        as_key = self.references is not None
        if not functions:  # copied as it is (a reference key as text)
            if as_key:
                return lambda columns, rows: (
                    [[None if v is None else str(v) for v in columns[position]]],
                    {},
                )
            return lambda columns, rows: ([list(columns[position])], {})

        def single(columns: list[Sequence], rows: Sequence[tuple]) -> ColumnResult:
            values = columns[position]
            run = _cached_column if _repeats_often(values) else _mapped_column
            out, errors = run(values, functions)
            if as_key:
                out = [None if v is None else str(v) for v in out]
            return [out], errors

        return single


_SAMPLE = 1024


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


ColumnResult = tuple[list[list], dict[int, TransformError]]
ColumnRunner = Callable[[list[Sequence], Sequence[tuple]], ColumnResult]
_MISS: Any = object()


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

    def __init__(self, raws: list[tuple], columns: dict[str, list]) -> None:
        self.raws = raws
        self.columns = columns

    def __len__(self) -> int:
        return len(self.raws)

    def without(self, indices: set[int] | dict[int, Any]) -> ColumnBatch:
        """The batch minus the rows at ``indices``."""
        if not indices:
            return self
        kept = [i for i in range(len(self.raws)) if i not in indices]
        return ColumnBatch(
            [self.raws[i] for i in kept],
            {name: [values[i] for i in kept] for name, values in self.columns.items()},
        )

    def row(self, index: int) -> dict[str, Any]:
        return {name: values[index] for name, values in self.columns.items()}

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


class SourcePipeline:
    """One source table of one target table, ready to query, transform and account for."""

    def __init__(
        self,
        spec: LoadedSpec,
        target_name: str,
        target: TargetMapping,
        system: str,
        table: str,
        source: SourceMapping,
    ) -> None:
        self.spec = spec
        self.target_name = target_name
        self.target = target
        self.system = system
        self.table = table
        self.source = source
        self.key_columns = source.key_columns
        self.columns = [_compile(name, column) for name, column in source.columns.items()]
        self.reference_columns = [c for c in self.columns if c.references is not None]
        needed = [*self.key_columns]
        for column in self.columns:
            needed.extend(name for name in column.inputs if name not in needed)
        self.select_columns = needed
        positions = {name: i for i, name in enumerate(needed)}
        self._key_positions = [positions[name] for name in self.key_columns]
        self._bound = [(c, c.bind(positions)) for c in self.columns]
        self._column_runners = [(c, c.bind_column(positions)) for c in self.columns]

    @property
    def label(self) -> str:
        return f"{self.system}.{self.table} → {self.target_name}"

    def _as_tuple(self, row: tuple | Mapping) -> tuple:
        if isinstance(row, Mapping):
            return tuple(row[name] for name in self.select_columns)
        return row

    def source_key(self, row: tuple | Mapping) -> str:
        """The source key of a row (a tuple in select order, or a mapping), as text."""
        return self._key_text(self._as_tuple(row))

    def _key_text(self, row: tuple) -> str:
        if len(self._key_positions) == 1:
            return str(row[self._key_positions[0]])
        return "|".join(str(row[i]) for i in self._key_positions)

    def key_values(self, row: tuple | Mapping) -> tuple:
        """The key columns' raw values (what a checkpoint records)."""
        row = self._as_tuple(row)
        return tuple(row[i] for i in self._key_positions)

    def raw_dict(self, row: tuple | Mapping) -> dict[str, Any]:
        """The source row by column name (kept with a reject)."""
        return dict(zip(self.select_columns, self._as_tuple(row), strict=True))

    def transform(self, row: tuple) -> dict[str, Any]:
        """The target row for ``row`` (a tuple in select order), references still as parent keys."""
        out: dict[str, Any] = {"source_system": self.system, "source_key": self._key_text(row)}
        for column, apply in self._bound:
            try:
                values = apply(row)
            except TransformError as exc:
                if column.on_error == "null":
                    values = (None,) * len(column.outputs)
                else:
                    raise RowRejected(
                        exc.rule, f"{', '.join(column.outputs)}: {exc.message}", column.outputs[0]
                    ) from None
            if len(values) == 1:
                out[column.outputs[0]] = values[0]
            else:
                out.update(zip(column.outputs, values, strict=True))
        return out

    def transform_columns(
        self, rows: Sequence[tuple]
    ) -> tuple[ColumnBatch, list[tuple[tuple, RowRejected]]]:
        """The chunk ``rows`` (tuples in select order) as target columns, and the rows rejected.

        Gives what :meth:`transform` gives row by row — the same values, and for a rejected row
        the rejection of its first failing column — computed a column at a time.
        """
        count = len(rows)
        source = list(zip(*rows, strict=True)) if count else [() for _ in self.select_columns]
        if len(self._key_positions) == 1:
            keys = [str(value) for value in source[self._key_positions[0]]]
        else:
            keys = [
                "|".join(map(str, values))
                for values in zip(*(source[i] for i in self._key_positions), strict=True)
            ]
        columns: dict[str, list] = {"source_system": [self.system] * count, "source_key": keys}
        failed: dict[int, RowRejected] = {}
        for column, run in self._column_runners:
            outputs, errors = run(source, rows)
            for index, exc in errors.items():
                if column.on_error != "null" and index not in failed:
                    failed[index] = RowRejected(
                        exc.rule, f"{', '.join(column.outputs)}: {exc.message}", column.outputs[0]
                    )
            if errors and column.on_error == "null":
                for output in outputs:
                    for index in errors:
                        output[index] = None
            columns.update(zip(column.outputs, outputs, strict=True))
        rejected = [(rows[i], failed[i]) for i in sorted(failed)]
        return ColumnBatch(list(rows), columns).without(failed), rejected

    # --- source queries -------------------------------------------------------------------

    def _table(self) -> sa.TableClause:
        return sa.table(self.table, *(sa.column(name) for name in self.select_columns))

    def _filter_clauses(self) -> list[sa.ColumnElement]:
        """Rows kept: those no named filter excludes (a NULL condition does not exclude)."""
        return [
            sa.text(f"(CASE WHEN ({f.exclude_where}) THEN 1 ELSE 0 END) = 0")
            for f in self.source.filters
        ]

    def sample_clause(self, percent: int) -> sa.ColumnElement:
        """Membership of the deterministic trial sample, following parents to the root key."""
        return sa.text(self._sample_sql(self.system, self.table, self.source, percent))

    def _sample_sql(self, system: str, table: str, source: SourceMapping, percent: int) -> str:
        sample = source.sample
        if sample is None:
            return "1 = 1"
        if sample.parent is None:
            return _SAMPLE_HASH.format(column=sample.column, percent=int(percent))
        parent = _find_source(self.spec, system, sample.parent)
        parent_key = sample.parent_key or parent.key_columns[0]
        inner = self._sample_sql(system, sample.parent, parent, percent)
        return f"{sample.column} IN (SELECT {parent_key} FROM {sample.parent} WHERE {inner})"

    def select(
        self,
        *,
        sample_percent: int | None = None,
        after_key: tuple | None = None,
        changed_since: tuple[str, str | None] | None = None,
    ) -> sa.Select:
        """Rows to load, in key order, with filters (and the sample, for a trial) applied.

        ``after_key`` resumes after the last committed key of a checkpoint; ``changed_since``
        (column, value) adds that change column last and keeps the rows where it passed the value.
        """
        names = [*self.select_columns, *([changed_since[0]] if changed_since else [])]
        table = sa.table(self.table, *(sa.column(name) for name in names))
        query = sa.select(*(table.c[name] for name in names)).select_from(table)
        if changed_since and changed_since[1] is not None:
            query = query.where(table.c[changed_since[0]] > changed_since[1])
        if after_key is not None:
            keys = [table.c[name] for name in self.key_columns]
            if len(keys) == 1:
                query = query.where(keys[0] > after_key[0])
            else:
                query = query.where(sa.tuple_(*keys) > sa.tuple_(*after_key))
        for clause in self._filter_clauses():
            query = query.where(clause)
        if sample_percent is not None:
            query = query.where(self.sample_clause(sample_percent))
        return query.order_by(*(table.c[name] for name in self.key_columns))

    def count_queries(self, *, sample_percent: int | None = None) -> dict[str, sa.Select]:
        """Independent counts for the accounting: all rows, and rows excluded by each filter."""
        table = sa.table(self.table)
        base = sa.select(sa.func.count()).select_from(table)
        if sample_percent is not None:
            base = base.where(self.sample_clause(sample_percent))
        counts = {"source_rows": base}
        for f in self.source.filters:
            counts[f"filtered:{f.name}"] = base.where(
                sa.text(f"(CASE WHEN ({f.exclude_where}) THEN 1 ELSE 0 END) = 1")
            )
        return counts


def _compile(targets_text: str, column) -> CompiledColumn:
    steps = tuple((get_transform(name), options) for name, options in column.steps())
    return CompiledColumn(
        outputs=tuple(name.strip() for name in targets_text.split(",")),
        inputs=tuple(column.inputs),
        constant=column.value,
        steps=steps,
        references=column.references,
        on_error=column.on_error,
    )


def _find_source(spec: LoadedSpec, system: str, table: str) -> SourceMapping:
    for _target_name, _target, source_system, source_table, source in spec.sources():
        if (source_system, source_table) == (system, table):
            return source
    raise ValueError(f"sample parent {system}.{table} is not a mapped source")


def compile_pipelines(spec: LoadedSpec) -> list[SourcePipeline]:
    """Every source of every target, in load order."""
    return [SourcePipeline(spec, *entry) for entry in spec.sources()]
