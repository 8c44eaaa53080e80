"""The rollback rehearsal: the trial's scratch target restored from its snapshot, timed, proven.

A rollback that has never been tried is a promise; this one is measured. After the trial loaded
and validated its sample, the scratch target is put back to its pre-load snapshot by the very
restore a rollback runs (``load.backup.restore``), the time it took is recorded, and the proof is
the same as a rollback's: every table hashes as it did before the load. The RTO of the full target
is projected from it, linearly in the rows the full load writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.load import backup


@dataclass(frozen=True)
class Rehearsal:
    """What rolling the trial back took, and what rolling the full load back would."""

    seconds: float
    passed: bool
    rows_rolled_back: int
    full_rows: int
    tables: tuple[str, ...]

    @property
    def projected_rto_seconds(self) -> float | None:
        if not self.rows_rolled_back:
            return None
        return self.seconds * self.full_rows / self.rows_rolled_back

    def to_dict(self) -> dict:
        projected = self.projected_rto_seconds
        return {
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "rows_rolled_back": self.rows_rolled_back,
            "full_rows": self.full_rows,
            "projected_rto_seconds": None if projected is None else round(projected, 2),
            "tables": list(self.tables),
        }

    def render(self) -> str:
        verdict = "every table hashes as before the trial load" if self.passed else "hashes DIFFER"
        projected = self.projected_rto_seconds
        return (
            f"rollback rehearsal: {self.rows_rolled_back:,} trial rows rolled back in "
            f"{self.seconds:.2f} s, {verdict}; projected RTO for the full load's "
            f"{self.full_rows:,} rows: {'?' if projected is None else f'{projected:.1f} s'}"
        )


def rehearse(engine: sa.Engine, snapshot: backup.Snapshot, full_rows: int) -> Rehearsal:
    """Restore ``snapshot`` into ``engine`` (the trial target), timed and proven by hash."""
    with engine.connect() as connection:
        rows = sum(
            connection.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar_one()
            for t in snapshot.tables
        ) - sum(snapshot.rows.values())
    started = time.perf_counter()
    report = backup.restore(engine, snapshot)
    seconds = time.perf_counter() - started
    return Rehearsal(
        seconds=seconds,
        passed=report.passed,
        rows_rolled_back=max(rows, 0),
        full_rows=full_rows,
        tables=snapshot.tables,
    )
