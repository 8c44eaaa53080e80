"""Quality findings derived from the mapping spec, so the same rules fit any spec and any source.

Each rule reads what the spec declares rather than table names:

* every mapped column whose transforms can fail is run over the column's distinct values
  (``GROUP BY`` in the database, each distinct value transformed once and weighted by its rows):
  ``invalid_email``, ``invalid_phone``, ``missing_required``, ``negative_quantity``,
  ``unmapped_value``, ``unparseable_datetime``... are the very rules the loader quarantines by;
* ``mixed_date_formats`` from the formats profiled in text columns;
* ``mixed_amount_units`` and ``mixed_time_zones`` (in ``conversions``) from the options of
  ``money``/``convert_*`` and ``parse_datetime``/``epoch_to_utc`` of one target column's sources;
* ``irregular_names`` for the inputs of ``split_name``; ``untrimmed_text``; ``duplicate_key``;
* ``zero_date``: MySQL zero dates among the inputs of ``parse_datetime``, which reads them as no
  date: they load as NULL, so they are counted here rather than passing unseen.

Orphans and their cascades are in ``references``; duplicate people across systems in
``duplicates``. Examples name source keys, with values masked by their column's classification.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from runbook_lib.assess.profiling import ColumnProfile
from runbook_lib.db.canonical import canonical
from runbook_lib.db.type_rules import is_zero_date
from runbook_lib.errors import TransformError
from runbook_lib.mapping.compiled import CompiledColumn, CompiledSource
from runbook_lib.privacy.masking import EvidenceMasker
from runbook_lib.transforms import name_kind

SEVERITIES = ("error", "warning", "info")
EXAMPLES = 3
# Failing values kept per column, to find example keys and the rows that depend on them.
MAX_FAILING_VALUES = 1_000


@dataclass(frozen=True)
class Finding:
    """One rule applied to one place, and how many rows it found."""

    rule: str
    severity: str  # error: rows will be quarantined; warning: loaded but altered; info
    system: str
    table: str
    column: str
    count: int
    detail: str
    examples: tuple[str, ...] = ()
    breakdown: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return ".".join(part for part in (self.system, self.table, self.column) if part)

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "system": self.system,
            "table": self.table,
            "column": self.column,
            "count": self.count,
            "detail": self.detail,
            "examples": list(self.examples),
            "breakdown": dict(self.breakdown),
        }


def sort_key(finding: Finding) -> tuple:
    """Errors first, then warnings and information; by place within each."""
    return (
        SEVERITIES.index(finding.severity),
        finding.system,
        finding.table,
        finding.column,
        finding.rule,
    )


# --- transforms over distinct values ---------------------------------------------------------


@dataclass
class ColumnCheck:
    """The transforms of one mapped column run over its values: failures by rule."""

    pipeline: CompiledSource
    column: CompiledColumn
    rows: Counter = field(default_factory=Counter)  # rule -> rows
    failing: dict[str, list[tuple]] = field(default_factory=dict)  # rule -> distinct inputs
    truncated: bool = False
    zero_dates: Counter = field(default_factory=Counter)  # zero-date input -> rows

    @property
    def quarantines(self) -> bool:
        return self.column.on_error != "null"


def checked_columns(pipeline: CompiledSource) -> list[CompiledColumn]:
    """Mapped columns read from the source whose transforms can reject a value."""
    return [
        column
        for column in pipeline.columns
        if column.inputs
        and column.references is None
        and any(transform.can_fail for transform, _ in column.steps)
    ]


def run_column_check(
    connection: sa.Connection, pipeline: CompiledSource, column: CompiledColumn, *, stream: bool
) -> ColumnCheck:
    """Apply ``column``'s transforms to each distinct input (``stream``: every row instead)."""
    source = sa.table(pipeline.table, *(sa.column(name) for name in column.inputs))
    inputs = [source.c[name] for name in column.inputs]
    if stream:  # nearly unique values: sorting for GROUP BY would cost more than it saves
        query = sa.select(*inputs, sa.literal(1)).select_from(source)
    else:
        query = sa.select(*inputs, sa.func.count()).select_from(source).group_by(*inputs)
    for clause in pipeline.filter_clauses():
        query = query.where(clause)
    check = ColumnCheck(pipeline, column)
    dated = len(column.inputs) == 1 and any(t.name == "parse_datetime" for t, _ in column.steps)
    result = connection.execution_options(stream_results=True, yield_per=20_000).execute(query)
    for *values, rows in result:
        if dated and is_zero_date(values[0]):
            check.zero_dates[values[0]] += rows
        try:
            column.apply(*values)
        except TransformError as exc:
            check.rows[exc.rule] += rows
            seen = check.failing.setdefault(exc.rule, [])
            if len(seen) < MAX_FAILING_VALUES:
                if tuple(values) not in seen[-1:]:
                    seen.append(tuple(values))
            else:
                check.truncated = True
    return check


def failing_predicate(source: sa.TableClause, inputs: tuple[str, ...], values: list[tuple]):
    """SQL matching the rows whose inputs are one of ``values`` (NULL-safe)."""
    columns = [source.c[name] for name in inputs]
    if len(columns) == 1:
        present = sorted({v[0] for v in values if v[0] is not None}, key=canonical)
        parts = [columns[0].is_(None)] if any(v[0] is None for v in values) else []
        parts += [columns[0].in_(present)] if present else []
        return sa.or_(*parts)
    return sa.or_(
        *(
            sa.and_(
                *(c.is_(None) if v is None else c == v for c, v in zip(columns, row, strict=True))
            )
            for row in values
        )
    )


def transform_findings(
    connection: sa.Connection, check: ColumnCheck, masker: EvidenceMasker
) -> list[Finding]:
    """One finding per rule that failed (and one, with count 0, per column checked clean)."""
    pipeline, column = check.pipeline, check.column
    names = ", ".join(column.inputs)
    steps = " → ".join(transform.name for transform, _ in column.steps)
    outcome = "the row is quarantined" if check.quarantines else "the value becomes NULL"
    severity = "error" if check.quarantines else "warning"
    if not check.rows:
        return [
            Finding(
                "transform_check",
                "info",
                pipeline.system,
                pipeline.table,
                names,
                0,
                f"every value passes {steps}",
            )
        ]
    findings = []
    mask = masker.for_column(f"{pipeline.system}.{pipeline.table}", column.inputs[0])
    for rule, rows in sorted(check.rows.items()):
        failing = check.failing[rule]
        breakdown = _failing_values(connection, pipeline, column, failing, mask)
        findings.append(
            Finding(
                rule=rule,
                severity=severity,
                system=pipeline.system,
                table=pipeline.table,
                column=names,
                count=rows,
                detail=f"{rows:,} rows fail {steps} ({rule}): {outcome}"
                + (" (only the first failing values are listed)" if check.truncated else ""),
                examples=example_keys(connection, pipeline, column.inputs, failing, mask),
                breakdown=breakdown,
            )
        )
    return findings


def zero_date_findings(
    connection: sa.Connection, check: ColumnCheck, masker: EvidenceMasker
) -> list[Finding]:
    """How many rows of a ``parse_datetime`` input hold a MySQL zero date (read as no date)."""
    if not check.zero_dates:
        return []
    pipeline, column = check.pipeline, check.column
    rows = sum(check.zero_dates.values())
    mask = masker.for_column(f"{pipeline.system}.{pipeline.table}", column.inputs[0])
    zero = [(value,) for value in check.zero_dates]
    spellings: Counter = Counter()
    for value, n in check.zero_dates.items():
        spellings[value.strip()] += n
    return [
        Finding(
            rule="zero_date",
            severity="warning",
            system=pipeline.system,
            table=pipeline.table,
            column=column.inputs[0],
            count=rows,
            detail=f"{rows:,} rows hold a MySQL zero date, which means no date: parse_datetime "
            "reads it as NULL (a column that requires a value quarantines the row)",
            examples=example_keys(connection, pipeline, column.inputs, zero, mask),
            breakdown=dict(sorted(spellings.items())),
        )
    ]


def _failing_values(connection, pipeline, column, failing, mask) -> dict[str, int]:
    """Rows per failing value (masked), for the few most frequent."""
    source = sa.table(pipeline.table, *(sa.column(name) for name in column.inputs))
    inputs = [source.c[name] for name in column.inputs]
    query = (
        sa.select(*inputs, sa.func.count())
        .select_from(source)
        .where(failing_predicate(source, column.inputs, failing[:50]))
        .group_by(*inputs)
        .order_by(sa.func.count().desc())
        .limit(5)
    )
    shown: dict[str, int] = {}
    for *values, rows in connection.execute(query):
        label = ", ".join(canonical(mask(v)) for v in values)
        shown[label] = shown.get(label, 0) + rows
    return shown


def example_keys(
    connection: sa.Connection,
    pipeline: CompiledSource,
    inputs: tuple[str, ...],
    failing: list[tuple],
    mask: Callable[[object], object],
) -> tuple[str, ...]:
    """A few ``key=value`` examples (values masked) of rows with one of the failing inputs."""
    keys = pipeline.key_columns
    source = sa.table(pipeline.table, *(sa.column(n) for n in {*keys, *inputs}))
    query = (
        sa.select(*(source.c[k] for k in keys), *(source.c[n] for n in inputs))
        .where(failing_predicate(source, inputs, failing[: EXAMPLES * 4]))
        .order_by(*(source.c[k] for k in keys))
        .limit(EXAMPLES)
    )
    examples = []
    for row in connection.execute(query):
        key = "|".join(str(v) for v in row[: len(keys)])
        values = ", ".join(repr(mask(v)) for v in row[len(keys) :])
        examples.append(f"{'|'.join(keys)}={key}: {values}")
    return tuple(examples)


# --- rules on profiles and the spec --------------------------------------------------------------


def format_findings(profiles: list[ColumnProfile]) -> list[Finding]:
    """Text columns holding dates in more than one format; untrimmed text."""
    findings = []
    for p in profiles:
        dates = p.date_formats
        if len(dates) > 1:
            major = max(dates.values())
            findings.append(
                Finding(
                    "mixed_date_formats",
                    "warning",
                    p.system,
                    p.table,
                    p.column,
                    sum(dates.values()) - major,
                    f"{len(dates)} date formats; {sum(dates.values()) - major:,} rows are not "
                    "in the most common one",
                    breakdown=dict(dates),
                )
            )
        if p.untrimmed:
            findings.append(
                Finding(
                    "untrimmed_text",
                    "info",
                    p.system,
                    p.table,
                    p.column,
                    p.untrimmed,
                    "values with leading or trailing spaces",
                )
            )
    return findings


def name_findings(connection: sa.Connection, pipeline: CompiledSource) -> list[Finding]:
    """How the one-field names that feed ``split_name`` are written, by the rule that splits them."""
    findings = []
    for column in pipeline.columns:
        if len(column.inputs) != 1 or not any(t.name == "split_name" for t, _ in column.steps):
            continue
        name = column.inputs[0]
        source = sa.table(pipeline.table, sa.column(name))
        query = (
            sa.select(source.c[name], sa.func.count())
            .where(source.c[name].is_not(None), *pipeline.filter_clauses())
            .group_by(source.c[name])
        )
        kinds: Counter = Counter()
        result = connection.execution_options(stream_results=True, yield_per=20_000).execute(query)
        for value, rows in result:
            kinds[name_kind(str(value))] += rows
        regular = kinds["western_two_part"] + kinds["chinese_single_surname"]
        findings.append(
            Finding(
                "irregular_names",
                "info",
                pipeline.system,
                pipeline.table,
                name,
                sum(kinds.values()) - regular,
                "names split by a rule other than 'given family' or a one-character surname: "
                "compound surnames, one part, three or more parts, extra spaces",
                breakdown=dict(sorted(kinds.items())),
            )
        )
    return findings


def duplicate_key_finding(connection: sa.Connection, pipeline: CompiledSource) -> Finding:
    """Source keys that occur more than once (the loader's source_key must be unique)."""
    keys = [sa.column(k) for k in pipeline.key_columns]
    grouped = (
        sa.select(*keys, sa.func.count().label("n"))
        .select_from(sa.table(pipeline.table, *keys))
        .group_by(*keys)
        .having(sa.func.count() > 1)
        .subquery()
    )
    values, rows = connection.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(grouped.c.n), 0))
    ).one()
    return Finding(
        "duplicate_key",
        "error" if values else "info",
        pipeline.system,
        pipeline.table,
        ", ".join(pipeline.key_columns),
        int(rows) - int(values),
        f"{int(values):,} key values occur more than once" if values else "every key is unique",
    )


def check_findings(spec, sources: dict[str, sa.Engine]) -> list[Finding]:
    """The spec's cross-table checks on the sources: violations with a few example keys."""
    from runbook_lib.mapping.invariants import violations

    findings = []
    for check in spec.spec.checks:
        side = check.source
        if side.system not in sources:
            continue
        count, examples = 0, []
        with sources[side.system].connect() as connection:
            for violation in violations(connection, check, side):
                count += 1
                if len(examples) < EXAMPLES:
                    examples.append(f"{side.parent.key}={violation.key}: {violation.detail}")
        findings.append(
            Finding(
                check.name,
                "warning" if count else "info",
                side.system,
                side.parent.table,
                side.parent.column or side.parent.key,
                count,
                f"{count:,} {side.parent.table} rows break the check ({check.kind}): "
                f"{check.reason}; they load as they are, and validation reports the ones the "
                "migration itself breaks",
                examples=tuple(examples),
            )
        )
    return findings
