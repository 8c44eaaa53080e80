"""The cut-over record: what the switch took, against the limits the params set.

Downtime is the window the sources stayed frozen: from the freeze check's start to the end of the
final validation. RPO is how much source activity the switch could lose: the time from the
moment the final sync captured the sources to the validated end (nothing the sync did not see is
in the target). RTO is the rollback's time, measured by the trial's rehearsal and projected to the
full target. Each is set beside its limit (``cutover:`` in params: ``max_downtime``, ``rpo``,
``rto``); any limit exceeded, a sync over its reject gate or a validation that fails the gates
fails the stage, saying what exceeded what.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook_lib.errors import GateFailedError


@dataclass(frozen=True)
class Measure:
    """One figure of the cut-over beside its limit (None: no limit set, or not measured)."""

    name: str
    seconds: float | None
    limit: float | None

    @property
    def within(self) -> bool:
        return self.limit is None or (self.seconds is not None and self.seconds <= self.limit)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "limit_seconds": self.limit,
            "within": self.within,
        }

    def render(self) -> str:
        shown = "not measured" if self.seconds is None else f"{self.seconds:.1f} s"
        limit = "no limit" if self.limit is None else f"limit {self.limit:.0f} s"
        return f"{self.name}: {shown} ({limit}){'' if self.within else ' EXCEEDED'}"


@dataclass(frozen=True)
class CutoverRecord:
    """Everything the cut-over stage did and measured."""

    run_id: str
    freeze: dict
    sync: dict
    validation: dict
    measures: tuple[Measure, ...]
    counters: tuple[dict, ...] = ()
    notices: dict | None = None
    approval: dict | None = None
    failures_before: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> list[str]:
        found = list(self.failures_before)
        if not self.sync.get("passed", True):
            found.append(
                f"the final sync quarantined {self.sync.get('quarantined', 0):,} rows, above its gate"
            )
        if not self.validation.get("passed", False):
            found.append(
                "the final validation failed: " + "; ".join(self.validation.get("failures", []))
            )
        found += [
            f"{m.name} {m.seconds:.1f} s exceeds its limit of {m.limit:.0f} s"
            if m.seconds is not None
            else f"{m.name} was not measured, and params set a limit of {m.limit:.0f} s"
            for m in self.measures
            if not m.within
        ]
        return found

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "passed": self.passed,
            "failures": self.failures,
            "measures": [m.to_dict() for m in self.measures],
            "freeze": self.freeze,
            "sync": self.sync,
            "validation": {
                k: self.validation.get(k)
                for k in ("passed", "differences", "orphans", "unexplained", "failures", "seconds")
            },
            "counters": list(self.counters),
            "notices": self.notices,
            "approval": self.approval,
        }

    def render(self) -> str:
        lines = [f"cut-over of run {self.run_id}: {'passed' if self.passed else 'FAILED'}"]
        lines += [f"  {m.render()}" for m in self.measures]
        lines.append(
            f"  final sync: {self.sync.get('applied', 0):,} rows applied, "
            f"{self.sync.get('deleted_applied', 0):,} deleted; validation "
            f"{'passed' if self.validation.get('passed') else 'FAILED'}"
        )
        for counter in self.counters:
            lines.append(
                f"  id counter {counter['table']}.{counter['column']} → {counter['after']}"
            )
        if self.notices:
            lines.append(
                f"  notices: {self.notices['rows']:,} rows outside the evidence, sha256 "
                f"{self.notices['sha256'][:16]}…"
            )
        lines += [f"  - {failure}" for failure in self.failures]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if self.failures:
            raise GateFailedError(
                "cut-over: " + "; ".join(self.failures),
                hint="the target holds the final sync; read 06_cutover.html, then fix and re-run "
                "the cut-over, or roll the run back",
            )
