"""The spec's cross-table checks run on the target, against what the sources already broke.

For each ``checks:`` entry the target's violating parents (named by ``source_key``) are compared
with the source's (named the same way: the parent source's key prefix and key): a violation the
source had already is *inherited* (reported, not the migration's doing); one the source did not
have is *new* — the migration broke the invariant (a child quarantined, a value changed) — and new
violations are what the gate ``max_new_check_violations`` counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.mapping.invariants import Violation, violations
from runbook_lib.mapping.model import LoadedSpec

EXAMPLES = 10


@dataclass(frozen=True)
class InvariantResult:
    """One check on the target, beside the same check on its source."""

    name: str
    kind: str
    reason: str
    source_violations: int
    target_violations: int
    new: tuple[Violation, ...]
    new_count: int
    fixed_count: int

    @property
    def inherited(self) -> int:
        return self.target_violations - self.new_count

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "reason": self.reason,
            "source_violations": self.source_violations,
            "target_violations": self.target_violations,
            "inherited": self.inherited,
            "new": self.new_count,
            "new_keys": [{"key": v.key, "detail": v.detail} for v in self.new],
            "no_longer_violated": self.fixed_count,
        }

    def render(self) -> str:
        line = (
            f"check {self.name}: {self.target_violations:,} violation(s) in the target "
            f"({self.inherited:,} inherited from the source, {self.new_count:,} new); "
            f"{self.source_violations:,} in the source"
        )
        return "\n".join([line, *(f"    new  {v.key}: {v.detail}" for v in self.new)])


def check_invariants(
    spec: LoadedSpec, sources: dict[str, sa.Engine], target: sa.Engine
) -> list[InvariantResult]:
    """Every check of the spec, on the target beside its source."""
    results = []
    for check in spec.spec.checks:
        parent = spec.source(check.source.system, check.source.parent.table)
        prefix = parent.key_prefix if parent else ""
        with sources[check.source.system].connect() as connection:
            before = {f"{prefix}{v.key}" for v in violations(connection, check, check.source)}
        new, new_count, after = [], 0, set()
        with target.connect() as connection:
            for violation in violations(connection, check, check.target, key_column="source_key"):
                after.add(violation.key)
                if violation.key not in before:
                    new_count += 1
                    if len(new) < EXAMPLES:
                        new.append(violation)
        results.append(
            InvariantResult(
                name=check.name,
                kind=check.kind,
                reason=check.reason,
                source_violations=len(before),
                target_violations=len(after),
                new=tuple(new),
                new_count=new_count,
                fixed_count=len(before - after),
            )
        )
    return results
