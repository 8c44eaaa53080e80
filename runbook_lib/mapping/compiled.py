"""The mapping spec compiled once into what every stage executes.

``compile_spec`` turns each source of each target into a ``CompiledSource``: its column mappings
with their transforms looked up (``CompiledColumn``), its source query (named filters, the trial
sample, the resume point), its independent counts for the accounting, the lookup of parent ids in
the target, and the ``Reject`` a row becomes when the mapping refuses it. The assessment, the
mapping preview, the transform playground, the loader and validation all run these objects, so
they cannot disagree about what the spec says.

A transform chain has one definition (``CompiledColumn.apply``) and two executions: row at a time
(``CompiledSource.transform``: the reference validation rebuilds rows with) and a column at a time
(``CompiledSource.transform_columns``, in ``mapping.columns``: the loader's fast path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

import sqlalchemy as sa

from runbook_lib.db.lookups import key_in
from runbook_lib.errors import RowRejected, TransformError, UnknownTransformError
from runbook_lib.mapping.columns import ColumnBatch, ColumnResult, ColumnRunner, run_column
from runbook_lib.mapping.model import ColumnMapping, LoadedSpec, SourceMapping, TargetMapping
from runbook_lib.mapping.predicates import refuse_unsafe_filter
from runbook_lib.mapping.sample import sample_clause
from runbook_lib.transforms import Transform, get_transform


@dataclass(frozen=True)
class Reject:
    """A source row the mapping does not load: the quarantine rule and message that stop it.

    ``raw_row`` is the source row by column name (kept in the reject table so it can be repaired
    and replayed); ``out`` is the mapped row where the mapping got that far (an orphan's).
    """

    target_table: str
    source_system: str
    source_table: str
    source_key: str
    rule: str
    message: str
    raw_row: dict
    out: dict | None = None

    def as_row(self, run_id: str) -> dict:
        """The reject table's row for this reject."""
        return {
            "run_id": run_id,
            "target_table": self.target_table,
            "source_system": self.source_system,
            "source_table": self.source_table,
            "source_key": self.source_key,
            "rule": self.rule,
            "message": self.message[:500],
            "raw_row": json.dumps(self.raw_row, default=str, ensure_ascii=False),
        }


@dataclass(frozen=True)
class CompiledColumn:
    """One column mapping with its transforms looked up: what every stage runs for it."""

    outputs: tuple[str, ...]
    inputs: tuple[str, ...]
    constant: Any
    steps: tuple[tuple[Transform, dict], ...]
    references: str | None  # the target a reference points at
    on_error: str
    parent_source: str | None = None  # the source (system.table) whose keys a reference holds

    @classmethod
    def of(cls, targets_text: str, column: ColumnMapping) -> CompiledColumn:
        """Compile the mapping of ``targets_text`` (``"first_name, last_name"`` for a split)."""
        return cls(
            outputs=tuple(name.strip() for name in targets_text.split(",")),
            inputs=tuple(column.inputs),
            constant=column.value,
            steps=tuple((get_transform(name), options) for name, options in column.steps()),
            references=column.parent_target,
            on_error=column.on_error,
            parent_source=column.parent_source,
        )

    @cached_property
    def _calls(self) -> tuple[tuple[Callable, bool], ...]:
        """Each step bound to its options once, with whether it returns several values."""
        return tuple(
            (partial(t.func, **options) if options else t.func, t.outputs is not None)
            for t, options in self.steps
        )

    def apply(self, *values: Any) -> tuple:
        """The chain's output values for its input values (raises ``TransformError``).

        The one definition of applying a chain; ``bind`` and ``bind_column`` execute it faster.
        """
        if not self.inputs:
            return (self.constant,)
        for function, multi in self._calls:
            result = function(*values)
            values = tuple(result) if multi else (result,)
        return values

    def apply_row(self, row: Mapping[str, Any]) -> tuple:
        """The column's output values for a source row given by column name."""
        return self.apply(*(row[name] for name in self.inputs))

    def bind(self, positions: dict[str, int], key_prefix: str = "") -> Callable[[tuple], tuple]:
        """``apply`` as a function of a source row (a tuple in select order).

        The common case (one input, single-output steps) becomes a plain loop over the bound
        functions: this runs once per value on millions of rows. A reference's parent key comes
        out as the parent's source key: text, after the parent source's ``key_prefix``.
        """
        index = [positions[name] for name in self.inputs]
        as_key = self.references is not None
        if not index:
            constant = (self.constant,)
            return lambda row: constant
        if len(index) == 1 and not any(multi for _f, multi in self._calls):
            functions = [f for f, _multi in self._calls]
            (i,) = index

            def single(row: tuple) -> tuple:
                value = row[i]
                for function in functions:
                    value = function(value)
                if as_key:
                    return (None if value is None else f"{key_prefix}{value}",)
                return (value,)

            return single
        apply = self.apply

        def general(row: tuple) -> tuple:
            values = apply(*(row[i] for i in index))
            if as_key:
                return (None if values[0] is None else f"{key_prefix}{values[0]}",)
            return values

        return general

    def bind_column(self, positions: dict[str, int], key_prefix: str = "") -> ColumnRunner:
        """``apply`` as a function of a chunk's source columns: output columns, {row: error}.

        The loader's form of :meth:`bind` (see ``mapping.columns``): one pass down each column.
        """
        width = len(self.outputs)
        if not self.inputs:
            constant = self.constant
            return lambda columns, rows: ([[constant] * len(rows)], {})
        if len(self.inputs) > 1 or any(multi for _f, multi in self._calls):
            per_row = self.bind(positions, key_prefix)

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
        functions = [f for f, _multi in self._calls]
        position = positions[self.inputs[0]]
        as_key = self.references is not None

        def single(columns: list[Sequence], rows: Sequence[tuple]) -> ColumnResult:
            values = columns[position]
            if functions:
                out, errors = run_column(values, functions)
            else:  # copied as it is
                out, errors = list(values), {}
            if as_key:
                out = [None if v is None else f"{key_prefix}{v}" for v in out]
            return [out], errors

        return single


def owned_by(table: sa.Table, system: str, key_prefix: str = "") -> sa.ColumnElement:
    """The rows of ``table`` that one source wrote: its system and, if it has one, its key prefix."""
    mine = table.c.source_system == system
    if key_prefix:
        mine = sa.and_(mine, table.c.source_key.startswith(key_prefix, autoescape=True))
    return mine


@dataclass(frozen=True)
class ParentRef:
    """Where a reference's parent rows are: their target table, system and key prefix.

    ``deferred`` marks a reference into the target being loaded (a manager in the same
    ``people``, a category's parent): the loader resolves it once all of the target's rows exist.
    """

    target: str
    system: str
    source_table: str | None
    key_prefix: str
    deferred: bool


def parent_ref(
    spec: LoadedSpec, target_name: str, system: str, column: CompiledColumn
) -> ParentRef:
    """The parent rows of reference ``column`` of a ``system`` source of ``target_name``."""
    parent = spec.spec.targets[column.references]
    if column.parent_source is not None:
        named_system, _, named_table = column.parent_source.partition(".")
        source = parent.sources.get(column.parent_source)
        return ParentRef(
            column.references,
            named_system,
            named_table,
            source.key_prefix if source else "",
            column.references == target_name,
        )
    same_system = [
        (name, s) for name, s in parent.sources.items() if name.partition(".")[0] == system
    ]
    name, source = same_system[0] if same_system else (None, None)
    return ParentRef(
        column.references,
        system,
        name.partition(".")[2] if name else None,
        source.key_prefix if source else "",
        column.references == target_name,
    )


class CompiledSource:
    """One source table of one target table: query it, transform it, account for it.

    With ``present`` (the live source columns), the column mappings that cannot run here — an
    input the table lacks, an unknown transform — are left out quietly: the assessment profiles
    what it can while the mapping stage reports each such problem by its YAML path.
    """

    def __init__(
        self,
        spec: LoadedSpec,
        target_name: str,
        target: TargetMapping,
        system: str,
        table: str,
        source: SourceMapping,
        present: Iterable[str] | None = None,
    ) -> None:
        self.spec = spec
        self.target_name = target_name
        self.target = target
        self.system = system
        self.table = table
        self.source = source
        self.key_columns = source.key_columns
        self.key_prefix = source.key_prefix
        self.columns = _compile_columns(source, None if present is None else set(present))
        self.reference_columns = [c for c in self.columns if c.references is not None]
        self.parents = {
            c.outputs[0]: parent_ref(spec, target_name, system, c) for c in self.reference_columns
        }
        needed = [*self.key_columns]
        for column in self.columns:
            needed.extend(name for name in column.inputs if name not in needed)
        self.select_columns = needed
        positions = {name: i for i, name in enumerate(needed)}
        self._key_positions = [positions[name] for name in self.key_columns]
        prefix_of = {
            c.outputs[0]: self.parents[c.outputs[0]].key_prefix for c in self.reference_columns
        }
        self._bound = [
            (c, c.bind(positions, prefix_of.get(c.outputs[0], ""))) for c in self.columns
        ]
        self._column_runners = [
            (c, c.bind_column(positions, prefix_of.get(c.outputs[0], ""))) for c in self.columns
        ]

    @property
    def label(self) -> str:
        return f"{self.system}.{self.table} → {self.target_name}"

    @property
    def identity(self) -> tuple[str, str, str]:
        """(target table, source system, source table): how a source is named across processes."""
        return (self.target_name, self.system, self.table)

    @property
    def deferred_references(self) -> list[CompiledColumn]:
        """Reference columns into this source's own target: resolved after the target is loaded."""
        return [c for c in self.reference_columns if self.parents[c.outputs[0]].deferred]

    @property
    def immediate_references(self) -> list[CompiledColumn]:
        """Reference columns into targets loaded before: resolved chunk by chunk."""
        return [c for c in self.reference_columns if not self.parents[c.outputs[0]].deferred]

    def owns(self, table: sa.Table) -> sa.ColumnElement:
        """The rows of ``table`` (this source's target or crosswalk) that came from this source."""
        return owned_by(table, self.system, self.key_prefix)

    @property
    def output_columns(self) -> list[str]:
        """The target columns this source writes, after the provenance pair."""
        return ["source_system", "source_key", *(n for c in self.columns for n in c.outputs)]

    # --- rows -----------------------------------------------------------------------------

    def _as_tuple(self, row: tuple | Mapping) -> tuple:
        if isinstance(row, Mapping):
            return tuple(row[name] for name in self.select_columns)
        return row

    def source_key(self, row: tuple | Mapping) -> str:
        """The source key of a row (a tuple in select order, or a mapping), as text."""
        return self._key_text(self._as_tuple(row))

    def _key_text(self, row: tuple) -> str:
        if len(self._key_positions) == 1:
            return f"{self.key_prefix}{row[self._key_positions[0]]}"
        return self.key_prefix + "|".join(str(row[i]) for i in self._key_positions)

    def key_of(self, source_key: str) -> str:
        """A target ``source_key`` of this source without its prefix (the source's key as text)."""
        return source_key[len(self.key_prefix) :] if self.key_prefix else source_key

    def key_values(self, row: tuple | Mapping) -> tuple:
        """The key columns' raw values (what a checkpoint records)."""
        row = self._as_tuple(row)
        return tuple(row[i] for i in self._key_positions)

    def raw_dict(self, row: tuple | Mapping) -> dict[str, Any]:
        """The source row by column name (kept with a reject)."""
        return dict(zip(self.select_columns, self._as_tuple(row), strict=True))

    def reject(self, raw: tuple | Mapping, rule: str, message: str, out: dict | None = None):
        """The ``Reject`` of source row ``raw`` under ``rule``."""
        return Reject(
            target_table=self.target_name,
            source_system=self.system,
            source_table=self.table,
            source_key=self.source_key(raw),
            rule=rule,
            message=message,
            raw_row=self.raw_dict(raw),
            out=out,
        )

    def transform(self, row: tuple, dropped: list[str] | None = None) -> dict[str, Any]:
        """The target row for ``row`` (a tuple in select order), references still as parent keys.

        Raises ``RowRejected`` with the rule of the first failing column (``on_error: "null"``
        columns keep the row and drop the value; ``dropped`` collects their ``column:rule``).
        """
        out: dict[str, Any] = {"source_system": self.system, "source_key": self._key_text(row)}
        for column, apply in self._bound:
            try:
                values = apply(row)
            except TransformError as exc:
                if column.on_error == "null":
                    values = (None,) * len(column.outputs)
                    if dropped is not None:
                        dropped.append(f"{column.outputs[0]}:{exc.rule}")
                else:
                    raise RowRejected(
                        exc.rule, f"{', '.join(column.outputs)}: {exc.message}", column.outputs[0]
                    ) from None
            if len(values) == 1:
                out[column.outputs[0]] = values[0]
            else:
                out.update(zip(column.outputs, values, strict=True))
        return out

    def transform_chunk(
        self, partition: Sequence, dropped: dict[str, list[str]] | None = None
    ) -> tuple[list[tuple[tuple, dict]], list[Reject]]:
        """(raw, transformed) rows of a chunk and the rejects of those a transform refused.

        Row at a time, through :meth:`transform`: the reference that validation rebuilds the
        expected rows with. Rows are tuples in select order (mappings are converted).
        ``dropped`` collects, by source key, the values ``on_error: "null"`` dropped.
        """
        good, rejects = [], []
        transform = self.transform
        if partition and isinstance(partition[0], sa.RowMapping):
            partition = [tuple(mapping.values()) for mapping in partition]
        for raw in partition:  # SQLAlchemy rows index like tuples; no conversion needed
            drops: list[str] | None = [] if dropped is not None else None
            try:
                out = transform(raw, drops)
            except RowRejected as exc:
                rejects.append(self.reject(raw, exc.rule, exc.message))
                continue
            good.append((raw, out))
            if drops:
                dropped[out["source_key"]] = drops
        return good, rejects

    def transform_columns(
        self, rows: Sequence[tuple]
    ) -> tuple[ColumnBatch, list[tuple[tuple, RowRejected]]]:
        """The chunk ``rows`` (tuples in select order) as target columns, and the rows rejected.

        Gives what :meth:`transform` gives row by row — the same values, and for a rejected row
        the rejection of its first failing column — computed a column at a time.
        """
        count = len(rows)
        source = list(zip(*rows, strict=True)) if count else [() for _ in self.select_columns]
        prefix = self.key_prefix
        if len(self._key_positions) == 1:
            keys = [f"{prefix}{value}" for value in source[self._key_positions[0]]]
        else:
            keys = [
                prefix + "|".join(map(str, values))
                for values in zip(*(source[i] for i in self._key_positions), strict=True)
            ]
        columns: dict[str, list] = {"source_system": [self.system] * count, "source_key": keys}
        failed: dict[int, RowRejected] = {}
        dropped: dict[int, tuple[str, ...]] = {}
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
                for index, exc in errors.items():
                    dropped[index] = (*dropped.get(index, ()), f"{column.outputs[0]}:{exc.rule}")
            columns.update(zip(column.outputs, outputs, strict=True))
        rejected = [(rows[i], failed[i]) for i in sorted(failed)]
        return ColumnBatch(list(rows), columns, dropped).without(failed), rejected

    def transform_batch(self, partition: Sequence[tuple]) -> tuple[ColumnBatch, list[Reject]]:
        """The loader's form of :meth:`transform_chunk`: a column at a time, rejects built."""
        batch, failed = self.transform_columns(partition)
        return batch, [self.reject(raw, exc.rule, exc.message) for raw, exc in failed]

    def transform_arrow(self, batch: Any, counts: Any = None) -> tuple[Any, list[Reject]]:
        """:meth:`transform_batch` over a ``pyarrow.RecordBatch`` of the select columns, vectorized.

        Each step runs its kernel over the column, and its per-value function only for the rows
        the kernel leaves undecided (``mapping.arrow_columns``); the outcome is the one
        :meth:`transform_batch` gives. Returns an ``ArrowChunk`` (the kept source rows and the
        target columns, as Arrow) and the rejects. ``counts`` (an ``arrow_columns.RowCounts``)
        tallies the rows each kernel decided.
        """
        from runbook_lib.mapping.arrow_columns import transform_record_batch  # pyarrow on demand

        return transform_record_batch(self, batch, counts)

    # --- the target -----------------------------------------------------------------------

    def parent_ids(
        self,
        connection: sa.Connection,
        metadata: sa.MetaData,
        column: CompiledColumn,
        keys: Iterable[str],
    ) -> dict[str, int]:
        """Parent source key → parent target id for reference ``column`` (keys as it gives them)."""
        ref = self.parents[column.outputs[0]]
        parent = self.spec.spec.targets[ref.target]
        table = metadata.tables[parent.merge.crosswalk if parent.merge else ref.target]
        id_name = parent.id_column
        found: dict[str, int] = {}
        for condition in key_in(table.c.source_key, sorted(keys), connection.dialect.name):
            query = sa.select(table.c.source_key, table.c[id_name]).where(
                table.c.source_system == ref.system, condition
            )
            found.update(connection.execute(query).all())  # one fetch, not one per row
        return found

    # --- source queries -------------------------------------------------------------------

    def filter_clauses(self, *, excluded: bool = False) -> list[sa.ColumnElement]:
        """Rows the named filters keep (or, with ``excluded``, one clause per filter's exclusions).

        A NULL condition does not exclude: ``CASE WHEN`` turns it into "keep". A filter that
        reads beyond its own table raises ``ExpressionError`` before any SQL runs.
        """
        keep = 1 if excluded else 0
        return [
            sa.text(
                f"(CASE WHEN ({refuse_unsafe_filter(f.exclude_where, self.table)}) "
                f"THEN 1 ELSE 0 END) = {keep}"
            )
            for f in self.source.filters
        ]

    def sample_clause(self, percent: int) -> sa.ColumnElement:
        """Membership of the deterministic trial sample (``mapping.sample``)."""
        return sample_clause(self.spec, self.system, self.table, percent)

    def select(
        self,
        *,
        sample_percent: int | None = None,
        after_key: tuple | None = None,
        changed_since: tuple[str, str | None] | None = None,
        until_key: tuple | None = None,
    ) -> sa.Select:
        """Rows to load, in key order, with filters (and the sample, for a trial) applied.

        ``after_key`` resumes after the last committed key of a checkpoint; ``changed_since``
        (column, value) adds that change column last and keeps the rows where it passed the value.
        ``until_key`` ends the rows at that key, inclusive (one partition of a key-range plan).
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
        if until_key is not None:
            keys = [table.c[name] for name in self.key_columns]
            if len(keys) == 1:
                query = query.where(keys[0] <= until_key[0])
            else:
                query = query.where(sa.tuple_(*keys) <= sa.tuple_(*until_key))
        query = query.where(*self.filter_clauses())
        if sample_percent is not None:
            query = query.where(self.sample_clause(sample_percent))
        return query.order_by(*(table.c[name] for name in self.key_columns))

    def count_queries(self, *, sample_percent: int | None = None) -> dict[str, sa.Select]:
        """Independent counts for the accounting: all rows, and rows excluded by each filter."""
        base = sa.select(sa.func.count()).select_from(sa.table(self.table))
        if sample_percent is not None:
            base = base.where(self.sample_clause(sample_percent))
        counts = {"source_rows": base}
        for f, excluded in zip(
            self.source.filters, self.filter_clauses(excluded=True), strict=True
        ):
            counts[f"filtered:{f.name}"] = base.where(excluded)
        return counts

    def count(self, engine: sa.Engine, *, sample_percent: int | None = None) -> dict[str, int]:
        """Rows in the source table (in the sample, for a trial) and rows each filter excludes."""
        with engine.connect() as connection:
            return {
                name: connection.execute(query).scalar_one()
                for name, query in self.count_queries(sample_percent=sample_percent).items()
            }


def _compile_columns(source: SourceMapping, present: set[str] | None) -> list[CompiledColumn]:
    compiled = []
    for text, column in source.columns.items():
        if present is not None and set(column.inputs) - present:
            continue
        try:
            compiled.append(CompiledColumn.of(text, column))
        except UnknownTransformError:
            if present is None:
                raise
    return compiled


@dataclass(frozen=True)
class CompiledSpec:
    """Every source of every target, compiled; in spec order and in load order."""

    loaded: LoadedSpec
    in_spec_order: tuple[CompiledSource, ...]

    @cached_property
    def in_load_order(self) -> tuple[CompiledSource, ...]:
        """Targets in spec order; a merge target's sources in survivorship order."""
        ordered: list[CompiledSource] = []
        for name, target in self.loaded.spec.targets.items():
            own = [s for s in self.in_spec_order if s.target_name == name]
            if target.merge:
                rank = {system: i for i, system in enumerate(target.merge.survivorship)}
                own.sort(key=lambda s: rank.get(s.system, len(rank)))
            ordered.extend(own)
        return tuple(ordered)

    def of_target(self, name: str) -> list[CompiledSource]:
        """The sources of target ``name``, in load order."""
        return [s for s in self.in_load_order if s.target_name == name]


def compile_spec(
    spec: LoadedSpec, present: Mapping[tuple[str, str], Iterable[str]] | None = None
) -> CompiledSpec:
    """Compile every source of ``spec``.

    With ``present`` (the live source columns by ``(system, table)``), what cannot run is left
    out quietly — a missing table or key, a mapping reading a missing input or naming an unknown
    transform — for the mapping stage to report with its YAML path.
    """
    compiled = []
    for target_name, target, system, table, source in spec.sources():
        columns = None
        if present is not None:
            found = present.get((system, table))
            if found is None or set(source.key_columns) - set(found):
                continue
            columns = list(found)
        compiled.append(CompiledSource(spec, target_name, target, system, table, source, columns))
    return CompiledSpec(spec, tuple(compiled))


def ordered_sources(spec: LoadedSpec) -> tuple[CompiledSource, ...]:
    """Every source of ``spec``, compiled, in load order (what the loader and validation run)."""
    return compile_spec(spec).in_load_order
