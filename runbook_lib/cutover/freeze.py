"""The freeze check: which sources still change, and how much the final sync will apply.

For each source that declares a watermark, the rows past where the last load or sync left off
(a key above its last key, a change column past its watermark) are counted, twice, ``window``
seconds apart. Rows that arrive between the two counts mean the source is still being written:
the cut-over says which sources, at what rate, before it syncs for the last time. What is
pending at the second count is what the final sync will apply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.load import checkpoints
from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec


@dataclass(frozen=True)
class SourceChange:
    """One source during the freeze window."""

    source: str
    watermark: str
    pending_before: int
    pending_after: int
    window_seconds: float

    @property
    def arrived(self) -> int:
        """Rows that appeared during the window (the source is still being written)."""
        return max(self.pending_after - self.pending_before, 0)

    @property
    def rate(self) -> float:
        return self.arrived / self.window_seconds if self.window_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "watermark": self.watermark,
            "pending_before": self.pending_before,
            "pending_after": self.pending_after,
            "arrived": self.arrived,
            "rows_per_second": round(self.rate, 3),
        }


@dataclass(frozen=True)
class FreezeCheck:
    """Every watermarked source over one window."""

    window_seconds: float
    started_at: float  # time.time() when the window opened (the freeze)
    sources: tuple[SourceChange, ...]
    unwatched: tuple[str, ...] = ()  # sources without a watermark: the sync cannot see them

    @property
    def frozen(self) -> bool:
        return not any(s.arrived for s in self.sources)

    @property
    def pending(self) -> int:
        return sum(s.pending_after for s in self.sources)

    def to_dict(self) -> dict:
        return {
            "window_seconds": self.window_seconds,
            "frozen": self.frozen,
            "pending": self.pending,
            "sources": [s.to_dict() for s in self.sources],
            "still_changing": [s.source for s in self.sources if s.arrived],
            "unwatched": list(self.unwatched),
        }

    def render(self) -> str:
        lines = [
            f"freeze check over {self.window_seconds:.0f} s: "
            + ("no source changed" if self.frozen else "sources still changing")
            + f"; {self.pending:,} rows pending for the final sync"
        ]
        for s in self.sources:
            if s.arrived:
                lines.append(
                    f"  still changing: {s.source} (+{s.arrived:,} rows, {s.rate:.2f} rows/s)"
                )
        if self.unwatched:
            lines.append(f"  no watermark, not synced: {', '.join(self.unwatched)}")
        return "\n".join(lines)


def pending_rows(
    pipeline: CompiledSource, engine: sa.Engine, previous: checkpoints.Checkpoint
) -> int:
    """Rows of a source past where the last load or sync left it."""
    column = pipeline.source.watermark.column
    if column in pipeline.key_columns:
        query = pipeline.select(after_key=previous.last_key)
    else:
        query = pipeline.select(changed_since=(column, previous.watermark))
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(query.subquery())
        ).scalar_one()


def freeze_check(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    *,
    window_seconds: float,
    sleep=time.sleep,
) -> FreezeCheck:
    """Count what is pending at each watermarked source, ``window_seconds`` apart."""
    started = time.time()
    watched, unwatched = [], []
    for pipeline in ordered_sources(spec):
        label = f"{pipeline.system}.{pipeline.table}"
        if pipeline.source.watermark is None:
            unwatched.append(label)
            continue
        previous = checkpoints.latest_done(
            target, pipeline.target_name, pipeline.system, pipeline.table
        )
        if previous is None:
            unwatched.append(label)
            continue
        watched.append(
            (pipeline, previous, pending_rows(pipeline, sources[pipeline.system], previous))
        )
    sleep(window_seconds)
    changes = tuple(
        SourceChange(
            source=f"{p.system}.{p.table}",
            watermark=p.source.watermark.column,
            pending_before=before,
            pending_after=pending_rows(p, sources[p.system], previous),
            window_seconds=window_seconds,
        )
        for p, previous, before in watched
    )
    return FreezeCheck(window_seconds, started, changes, tuple(unwatched))
