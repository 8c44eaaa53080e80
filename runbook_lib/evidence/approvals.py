"""Approvals: the full load, the rollback and the cut-over of a prod run wait for a recorded one.

In an environment whose params say ``requires_approval: true`` they refuse to start without an
approval record of that run.

``runbook approve --env ENV --run-id RUN --operator NAME`` writes ``approval.json`` into the run
folder: who approved, when, from which account and host, bound to the sha256 of the run's executed
trial notebook (the evidence the approver read), of the mapping spec the trial ran with and of the
params file (its gates, connections, approvals). A re-run trial, a changed spec or changed params
no longer match it, so the load refuses again until someone approves the new evidence.
``--for cut-over`` writes ``approval-cutover.json`` the same way, bound to the passed
validation's notebook. The record is an artifact of the run (hashed in the manifest, sealed in the
ledger), so editing it fails ``runbook verify`` and the gate.

Both sides read the target's anchor (``evidence.anchor``), not only the files: only evidence the
target recorded as passed, with that very notebook, can be approved, and the gate accepts only
the approval record and evidence the target anchored (a forged ``approval.json`` or notebook
re-sealed without database access is refused).

Four eyes: nobody who operated a stage of the run may approve it, nor start an approved stage
they approved themselves; where params list ``roles.approvers`` only those may approve. Names are
as recorded (params ``operator``, ``RUNBOOK_OPERATOR`` or the OS account): the toolkit can tell
names apart, not prove who typed them.
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


@dataclass(frozen=True)
class Approvable:
    """What one kind of approval covers: the stage evidence it is bound to, where it is kept."""

    covers: tuple[str, ...]  # the actions (stage table ``approval``) it allows
    evidence_stage: str  # the stage whose executed notebook the approver read
    file: str
    manifest_role: str

    @property
    def evidence_notebook(self) -> str:
        return STAGES[self.evidence_stage].notebook


# The trial's evidence opens the full load and the rollback; the validation's opens the cut-over.
APPROVALS = {
    "trial": Approvable(("full load", "rollback"), "trial", APPROVAL, "approval"),
    "cut-over": Approvable(
        ("cut-over",), "validation", "approval-cutover.json", "approval_cutover"
    ),
}


def approvable_for(action: str) -> tuple[str, Approvable]:
    """(name, kind) of the approval that covers ``action``."""
    return next((name, a) for name, a in APPROVALS.items() if action in a.covers)


@dataclass(frozen=True)
class Approval:
    """One approval of one run's stage evidence (trial or validation) and mapping spec."""

    run_id: str
    env: str
    approves: str  # a key of APPROVALS: trial (full load, rollback) or cut-over
    approved_by: str
    approved_at: str
    os_user: str
    host: str
    evidence_notebook: str
    evidence_sha256: str
    mapping_spec: str
    mapping_spec_sha256: str
    # older records (before the binding to params) have none: the gate refuses them
    params_file: str | None = None
    params_sha256: str | None = None
    run_operators: tuple[str, ...] = ()  # who ran the run's stages: never its approver

    def to_dict(self) -> dict:
        data = asdict(self)
        data["run_operators"] = list(self.run_operators)
        return data

    def render(self) -> str:
        return (
            f"run {self.run_id} ({self.env}) {self.approves} approved by {self.approved_by} at "
            f"{self.approved_at}: {self.evidence_notebook} {self.evidence_sha256[:12]}, "
            f"mapping spec {self.mapping_spec_sha256[:12]}, params {str(self.params_sha256)[:12]}"
        )


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def refuse_own_approval(
    approver: str, operators: list[str], roles, *, env: str, run_id: str
) -> None:
    """Four eyes: the approver is named in ``roles.approvers`` (when listed) and ran nothing."""
    if roles.approvers and not any(_same_person(approver, a) for a in roles.approvers):
        raise ApprovalRequiredError(
            f"{approver} may not approve in env {env}: params roles.approvers names "
            f"{', '.join(roles.approvers)}; nothing was recorded",
            hint="an approver listed in roles.approvers approves",
        )
    if any(_same_person(approver, operator) for operator in operators):
        raise ApprovalRequiredError(
            f"{approver} operated run {run_id} and may not approve it: env {env} requires "
            "approval by someone other than the run's operator (four eyes); nothing was recorded",
            hint="another approver reviews the evidence and approves",
        )


def run_operators(manifest: Manifest) -> list[str]:
    """Everyone recorded as operating a stage of the run (each invocation's operator)."""
    found = [manifest.data.get("operator") or ""]
    found += [i.get("operator") or "" for i in manifest.data.get("invocations", [])]
    return sorted({name for name in found if name.strip()})


def approve(
    env: str, run_id: str, operator: str, project_root: Path, *, approves: str = "trial"
) -> Approval:
    """Record ``operator``'s approval of run ``run_id``'s passed ``approves`` evidence and spec.

    ``approves`` is ``trial`` (opens the full load and the rollback) or ``cut-over`` (bound to
    the passed validation's notebook). In an env that requires approval, the approver must not
    be one of the run's operators and must be in ``roles.approvers`` when params list any.
    """
    import platform

    from runbook_lib.config.params import load_params
    from runbook_lib.evidence.trust import trust_for
    from runbook_lib.mapping.model import load_spec

    if not operator.strip():
        raise RunbookError("an approval needs the approver's name", hint="--operator NAME")
    kind = APPROVALS.get(approves)
    if kind is None:
        raise RunbookError(
            f"approvals are for {', '.join(APPROVALS)}, not {approves!r}",
            hint="runbook approve ... --for trial (the default) or --for cut-over",
        )
    params = load_params(env, project_root=project_root)
    trust = trust_for(params)
    run_dir = runs_root(project_root, env) / run_id
    if not (run_dir / MANIFEST).is_file():
        raise RunbookError(f"no run {run_id} for env {env}", hint=f"runbook status --env {env}")
    require_intact(run_dir)  # before reading anything from it
    manifest = Manifest.load(run_dir)
    operators = run_operators(manifest)
    if params.model.requires_approval:
        refuse_own_approval(operator, operators, params.model.roles, env=env, run_id=run_id)
    evidence = next((s for s in manifest.data["stages"] if s["name"] == kind.evidence_stage), None)
    if evidence is None or evidence.get("status") != "passed":
        raise ApprovalRequiredError(
            f"run {run_id} has no passed {kind.evidence_stage} to approve",
            hint=f"runbook run --env {env} --run-id {run_id} --stages {kind.evidence_stage}",
        )
    # the target's record, not the files: only evidence it anchored as passed can be approved
    trust.anchor.vouch_for_stage(run_dir, kind.evidence_stage, kind.evidence_notebook)
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
        approves=approves,
        approved_by=operator.strip(),
        approved_at=utc_now(),
        os_user=os_user(),
        host=platform.node(),
        evidence_notebook=kind.evidence_notebook,
        evidence_sha256=evidence["sha256_notebook"],
        mapping_spec=str(params.model.mapping),
        mapping_spec_sha256=spec.sha256,
        params_file=str(params.path.relative_to(params.project_root)),
        params_sha256=sha256_file(params.path),
        run_operators=tuple(operators),
    )
    what = f"{approves} {approval.approved_by}"
    with change_run(run_dir, "approve", what, report=True, trust=trust) as manifest:
        path = run_dir / kind.file
        path.write_text(
            json.dumps(approval.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8"
        )
        manifest.record_artifact(
            kind.manifest_role,
            path,
            approves=approves,
            approved_by=approval.approved_by,
            approved_at=approval.approved_at,
            evidence_notebook=approval.evidence_notebook,
            evidence_sha256=approval.evidence_sha256,
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
    operator: str | None = None,
) -> Approval:
    """The run's approval for ``action`` if it still holds; else raise.

    It holds for the run's evidence (trial, or validation for the cut-over), ``spec_sha256`` and
    ``params_sha256`` (the params file the stage runs with), and only as the target anchored it:
    ``anchored`` is the run's newest anchored facts (``Anchor.facts_of``), whose approval and
    evidence hashes must be these. ``operator`` (who is about to start ``action``) must not be
    its approver (four eyes).
    """
    run_id = run_dir.name
    approves, kind = approvable_for(action)
    for_option = "" if approves == "trial" else f" --for {approves}"
    again = (
        f"review {run_dir.name}/{STAGES[kind.evidence_stage].html}, then: "
        f"runbook approve --env {env} --run-id {run_id} --operator NAME{for_option}"
    )
    path = run_dir / kind.file
    if not path.is_file():
        raise ApprovalRequiredError(
            f"env {env} requires an approval before the {action}: run {run_id} has none, "
            "so nothing was done",
            hint=again,
        )
    manifest = Manifest.load(run_dir)
    recorded = manifest.data.get(kind.manifest_role) or {}
    if recorded.get("sha256") != sha256_file(path):
        raise ApprovalRequiredError(
            f"the approval record of run {run_id} is not the one the manifest recorded "
            f"(edited?): the {action} will not start",
            hint=f"runbook verify {run_dir}",
        )
    if anchored is None or anchored.get(f"{kind.manifest_role}_sha256") != recorded.get("sha256"):
        raise ApprovalRequiredError(
            f"the approval record of run {run_id} is not the one the target anchored "
            f"(forged, or recorded without the target): the {action} will not start",
            hint=f"runbook verify --env {env} --against-target; then {again}",
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    approval = Approval(**{**data, "run_operators": tuple(data.get("run_operators", ()))})
    if approval.run_id != run_id or approval.env != env:
        raise ApprovalRequiredError(
            f"the approval in run {run_id} was given for run {approval.run_id} ({approval.env})",
            hint=again,
        )
    evidence = run_dir / approval.evidence_notebook
    current = sha256_file(evidence) if evidence.is_file() else "missing"
    if approval.approves != approves or current != approval.evidence_sha256:
        raise ApprovalRequiredError(
            f"the {kind.evidence_stage} evidence of run {run_id} changed since "
            f"{approval.approved_by} approved it ({approval.evidence_sha256[:12]} → "
            f"{current[:12]}): the {action} will not start",
            hint=again,
        )
    stage = kind.evidence_stage
    anchored_evidence = (anchored.get("stages", {}).get(stage) or {}).get("sha256_notebook")
    if anchored_evidence != approval.evidence_sha256:
        raise ApprovalRequiredError(
            f"the {stage} {approval.approved_by} approved in run {run_id} is not the {stage} the "
            f"target anchored ({approval.evidence_sha256[:12]} → {str(anchored_evidence)[:12]}): "
            f"the {action} will not start",
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
    if operator is not None and _same_person(operator, approval.approved_by):
        raise ApprovalRequiredError(
            f"{operator} approved run {run_id} and may not also start its {action} (four eyes)",
            hint="another operator starts it",
        )
    return approval
