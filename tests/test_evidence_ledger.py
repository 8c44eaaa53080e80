"""The ledger and ``verify`` on tiny synthetic run folders (no notebooks), so every tampering case
is checked in milliseconds; ``test_evidence.py`` repeats the important ones on a real run.

The fixture ``chain`` holds three runs of env ``ci``: each with one "notebook" and its "HTML",
sealed open → stage → close like the runner does; run 1 is later "rolled back" (a second stage
added after run 2 and 3 opened), so its manifest has a version the later runs do not link to.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runbook_lib.errors import EvidenceError
from runbook_lib.evidence import ledger
from runbook_lib.evidence.run_folder import Manifest
from runbook_lib.evidence.verify import require_intact, verify_run


def _stage(manifest: Manifest, name: str, notebook: str, text: str) -> None:
    path = manifest.run_dir / notebook
    path.write_text(text)
    html = path.with_suffix(".html")
    html.write_text(f"<html>{text}</html>")
    manifest.record_stage(manifest.stage_entry(path, html, name=name, status="passed"))
    ledger.seal(manifest, "stage", name)


def _new_run(env_dir: Path, run_id: str) -> Manifest:
    manifest = Manifest.create(env_dir / run_id, run_id=run_id, env="ci", status="running")
    ledger.seal(manifest, "open", "assessment", opening=True)
    _stage(manifest, "assessment", "00_assessment.ipynb", f"profile of {run_id}")
    manifest.data["status"] = "passed"
    ledger.seal(manifest, "close", "passed")
    return manifest


@pytest.fixture
def chain(tmp_path) -> Path:
    env_dir = tmp_path / "outputs" / "ci"
    first = _new_run(env_dir, "20260101T000000Z-aaaaaa")
    _new_run(env_dir, "20260102T000000Z-bbbbbb")
    _new_run(env_dir, "20260103T000000Z-cccccc")
    _stage(first, "rollback", "05_rollback.ipynb", "restored")  # rollback of run 1, later
    return env_dir


def runs(env_dir: Path) -> list[Path]:
    return sorted(p for p in env_dir.iterdir() if p.is_dir())


def problems(env_dir: Path, run: int = -1) -> list[str]:
    return [p.render() for p in verify_run(runs(env_dir)[run]).problems]


def flip_byte(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_untouched_chain_verifies_from_every_run(chain):
    for run_dir in runs(chain):
        result = verify_run(run_dir)
        assert result.passed, result.render()
        assert result.runs == tuple(p.name for p in runs(chain))
        assert "verified run" in result.render()


def test_every_manifest_version_is_a_ledger_line_and_the_last_one_is_current(chain):
    entries, damaged = ledger.read(chain / "ledger.jsonl")
    assert not damaged
    first = runs(chain)[0]
    versions = [e for e in entries if e.run_id == first.name]
    assert [e.event for e in versions] == ["open", "stage", "close", "stage"]
    assert versions[-1].seq == len(entries)  # the rollback came after runs 2 and 3
    from runbook_lib.evidence.run_folder import sha256_file

    assert versions[-1].manifest_sha256 == sha256_file(first / "manifest.json")


def test_a_new_run_links_the_previous_runs_manifest_as_it_was_then(chain):
    entries, _ = ledger.read(chain / "ledger.jsonl")
    first, second, _third = runs(chain)
    link = json.loads((second / "manifest.json").read_text())["chain"]
    assert link["previous_run_id"] == first.name
    at = next(e for e in entries if e.seq == link["previous_ledger_seq"])
    assert at.event == "close" and at.manifest_sha256 == link["previous_manifest_sha256"]
    assert json.loads((first / "manifest.json").read_text())["chain"]["previous_run_id"] is None


def test_sealing_an_unchanged_manifest_adds_no_line(chain):
    manifest = Manifest.load(runs(chain)[1])
    before = (chain / "ledger.jsonl").read_bytes()
    assert ledger.seal(manifest, "report") is None
    assert (chain / "ledger.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    ("tamper", "named", "message"),
    [
        pytest.param(
            lambda env: flip_byte(runs(env)[1] / "00_assessment.ipynb"),
            "20260102T000000Z-bbbbbb/00_assessment.ipynb",
            "sha256 differs from the manifest",
            id="notebook-byte",
        ),
        pytest.param(
            lambda env: flip_byte(runs(env)[1] / "00_assessment.html"),
            "20260102T000000Z-bbbbbb/00_assessment.html",
            "sha256 differs from the manifest",
            id="html-byte",
        ),
        pytest.param(
            lambda env: flip_byte(runs(env)[1] / "manifest.json", 30),
            "20260102T000000Z-bbbbbb/manifest.json",
            "differs from its last ledger record",
            id="manifest-byte",
        ),
        pytest.param(
            lambda env: flip_byte(env / "ledger.jsonl", 40),
            "ledger.jsonl line 1",
            "",
            id="ledger-byte-first-line",
        ),
        pytest.param(
            lambda env: _edit_last_ledger_line(env),
            "ledger.jsonl line 10",
            "entry_sha256 does not match",
            id="ledger-byte-last-line",
        ),
        pytest.param(
            lambda env: _drop_last_ledger_line(env),
            "20260101T000000Z-aaaaaa/manifest.json",
            "differs from its last ledger record",
            id="ledger-last-line-removed",
        ),
        pytest.param(
            lambda env: shutil.rmtree(runs(env)[1]),
            "20260102T000000Z-bbbbbb",
            "missing: removed from the chain",
            id="middle-run-removed",
        ),
        pytest.param(
            lambda env: _remove_run_and_its_lines(env, 1),
            "ledger.jsonl line",
            "does not chain to the line before it",
            id="middle-run-and-its-ledger-lines-removed",
        ),
        pytest.param(
            lambda env: (runs(env)[1] / "notes.txt").write_text("added later"),
            "20260102T000000Z-bbbbbb/notes.txt",
            "not covered by the manifest",
            id="file-added",
        ),
        pytest.param(
            lambda env: (runs(env)[1] / "00_assessment.html").unlink(),
            "20260102T000000Z-bbbbbb/00_assessment.html",
            "listed in the manifest but missing",
            id="artifact-deleted",
        ),
        pytest.param(
            lambda env: (env / "ledger.jsonl").unlink(),
            "ledger.jsonl",
            "missing",
            id="ledger-deleted",
        ),
    ],
)
def test_any_tampering_fails_verification_naming_the_file(chain, tamper, named, message):
    tamper(chain)
    found = problems(chain)
    assert any(named in p and message in p for p in found), found
    with pytest.raises(EvidenceError):
        verify_run(runs(chain)[-1]).raise_if_failed()


def _edit_last_ledger_line(env_dir: Path) -> None:
    path = env_dir / "ledger.jsonl"
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1].replace('"event":"stage"', '"event":"stagx"')
    path.write_text("\n".join(lines) + "\n")


def _drop_last_ledger_line(env_dir: Path) -> None:
    path = env_dir / "ledger.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _remove_run_and_its_lines(env_dir: Path, index: int) -> None:
    run_dir = runs(env_dir)[index]
    shutil.rmtree(run_dir)
    path = env_dir / "ledger.jsonl"
    kept = [line for line in path.read_text().splitlines() if run_dir.name not in line]
    path.write_text("\n".join(kept) + "\n")


def test_a_run_removed_from_the_middle_breaks_the_link_of_the_run_after_it(chain):
    shutil.rmtree(runs(chain)[1])
    found = problems(chain)
    assert any("its previous run 20260102T000000Z-bbbbbb is missing" in p for p in found), found


def test_require_intact_refuses_to_add_evidence_to_an_edited_run(chain):
    flip_byte(runs(chain)[0] / "00_assessment.ipynb")
    with pytest.raises(EvidenceError, match="does not verify; nothing was changed"):
        require_intact(runs(chain)[0])
    require_intact(runs(chain)[1])  # the other runs are still fine to extend


def test_require_intact_ignores_an_unlisted_file_a_crash_may_leave(chain):
    (runs(chain)[0] / "02_trial.ipynb").write_text("half-written by a killed stage")
    require_intact(runs(chain)[0])
    assert any("02_trial.ipynb: not covered" in p for p in problems(chain, 0))


def test_nothing_is_sealed_onto_a_damaged_ledger(chain):
    flip_byte(chain / "ledger.jsonl", 40)
    before = (chain / "ledger.jsonl").read_bytes()
    manifest = Manifest.load(runs(chain)[2])
    manifest.data["status"] = "edited"
    with pytest.raises(EvidenceError, match="ledger.jsonl line 1"):
        ledger.seal(manifest, "close")
    with pytest.raises(EvidenceError):
        ledger.require_sound(chain)
    assert (chain / "ledger.jsonl").read_bytes() == before


def test_a_run_folder_missing_from_the_ledger_is_reported(chain):
    shutil.copytree(runs(chain)[2], chain / "20260104T000000Z-dddddd")
    found = problems(chain)
    assert any(
        "20260104T000000Z-dddddd/manifest.json: not recorded in ledger.jsonl" in p for p in found
    )


def test_a_seal_cut_by_a_crash_after_its_ledger_line_is_finished_before_a_resume(
    chain, monkeypatch
):
    run_dir = runs(chain)[2]
    manifest = Manifest.load(run_dir)
    manifest.data["status"] = "running"

    def crash() -> None:
        raise KeyboardInterrupt("killed between the ledger line and the rename")

    monkeypatch.setattr(manifest, "commit_pending", crash)
    with pytest.raises(KeyboardInterrupt):
        ledger.seal(manifest, "reopen", "assessment")
    assert any("manifest.json: sha256" in p for p in problems(chain))
    require_intact(run_dir)  # finishes the seal: manifest.tmp was the recorded version
    assert not (run_dir / "manifest.tmp").exists()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
    assert verify_run(run_dir).passed


def test_a_seal_cut_before_its_ledger_line_leaves_the_recorded_manifest(chain, monkeypatch):
    run_dir = runs(chain)[2]
    before = (run_dir / "manifest.json").read_bytes()
    manifest = Manifest.load(run_dir)
    manifest.data["status"] = "running"
    monkeypatch.setattr(ledger, "utc_now", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        ledger.seal(manifest, "reopen", "assessment")
    assert (run_dir / "manifest.json").read_bytes() == before
    require_intact(run_dir)  # the recorded version is intact: a re-run may go on
    assert any("manifest.tmp: not covered by the manifest" in p for p in problems(chain))
