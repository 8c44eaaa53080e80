"""Execute runbook stages with papermill into ``outputs/<env>/<run_id>/``, gated stage by stage.

Params are validated and every connection's environment variable checked before a run folder is
made, so a bad params file writes nothing. Each executed notebook gets its HTML export and its
entry in the manifest as soon as it finishes, passed or failed.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook_lib.connections import Connections, redact_text
from runbook_lib.context import RUNBOOK_STAGES, STAGES
from runbook_lib.errors import RunbookError
from runbook_lib.evidence import (
    Manifest,
    export_html,
    git_state,
    new_run_id,
    operator_name,
    package_versions,
    runs_root,
    utc_now,
)
from runbook_lib.params import LoadedParams, load_params

KERNEL = "python3"
Echo = Callable[[str], None]


@dataclass(frozen=True)
class RunOutcome:
    """Where a run's evidence is and how it ended."""

    run_id: str
    run_dir: Path
    status: str
    failed_stage: str | None = None


def parse_stages(text: str | None, default: Sequence[str] = RUNBOOK_STAGES) -> list[str]:
    """``"trial,full_load"`` → stage names in runbook order; unknown names are an error."""
    if not text:
        return list(default)
    wanted = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in STAGES]
    if unknown:
        raise RunbookError(
            f"unknown stage(s) {', '.join(unknown)}", hint=f"stages: {', '.join(STAGES)}"
        )
    return [name for name in STAGES if name in wanted]


def prepare(env: str, project_root: Path) -> LoadedParams:
    """Validate params and resolve every connection before anything is written."""
    params = load_params(env, project_root=project_root)
    Connections(params).check_resolvable()
    if not params.mapping_path.is_file():
        raise RunbookError(f"{params.path.name}: field 'mapping': no file {params.model.mapping}")
    return params


def run(
    env: str,
    project_root: Path,
    *,
    stages: Sequence[str] = RUNBOOK_STAGES,
    run_id: str | None = None,
    echo: Echo = print,
) -> RunOutcome:
    """Run ``stages`` for ``env``; a new run unless ``run_id`` names an existing one."""
    params = prepare(env, project_root)
    base = runs_root(project_root, env)
    if run_id is None:
        run_id = new_run_id()
        run_dir = base / run_id
        manifest = Manifest.create(
            run_dir,
            run_id=run_id,
            env=env,
            operator=operator_name(params.model.operator),
            host=platform.node(),
            **git_state(project_root),
            started_at=utc_now(),
            finished_at=None,
            status="running",
            params_file=str(params.path.relative_to(project_root)),
            params=params.redacted(),
            versions=package_versions(),
        )
    else:
        run_dir = base / run_id
        if not (run_dir / "manifest.json").is_file():
            raise RunbookError(f"no run {run_id} for env {env}", hint=f"runbook status --env {env}")
        manifest = Manifest.load(run_dir)
        manifest.data.update(status="running", finished_at=None)
        manifest.save()
    echo(f"run {run_id} ({env}) → {run_dir.relative_to(project_root)}")
    failed = None
    for index, stage in enumerate(stages, start=1):
        echo(f"[{index}/{len(stages)}] {stage} ...")
        entry = execute_stage(stage, env, run_dir, project_root)
        manifest.record_stage(entry)
        echo(f"[{index}/{len(stages)}] {stage} {entry['status']} in {entry['seconds']:.1f} s")
        if entry["status"] != "passed":
            failed = stage
            echo(f"    {entry.get('error', '')}")
            break
    status = "failed" if failed else "passed"
    manifest.data.update(status=status, finished_at=utc_now(), failed_stage=failed)
    manifest.save()
    return RunOutcome(run_id=run_id, run_dir=run_dir, status=status, failed_stage=failed)


def execute_stage(stage: str, env: str, run_dir: Path, project_root: Path) -> dict:
    """Run one notebook with papermill; returns its manifest entry (never raises on a stage failure)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = STAGES[stage]
    output = run_dir / notebook
    started_at, started = utc_now(), time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(project_root / "notebooks" / notebook),
            str(output),
            parameters={"env": env, "run_dir": str(run_dir.relative_to(project_root))},
            cwd=str(project_root),
            kernel_name=KERNEL,
            progress_bar=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
        )
    except PapermillExecutionError as exc:
        error = redact_text(f"{exc.ename}: {exc.evalue}".strip())
    seconds = time.perf_counter() - started
    html = export_html(output) if output.is_file() else None
    entry_fields = {
        "name": stage,
        "status": "failed" if error else "passed",
        "started_at": started_at,
        "finished_at": utc_now(),
        "seconds": round(seconds, 2),
    }
    if error:
        entry_fields["error"] = error[:4000]
    if not output.is_file():
        return {**entry_fields, "notebook": notebook}
    return Manifest(run_dir, {}).stage_entry(output, html, **entry_fields)


def quiet_papermill_logs() -> None:
    """Keep papermill's warnings; the kernel's own output reaches the terminal via stdout_file."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
