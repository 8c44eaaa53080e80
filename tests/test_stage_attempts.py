"""A re-run stage never overwrites evidence: each earlier attempt stays, listed, hashed and sealed.

Re-running a stage into a run (``--run-id RUN --stages ...``, ``--resume``, a second rollback)
first keeps the attempt on record: its notebook and HTML are copied to
``NN_stage.attempt-K.ipynb`` / ``.html`` and the manifest's stage entry lists it under
``attempts`` (file names, sha256, status, times, failure), sealed in the ledger before the stage
runs again. The synthetic tests use text "notebooks" sealed as the runner seals them; the last
test re-runs a real mapping stage with the CLI.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
import yaml
from helpers import runbook as run_cli

from runbook_lib.errors import EvidenceError
from runbook_lib.evidence import index_page, ledger
from runbook_lib.evidence.record import change_run, keep_attempt, open_run
from runbook_lib.evidence.run_folder import Manifest, sha256_file
from runbook_lib.evidence.scraps import read_scraps
from runbook_lib.evidence.verify import verify_run

RUN = "20260101T000000Z-aaaaaa"


def _finish(run_dir: Path, text: str, status: str = "passed") -> None:
    """What the runner does when a stage ends: its notebook and HTML written, then recorded."""
    notebook = run_dir / "04_validation.ipynb"
    notebook.write_text(text)
    html = run_dir / "04_validation.html"
    html.write_text(f"<html>{text}</html>")
    fields = {
        "name": "validation",
        "status": status,
        "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:01:00+00:00",
        "seconds": 60.0,
    }
    if status == "failed":
        fields["failure"] = {"type": "GateFailedError", "message": "3 differences"}
        fields["error"] = "GateFailedError: 3 differences"
    with change_run(run_dir, "stage", f"validation {status}") as manifest:
        manifest.record_stage(manifest.stage_entry(notebook, html, **fields))


@pytest.fixture
def run_dir(tmp_path) -> Path:
    folder = tmp_path / "outputs" / "ci" / RUN
    open_run(folder, "validation", run_id=RUN, env="ci", status="running")
    _finish(folder, "differences: order A-00000017 missing", status="failed")
    return folder


def _entry(run_dir: Path) -> dict:
    return next(s for s in Manifest.load(run_dir).data["stages"] if s["name"] == "validation")


def test_a_rerun_keeps_the_failed_attempts_notebook_and_html_under_their_attempt_names(run_dir):
    before = _entry(run_dir)

    kept = keep_attempt(run_dir, "validation")
    _finish(run_dir, "no differences")

    assert (run_dir / "04_validation.attempt-1.ipynb").read_text() == (
        "differences: order A-00000017 missing"
    )
    assert (run_dir / "04_validation.attempt-1.html").is_file()
    assert (run_dir / "04_validation.ipynb").read_text() == "no differences"
    entry = _entry(run_dir)
    assert (entry["status"], entry["attempt"]) == ("passed", 2)
    assert entry["attempts"] == [kept]
    assert kept == {
        "attempt": 1,
        "status": "failed",
        "started_at": before["started_at"],
        "finished_at": before["finished_at"],
        "seconds": 60.0,
        "failure": before["failure"],
        "error": before["error"],
        "notebook": "04_validation.attempt-1.ipynb",
        "sha256_notebook": before["sha256_notebook"],
        "html": "04_validation.attempt-1.html",
        "sha256_html": before["sha256_html"],
    }


def test_every_attempt_is_listed_verified_and_its_keeping_sealed_in_the_ledger(run_dir):
    keep_attempt(run_dir, "validation")
    _finish(run_dir, "still 1 difference", status="failed")
    keep_attempt(run_dir, "validation")
    _finish(run_dir, "no differences")

    listed = Manifest.load(run_dir).artifacts()
    assert {name for name in listed if ".attempt-" in name} == {
        "04_validation.attempt-1.ipynb",
        "04_validation.attempt-1.html",
        "04_validation.attempt-2.ipynb",
        "04_validation.attempt-2.html",
    }
    assert [a["status"] for a in _entry(run_dir)["attempts"]] == ["failed", "failed"]
    assert verify_run(run_dir).passed
    entries, _ = ledger.read(run_dir.parent / "ledger.jsonl")
    assert [(e.event, e.detail) for e in entries if e.event == "attempt"] == [
        ("attempt", "validation attempt 1 kept as 04_validation.attempt-1.ipynb"),
        ("attempt", "validation attempt 2 kept as 04_validation.attempt-2.ipynb"),
    ]


def test_an_edited_earlier_attempt_fails_verify_naming_it(run_dir):
    keep_attempt(run_dir, "validation")
    _finish(run_dir, "no differences")
    (run_dir / "04_validation.attempt-1.ipynb").write_text("differences: none")

    problems = [p.render() for p in verify_run(run_dir).problems]

    assert problems == [
        f"outputs/ci/{RUN}/04_validation.attempt-1.ipynb: sha256 differs from the manifest: "
        "changed after the run"
    ]


def test_an_attempt_is_only_kept_from_intact_evidence(run_dir):
    (run_dir / "04_validation.ipynb").write_text("differences: none")  # edited before the re-run

    with pytest.raises(EvidenceError, match="04_validation.ipynb: sha256 differs"):
        keep_attempt(run_dir, "validation")

    assert not (run_dir / "04_validation.attempt-1.ipynb").exists()


def test_a_rerun_killed_before_it_finished_is_kept_as_an_interrupted_attempt(run_dir):
    keep_attempt(run_dir, "validation")
    (run_dir / "04_validation.ipynb").write_text("half a notebo")  # the process was killed here

    running = _entry(run_dir)
    assert (running["status"], running["attempt"]) == ("running", 2)
    interrupted = keep_attempt(run_dir, "validation")  # the resume
    _finish(run_dir, "no differences")

    assert interrupted == {
        "attempt": 2,
        "status": "interrupted",
        "started_at": running["started_at"],
        "note": "never finished: its notebook, if any, was not recorded and is not kept",
    }
    assert [a["attempt"] for a in _entry(run_dir)["attempts"]] == [1, 2]
    assert not (run_dir / "04_validation.attempt-2.ipynb").exists()
    assert _entry(run_dir)["attempt"] == 3
    assert verify_run(run_dir).passed


def test_a_first_run_has_nothing_to_keep(tmp_path):
    folder = tmp_path / "outputs" / "ci" / RUN
    open_run(folder, "validation", run_id=RUN, env="ci", status="running")

    assert keep_attempt(folder, "validation") is None
    assert Manifest.load(folder).data["stages"] == []


def test_the_report_lists_each_earlier_attempt_with_its_links_and_outcome(run_dir):
    keep_attempt(run_dir, "validation")
    _finish(run_dir, "no differences")

    page = index_page.render(Manifest.load(run_dir).data, {})

    start = page.index('<section id="stages">')
    stages = page[start : page.index("</section>", start)]
    assert "attempt 2 of 2" in stages
    row = stages[stages.index("attempt 1") :].split("</tr>")[0]
    assert 'href="04_validation.attempt-1.html"' in row
    assert 'href="04_validation.attempt-1.ipynb"' in row
    assert "failed" in row and "GateFailedError: 3 differences" in row
    sha = sha256_file(run_dir / "04_validation.attempt-1.ipynb")
    assert sha[:12] in row


# --------------------------------------------------------------------------------------------
# a real stage, re-run with the CLI

runbook = partial(run_cli, operator="attempts-test")


@pytest.mark.notebooks
def test_a_failed_mapping_stage_rerun_into_its_run_keeps_the_failed_notebook(project):
    assert runbook(project, "demo-data", "--env", "ci").returncode == 0
    spec_path = project / "params" / "mapping" / "demo.yaml"
    original = spec_path.read_bytes()
    spec = yaml.safe_load(original)
    del spec["targets"]["orders"]["sources"]["legacy_a.orders"]["columns"]["amount"]
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    failed = runbook(project, "run", "--env", "ci", "--stages", "mapping")
    assert failed.returncode == 1, failed.stderr
    run_dir = next((project / "outputs" / "ci").glob("*/manifest.json")).parent
    failed_sha = sha256_file(run_dir / "01_mapping.ipynb")
    spec_path.write_bytes(original)

    rerun = runbook(project, "run", "--env", "ci", "--run-id", run_dir.name, "--stages", "mapping")

    assert rerun.returncode == 0, rerun.stderr
    kept = run_dir / "01_mapping.attempt-1.ipynb"
    assert sha256_file(kept) == failed_sha
    check = read_scraps(kept)["mapping_check"]
    assert check["passed"] is False
    assert any("orders.amount" in json.dumps(problem) for problem in check["problems"])
    assert read_scraps(run_dir / "01_mapping.ipynb")["mapping_check"]["passed"] is True
    entry = json.loads((run_dir / "manifest.json").read_text())["stages"][0]
    assert (entry["status"], entry["attempt"]) == ("passed", 2)
    assert [(a["status"], a["failure"]["type"]) for a in entry["attempts"]] == [
        ("failed", "MappingSpecError")
    ]
    assert runbook(project, "verify", str(run_dir)).returncode == 0
    report = (run_dir / "index.html").read_text()
    assert 'href="01_mapping.attempt-1.html"' in report
