"""Approvals: the full load and the rollback of a prod run wait for a recorded approval.

In an environment whose params say ``requires_approval: true`` both refuse to start without an
approval record of that run.

``runbook approve --env ENV --run-id RUN --operator NAME`` writes ``approval.json`` into the run
folder: who approved, when, from which account and host, bound to the sha256 of the run's executed
trial notebook (the evidence the approver read), of the mapping spec the trial ran with and of the
params file (its gates, connections, approvals). A re-run trial, a changed spec or changed params
no longer match it, so the load refuses again until someone approves the new evidence. The record
is an artifact of the run (hashed in the manifest, sealed in the ledger), so editing it fails
``runbook verify`` and the gate.

Both sides read the target's anchor (``evidence.anchor``), not only the files: only a trial the
target recorded as passed, with that very notebook, can be approved, and the gate accepts only
the approval record and trial the target anchored (a forged ``approval.json`` or trial notebook
re-sealed without database access is refused).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from runbook_lib.errors import ApprovalRequiredError, RunbookError
from runbook_lib.evidence.provenance import os_user
from runbook_lib.evidence.record import change_run
from runbook_lib.evidence.run_folder import MANIFEST, Manifest, runs_root, sha256_file, utc_now
from runbook_lib.evidence.scraps import read_scraps
from runbook_lib.evidence.verify import require_intact
from runbook_lib.stage_table import STAGES

APPROVAL = "approval.json"
TRIAL_NOTEBOOK = STAGES["trial"].notebook


@dataclass(frozen=True)
class Approval:
    """One approval of one run's trial evidence and mapping spec."""

    run_id: str
    env: str
    approved_by: str
    approved_at: str
    os_user: str
    host: str
    trial_notebook: str
    trial_sha256: str
    mapping_spec: str
    mapping_spec_sha256: str
    # older records (before the binding to params) have none: the gate refuses them
    params_file: str | None = None
    params_sha256: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        return (
            f"run {self.run_id} ({self.env}) approved by {self.approved_by} at {self.approved_at}: "
            f"trial {self.trial_sha256[:12]}, mapping spec {self.mapping_spec_sha256[:12]}, "
            f"params {str(self.params_sha256)[:12]}"
        )


def approve(env: str, run_id: str, operator: str, project_root: Path) -> Approval:
    """Record ``operator``'s approval of run ``run_id``'s passed trial and its mapping spec."""
    import platform

    from runbook_lib.config.params import load_params
    from runbook_lib.evidence.trust import trust_for
    from runbook_lib.mapping.model import load_spec

    if not operator.strip():
        raise RunbookError("an approval needs the approver's name", hint="--operator NAME")
    params = load_params(env, project_root=project_root)
    trust = trust_for(params)
    run_dir = runs_root(project_root, env) / run_id
    if not (run_dir / MANIFEST).is_file():
        raise RunbookError(f"no run {run_id} for env {env}", hint=f"runbook status --env {env}")
    require_intact(run_dir)  # before reading anything from it
    manifest = Manifest.load(run_dir)
    trial = next((s for s in manifest.data["stages"] if s["name"] == "trial"), None)
    if trial is None or trial.get("status") != "passed":
        raise ApprovalRequiredError(
            f"run {run_id} has no passed trial to approve",
            hint=f"runbook run --env {env} --run-id {run_id} --stages mapping,trial",
        )
    # the target's record, not the files: only a trial it anchored as passed can be approved
    trust.anchor.vouch_for_stage(run_dir, "trial", TRIAL_NOTEBOOK)
    checked = read_scraps(run_dir / STAGES["mapping"].notebook).get("mapping_check", {})
    spec = load_spec(params.mapping_path)
    if checked.get("spec_sha256") != spec.sha256:
        raise ApprovalRequiredError(
            f"the mapping spec changed since run {run_id}'s mapping stage checked it "
            f"({str(checked.get('spec_sha256'))[:12]} → {spec.sha256[:12]}): the trial did not "
            "use this spec",
            hint=f"runbook run --env {env} --run-id {run_id} --stages mapping,trial, then approve",
        )
    approval = Approval(
        run_id=run_id,
        env=env,
        approved_by=operator.strip(),
        approved_at=utc_now(),
        os_user=os_user(),
        host=platform.node(),
        trial_notebook=TRIAL_NOTEBOOK,
        trial_sha256=trial["sha256_notebook"],
        mapping_spec=str(params.model.mapping),
        mapping_spec_sha256=spec.sha256,
        params_file=str(params.path.relative_to(params.project_root)),
        params_sha256=sha256_file(params.path),
    )
    with change_run(run_dir, "approve", approval.approved_by, report=True, trust=trust) as manifest:
        path = run_dir / APPROVAL
        path.write_text(
            json.dumps(approval.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8"
        )
        manifest.record_artifact(
            "approval",
            path,
            approved_by=approval.approved_by,
            approved_at=approval.approved_at,
            trial_sha256=approval.trial_sha256,
            mapping_spec_sha256=approval.mapping_spec_sha256,
            params_sha256=approval.params_sha256,
        )
    return approval


def check_approval(
    run_dir: Path,
    env: str,
    spec_sha256: str,
    action: str,
    *,
    params_sha256: str,
    anchored: dict | None,
) -> Approval:
    """The run's approval if it still holds; else raise.

    It holds for the run's trial evidence, ``spec_sha256`` and ``params_sha256`` (the params file
    the stage runs with), and only as the target anchored it: ``anchored`` is the run's newest
    anchored facts (``Anchor.facts_of``), whose approval and trial hashes must be these.
    """
    run_id = run_dir.name
    again = (
        f"review {run_dir.name}/02_trial.html, then: "
        f"runbook approve --env {env} --run-id {run_id} --operator NAME"
    )
    path = run_dir / APPROVAL
    if not path.is_file():
        raise ApprovalRequiredError(
            f"env {env} requires an approval before the {action}: run {run_id} has none, "
            "so nothing was done",
            hint=again,
        )
    manifest = Manifest.load(run_dir)
    recorded = manifest.data.get("approval") or {}
    if recorded.get("sha256") != sha256_file(path):
        raise ApprovalRequiredError(
            f"the approval record of run {run_id} is not the one the manifest recorded "
            f"(edited?): the {action} will not start",
            hint=f"runbook verify {run_dir}",
        )
    if anchored is None or anchored.get("approval_sha256") != recorded.get("sha256"):
        raise ApprovalRequiredError(
            f"the approval record of run {run_id} is not the one the target anchored "
            f"(forged, or recorded without the target): the {action} will not start",
            hint=f"runbook verify --env {env} --against-target; then {again}",
        )
    approval = Approval(**json.loads(path.read_text(encoding="utf-8")))
    if approval.run_id != run_id or approval.env != env:
        raise ApprovalRequiredError(
            f"the approval in run {run_id} was given for run {approval.run_id} ({approval.env})",
            hint=again,
        )
    trial = run_dir / approval.trial_notebook
    current = sha256_file(trial) if trial.is_file() else "missing"
    if current != approval.trial_sha256:
        raise ApprovalRequiredError(
            f"the trial evidence of run {run_id} changed since {approval.approved_by} approved it "
            f"({approval.trial_sha256[:12]} → {current[:12]}): the {action} will not start",
            hint=again,
        )
    anchored_trial = (anchored.get("stages", {}).get("trial") or {}).get("sha256_notebook")
    if anchored_trial != approval.trial_sha256:
        raise ApprovalRequiredError(
            f"the trial {approval.approved_by} approved in run {run_id} is not the trial the "
            f"target anchored ({approval.trial_sha256[:12]} → {str(anchored_trial)[:12]}): the "
            f"{action} will not start",
            hint=again,
        )
    if spec_sha256 != approval.mapping_spec_sha256:
        raise ApprovalRequiredError(
            f"the mapping spec changed since {approval.approved_by} approved run {run_id} "
            f"({approval.mapping_spec_sha256[:12]} → {spec_sha256[:12]}): the {action} will not "
            "start",
            hint=f"re-run mapping and trial with this spec, then {again}",
        )
    if params_sha256 != approval.params_sha256:
        raise ApprovalRequiredError(
            f"the params changed since {approval.approved_by} approved run {run_id} "
            f"({str(approval.params_sha256)[:12]} → {params_sha256[:12]}): the approval is "
            f"outdated and the {action} will not start",
            hint=f"review the params (gates, connections) and the trial, then {again}",
        )
    return approval
