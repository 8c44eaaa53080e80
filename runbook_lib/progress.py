"""Progress of long stages: a few plain lines per table, readable in a log and in saved notebooks.

A live bar would save only its first state in an executed notebook (tqdm.auto), so headless runs
print a line at each tenth of a table instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def line_progress(
    stream=None, steps: int = 10, every_seconds: float = 5.0
) -> Callable[[str, int, int], None]:
    """A callback ``(label, done, total)`` printing at most ``steps`` lines per label."""
    out = stream or sys.stdout
    shown: dict[str, int] = {}
    started: dict[str, float] = {}
    last: dict[str, float] = {}

    def report(label: str, done: int, total: int) -> None:
        now = time.perf_counter()
        started.setdefault(label, now)
        if total <= 0:  # size unknown: a line every few seconds
            if now - last.get(label, -1e9) >= every_seconds:
                last[label] = now
                print(f"  {label}: {done:,} rows", file=out, flush=True)
            return
        step = steps if total <= 0 else min(steps, done * steps // max(total, 1))
        if step > shown.get(label, -1) and (step > 0 or done == 0):
            shown[label] = step
            elapsed = time.perf_counter() - started[label]
            if done == 0 or elapsed <= 0:
                print(f"  {label}: {total:,} rows to go", file=out, flush=True)
            else:
                print(
                    f"  {label}: {done:,}/{total:,} rows ({done / elapsed:,.0f} rows/s)",
                    file=out,
                    flush=True,
                )

    return report
