"""What a stage runs with: validated params, engines, the mapping spec and the run folder.

A notebook's parameters are only ``env`` and ``run_dir`` (papermill writes parameter values into
the output verbatim, so no URL or secret may be one); everything else is resolved here.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from runbook_lib.config.connections import Connections
from runbook_lib.config.params import LoadedParams, find_project_root, load_params
from runbook_lib.errors import RunbookError
from runbook_lib.evidence.run_folder import latest_run, read_scraps
from runbook_lib.spec.model import LoadedSpec, load_spec

STAGES: dict[str, str] = {
    "assessment": "00_assessment.ipynb",
    "mapping": "01_mapping.ipynb",
    "trial": "02_trial.ipynb",
    "full_load": "03_full_load.ipynb",
    "validation": "04_validation.ipynb",
    "rollback": "05_rollback.ipynb",
}
RUNBOOK_STAGES = ("assessment", "mapping", "trial", "full_load", "validation")


class StageContext:
    """One stage's view of the run."""

    def __init__(self, params: LoadedParams, run_dir: Path | None, mode: str = "") -> None:
        self.params = params
        self.run_dir = run_dir
        self.connections = Connections(params)
        if mode not in ("", "full", "incremental"):
            raise RunbookError(f"unknown load mode {mode!r}", hint="use full or incremental")
        self.load_mode = mode or params.model.load.mode
        # a person in JupyterLab (no run_dir): progress bars and widgets instead of plain lines
        self.interactive = False

    @property
    def env(self) -> str:
        return self.params.env

    @property
    def run_id(self) -> str:
        return self.run_dir.name if self.run_dir else "interactive"

    @cached_property
    def spec(self) -> LoadedSpec:
        return load_spec(self.params.mapping_path)

    def source_engines(self) -> dict[str, sa.Engine]:
        """Engine per source system of the spec (systems name their params connection)."""
        return {
            system: self.connections.engine(conn) for system, conn in self.spec.spec.systems.items()
        }

    def target_engine(self) -> sa.Engine:
        return self.connections.engine("target")

    def trial_engine(self) -> sa.Engine:
        return self.connections.engine("trial_target")

    def label(self, connection: str) -> str:
        """How a connection is named in evidence: its params name and dialect, never its URL."""
        return f"{connection} ({self.connections.url(connection).get_backend_name()})"

    def earlier(self, stage: str) -> dict[str, Any]:
        """What an earlier stage of this run glued; a clear error if it has not run."""
        if self.run_dir is None:
            raise RunbookError(
                f"no run folder to read the {stage} stage from",
                hint=f"run `runbook run --env {self.env}` first, or pass run_dir",
            )
        scraps = read_scraps(self.run_dir / STAGES[stage])
        if not scraps:
            raise RunbookError(
                f"the {stage} stage has no results in {self.run_dir}",
                hint=f"run it first: runbook run --env {self.env} --run-id {self.run_id} --stages {stage}",
            )
        return scraps


def open_stage(env: str, run_dir: str = "", mode: str = "") -> StageContext:
    """The context of a stage: ``run_dir`` empty means the environment's latest run (interactive use).

    ``mode`` overrides params ``load.mode`` (``runbook sync`` runs the full-load stage incrementally).
    """
    root = find_project_root()
    params = load_params(env, project_root=root)
    folder = Path(run_dir) if run_dir else latest_run(root, env)
    if folder is not None and not folder.is_absolute():
        folder = root / folder
    from runbook_lib.ui import widgets  # ipywidgets only matter in a kernel

    context = StageContext(params, folder, mode)
    context.interactive = widgets.interactive(run_dir)
    return context
