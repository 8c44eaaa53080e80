"""The stage contract, in one table: each stage's notebook, what it glues and what it reads.

The runner executes ``notebook``; the notebook glues exactly ``glues`` (``StageContext.glue``
refuses any other name); later stages read an earlier stage's scraps only as ``reads`` declares;
the report picks each stage's ``glues`` for its page; approvals and the lab read the same names.
A failing stage also glues ``FAILURE`` (its error as data: type, message, hint, exit code), so the
runner and the CLI never parse a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runbook_lib.errors import RunbookError

FAILURE = "failure"
# What a long stage reports as it goes: (what, rows done, rows in all; 0 when unknown).
RowProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Stage:
    """One stage of the runbook."""

    name: str
    notebook: str
    glues: tuple[str, ...]
    reads: tuple[tuple[str, str], ...] = ()  # (earlier stage, scrap)
    approval: str | None = None  # the action an approval must cover, where params require one
    in_runbook: bool = True  # part of ``runbook run``'s default sequence (rollback is on demand)

    @property
    def html(self) -> str:
        return self.notebook.removesuffix(".ipynb") + ".html"


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("assessment", "00_assessment.ipynb", glues=("assessment", "classification")),
        Stage(
            "mapping",
            "01_mapping.ipynb",
            glues=("mapping_check", "mapping_spec", "mapping_preview"),
            reads=(("assessment", "classification"),),
        ),
        Stage(
            "trial",
            "02_trial.ipynb",
            glues=("trial",),
            reads=(("mapping", "mapping_check"), ("assessment", "classification")),
        ),
        Stage(
            "full_load",
            "03_full_load.ipynb",
            glues=("snapshot", "full_load", "plan_vs_actual"),
            # the classification masks the reject triage's raw rows as every other view
            reads=(
                ("mapping", "mapping_check"),
                ("trial", "trial"),
                ("assessment", "classification"),
            ),
            approval="full load",
        ),
        Stage(
            "validation",
            "04_validation.ipynb",
            glues=("validation",),
            reads=(("assessment", "classification"),),
        ),
        Stage(
            "rollback",
            "05_rollback.ipynb",
            glues=("rollback",),
            approval="rollback",
            in_runbook=False,
        ),
        Stage(
            "cutover",
            "06_cutover.ipynb",
            glues=("cutover",),
            reads=(
                ("validation", "validation"),
                ("trial", "trial"),
                ("assessment", "classification"),
            ),
            approval="cut-over",
            in_runbook=False,
        ),
    )
}
RUNBOOK_STAGES = tuple(name for name, stage in STAGES.items() if stage.in_runbook)


def stage(name: str) -> Stage:
    """The stage called ``name``; a clear error naming the stages there are."""
    try:
        return STAGES[name]
    except KeyError:
        raise RunbookError(f"unknown stage {name!r}", hint=f"stages: {', '.join(STAGES)}") from None


def stage_of_notebook(notebook: str) -> Stage | None:
    """The stage whose notebook is ``notebook`` (a file name), if any."""
    return next((s for s in STAGES.values() if s.notebook == notebook), None)
