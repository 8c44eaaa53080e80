"""What validation found, for people (``render``) and for the evidence (``to_dict``), and the gate.

``ValidationReport`` holds one ``TableCheck`` per source of each target table (accounting, the
row comparison and its differing keys), one ``TableTotal`` per target table, the column
aggregates and the referential-integrity counts; ``failures`` says, one sentence each, why the
gate fails, and ``raise_if_failed`` raises with them after the notebook has glued ``to_dict()``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from runbook_lib.db.canonical import canonical
from runbook_lib.errors import GateFailedError
from runbook_lib.validate.aggregates import AggregateCheck
from runbook_lib.validate.integrity import OrphanCheck
from runbook_lib.validate.invariants import InvariantResult

MAX_LISTED_DIFFERENCES = 50
KINDS = ("missing", "extra", "changed", "duplicate")


@dataclass(frozen=True)
class Difference:
    """One key whose target row is not what the mapping says it should be."""

    table: str
    source_system: str
    source_key: str
    kind: str  # missing | extra | changed | duplicate
    columns: tuple[str, ...] = ()
    values: tuple[
        tuple[str, str | None, str | None], ...
    ] = ()  # (column, expected, actual), masked
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "source_system": self.source_system,
            "source_key": self.source_key,
            "kind": self.kind,
            "columns": list(self.columns),
            "values": {c: {"expected": e, "actual": a} for c, e, a in self.values},
            "note": self.note,
        }

    def describe(self) -> str:
        shown = ", ".join(f"{c}: {e} → {a}" for c, e, a in self.values)
        detail = shown or ", ".join(self.columns)
        text = f"{self.kind:<9} {self.source_system}:{self.source_key}"
        text += f"  {detail}" if detail else ""
        return text + (f"  ({self.note})" if self.note else "")


@dataclass(frozen=True)
class TableCheck:
    """Accounting and row comparison for one source of one target table."""

    target_table: str
    source_system: str
    source_table: str
    source_rows: int
    loaded: int
    merged: int
    quarantined: int
    filtered: int
    compared_rows: int
    differences: tuple[Difference, ...] = ()
    difference_count: int = 0
    quarantined_by_rule: tuple[tuple[str, int], ...] = ()
    expected_quarantined_by_rule: tuple[tuple[str, int], ...] = ()
    target_rows: int = 0
    distinct_target_keys: int = 0
    by_kind: tuple[tuple[str, int], ...] = ()
    changed_columns: tuple[tuple[str, int], ...] = ()
    comparison: dict = field(default_factory=dict)
    # values on_error "null" drops in the rows the mapping keeps, by "column:rule" (rebuilt)
    nulled: tuple[tuple[str, int], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.source_system}.{self.source_table}"

    @property
    def balanced(self) -> bool:
        return self.source_rows == self.loaded + self.merged + self.quarantined + self.filtered

    @property
    def quarantine_matches(self) -> bool:
        """The reject table holds, rule by rule, what the mapping rejects when re-run."""
        return self.quarantined_by_rule == self.expected_quarantined_by_rule

    def to_dict(self) -> dict:
        return {
            "target_table": self.target_table,
            "source_system": self.source_system,
            "source_table": self.source_table,
            "source_rows": self.source_rows,
            "loaded": self.loaded,
            "merged": self.merged,
            "quarantined": self.quarantined,
            "filtered": self.filtered,
            "balanced": self.balanced,
            "quarantined_by_rule": dict(self.quarantined_by_rule),
            "expected_quarantined_by_rule": dict(self.expected_quarantined_by_rule),
            "quarantine_matches": self.quarantine_matches,
            "compared_rows": self.compared_rows,
            "target_rows": self.target_rows,
            "distinct_target_keys": self.distinct_target_keys,
            "differences": self.difference_count,
            "differences_by_kind": dict(self.by_kind),
            "changed_columns": dict(self.changed_columns),
            "difference_keys": [d.to_dict() for d in self.differences],
            "comparison": dict(self.comparison),
            "nulled_by_column_rule": dict(self.nulled),
        }


@dataclass(frozen=True)
class TableTotal:
    """A whole target table: its rows, by source system, against what the sources account for."""

    table: str
    rows: int
    accounted: int
    by_system: tuple[tuple[str, int], ...]

    @property
    def balanced(self) -> bool:
        return self.rows == self.accounted

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "rows": self.rows,
            "accounted": self.accounted,
            "by_system": dict(self.by_system),
            "balanced": self.balanced,
        }


@dataclass(frozen=True)
class ValidationReport:
    """Validation of a whole target (or of the tables asked for)."""

    run_id: str
    target: str
    max_unexplained_differences: int
    tables: tuple[TableCheck, ...] = field(default_factory=tuple)
    totals: tuple[TableTotal, ...] = ()
    aggregates: tuple[AggregateCheck, ...] = ()
    integrity: tuple[OrphanCheck, ...] = ()
    max_reject_rate: float | None = None
    seconds: float = 0.0
    workers: int = 1
    checks: tuple[InvariantResult, ...] = ()
    max_new_check_violations: int = 0

    @property
    def differences(self) -> int:
        """Row-level differences (missing, extra, changed, duplicate keys)."""
        return sum(t.difference_count for t in self.tables)

    @property
    def orphans(self) -> int:
        return sum(c.orphans for c in self.integrity)

    @property
    def unexplained_aggregates(self) -> int:
        return sum(1 for a in self.aggregates if a.unexplained)

    @property
    def unexplained(self) -> int:
        """Everything the gate counts: row differences, orphans, aggregates no row explains."""
        return self.differences + self.orphans + self.unexplained_aggregates

    @property
    def source_rows(self) -> int:
        return sum(t.source_rows for t in self.tables)

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables)

    @property
    def reject_rate(self) -> float:
        return self.quarantined / self.source_rows if self.source_rows else 0.0

    @property
    def failures(self) -> list[str]:
        """Why the gate fails, one sentence each (empty when it passes)."""
        reasons = []
        unbalanced = [t.label for t in self.tables if not t.balanced]
        if unbalanced:
            reasons.append(f"rows unaccounted for in {', '.join(unbalanced)}")
        mismatched = [t.label for t in self.tables if not t.quarantine_matches]
        if mismatched:
            reasons.append(
                f"quarantine differs from what the mapping rejects in {', '.join(mismatched)}"
            )
        totals = [t.table for t in self.totals if not t.balanced]
        if totals:
            reasons.append(f"target rows no source accounts for in {', '.join(totals)}")
        if self.unexplained > self.max_unexplained_differences:
            reasons.append(
                f"{self.unexplained:,} unexplained difference(s) ({self.differences:,} row, "
                f"{self.orphans:,} orphan, {self.unexplained_aggregates:,} aggregate), "
                f"gate {self.max_unexplained_differences:,}"
            )
        if self.max_reject_rate is not None and self.reject_rate > self.max_reject_rate:
            reasons.append(
                f"reject rate {self.reject_rate:.3%} above the gate of {self.max_reject_rate:.3%}"
            )
        new = sum(c.new_count for c in self.checks)
        if new > self.max_new_check_violations:
            broken = ", ".join(f"{c.name} ({c.new_count:,})" for c in self.checks if c.new_count)
            reasons.append(
                f"{new:,} new check violation(s) the sources did not have: {broken}, gate "
                f"{self.max_new_check_violations:,}"
            )
        return reasons

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        kinds = Counter()
        for t in self.tables:
            kinds.update(dict(t.by_kind))
        return {
            "run_id": self.run_id,
            "target": self.target,
            "passed": self.passed,
            "failures": self.failures,
            "differences": self.differences,
            "differences_by_kind": {k: kinds.get(k, 0) for k in KINDS},
            "orphans": self.orphans,
            "unexplained_aggregates": self.unexplained_aggregates,
            "unexplained": self.unexplained,
            "max_unexplained_differences": self.max_unexplained_differences,
            "source_rows": self.source_rows,
            "quarantined": self.quarantined,
            "reject_rate": round(self.reject_rate, 6),
            "max_reject_rate": self.max_reject_rate,
            "unbalanced_tables": [t.label for t in self.tables if not t.balanced],
            "tables": [t.to_dict() for t in self.tables],
            "totals": [t.to_dict() for t in self.totals],
            "aggregates": [a.to_dict() for a in self.aggregates],
            "integrity": [c.to_dict() for c in self.integrity],
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "checks": [c.to_dict() for c in self.checks],
            "max_new_check_violations": self.max_new_check_violations,
            "nulled": _summed(t.nulled for t in self.tables),
        }

    def render(self) -> str:
        methods = sorted({t.comparison.get("method", "") for t in self.tables} - {""})
        header = (
            f"{'source':<28} {'target':<14} {'rows':>9} {'loaded':>9} {'merged':>7} "
            f"{'quar.':>6} {'filt.':>6} {'diff':>5}  balanced"
        )
        lines = [f"validation of {self.target} (row hashes: {', '.join(methods) or 'none'})"]
        lines += [header, "-" * len(header)]
        for t in self.tables:
            lines.append(
                f"{t.label:<28} {t.target_table:<14} {t.source_rows:>9,} "
                f"{t.loaded:>9,} {t.merged:>7,} {t.quarantined:>6,} {t.filtered:>6,} "
                f"{t.difference_count:>5,}  {'yes' if t.balanced else 'NO'}"
            )
            if not t.quarantine_matches:
                lines.append(
                    f"    quarantine by rule {dict(t.quarantined_by_rule)}, "
                    f"the mapping rejects {dict(t.expected_quarantined_by_rule)}"
                )
            lines += [f"    {d.describe()}" for d in t.differences[:10]]
            undrilled = t.comparison.get("undrilled_ranges", 0)
            more = t.difference_count - undrilled - min(len(t.differences), 10)
            if more > 0:
                lines.append(f"    ... {more:,} more")
            if undrilled:
                lines.append(
                    f"    ... and {undrilled:,} more differing key ranges not drilled into "
                    f"(at least one difference each): a systematic difference? see the aggregates"
                )
        lines.append("")
        for total in self.totals:
            parts = " + ".join(f"{s} {n:,}" for s, n in total.by_system) or "no source rows"
            state = "balanced" if total.balanced else f"NOT balanced: {total.rows:,} rows"
            lines.append(f"target {total.table}: {total.accounted:,} accounted ({parts}): {state}")
        matched = sum(1 for a in self.aggregates if a.status == "match")
        lines.append(
            f"aggregates: {len(self.aggregates)} compared, {matched} equal, "
            f"{len(self.aggregates) - matched - self.unexplained_aggregates} explained by row "
            f"differences, {self.unexplained_aggregates} unexplained"
        )
        for a in self.aggregates:
            if a.status != "match":
                lines.append(
                    f"    {a.status:<11} {a.target_table}.{a.column} {a.source_system} "
                    f"{a.group or ''}: sum {canonical(a.expected.total)} → {canonical(a.target.total)}, "
                    f"rows {a.expected.rows:,} → {a.target.rows:,}"
                )
        lines.append(
            f"referential integrity: {len(self.integrity)} references, {self.orphans:,} orphan(s)"
        )
        for c in self.integrity:
            if c.orphans:
                r = c.reference
                lines.append(
                    f"    {r.table}.{r.column} → {r.parent}: {c.orphans:,} orphan(s) "
                    f"{', '.join(c.sample_keys)}"
                )
        lines += [c.render() for c in self.checks]
        nulled = _summed(t.nulled for t in self.tables)
        if nulled:
            shown = ", ".join(f"{name} {count:,}" for name, count in sorted(nulled.items()))
            lines.append(f"values dropped by on_error null (rows kept): {shown}")
        gate = "" if self.max_reject_rate is None else f" (gate {self.max_reject_rate:.3%})"
        lines.append(f"reject rate {self.reject_rate:.3%}{gate}")
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict}: {self.differences} difference(s)")
        lines += [f"  - {reason}" for reason in self.failures]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise GateFailedError(
                "validation failed: " + "; ".join(self.failures),
                hint="see the difference keys and the dashboard in the validation notebook",
            )


def _summed(counts) -> dict[str, int]:
    total: dict[str, int] = {}
    for pairs in counts:
        for name, count in dict(pairs).items():
            total[name] = total.get(name, 0) + count
    return total


# --- validate --------------------------------------------------------------------------------
