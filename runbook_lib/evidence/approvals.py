"""Approvals: the full load and the rollback of a prod run wait for a recorded approval.

In an environment whose params say ``requires_approval: true`` both refuse to start without an
approval record of that run.

``runbook approve --env ENV --run-id RUN --operator NAME`` writes ``approval.json`` into the run
folder: who approved, when, from which account and host, bound to the sha256 of the run's executed
trial notebook (the evidence the approver read) and of the mapping spec the trial ran with. A
re-run trial or a changed spec no longer matches it, so the load refuses again until someone
approves the new evidence. The record is an artifact of the run (hashed in the manifest, sealed
in the ledger), so editing it fails ``runbook verify`` and the gate.
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

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        return (
            f"run {self.run_id} ({self.env}) approved by {self.approved_by} at {self.approved_at}: "
            f"trial {self.trial_sha256[:12]}, mapping spec {self.mapping_spec_sha256[:12]}"
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
        )
    return approval


def check_approval(run_dir: Path, env: str, spec_sha256: str, action: str) -> Approval:
    """The run's approval if it still holds for its trial evidence and ``spec_sha256``; else raise."""
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
    if spec_sha256 != approval.mapping_spec_sha256:
        raise ApprovalRequiredError(
            f"the mapping spec changed since {approval.approved_by} approved run {run_id} "
            f"({approval.mapping_spec_sha256[:12]} → {spec_sha256[:12]}): the {action} will not "
            "start",
            hint=f"re-run mapping and trial with this spec, then {again}",
        )
    return approval
