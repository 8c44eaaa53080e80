"""Column aggregates: rows, nulls, sum, min and max of every mapped numeric column, per currency.

The source side is the mapping's output, exact in ``Decimal``, accumulated while validation
streams the expected rows (flat memory); it also keeps what the quarantined rows would have
added, so a report can say why the source's total is not the target's. The target side is one
``GROUP BY`` query where the database sums exactly (PostgreSQL NUMERIC, MySQL DECIMAL); SQLite
stores ``ExactDecimal`` as text and would sum it as floats, so there the rows are streamed and
summed in Python instead. ``TARGET_AGGREGATES`` follows the ``decimal`` rule of ``type_rules``.

A mismatch is *explained* when the listed row differences account for it exactly (the sum of
their target values minus their expected values equals the difference of the totals, and the same
for rows and nulls); otherwise it is unexplained and fails the gate, because it means the row
comparison missed something.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from runbook_lib.db.canonical import canonical
from runbook_lib.db.type_rules import TYPE_RULES
from runbook_lib.mapping.compiled import CompiledSource, owned_by

Group = str | None


def _number(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value).strip() if isinstance(value, str) else value)


@dataclass
class Stats:
    """Rows, nulls, exact sum, min and max of one column."""

    rows: int = 0
    nulls: int = 0
    total: Decimal = Decimal(0)
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def add(self, value: object) -> None:
        self.rows += 1
        if value is None:
            self.nulls += 1
            return
        number = value if type(value) is Decimal else _number(value)
        self.total += number
        if self.minimum is None or number < self.minimum:
            self.minimum = number
        if self.maximum is None or number > self.maximum:
            self.maximum = number

    def same_as(self, other: Stats) -> bool:
        return (self.rows, self.nulls, self.total, self.minimum, self.maximum) == (
            other.rows,
            other.nulls,
            other.total,
            other.minimum,
            other.maximum,
        )

    def to_dict(self) -> dict:
        def shown(value: Decimal | None) -> str | None:
            return None if value is None else canonical(value)

        return {
            "rows": self.rows,
            "nulls": self.nulls,
            "sum": shown(self.total),
            "min": shown(self.minimum),
            "max": shown(self.maximum),
        }


Table = dict[tuple[Group, str], Stats]  # (group, column) → stats


def _candidates(pipeline: CompiledSource) -> list[str]:
    skip = {pipeline.target.id_column, "source_system", "source_key"}
    skip.update(c.outputs[0] for c in pipeline.reference_columns)
    return [name for c in pipeline.columns for name in c.outputs if name not in skip]


def numeric_columns(pipeline: CompiledSource, table: sa.Table) -> list[str]:
    """Mapped target columns the target declares numeric (not surrogate ids nor references)."""
    return [
        name
        for name in _candidates(pipeline)
        if name in table.c and isinstance(table.c[name].type, sa.Integer | sa.Numeric)
    ]


def group_column(pipeline: CompiledSource, table: sa.Table) -> str | None:
    """Totals are kept per currency where the target has a mapped ``currency`` column."""
    outputs = {name for column in pipeline.columns for name in column.outputs}
    return "currency" if "currency" in outputs and "currency" in table.c else None


_NUMBERS = (int, Decimal)
_EXACT = {int, Decimal}


class ExpectedAggregates:
    """The source side of one source's aggregates, fed row by row.

    A column counts as numeric when the target declares it so, or when the mapping gives only
    numbers for it (SQLite reflects ``ExactDecimal`` as text); one non-number drops it.
    """

    def __init__(self, pipeline: CompiledSource, table: sa.Table) -> None:
        self.pipeline = pipeline
        self.declared = numeric_columns(pipeline, table)
        self.group = group_column(pipeline, table)
        self._open = [name for name in _candidates(pipeline) if name in table.c]
        positions = {name: i for i, name in enumerate(pipeline.select_columns)}
        self._bound = [(c, c.bind(positions)) for c in pipeline.columns]
        self._seen: set[str] = set(self.declared)
        self.expected: Table = {}
        self.quarantined: Table = {}

    @property
    def columns(self) -> list[str]:
        """The numeric columns, as far as the rows fed so far tell."""
        return [name for name in self._open if name in self._seen]

    def _group_of(self, row: dict) -> Group:
        value = row.get(self.group) if self.group else None
        return None if value is None else canonical(value)

    def _drop(self, name: str) -> None:
        self._open.remove(name)
        self._seen.discard(name)
        for table in (self.expected, self.quarantined):
            for key in [k for k in table if k[1] == name]:
                del table[key]

    def _feed(self, table: Table, row: dict) -> None:
        group = self._group_of(row)
        for name in self._open[:]:
            if name not in row:
                continue
            value = row[name]
            if value is not None:
                if type(value) not in _EXACT and (
                    isinstance(value, bool) or not isinstance(value, _NUMBERS)
                ):
                    self._drop(name)
                    continue
                self._seen.add(name)
            stats = table.get((group, name))
            if stats is None:
                stats = table[(group, name)] = Stats()
            stats.add(value)

    def add(self, out: dict) -> None:
        self._feed(self.expected, out)

    def add_rejected(self, raw: dict, out: dict | None) -> None:
        """What a quarantined row would have added, where its columns map at all."""
        self._feed(self.quarantined, out if out is not None else self._map_alone(raw))

    def _map_alone(self, raw: dict) -> dict:
        row = tuple(raw.get(name) for name in self.pipeline.select_columns)
        values: dict = {}
        for column, apply in self._bound:
            if not any(name in self._open for name in column.outputs):
                continue
            try:
                values.update(zip(column.outputs, apply(row), strict=True))
            except Exception:  # noqa: BLE001 - the value that got the row rejected: no number
                continue
        return values


# --- the target side -------------------------------------------------------------------------

TargetAggregator = Callable[[sa.Engine, sa.Table, str, Sequence[str], str | None, int], Table]


def _sql_aggregates(engine, table, owner, columns, group, _chunk_size) -> Table:
    """One GROUP BY query; servers sum NUMERIC/DECIMAL exactly."""
    grouped = table.c[group] if group else sa.literal_column("NULL")
    measures = []
    for name in columns:
        column = table.c[name]
        measures += [
            sa.func.count(column),
            sa.func.sum(column),
            sa.func.min(column),
            sa.func.max(column),
        ]
    query = sa.select(grouped, sa.func.count(), *measures).where(owned_by(table, *owner))
    if group:
        query = query.group_by(grouped)
    found: Table = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            key = None if row[0] is None else canonical(row[0])
            for index, name in enumerate(columns):
                present, total, low, high = row[2 + 4 * index : 6 + 4 * index]
                found[(key, name)] = Stats(
                    rows=row[1],
                    nulls=row[1] - present,
                    total=_number(total) or Decimal(0),
                    minimum=_number(low),
                    maximum=_number(high),
                )
    return found


def _python_aggregates(engine, table, owner, columns, group, chunk_size) -> Table:
    """Stream the columns and sum them exactly in Python (decimals stored as text)."""
    grouped = table.c[group] if group else sa.literal_column("NULL")
    query = sa.select(grouped, *(table.c[name] for name in columns)).where(owned_by(table, *owner))
    found: Table = {}
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
            query
        )
        for row in result:
            key = None if row[0] is None else canonical(row[0])
            for name, value in zip(columns, row[1:], strict=True):
                found.setdefault((key, name), Stats()).add(value)
    return found


# Where the type rules store decimals as numbers, the database sums them exactly.
TARGET_AGGREGATES: dict[str, TargetAggregator] = {
    name: _sql_aggregates for name, rules in TYPE_RULES.items() if rules.decimal == "numeric"
}


def target_aggregates(
    engine: sa.Engine,
    table: sa.Table,
    system: str,
    columns: Sequence[str],
    group: str | None,
    chunk_size: int,
    key_prefix: str = "",
) -> Table:
    """The target side, by the dialect's registered aggregator (Python for any other)."""
    if not columns:
        return {}
    aggregate = TARGET_AGGREGATES.get(engine.dialect.name, _python_aggregates)
    return aggregate(engine, table, (system, key_prefix), columns, group, chunk_size)


# --- comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregateCheck:
    """One column of one source in one currency: source through the mapping against the target."""

    target_table: str
    source_system: str
    column: str
    group: Group
    expected: Stats
    target: Stats
    quarantined: Stats
    status: str  # match | explained | unexplained
    explained_by: int = 0

    @property
    def unexplained(self) -> bool:
        return self.status == "unexplained"

    def to_dict(self) -> dict:
        source_total = self.expected.total + self.quarantined.total
        return {
            "target_table": self.target_table,
            "source_system": self.source_system,
            "column": self.column,
            "currency": self.group,
            "status": self.status,
            "explained_by_differences": self.explained_by,
            "source_sum_through_mapping": canonical(source_total),
            "quarantined_sum": canonical(self.quarantined.total),
            "quarantined_rows": self.quarantined.rows,
            "expected": self.expected.to_dict(),
            "target": self.target.to_dict(),
            "difference_sum": canonical(self.target.total - self.expected.total),
        }


@dataclass
class _Delta:
    rows: int = 0
    nulls: int = 0
    total: Decimal = Decimal(0)
    keys: set[str] = field(default_factory=set)

    def take(self, key: str, value: object, sign: int) -> None:
        self.rows += sign
        number = _number(value)
        if number is None:
            self.nulls += sign
        else:
            self.total += sign * number
        self.keys.add(key)


def compare(
    target_table: str,
    system: str,
    expected: ExpectedAggregates,
    target: Table,
    differences: Iterable,
    columns: Sequence[str],
    complete: bool,
) -> list[AggregateCheck]:
    """Each (currency, column) compared; ``differences`` are ``rowdiff.RowDifference`` with values."""
    position = {name: index for index, name in enumerate(columns)}
    deltas: dict[tuple[Group, str], _Delta] = {}
    for difference in differences:
        sides = [(difference.expected, -1)] if difference.expected is not None else []
        sides += [(copy, 1) for copy in difference.actual]
        for values, sign in sides:
            group = None
            if expected.group:
                raw_group = values[position[expected.group]]
                group = None if raw_group is None else canonical(raw_group)
            for name in expected.columns:
                delta = deltas.setdefault((group, name), _Delta())
                delta.take(difference.key, values[position[name]], sign)
    checks = []
    for group, name in sorted(
        set(expected.expected) | set(target) | set(deltas), key=lambda k: (k[0] or "", k[1])
    ):
        if name not in expected.columns:
            continue
        ours = expected.expected.get((group, name), Stats())
        theirs = target.get((group, name), Stats())
        delta = deltas.get((group, name), _Delta())
        if ours.same_as(theirs):
            status = "match"
        elif (
            complete
            and (theirs.rows - ours.rows, theirs.nulls - ours.nulls, theirs.total - ours.total)
            == (
                delta.rows,
                delta.nulls,
                delta.total,
            )
            and delta.keys
        ):
            status = "explained"  # min/max moved with the listed rows
        else:
            status = "unexplained"
        checks.append(
            AggregateCheck(
                target_table=target_table,
                source_system=system,
                column=name,
                group=group,
                expected=ours,
                target=theirs,
                quarantined=expected.quarantined.get((group, name), Stats()),
                status=status,
                explained_by=len(delta.keys),
            )
        )
    return checks
