"""What a stage runs with: validated params, engines, the mapping spec and the run folder.

A notebook's parameters are only ``env`` and ``run_dir`` (papermill writes parameter values into
the output verbatim, so no URL or secret may be one); everything else is resolved here. A stage
reads what earlier stages glued and glues its own results only as ``stage_table`` declares.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from runbook_lib.config.connections import Connections
from runbook_lib.config.params import LoadedParams, find_project_root, load_params
from runbook_lib.errors import RunbookError
from runbook_lib.evidence import scraps
from runbook_lib.evidence.anchor import Anchor
from runbook_lib.evidence.run_folder import latest_run
from runbook_lib.mapping.compiled import CompiledSpec, compile_spec
from runbook_lib.mapping.model import LoadedSpec, load_spec
from runbook_lib.privacy.masking import EvidenceMasker
from runbook_lib.stage_table import STAGES, Stage

_MISSING: Any = object()


class StageContext:
    """One stage's view of the run."""

    def __init__(
        self,
        params: LoadedParams,
        run_dir: Path | None,
        mode: str = "",
        *,
        stage: str | None = None,
    ) -> None:
        self.params = params
        self.run_dir = run_dir
        self.connections = Connections(params)
        if mode not in ("", "full", "incremental"):
            raise RunbookError(f"unknown load mode {mode!r}", hint="use full or incremental")
        self.load_mode = mode or params.model.load.mode
        self.stage: Stage | None = STAGES[stage] if stage else None
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

    @cached_property
    def compiled(self) -> CompiledSpec:
        """The spec compiled once: what assessment, preview, loader and validation execute."""
        return compile_spec(self.spec)

    def source_engines(self) -> dict[str, sa.Engine]:
        """Engine per source system of the spec (systems name their params connection).

        A SQLite source that is not there is an error, never an empty file made by opening it.
        """
        return {
            system: self.connections.engine(conn, must_exist=True)
            for system, conn in self.spec.spec.systems.items()
        }

    def target_engine(self) -> sa.Engine:
        return self.connections.engine("target")

    def trial_engine(self) -> sa.Engine:
        return self.connections.engine("trial_target")

    def anchor(self) -> Anchor:
        """The evidence ledger's anchor in the target: what gates trust beyond the files."""
        return Anchor(self.target_engine(), self.env, self.label("target"))

    def label(self, connection: str) -> str:
        """How a connection is named in evidence: its params name and dialect, never its URL."""
        return f"{connection} ({self.connections.url(connection).get_backend_name()})"

    def earlier(self, stage: str) -> dict[str, Any]:
        """Everything an earlier stage of this run glued; a clear error if it has not run."""
        if self.run_dir is None:
            raise RunbookError(
                f"no run folder to read the {stage} stage from",
                hint=f"run `runbook run --env {self.env}` first, or pass run_dir",
            )
        found = scraps.read_scraps(self.run_dir / STAGES[stage].notebook)
        if not found:
            raise RunbookError(
                f"the {stage} stage has no results in {self.run_dir}",
                hint=f"run it first: runbook run --env {self.env} --run-id {self.run_id} --stages {stage}",
            )
        return found

    def read(self, stage: str, scrap: str, default: Any = _MISSING) -> Any:
        """One result an earlier stage glued, as this stage's row of the stage table declares.

        ``default`` is returned when the run folder or the scrap is missing (optional inputs, such
        as the assessment's classification); without it a missing result is an error.
        """
        if self.stage is not None and (stage, scrap) not in self.stage.reads:
            raise RunbookError(
                f"stage {self.stage.name} does not declare that it reads {stage}.{scrap}",
                hint="add it to the stage's reads in runbook_lib/stage_table.py",
            )
        if default is not _MISSING and self.run_dir is None:
            return default
        try:
            found = self.earlier(stage)
        except RunbookError:
            if default is _MISSING:
                raise
            return default
        if scrap not in found:
            if default is not _MISSING:
                return default
            raise RunbookError(f"the {stage} stage of run {self.run_id} glued no {scrap!r}")
        return found[scrap]

    def glue(self, name: str, value: Any) -> None:
        """Record a result in this stage's notebook (only a name its stage table row declares)."""
        if self.stage is not None and name not in self.stage.glues:
            raise RunbookError(
                f"stage {self.stage.name} does not declare that it glues {name!r} "
                f"(it glues {', '.join(self.stage.glues)})",
                hint="add it to the stage's glues in runbook_lib/stage_table.py",
            )
        scraps.glue(name, value)

    @cached_property
    def masker(self) -> EvidenceMasker:
        """How values are shown in this stage's evidence: by the assessment's glued classification."""
        classification = None
        if self.stage is None or ("assessment", "classification") in self.stage.reads:
            classification = self.read("assessment", "classification", default=None)
        return EvidenceMasker.from_classification(classification, self.spec)


def open_stage(stage: str, env: str, run_dir: str = "", mode: str = "") -> StageContext:
    """The context of ``stage``; ``run_dir`` empty means the env's latest run (interactive use).

    ``mode`` overrides params ``load.mode`` (``runbook sync`` runs the full-load stage
    incrementally). Inside a kernel it also scrubs tracebacks and records failures as data.
    """
    from runbook_lib.run.kernel import prepare_kernel
    from runbook_lib.ui import widgets  # ipywidgets only matter in a kernel

    prepare_kernel()
    root = find_project_root()
    params = load_params(env, project_root=root)
    folder = Path(run_dir) if run_dir else latest_run(root, env)
    if folder is not None and not folder.is_absolute():
        folder = root / folder
    context = StageContext(params, folder, mode, stage=stage)
    context.interactive = widgets.interactive(run_dir)
    return context
