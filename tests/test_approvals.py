"""Approvals: where params say ``requires_approval: true`` the full load and the rollback wait for one.

Env ``ci`` stands in for prod: a project copy whose ``params/ci.yaml`` requires approval, on the
SQLite demo. The module fixture walks one run through the whole story with the CLI and keeps each
step's result, so every test reads a step without depending on test order:

refused run → refused rollback → approval by alice → refused load after a spec edit → load →
rollback → trial re-run → refused load (stale approval), also through the notebook gate.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from functools import partial
from pathlib import Path

import pytest
from helpers import runbook as run_cli

pytestmark = pytest.mark.notebooks


runbook = partial(run_cli, operator="bob")


def target_state(project: Path) -> dict[str, int]:
    """Tables of the target and their row counts (what a load or a snapshot would change)."""
    with sqlite3.connect(project / "work" / "ci" / "target.db") as connection:
        names = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return {n: connection.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> dict:
    from conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("approvals") / "project")
    params = project / "params" / "ci.yaml"
    params.write_text(
        params.read_text().replace("requires_approval: false", "requires_approval: true")
    )
    assert runbook(project, "demo-data", "--env", "ci").returncode == 0
    steps: dict = {"project": project, "target_before": target_state(project)}
    steps["run"] = runbook(project, "run", "--env", "ci")
    run_dir = next((project / "outputs" / "ci").glob("2*"))
    run_id = steps["run_id"] = run_dir.name
    steps["run_dir"] = run_dir
    steps["target_after_refusal"] = target_state(project)
    steps["manifest_ledger_lines"] = (run_dir.parent / "ledger.jsonl").read_text().splitlines()
    steps["manifest_refused"] = json.loads((run_dir / "manifest.json").read_text())
    steps["rollback_refused"] = runbook(project, "rollback", "--env", "ci", "--run-id", run_id)
    steps["approve"] = runbook(
        project, "approve", "--env", "ci", "--run-id", run_id, "--operator", "alice"
    )
    steps["approval"] = json.loads((run_dir / "approval.json").read_text())
    steps["manifest_approved"] = json.loads((run_dir / "manifest.json").read_text())
    steps["verify_approved"] = runbook(project, "verify", str(run_dir))
    spec = project / "params" / "mapping" / "demo.yaml"
    original = spec.read_bytes()
    spec.write_bytes(original + b"\n# edited after the approval\n")
    steps["load_after_spec_edit"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "full_load"
    )
    spec.write_bytes(original)
    steps["load"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "full_load"
    )
    steps["rollback"] = runbook(project, "rollback", "--env", "ci", "--run-id", run_id)
    steps["trial_again"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "trial"
    )
    steps["load_after_new_trial"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "full_load"
    )
    steps["notebook_gate"] = _gate_as_a_notebook_calls_it(project, run_dir)
    steps["verify_end"] = runbook(project, "verify", str(run_dir))
    return steps


def _gate_as_a_notebook_calls_it(project: Path, run_dir: Path) -> str:
    """What ``stages.backup_target`` says when 03_full_load is stepped through in JupyterLab."""
    from runbook_lib.config.params import load_params
    from runbook_lib.errors import ApprovalRequiredError
    from runbook_lib.run import stages
    from runbook_lib.run.context import StageContext

    context = StageContext(load_params("ci", project_root=project), run_dir)
    try:
        stages.backup_target(context)
    except ApprovalRequiredError as exc:
        return str(exc)
    finally:
        context.connections.dispose()
    return "no refusal"


def test_without_approval_the_full_load_is_refused_and_nothing_reaches_the_target(story):
    result = story["run"]
    assert result.returncode == 1, result.stderr
    assert "stage full_load refused" in result.stderr
    assert "env ci requires an approval before the full load" in result.stderr
    assert f"runbook approve --env ci --run-id {story['run_id']} --operator NAME" in result.stderr
    # nothing but the evidence ledger's anchor (one row per seal) reaches the target
    after = dict(story["target_after_refusal"])
    assert after.pop("runbook_ledger") == len(story["manifest_ledger_lines"])
    assert after == story["target_before"]
    manifest = story["manifest_refused"]
    assert manifest["status"] == "awaiting_approval"
    assert [s["name"] for s in manifest["stages"]] == ["assessment", "mapping", "trial"]
    assert manifest["refusal"]["stage"] == "full_load"


def test_without_approval_the_rollback_is_refused_too(story):
    result = story["rollback_refused"]
    assert result.returncode == 1
    assert "requires an approval before the rollback" in result.stderr


def test_the_approval_names_the_approver_and_binds_the_trial_and_the_spec(story):
    assert story["approve"].returncode == 0, story["approve"].stderr
    approval = story["approval"]
    assert approval["approved_by"] == "alice" and approval["run_id"] == story["run_id"]
    trial = next(s for s in story["manifest_refused"]["stages"] if s["name"] == "trial")
    assert approval["evidence_sha256"] == trial["sha256_notebook"]
    assert approval["evidence_notebook"] == "02_trial.ipynb" and approval["approves"] == "trial"
    assert approval["mapping_spec_sha256"] == story["manifest_refused"]["mapping_spec"]["sha256"]


def test_the_approval_is_evidence_hashed_in_the_manifest_and_sealed_in_the_ledger(story):
    recorded = story["manifest_approved"]["approval"]
    assert recorded["file"] == "approval.json" and recorded["approved_by"] == "alice"
    assert "verified run" in story["verify_approved"].stdout
    lines = (story["run_dir"].parent / "ledger.jsonl").read_text().splitlines()
    approve = [json.loads(line) for line in lines if '"event":"approve"' in line]
    assert [(e["run_id"], e["detail"]) for e in approve] == [(story["run_id"], "trial alice")]
    report = (story["run_dir"] / "index.html").read_text()
    assert "Approved by" in report and "alice" in report


def test_a_changed_mapping_spec_invalidates_the_approval(story):
    result = story["load_after_spec_edit"]
    assert result.returncode == 1
    assert "the mapping spec changed since alice approved" in result.stderr


def test_an_approved_run_loads_and_rolls_back(story):
    assert story["load"].returncode == 0, story["load"].stderr
    assert story["rollback"].returncode == 0, story["rollback"].stderr


def test_a_rerun_trial_invalidates_the_approval_in_the_runner_and_in_the_notebook(story):
    assert story["trial_again"].returncode == 0, story["trial_again"].stderr
    result = story["load_after_new_trial"]
    assert result.returncode == 1
    assert "the trial evidence of run" in result.stderr and "changed since alice" in result.stderr
    assert "changed since alice approved it" in story["notebook_gate"]


def test_an_edited_approval_record_is_refused(story, tmp_path):
    from runbook_lib.errors import ApprovalRequiredError
    from runbook_lib.evidence.approvals import check_approval

    copy = tmp_path / "outputs" / "ci" / story["run_id"]
    shutil.copytree(story["run_dir"], copy)
    record = json.loads((copy / "approval.json").read_text())
    record["approved_by"] = "mallory"
    (copy / "approval.json").write_text(json.dumps(record, indent=2))
    with pytest.raises(ApprovalRequiredError, match="not the one the manifest recorded"):
        check_approval(
            copy,
            "ci",
            record["mapping_spec_sha256"],
            "full load",
            params_sha256=record["params_sha256"],
            anchored=None,
        )


def test_the_whole_story_still_verifies(story):
    assert story["verify_end"].returncode == 0, story["verify_end"].stdout


def test_approving_a_run_without_a_passed_trial_is_refused(project):
    from runbook_lib.errors import ApprovalRequiredError
    from runbook_lib.evidence.approvals import approve
    from runbook_lib.evidence.ledger import seal
    from runbook_lib.evidence.run_folder import Manifest

    manifest = Manifest.create(
        project / "outputs" / "ci" / "20260101T000000Z-abcdef",
        run_id="20260101T000000Z-abcdef",
        env="ci",
        status="failed",
    )
    seal(manifest, "open", opening=True)
    with pytest.raises(ApprovalRequiredError, match="has no passed trial to approve"):
        approve("ci", "20260101T000000Z-abcdef", "alice", project)
