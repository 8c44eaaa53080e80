"""Execute runbook stages with papermill into ``outputs/<env>/<run_id>/``, gated stage by stage.

The pre-flight (``preflight.prepare``: params, the spec's structure, every connection opened) runs
before a run folder is made, so bad input writes nothing. Each executed notebook is scrubbed of secrets, exported
to HTML and entered in the manifest as soon as it finishes, passed or failed; every change of the
manifest goes through ``evidence.record`` (proven intact, then sealed in the environment's
ledger). A run ends by writing its report (``index.html``). In an environment that requires
approval, the full load and the rollback do not start without one. The only module that
imports papermill.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_lib.config.connections import Connections
from runbook_lib.config.params import LoadedParams
from runbook_lib.errors import (
    ApprovalRequiredError,
    EvidenceWriteError,
    RoleRefusedError,
    RunbookError,
    failure_data,
    failure_text,
)
from runbook_lib.evidence import approvals, ledger
from runbook_lib.evidence.html import export_html
from runbook_lib.evidence.provenance import (
    code_state,
    operator_name,
    package_versions,
    who_and_where,
)
from runbook_lib.evidence.record import attach_report, change_run, keep_attempt, open_run
from runbook_lib.evidence.run_folder import (
    WRITE_ERRNOS,
    Manifest,
    check_run_id,
    new_run_id,
    runs_root,
    sha256_file,
    utc_now,
    write_failure,
    writing,
)
from runbook_lib.evidence.scraps import read_scraps
from runbook_lib.evidence.trust import Trust, anchor_for, trust_for
from runbook_lib.mapping.model import load_spec
from runbook_lib.privacy import scrub
from runbook_lib.run import lock as run_lock
from runbook_lib.run.preflight import prepare
from runbook_lib.stage_table import FAILURE, RUNBOOK_STAGES, STAGES

KERNEL = "python3"
# The kernel process's own log (its sockets at start-up, the interrupt jupyter_client sends it
# before every shutdown) is not the stage's output: what a stage prints, warns or raises reaches
# the terminal and the notebook through papermill, and a dead kernel fails the stage.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
Echo = Callable[[str], None]


@dataclass(frozen=True)
class RunOutcome:
    """Where a run's evidence is and how it ended; ``failure`` is why, as data."""

    run_id: str
    run_dir: Path
    status: str
    failed_stage: str | None = None
    failure: dict[str, Any] | None = None

    @property
    def error(self) -> str | None:
        """The failure as one line of text (``Type: message``)."""
        return failure_text(self.failure) if self.failure else None


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

    ``mode`` (``incremental`` for a sync) is passed to the full-load stage only. Every
    invocation records the params it ran with: a re-run or a resume with changed params says so.
    """
    fresh = run_id is None
    if not fresh:
        check_run_id(run_id)  # a folder name, never a path (nor another env's ledger)
    if not fresh and not (runs_root(project_root, env) / run_id / "manifest.json").is_file():
        raise RunbookError(f"no run {run_id} for env {env}", hint=f"runbook status --env {env}")
    # before the pre-flight opens connections: damaged evidence (exit 3), a busy env (exit 1)
    ledger.require_sound(runs_root(project_root, env))
    run_lock.refuse_if_busy(runs_root(project_root, env), env)
    params = prepare(env, project_root, stages)
    refuse_unlisted_operator(params)
    trust = trust_for(params)  # the signing key, before anything is written
    run_id = run_id or new_run_id()
    # one run at a time per target: held until the run is closed, however it ends
    with run_lock.hold(params, run_id=run_id, command=command, stages=stages, echo=echo):
        if "rollback" in stages and not fresh:
            _refuse_rollback_out_of_order(params, run_id)
        return _run_held(params, project_root, stages, run_id, fresh, echo, command, mode, trust)


def _run_held(
    params: LoadedParams,
    project_root: Path,
    stages: Sequence[str],
    run_id: str,
    fresh: bool,
    echo: Echo,
    command: str,
    mode: str,
    trust: Trust,
) -> RunOutcome:
    """``run``, once the lock is held: open or reopen the run folder, execute, close."""
    env = params.env
    secrets = scrub.secret_values() | trust.secrets()
    base = runs_root(project_root, env)
    used = _params_used(params, project_root)
    invocation = {
        "command": command,
        "stages": list(stages),
        "started_at": utc_now(),
        **who_and_where(params.model.operator),
        "params_sha256": used["params_sha256"],
        "mapping_spec_sha256": used["mapping_spec"]["sha256"],
    }
    run_dir = base / run_id
    if fresh:
        open_run(
            run_dir,
            ",".join(stages),
            trust=trust,
            run_id=run_id,
            env=env,
            **who_and_where(params.model.operator),
            **code_state(project_root),
            started_at=invocation["started_at"],
            finished_at=None,
            status="running",
            **used,
            versions=package_versions(),
            invocations=[invocation],
        )
    else:
        with change_run(run_dir, "reopen", ",".join(stages), trust=trust) as manifest:
            manifest.data.update(
                status="running", finished_at=None, **used, **trust.manifest_fields()
            )
            manifest.data.pop("refusal", None)
            manifest.data.setdefault("invocations", []).append(invocation)
    echo(f"run {run_id} ({env}) → {run_dir.relative_to(project_root)}")
    try:
        return _execute_stages(
            params, project_root, stages, run_dir, used, secrets, echo, mode, run_id, trust
        )
    except EvidenceWriteError as exc:
        raise _after_write_failure(exc, run_dir, env, trust) from None


def _after_write_failure(
    exc: EvidenceWriteError, run_dir: Path, env: str, trust: Trust
) -> EvidenceWriteError:
    """Evidence stopped being writable mid-run: close the run as failed if that can be recorded.

    Whether or not it can, the manifest and the ledger are as last recorded (every write is
    whole or undone), and the run resumes at its first unpassed stage once space is back.
    """
    failure = failure_data(exc)
    try:
        with change_run(run_dir, "close", "failed: evidence not writable", trust=trust) as manifest:
            manifest.data.update(status="failed", finished_at=utc_now())
            manifest.data["write_failure"] = failure
            manifest.data["invocations"][-1].update(finished_at=utc_now(), status="failed")
    except RunbookError:
        pass  # still no space: the last recorded version stands (status running, no holder)
    return EvidenceWriteError(
        exc.message,
        folder=exc.folder,
        free_bytes=exc.free_bytes,
        hint=f"free space or make {exc.folder} writable, then runbook run --env {env} "
        f"--resume {run_dir.name} (the manifest and ledger are as last recorded; the load "
        "continues from its last committed checkpoint)",
    )


def _execute_stages(
    params: LoadedParams,
    project_root: Path,
    stages: Sequence[str],
    run_dir: Path,
    used: dict[str, Any],
    secrets: frozenset[str],
    echo: Echo,
    mode: str,
    run_id: str,
    trust: Trust,
) -> RunOutcome:
    """The stages of an opened run, each recorded as it ends, then the run closed."""
    env = params.env
    status, failed, failure, refusal = "passed", None, None, None
    for index, stage in enumerate(stages, start=1):
        echo(f"[{index}/{len(stages)}] {stage} ...")
        refused = _approval_refusal(stage, params, run_dir)
        if refused is not None:
            status, failed, failure = "awaiting_approval", stage, failure_data(refused)
            refusal = {"stage": stage, "at": utc_now(), "reason": str(refused)}
            echo(f"[{index}/{len(stages)}] {stage} refused: no valid approval")
            break
        kept = keep_attempt(run_dir, stage, trust)  # a re-run never overwrites an earlier attempt
        if kept is not None and kept.get("notebook"):
            echo(f"    attempt {kept['attempt']} ({kept['status']}) kept as {kept['notebook']}")
        extra = {"mode": mode} if mode and stage == "full_load" else {}
        entry = execute_stage(stage, env, run_dir, project_root, secrets=secrets, parameters=extra)
        entry["mapping_spec_sha256"] = used["mapping_spec"]["sha256"]
        try:
            with change_run(run_dir, "stage", f"{stage} {entry['status']}", trust=trust) as m:
                m.record_stage(entry)
        except EvidenceWriteError:
            _remove_unrecorded(run_dir / entry["notebook"])  # the resumed stage writes them anew
            raise
        echo(f"[{index}/{len(stages)}] {stage} {entry['status']} in {entry['seconds']:.1f} s")
        if entry["status"] != "passed":
            status, failed, failure = "failed", stage, entry.get("failure")
            echo(f"    {entry.get('error', '')}")
            break
    if status == "passed" and "rollback" in stages:
        status = "rolled_back"  # what `runbook status` shows: its load is no longer in the target
    finished = utc_now()
    with change_run(run_dir, "close", status, trust=trust) as manifest:
        manifest.data.update(status=status, finished_at=finished, failed_stage=failed)
        if refusal is not None:
            manifest.data["refusal"] = refusal
        manifest.data["invocations"][-1].update(finished_at=finished, status=status)
        report_error = attach_report(manifest, secrets)
        if report_error:
            echo(f"    the report could not be written: {report_error}")
    return RunOutcome(run_id, run_dir, status, failed_stage=failed, failure=failure)


def _params_used(params: LoadedParams, project_root: Path) -> dict[str, Any]:
    """The params and mapping spec this invocation runs with, as the manifest records them."""
    return {
        "params_file": str(params.path.relative_to(project_root)),
        "params_sha256": sha256_file(params.path),
        "params": params.redacted(),
        "mapping_spec": {"path": str(params.model.mapping), "sha256": _spec_sha256(params)},
    }


def _spec_sha256(params: LoadedParams) -> str:
    try:
        return load_spec(params.mapping_path).sha256
    except RunbookError:  # an invalid spec fails the mapping stage, with evidence; hash its bytes
        return sha256_file(params.mapping_path)


def _refuse_rollback_out_of_order(params: LoadedParams, run_id: str) -> None:
    """Before a rollback touches anything: refused while a later run's load is in the target."""
    import sqlalchemy as sa

    from runbook_lib.load import history

    with Connections(params) as connections:
        try:
            history.refuse_out_of_order(connections.engine("target"), run_id, env=params.env)
        except sa.exc.DBAPIError:  # unreachable: the rollback stage says so, with evidence
            return


def refuse_unlisted_operator(params: LoadedParams) -> None:
    """Where params list ``roles.operators``, only they run, sync, cut over or roll back."""
    listed = params.model.roles.operators
    operator = operator_name(params.model.operator)
    if listed and operator.strip().casefold() not in {n.strip().casefold() for n in listed}:
        raise RoleRefusedError(
            f"{operator} is not an operator of env {params.env}: {params.path.name} "
            f"roles.operators names {', '.join(listed)}; nothing was written",
            hint="an operator listed in roles.operators runs it (RUNBOOK_OPERATOR or params "
            "operator says who)",
        )


def _approval_refusal(stage: str, params: LoadedParams, run_dir: Path) -> RunbookError | None:
    """Why ``stage`` may not start in this run (no or stale approval), or None."""
    action = STAGES[stage].approval
    if action is None or not params.model.requires_approval:
        return None
    try:
        approvals.check_approval(
            run_dir,
            params.env,
            _spec_sha256(params),
            action,
            operator=operator_name(params.model.operator),
            params_sha256=sha256_file(params.path),
            anchored=anchor_for(params).facts_of(run_dir.name),
        )
    except ApprovalRequiredError as exc:
        return exc
    return None


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
    reaches the terminal scrubbed too. Why a stage failed comes from the failure its kernel glued
    (``stage_table.FAILURE``), not from parsing the traceback.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    secrets = scrub.secret_values() if secrets is None else secrets
    notebook = STAGES[stage].notebook
    output = run_dir / notebook
    started_at, started = utc_now(), time.perf_counter()
    failure = None
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
            extra_arguments=KERNEL_ARGUMENTS,
            progress_bar=False,
            stdout_file=stdout,
            stderr_file=stderr,
        )
    except PapermillExecutionError as exc:
        failure = _glued_failure(output) or {
            "type": exc.ename,
            "message": str(exc.evalue),
            "hint": None,
        }
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            failure = failure_data(exc)
        else:  # papermill could not save the notebook: what it left is not evidence
            _remove_unrecorded(output)
            raise write_failure(run_dir, exc) from None
    except Exception as exc:  # noqa: BLE001 - a dead kernel or a timeout is a failed stage too
        failure = failure_data(exc)
    finally:
        stdout.flush()
        stderr.flush()
    seconds = time.perf_counter() - started
    try:
        with writing(run_dir):
            if output.is_file():
                scrub.scrub_notebook(output, secrets)
            html = export_html(output) if output.is_file() else None
    except EvidenceWriteError:
        _remove_unrecorded(output)
        raise
    entry_fields: dict[str, Any] = {
        "name": stage,
        "status": "failed" if failure else "passed",
        "started_at": started_at,
        "finished_at": utc_now(),
        "seconds": round(seconds, 2),
    }
    if failure:
        failure = {
            key: scrub.scrub_error(value, secrets)[:4000] if isinstance(value, str) else value
            for key, value in failure.items()
        }
        entry_fields["failure"] = failure
        entry_fields["error"] = failure_text(failure)
    if not output.is_file():
        return {**entry_fields, "notebook": notebook}
    return Manifest(run_dir, {}).stage_entry(output, html, **entry_fields)


def _remove_unrecorded(notebook: Path) -> None:
    """A stage's files the manifest never listed, cut short by a failed write: not kept."""
    notebook.unlink(missing_ok=True)
    notebook.with_suffix(".html").unlink(missing_ok=True)


def _glued_failure(output: Path) -> dict[str, Any] | None:
    """The failure the stage's kernel glued, if it got that far."""
    try:
        return read_scraps(output).get(FAILURE) if output.is_file() else None
    except Exception:  # noqa: BLE001 - an unreadable notebook: fall back to papermill's account
        return None


def quiet_papermill_logs() -> None:
    """Keep papermill's warnings; the kernel's own output reaches the terminal via stdout_file."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
