"""Execute runbook stages with papermill into ``outputs/<env>/<run_id>/``, gated stage by stage.

Params are validated and every connection's environment variable checked before a run folder is
made, so a bad params file writes nothing. Each executed notebook is scrubbed of secrets, exported
to HTML and entered in the manifest as soon as it finishes, passed or failed, and every manifest
version is sealed in the environment's ledger. A run ends by writing its report (``index.html``).
Re-running stages into a run, or rolling it back, first proves its recorded evidence unchanged.
In an environment that requires approval, the full load and the rollback do not start without one.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook_lib.config.connections import Connections
from runbook_lib.config.params import LoadedParams, load_params
from runbook_lib.errors import RunbookError
from runbook_lib.evidence import approvals, index_page, ledger
from runbook_lib.evidence.run_folder import (
    Manifest,
    code_state,
    export_html,
    new_run_id,
    package_versions,
    runs_root,
    sha256_file,
    utc_now,
    who_and_where,
)
from runbook_lib.evidence.verify import require_intact
from runbook_lib.privacy import scrub
from runbook_lib.run.context import RUNBOOK_STAGES, STAGES
from runbook_lib.spec.model import load_spec

KERNEL = "python3"
Echo = Callable[[str], None]


@dataclass(frozen=True)
class RunOutcome:
    """Where a run's evidence is and how it ended."""

    run_id: str
    run_dir: Path
    status: str
    failed_stage: str | None = None
    error: str | None = None


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


def stages_to_resume(run_dir: Path) -> list[str]:
    """The stages a failed, refused or killed run still owes: the first unfinished one and after."""
    if not (run_dir / "manifest.json").is_file():
        raise RunbookError(f"no run folder {run_dir.name}", hint="runbook status lists the runs")
    done = {
        s["name"]
        for s in Manifest.load(run_dir).data.get("stages", [])
        if s.get("status") == "passed"
    }
    remaining = list(RUNBOOK_STAGES)
    while remaining and remaining[0] in done:
        remaining.pop(0)
    if not remaining:
        raise RunbookError(f"run {run_dir.name} has nothing to resume: every stage passed")
    return remaining


def prepare(env: str, project_root: Path) -> LoadedParams:
    """Validate params and resolve every connection before anything is written."""
    params = load_params(env, project_root=project_root)
    Connections(params).check_resolvable()
    if not params.mapping_path.is_file():
        raise RunbookError(f"{params.path.name}: field 'mapping': no file {params.model.mapping}")
    return params


APPROVAL_ACTIONS = {"full_load": "full load", "rollback": "rollback"}


def run(
    env: str,
    project_root: Path,
    *,
    stages: Sequence[str] = RUNBOOK_STAGES,
    run_id: str | None = None,
    echo: Echo = print,
    command: str = "run",
    mode: str = "",
) -> RunOutcome:
    """Run ``stages`` for ``env``; a new run unless ``run_id`` names an existing one.

    ``mode`` (``incremental`` for a sync) is passed to the full-load stage only.
    """
    params = prepare(env, project_root)
    secrets = scrub.secret_values()
    base = runs_root(project_root, env)
    invocation = {
        "command": command,
        "stages": list(stages),
        "started_at": utc_now(),
        **who_and_where(params.model.operator),
    }
    if run_id is None:
        ledger.require_sound(base)
        run_id = new_run_id()
        run_dir = base / run_id
        manifest = Manifest.create(
            run_dir,
            run_id=run_id,
            env=env,
            **who_and_where(params.model.operator),
            **code_state(project_root),
            started_at=invocation["started_at"],
            finished_at=None,
            status="running",
            params_file=str(params.path.relative_to(project_root)),
            params_sha256=sha256_file(params.path),
            params=params.redacted(),
            mapping_spec=_spec_fact(params),
            versions=package_versions(),
            invocations=[invocation],
        )
        ledger.seal(manifest, "open", ",".join(stages), opening=True)
    else:
        run_dir = base / run_id
        if not (run_dir / "manifest.json").is_file():
            raise RunbookError(f"no run {run_id} for env {env}", hint=f"runbook status --env {env}")
        require_intact(run_dir)
        manifest = Manifest.load(run_dir)
        manifest.data.update(status="running", finished_at=None, mapping_spec=_spec_fact(params))
        manifest.data.pop("refusal", None)
        manifest.data.setdefault("invocations", []).append(invocation)
        ledger.seal(manifest, "reopen", ",".join(stages))
    echo(f"run {run_id} ({env}) → {run_dir.relative_to(project_root)}")
    status, failed, error = "passed", None, None
    for index, stage in enumerate(stages, start=1):
        echo(f"[{index}/{len(stages)}] {stage} ...")
        refusal = _approval_refusal(stage, params, run_dir)
        if refusal is not None:
            status, failed, error = "awaiting_approval", stage, refusal
            manifest.data["refusal"] = {"stage": stage, "at": utc_now(), "reason": refusal}
            echo(f"[{index}/{len(stages)}] {stage} refused: no valid approval")
            break
        extra = {"mode": mode} if mode and stage == "full_load" else {}
        entry = execute_stage(stage, env, run_dir, project_root, secrets=secrets, parameters=extra)
        entry["mapping_spec_sha256"] = manifest.data["mapping_spec"]["sha256"]
        manifest.record_stage(entry)
        ledger.seal(manifest, "stage", f"{stage} {entry['status']}")
        echo(f"[{index}/{len(stages)}] {stage} {entry['status']} in {entry['seconds']:.1f} s")
        if entry["status"] != "passed":
            status, failed, error = "failed", stage, entry.get("error", "")
            echo(f"    {error}")
            break
    finished = utc_now()
    manifest.data.update(status=status, finished_at=finished, failed_stage=failed)
    invocation.update(finished_at=finished, status=status)
    _attach_report(manifest, echo, secrets)
    ledger.seal(manifest, "close", status)
    return RunOutcome(run_id, run_dir, status, failed_stage=failed, error=error)


def _spec_fact(params: LoadedParams) -> dict:
    """The mapping spec as evidence cites it: its path and its sha256 (as the mapping stage has it)."""
    return {"path": str(params.model.mapping), "sha256": _spec_sha256(params)}


def _spec_sha256(params: LoadedParams) -> str:
    try:
        return load_spec(params.mapping_path).sha256
    except RunbookError:  # an invalid spec fails the mapping stage, with evidence; hash its bytes
        return sha256_file(params.mapping_path)


def _approval_refusal(stage: str, params: LoadedParams, run_dir: Path) -> str | None:
    """Why ``stage`` may not start in this run (no or stale approval), or None."""
    if stage not in APPROVAL_ACTIONS or not params.model.requires_approval:
        return None
    try:
        approvals.check_approval(run_dir, params.env, _spec_sha256(params), APPROVAL_ACTIONS[stage])
    except approvals.ApprovalRequiredError as exc:
        return str(exc)
    return None


def _attach_report(manifest: Manifest, echo: Echo, secrets: frozenset[str]) -> None:
    """Write ``index.html``; a report that cannot be built must not cost the run its record."""
    try:
        index_page.attach_report(manifest)
    except Exception as exc:  # noqa: BLE001 - recorded in the manifest and shown, never swallowed
        (manifest.run_dir / index_page.REPORT).unlink(missing_ok=True)
        manifest.data.pop("report", None)
        manifest.data["report_error"] = scrub.scrub_error(f"{type(exc).__name__}: {exc}", secrets)
        echo(f"    the report could not be written: {manifest.data['report_error']}")
    else:
        manifest.data.pop("report_error", None)


def execute_stage(
    stage: str,
    env: str,
    run_dir: Path,
    project_root: Path,
    *,
    secrets: frozenset[str] | None = None,
    parameters: dict | None = None,
) -> dict:
    """Run one notebook with papermill; returns its manifest entry (never raises on a stage failure).

    The executed notebook is scrubbed of secrets before its HTML is made; what the kernel prints
    reaches the terminal scrubbed too.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    secrets = scrub.secret_values() if secrets is None else secrets
    notebook = STAGES[stage]
    output = run_dir / notebook
    started_at, started = utc_now(), time.perf_counter()
    error = None
    stdout = scrub.ScrubbingWriter(sys.stdout, secrets)
    stderr = scrub.ScrubbingWriter(sys.stderr, secrets)
    try:
        papermill.execute_notebook(
            str(project_root / "notebooks" / notebook),
            str(output),
            parameters={
                "env": env,
                "run_dir": str(run_dir.relative_to(project_root)),
                **(parameters or {}),
            },
            cwd=str(project_root),
            kernel_name=KERNEL,
            progress_bar=False,
            stdout_file=stdout,
            stderr_file=stderr,
        )
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}".strip()
    except Exception as exc:  # noqa: BLE001 - a dead kernel or a timeout is a failed stage too
        error = f"{type(exc).__name__}: {exc}".strip()
    finally:
        stdout.flush()
        stderr.flush()
    seconds = time.perf_counter() - started
    if output.is_file():
        scrub.scrub_notebook(output, secrets)
    html = export_html(output) if output.is_file() else None
    entry_fields = {
        "name": stage,
        "status": "failed" if error else "passed",
        "started_at": started_at,
        "finished_at": utc_now(),
        "seconds": round(seconds, 2),
    }
    if error:
        entry_fields["error"] = scrub.scrub_error(error, secrets)[:4000]
    if not output.is_file():
        return {**entry_fields, "notebook": notebook}
    return Manifest(run_dir, {}).stage_entry(output, html, **entry_fields)


def quiet_papermill_logs() -> None:
    """Keep papermill's warnings; the kernel's own output reaches the terminal via stdout_file."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
