"""Progress of long stages: a few plain lines per table, readable in a log and in saved notebooks.

A live bar would save only its first state in an executed notebook (tqdm.auto), so headless runs
print a line at each tenth of a table instead. In a live JupyterLab session
``progress_callback(True)`` gives one ipywidgets bar per table with the same signature.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def line_progress(
    stream=None,
    steps: int = 10,
    every_seconds: float = 5.0,
    clock: Callable[[], float] = time.perf_counter,
) -> Callable[[str, int, int], None]:
    """A callback ``(label, done, total)`` printing at most ``steps`` lines per label.

    A label's first report is where its work starts: the clock starts there, and rows already
    ``done`` then (a resumed table's checkpoint) are not counted in its rate.
    """
    out = stream or sys.stdout
    shown: dict[str, int] = {}
    started: dict[str, tuple[float, int]] = {}
    last: dict[str, float] = {}

    def say(text: str) -> None:
        print(f"  {text}", file=out, flush=True)

    def report(label: str, done: int, total: int) -> None:
        now = clock()
        if total <= 0:  # size unknown: a line every few seconds
            if now - last.get(label, -1e9) >= every_seconds:
                last[label] = now
                say(f"{label}: {done:,} rows")
            return
        step = min(steps, done * steps // max(total, 1))
        if label not in started:
            started[label] = (now, done)
            shown[label] = step
            if done == 0:
                say(f"{label}: {total:,} rows to go")
            elif done < total:
                say(f"{label}: resuming after {done:,} of {total:,} rows ({total - done:,} to go)")
            else:
                say(f"{label}: {done:,}/{total:,} rows")
            return
        if step <= shown[label]:
            return
        shown[label] = step
        since, base = started[label]
        elapsed = now - since
        rate = f" ({(done - base) / elapsed:,.0f} rows/s)" if elapsed > 0 and done > base else ""
        say(f"{label}: {done:,}/{total:,} rows{rate}")

    return report


def bar_progress(display=None) -> Callable[[str, int, int], None]:
    """A callback ``(label, done, total)`` showing one ipywidgets bar per label (JupyterLab only).

    A label whose total is unknown (0) gets a bar in ``info`` style that only counts rows.
    """
    import ipywidgets as w

    if display is None:
        from IPython.display import display
    bars: dict[str, w.IntProgress] = {}

    def report(label: str, done: int, total: int) -> None:
        bar = bars.get(label)
        if bar is None:
            bar = bars[label] = w.IntProgress(min=0, max=max(total, 1), layout={"width": "60%"})
            bar.style.description_width = "initial"
            display(bar)
        bar.max = max(total, done, 1)
        bar.value = min(done, bar.max)
        bar.description = bar_text(label, done, total)
        bar.bar_style = "success" if total > 0 and done >= total else ("info" if total <= 0 else "")

    return report


def bar_text(label: str, done: int, total: int) -> str:
    """What a bar says beside it: ``label: done/total rows`` (``done rows`` when total is unknown)."""
    return f"{label}: {done:,}/{total:,} rows" if total > 0 else f"{label}: {done:,} rows"


def progress_callback(interactive: bool, stream=None) -> Callable[[str, int, int], None]:
    """Bars in a live JupyterLab session (``interactive``), else the line printer.

    Falls back to lines when ipywidgets is not installed.
    """
    if interactive:
        try:
            return bar_progress()
        except ImportError:
            pass
    return line_progress(stream)
