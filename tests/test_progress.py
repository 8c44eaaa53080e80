"""Progress lines tell the truth: a table's rate counts the rows read since its work started.

``line_progress`` takes a clock so the tests can say exactly when each report happens; the stages
report a table once before its first row, then as they go.
"""

from __future__ import annotations

import io

from runbook_demo.build import build_demo
from runbook_lib.ui.progress import line_progress
from runbook_lib.validate.validation import validate as run_validation


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _printer():
    out, clock = io.StringIO(), Clock()
    return line_progress(out, clock=clock), out, clock


def test_a_fresh_table_is_rated_from_its_first_report():
    report, out, clock = _printer()
    report("orders", 0, 1_000)
    clock.now += 2.0
    report("orders", 500, 1_000)
    clock.now += 2.0
    report("orders", 1_000, 1_000)

    assert out.getvalue().splitlines() == [
        "  orders: 1,000 rows to go",
        "  orders: 500/1,000 rows (250 rows/s)",
        "  orders: 1,000/1,000 rows (250 rows/s)",
    ]


def test_a_resumed_table_rates_only_the_rows_read_since_it_resumed():
    report, out, clock = _printer()
    report("orders", 15_000, 20_000)  # the checkpoint: read by the run that was killed
    clock.now += 2.0
    report("orders", 17_000, 20_000)
    clock.now += 3.0
    report("orders", 20_000, 20_000)

    assert out.getvalue().splitlines() == [
        "  orders: resuming after 15,000 of 20,000 rows (5,000 to go)",
        "  orders: 17,000/20,000 rows (1,000 rows/s)",
        "  orders: 20,000/20,000 rows (1,000 rows/s)",
    ]


def test_a_table_reported_once_when_finished_shows_no_rate_it_cannot_know():
    report, out, _clock = _printer()
    report("validated orders", 1_400, 1_400)

    assert out.getvalue().splitlines() == ["  validated orders: 1,400/1,400 rows"]


def test_validation_reports_each_source_before_reading_its_first_row(project):
    from helpers import ci_context

    build_demo("ci", project)
    ctx = ci_context(project)
    reports: list[tuple[str, int, int]] = []
    run_validation(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        run_id="run-1",
        target_label="target",
        chunk_size=500,
        max_unexplained_differences=0,
        max_reject_rate=0.05,
        progress=lambda label, done, total: reports.append((label, done, total)),
        masker=ctx.masker,
    )

    first: dict[str, int] = {}
    for label, done, _total in reports:
        first.setdefault(label, done)
    validated = {label: done for label, done in first.items() if label.startswith("validate ")}
    assert len(validated) == len(list(_sources(ctx.spec)))
    assert set(validated.values()) == {0}


def _sources(spec):
    for target in spec.spec.targets.values():
        yield from target.sources
