"""The whole runbook as CI runs it: `runbook demo-data` + `runbook run --env ci` in a temp project.

Asserts on the manifest, the glued results (read back with scrapbook, as the next stage does),
the HTML evidence, and then replays the read-only notebooks under nbval with sanitizers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from helpers import runbook as run_cli

from runbook_lib.evidence.run_folder import sha256_file
from runbook_lib.evidence.scraps import read_scraps

pytestmark = pytest.mark.notebooks
REPO = Path(__file__).resolve().parent.parent


runbook = partial(run_cli, operator="e2e-test", check=True)


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    """One full ci run, shared by the assertions below."""
    from conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    runbook(project, "demo-data", "--env", "ci")
    result = runbook(project, "run", "--env", "ci")
    runs = sorted(p.parent for p in (project / "outputs" / "ci").glob("*/manifest.json"))
    assert len(runs) == 1
    return project, runs[0], result


def test_run_passes_and_prints_stage_progress(ci_run):
    _project, run_dir, result = ci_run
    for index, stage in enumerate(
        ("assessment", "mapping", "trial", "full_load", "validation"), start=1
    ):
        assert f"[{index}/5] {stage} passed" in result.stdout
    assert f"run {run_dir.name} passed" in result.stdout


def test_manifest_records_what_ran_with_hashes_of_every_artifact(ci_run):
    _project, run_dir, _result = ci_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for field in (
        "run_id",
        "env",
        "operator",
        "git_commit",
        "started_at",
        "finished_at",
        "status",
        "params",
        "versions",
        "stages",
    ):
        assert field in manifest, field
    assert manifest["run_id"] == run_dir.name
    assert manifest["env"] == "ci"
    assert manifest["status"] == "passed"
    assert manifest["operator"] == "ci"  # params/ci.yaml names its operator
    assert manifest["params"]["target"] == {"url": "sqlite:///work/ci/target.db"}
    assert {"papermill", "scrapbook", "SQLAlchemy"} <= set(manifest["versions"])
    names = [stage["name"] for stage in manifest["stages"]]
    assert names == ["assessment", "mapping", "trial", "full_load", "validation"]
    for stage in manifest["stages"]:
        assert stage["status"] == "passed"
        assert stage["sha256_notebook"] == sha256_file(run_dir / stage["notebook"])
        assert stage["sha256_html"] == sha256_file(run_dir / stage["html"])
        assert stage["started_at"] <= stage["finished_at"]


def test_validation_glued_balanced_accounting_and_zero_differences(ci_run, ci_demo):
    _project, run_dir, _result = ci_run
    validation = read_scraps(run_dir / "04_validation.ipynb")["validation"]
    assert validation["passed"] is True
    assert validation["differences"] == 0
    by_source = {f"{t['source_system']}.{t['source_table']}": t for t in validation["tables"]}
    assert all(t["balanced"] for t in validation["tables"])
    defects = ci_demo.seeded_defects
    merged = sum(
        by_source[name]["merged"]
        for name in ("legacy_a.users", "legacy_b.customers", "crm.old_crm_customers")
    )
    assert merged == defects["duplicates"]["duplicate_records"]
    orphans = defects["orphans"]
    assert by_source["legacy_b.sales_orders"]["quarantined"] == orphans["legacy_b.sales_orders"]


def test_later_stages_read_what_earlier_ones_glued(ci_run):
    _project, run_dir, _result = ci_run
    mapping = read_scraps(run_dir / "01_mapping.ipynb")
    trial = read_scraps(run_dir / "02_trial.ipynb")["trial"]
    full_load = read_scraps(run_dir / "03_full_load.ipynb")
    assert mapping["mapping_check"]["passed"] is True
    assert mapping["mapping_check"]["spec_sha256"] == mapping["mapping_spec"]["sha256"]
    assert trial["passed"] is True and trial["load"]["sample_percent"] == 20
    assert full_load["full_load"]["passed"] is True
    assert set(full_load["snapshot"]["sha256"]) == set(full_load["snapshot"]["tables"])


def test_html_evidence_embeds_plotly_once_so_it_renders_offline(ci_run):
    _project, run_dir, _result = ci_run
    html = (run_dir / "00_assessment.html").read_text()
    assert len(re.findall(r"plotly\.js v\d", html)) == 1  # the library itself, inline, once
    assert not re.search(r"<script[^>]+src=[^>]*plot", html)  # and never fetched
    assert html.count("Plotly.newPlot") == 2  # both assessment figures


def test_status_lists_the_run(ci_run):
    project, run_dir, _result = ci_run
    result = runbook(project, "status", "--env", "ci")
    assert re.search(rf"ci\s+{re.escape(run_dir.name)}\s+passed", result.stdout)


def test_executed_read_only_notebooks_replay_identically_under_nbval(ci_run):
    project, run_dir, _result = ci_run
    notebooks = [
        str(run_dir / name)
        for name in (
            "00_assessment.ipynb",
            "01_mapping.ipynb",
            "02_trial.ipynb",
            "04_validation.ipynb",
        )
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval",
            *notebooks,
            "--nbval-sanitize-with",
            str(REPO / "tests" / "nbval_sanitize.cfg"),
            "--rootdir",
            str(project),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert re.search(r"\d+ passed", result.stdout)


def test_rollback_restores_the_target_and_proves_it_by_hash(ci_run):
    project, run_dir, _result = ci_run
    result = runbook(project, "rollback", "--env", "ci", "--run-id", run_dir.name)
    assert "rolled back" in result.stdout
    rollback = read_scraps(run_dir / "05_rollback.ipynb")["rollback"]
    assert rollback["passed"] is True
    snapshot = read_scraps(run_dir / "03_full_load.ipynb")["snapshot"]
    assert {t["table"]: t["sha256_after_rollback"] for t in rollback["tables"]} == snapshot[
        "sha256"
    ]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]][-1] == "rollback"


def test_the_trial_projects_the_cutover_and_rehearses_the_rollback(ci_run):
    from runbook_lib.evidence.scraps import read_scraps

    _project, run_dir, _result = ci_run
    trial = read_scraps(run_dir / "02_trial.ipynb")["trial"]
    rehearsal, plan = trial["rollback_rehearsal"], trial["cutover_plan"]
    loaded = trial["load"]["loaded"] + trial["load"]["merged"]
    # every trial row (targets and crosswalk) rolled back, proven by hash, and timed
    assert rehearsal["passed"] and rehearsal["rows_rolled_back"] >= loaded > 0
    assert rehearsal["seconds"] > 0 and rehearsal["projected_rto_seconds"] > rehearsal["seconds"]
    sources = {f"{t['source_system']}.{t['source_table']}" for t in trial["load"]["tables"]}
    assert {t["source"] for t in plan["tables"]} == sources
    full = read_scraps(run_dir / "03_full_load.ipynb")["full_load"]
    assert {t["source"]: t["full_rows"] for t in plan["tables"]} == {
        f"{t['source_system']}.{t['source_table']}": t["source_rows"] - t["filtered"]
        for t in full["tables"]
    }
    assert plan["projected_load_seconds"] > 0 and plan["projected_downtime_seconds"] > 0
    assert plan["assumptions"] and plan["rto_seconds"] == rehearsal["projected_rto_seconds"]


def test_the_full_load_records_the_projection_beside_what_it_took(ci_run):
    from runbook_lib.evidence.scraps import read_scraps

    _project, run_dir, _result = ci_run
    compared = read_scraps(run_dir / "03_full_load.ipynb")["plan_vs_actual"]
    full = read_scraps(run_dir / "03_full_load.ipynb")["full_load"]
    assert compared["actual_seconds"] == pytest.approx(
        sum(t["seconds"] for t in full["tables"]), abs=0.01
    )
    assert compared["projected_seconds"] > 0 and compared["ratio"] > 0
    assert compared["next_calibration"] == pytest.approx(compared["ratio"])  # no calibration yet
