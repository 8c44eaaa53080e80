"""The cut-over plan: the full load's time and the downtime window, projected from the trial.

The trial measures how fast each source table goes through the mapping into a target (rows per
second, from the loader's own checkpoints) and how fast validation compares rows; the full sources
are counted. Each table's full-load time is its full row count at its trial rate; the downtime
window is what the cut-over does while the sources are frozen — the freeze check, the final
incremental sync and the final validation — at the measured rates. Every projection states its
assumptions. After the full load the plan is set beside what happened (``compare``), and the
ratio calibrates the next run's plan in the same environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TablePlan:
    """One source table: its trial sample's rate, and its full size at that rate."""

    target_table: str
    source: str
    sample_rows: int
    sample_seconds: float
    full_rows: int

    @property
    def rate(self) -> float | None:
        """Rows per second in the trial (None: too few rows or no time to tell)."""
        if self.sample_rows <= 0 or self.sample_seconds <= 0:
            return None
        return self.sample_rows / self.sample_seconds

    @property
    def projected_seconds(self) -> float | None:
        rate = self.rate
        return None if rate is None else self.full_rows / rate

    def to_dict(self) -> dict:
        return {
            "target_table": self.target_table,
            "source": self.source,
            "sample_rows": self.sample_rows,
            "sample_seconds": round(self.sample_seconds, 3),
            "rate": None if self.rate is None else round(self.rate, 1),
            "full_rows": self.full_rows,
            "projected_seconds": _rounded(self.projected_seconds),
        }


@dataclass(frozen=True)
class CutoverPlan:
    """The projected full load and downtime window, with what they assume."""

    tables: tuple[TablePlan, ...]
    trial_target: str
    target: str
    validation_rate: float | None  # compared rows per second in the trial's validation
    full_compared_rows: int
    expected_changes: int  # rows the final sync is assumed to apply
    freeze_check_seconds: float
    calibration: float = 1.0  # actual ÷ projected of the env's last full load (1: none yet)
    rto_seconds: float | None = None  # from the trial's rollback rehearsal, projected
    assumptions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def load_rate(self) -> float | None:
        """Rows per second over all sources of the trial (for a sync of mixed tables)."""
        rows = sum(t.sample_rows for t in self.tables)
        seconds = sum(t.sample_seconds for t in self.tables)
        return rows / seconds if rows and seconds > 0 else None

    @property
    def projected_load_seconds(self) -> float:
        known = [t.projected_seconds for t in self.tables if t.projected_seconds is not None]
        return sum(known) * self.calibration

    @property
    def projected_validation_seconds(self) -> float | None:
        if not self.validation_rate:
            return None
        return self.full_compared_rows / self.validation_rate * self.calibration

    @property
    def projected_sync_seconds(self) -> float | None:
        rate = self.load_rate
        return None if rate is None else self.expected_changes / rate * self.calibration

    @property
    def projected_downtime_seconds(self) -> float | None:
        """Freeze check + final sync + final validation: the window the sources stay frozen."""
        parts = [self.projected_sync_seconds, self.projected_validation_seconds]
        if any(p is None for p in parts):
            return None
        return self.freeze_check_seconds + sum(parts)

    def to_dict(self) -> dict:
        return {
            "trial_target": self.trial_target,
            "target": self.target,
            "tables": [t.to_dict() for t in self.tables],
            "calibration": round(self.calibration, 4),
            "projected_load_seconds": _rounded(self.projected_load_seconds),
            "validation_rate": None
            if self.validation_rate is None
            else round(self.validation_rate, 1),
            "full_compared_rows": self.full_compared_rows,
            "projected_validation_seconds": _rounded(self.projected_validation_seconds),
            "expected_changes": self.expected_changes,
            "projected_sync_seconds": _rounded(self.projected_sync_seconds),
            "freeze_check_seconds": self.freeze_check_seconds,
            "projected_downtime_seconds": _rounded(self.projected_downtime_seconds),
            "rto_seconds": _rounded(self.rto_seconds),
            "assumptions": list(self.assumptions),
        }

    def render(self) -> str:
        lines = [
            f"cut-over plan (from the trial into {self.trial_target}; the full load goes into "
            f"{self.target})",
            f"{'source':<30} {'trial rows':>10} {'rows/s':>10} {'full rows':>11} {'projected':>10}",
        ]
        for t in self.tables:
            lines.append(
                f"{t.source:<30} {t.sample_rows:>10,} "
                f"{'' if t.rate is None else f'{t.rate:,.0f}':>10} {t.full_rows:>11,} "
                f"{_duration(t.projected_seconds):>10}"
            )
        lines.append(f"full load: {_duration(self.projected_load_seconds)}")
        lines.append(
            f"downtime window: {_duration(self.projected_downtime_seconds)} (freeze check "
            f"{_duration(self.freeze_check_seconds)} + final sync of {self.expected_changes:,} "
            f"rows {_duration(self.projected_sync_seconds)} + validation of "
            f"{self.full_compared_rows:,} rows {_duration(self.projected_validation_seconds)})"
        )
        if self.rto_seconds is not None:
            lines.append(
                f"rollback (RTO), projected from the rehearsal: {_duration(self.rto_seconds)}"
            )
        lines += [f"  assumes: {a}" for a in self.assumptions]
        return "\n".join(lines)


@dataclass(frozen=True)
class PlanVsActual:
    """The trial's projection beside the full load that followed."""

    projected_seconds: float
    actual_seconds: float
    tables: tuple[tuple[str, float | None, float], ...]  # (source, projected, actual)
    calibration_used: float = 1.0

    @property
    def ratio(self) -> float | None:
        """Actual ÷ projected (the calibrated projection)."""
        return self.actual_seconds / self.projected_seconds if self.projected_seconds else None

    @property
    def next_calibration(self) -> float | None:
        """What the env's next plan multiplies its raw projection by."""
        return None if self.ratio is None else self.calibration_used * self.ratio

    def to_dict(self) -> dict:
        return {
            "projected_seconds": _rounded(self.projected_seconds),
            "actual_seconds": _rounded(self.actual_seconds),
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "next_calibration": None
            if self.next_calibration is None
            else round(self.next_calibration, 4),
            "tables": [
                {"source": s, "projected_seconds": _rounded(p), "actual_seconds": _rounded(a)}
                for s, p, a in self.tables
            ],
        }

    def render(self) -> str:
        ratio = "" if self.ratio is None else f" (actual ÷ projected {self.ratio:.2f})"
        return (
            f"full load projected {_duration(self.projected_seconds)}, took "
            f"{_duration(self.actual_seconds)}{ratio}"
        )


def plan_from_trial(
    trial_load: dict,
    trial_validation: dict,
    full_rows: dict[str, int],
    *,
    trial_target: str,
    target: str,
    expected_changes: int | None = None,
    freeze_check_seconds: float = 0.0,
    calibration: float | None = None,
    rto_seconds: float | None = None,
) -> CutoverPlan:
    """The plan from the trial's glued load and validation and the full row count per source.

    ``full_rows`` is keyed ``system.table``; ``expected_changes`` defaults to 0.1% of the full
    rows (at least one per source); ``calibration`` is the env's last actual ÷ projected.
    """
    tables = tuple(
        TablePlan(
            target_table=t["target_table"],
            source=f"{t['source_system']}.{t['source_table']}",
            sample_rows=t["source_rows"] - t.get("filtered", 0),
            sample_seconds=float(t.get("seconds", 0.0)),
            full_rows=full_rows.get(f"{t['source_system']}.{t['source_table']}", 0),
        )
        for t in trial_load.get("tables", [])
    )
    total = sum(full_rows.values())
    sample_total = sum(t.sample_rows for t in tables)
    compared = sum(t.get("compared_rows", 0) for t in trial_validation.get("tables", []))
    seconds = float(trial_validation.get("seconds", 0.0))
    assumed = expected_changes if expected_changes is not None else max(len(tables), total // 1000)
    assumptions = [
        "each table's full load runs at its trial rate (rows/s), linearly in rows; tables of a "
        "few hundred trial rows are dominated by fixed costs, so their projection errs high",
        "the final sync applies "
        + (
            f"{assumed:,} changed rows (params cutover.expected_changes)"
            if expected_changes is not None
            else f"{assumed:,} changed rows (0.1% of the full rows; set cutover.expected_changes)"
        )
        + " at the trial's overall rate",
        "validation compares the full rows at the trial validation's rate",
    ]
    if trial_target != target:
        assumptions.append(
            f"the trial target ({trial_target}) writes as fast as the target ({target})"
        )
    if calibration:
        assumptions.append(
            f"calibrated by the env's last full load: actual ÷ projected {calibration:.2f}"
        )
    return CutoverPlan(
        tables=tables,
        trial_target=trial_target,
        target=target,
        validation_rate=compared / seconds if compared and seconds > 0 else None,
        full_compared_rows=round(compared * total / sample_total) if sample_total else 0,
        expected_changes=assumed,
        freeze_check_seconds=freeze_check_seconds,
        calibration=calibration or 1.0,
        rto_seconds=rto_seconds,
        assumptions=tuple(assumptions),
    )


def compare(plan: dict, full_load: dict) -> PlanVsActual:
    """The glued plan beside the glued full load: projected and actual seconds per source."""
    projected = {t["source"]: t.get("projected_seconds") for t in plan.get("tables", [])}
    rows = []
    for t in full_load.get("tables", []):
        source = f"{t['source_system']}.{t['source_table']}"
        rows.append((source, projected.get(source), float(t.get("seconds", 0.0))))
    return PlanVsActual(
        projected_seconds=float(plan.get("projected_load_seconds") or 0.0),
        actual_seconds=sum(a for _s, _p, a in rows),
        tables=tuple(rows),
        calibration_used=float(plan.get("calibration") or 1.0),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {rest:02.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes):02d} min"
