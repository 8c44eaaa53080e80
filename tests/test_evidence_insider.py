"""Evidence that resists an insider: someone who can write ``outputs/`` but holds neither the
signing key nor access to the target database.

The attacks (issue 14): (a) cut the newest run and its ledger tail — the anchor in the target
database gives it away (``verify --against-target``); (b) change an artifact, rewrite its hash in
the manifest and append a matching ledger line — the signatures give it away when a key is
configured, the anchor in any case. The synthetic chains are two runs of env ``ci`` sealed as the
runner does: ``signed_chain`` signed with a key made for the test, ``anchored_chain`` anchored in
the ``ci`` target of a project copy (a SQLite file; one test on PostgreSQL); ``forge_line``
appends a ledger line the way an insider would, by hand.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from runbook_lib.errors import EvidenceError, SigningKeyError
from runbook_lib.evidence import ledger, signing
from runbook_lib.evidence.anchor import Anchor
from runbook_lib.evidence.record import change_run, open_run
from runbook_lib.evidence.run_folder import Manifest, sha256_file
from runbook_lib.evidence.trust import Trust
from runbook_lib.evidence.verify import verify_run

RUNS = ("20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb")


def _signer(name: str = "RUNBOOK_SIGNING_KEY") -> signing.Signer:
    pair = signing.generate()
    return signing.Signer(name, signing.parse_private_key(pair.private_key, "test"))


def _sealed_run(env_dir: Path, run_id: str, trust: Trust) -> Path:
    run_dir = env_dir / run_id
    open_run(run_dir, "assessment", trust=trust, run_id=run_id, env="ci", status="running")
    with change_run(run_dir, "stage", "assessment passed", trust=trust) as manifest:
        notebook = run_dir / "00_assessment.ipynb"
        notebook.write_text(f'{{"profile": "of {run_id}", "rows": 2000}}')
        manifest.record_stage(
            manifest.stage_entry(notebook, None, name="assessment", status="passed")
        )
    with change_run(run_dir, "close", "passed", trust=trust) as manifest:
        manifest.data["status"] = "passed"
    return run_dir


def _chain(tmp_path: Path, trust: Trust) -> Path:
    env_dir = tmp_path / "outputs" / "ci"
    for run_id in RUNS:
        _sealed_run(env_dir, run_id, trust)
    return env_dir


@pytest.fixture
def key() -> signing.Signer:
    return _signer()


@pytest.fixture
def signed_chain(tmp_path, key) -> Path:
    return _chain(tmp_path, Trust(signer=key))


def forge_line(env_dir: Path, run_dir: Path, signer: signing.Signer | None = None) -> None:
    """What an insider does by hand: a ledger line for the edited manifest, chained to the head."""
    path = env_dir / "ledger.jsonl"
    last = json.loads(path.read_text().splitlines()[-1])
    fields = {
        "seq": last["seq"] + 1,
        "at": "2026-01-03T00:00:00+00:00",
        "run_id": run_dir.name,
        "event": "stage",
        "detail": "assessment passed",
        "manifest_sha256": sha256_file(run_dir / "manifest.json"),
        "prev": last["entry_sha256"],
    }
    if signer is not None:
        fields["key"] = signer.public_key
    fields["entry_sha256"] = hashlib.sha256(ledger.canonical_json(fields).encode()).hexdigest()
    if signer is not None:
        fields["sig"] = signer.sign(fields["entry_sha256"])
    with path.open("a") as handle:
        handle.write(ledger.canonical_json(fields) + "\n")


def rewrite_artifact(run_dir: Path) -> None:
    """Change the notebook and rewrite its hash in the manifest (the manifest file only)."""
    notebook = run_dir / "00_assessment.ipynb"
    notebook.write_text(notebook.read_text().replace('"rows": 2000', '"rows": 1980'))
    data = json.loads((run_dir / "manifest.json").read_text())
    data["stages"][0]["sha256_notebook"] = sha256_file(notebook)
    (run_dir / "manifest.json").write_text(json.dumps(data, indent=2) + "\n")


def test_b_without_a_key_the_rewritten_artifact_verifies_and_verify_says_why_plainly(tmp_path):
    env_dir = _chain(tmp_path, Trust())
    run_dir = env_dir / RUNS[-1]
    rewrite_artifact(run_dir)
    forge_line(env_dir, run_dir)
    result = verify_run(run_dir)
    assert result.passed  # self-consistent by construction: that is what the note is for
    assert "NOT SIGNED" in result.render()
    assert "tamper-evident only against accidents, not against an insider" in result.render()
    assert result.to_dict()["signing"]["signed"] is False


def test_b_with_a_key_a_rewritten_artifact_with_an_unsigned_ledger_line_fails_verify(signed_chain):
    run_dir = signed_chain / RUNS[-1]
    assert verify_run(run_dir).passed
    rewrite_artifact(run_dir)
    forge_line(signed_chain, run_dir)
    found = [p.render() for p in verify_run(run_dir).problems]
    assert any("ledger.jsonl line 7" in p and "unsigned" in p for p in found), found


def test_b_with_a_key_a_line_signed_by_the_insiders_own_key_fails_verify(signed_chain, key):
    run_dir = signed_chain / RUNS[-1]
    rewrite_artifact(run_dir)
    forge_line(signed_chain, run_dir, signer=_signer())
    found = [p.render() for p in verify_run(run_dir).problems]
    assert any("line 7" in p and f"not by {key.fingerprint}" in p for p in found), found


def test_b_a_signed_line_whose_signature_was_copied_from_another_line_is_wrongly_signed(
    signed_chain, key
):
    path = signed_chain / "ledger.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[3]["sig"] = lines[2]["sig"]
    path.write_text("".join(ledger.canonical_json(line) + "\n" for line in lines))
    found = [p.render() for p in verify_run(signed_chain / RUNS[0]).problems]
    assert any("line 4" in p and "wrongly signed" in p for p in found), found


def test_b_verify_against_the_auditors_fingerprint_refuses_a_ledger_re_signed_by_another_key(
    tmp_path, key
):
    other = _signer()
    env_dir = _chain(tmp_path, Trust(signer=other))  # the whole ledger re-made with another key
    run_dir = env_dir / RUNS[-1]
    assert verify_run(run_dir).passed
    found = [p.render() for p in verify_run(run_dir, trusted_key=key.fingerprint).problems]
    assert len(found) == 6 and all(f"not by {key.fingerprint}" in p for p in found), found


def test_b_the_cli_exits_3_naming_the_forged_line(signed_chain, monkeypatch, capsys):
    from runbook_lib.cli import main

    run_dir = signed_chain / RUNS[-1]
    rewrite_artifact(run_dir)
    forge_line(signed_chain, run_dir)
    assert main(["verify", str(run_dir)]) == 3
    assert "line 7: unsigned" in capsys.readouterr().out


def test_every_line_and_every_manifest_names_the_key(signed_chain, key):
    lines = [json.loads(line) for line in (signed_chain / "ledger.jsonl").read_text().splitlines()]
    assert {line["key"] for line in lines} == {key.public_key}
    assert all(signing.signature_valid(key.public_key, e["entry_sha256"], e["sig"]) for e in lines)
    for run_id in RUNS:
        recorded = json.loads((signed_chain / run_id / "manifest.json").read_text())["signing"]
        assert recorded == {
            "algorithm": "ed25519",
            "key_env": "RUNBOOK_SIGNING_KEY",
            "fingerprint": key.fingerprint,
        }
    result = verify_run(signed_chain / RUNS[0])
    assert result.passed and result.signers == (key.fingerprint,)
    assert f"signed by {key.fingerprint}" in result.render()


def test_a_signed_ledger_refuses_a_seal_without_its_key_or_with_another(signed_chain):
    run_dir = signed_chain / RUNS[-1]
    before = (signed_chain / "ledger.jsonl").read_bytes()
    with pytest.raises(SigningKeyError, match="is signed"):
        with change_run(run_dir, "report") as manifest:
            manifest.data["note"] = "no key"
    with pytest.raises(SigningKeyError, match="is signed by key"):
        with change_run(run_dir, "report", trust=Trust(signer=_signer())) as manifest:
            manifest.data["note"] = "another key"
    assert (signed_chain / "ledger.jsonl").read_bytes() == before
    assert not (run_dir / "manifest.tmp").exists()
    assert verify_run(run_dir).passed


def test_keygen_prints_a_private_key_on_stdout_that_signs_and_its_fingerprint(capsys):
    from runbook_lib.cli import main

    assert main(["keygen"]) == 0
    out, err = capsys.readouterr()
    private = out.strip()
    signer = signing.Signer("K", signing.parse_private_key(private, "stdout"))
    assert f"fingerprint: {signer.fingerprint}" in err
    assert f"public key:  {signer.public_key}" in err
    assert private not in err


def test_the_params_name_the_variable_and_an_unset_one_stops_the_run_before_anything_is_written(
    project, monkeypatch
):
    from runbook_demo.build import build_demo
    from runbook_lib.config.params import load_params
    from runbook_lib.run import runner

    build_demo("ci", project)  # the pre-flight opens every connection before the key is read
    params = project / "params" / "ci.yaml"
    params.write_text(params.read_text() + "evidence:\n  signing_key_env: CI_SIGNING_KEY\n")
    assert (
        load_params("ci", project_root=project).model.evidence.signing_key_env == "CI_SIGNING_KEY"
    )
    monkeypatch.delenv("CI_SIGNING_KEY", raising=False)
    with pytest.raises(SigningKeyError, match="CI_SIGNING_KEY, which is not set") as raised:
        runner.run("ci", project, stages=["assessment"])
    assert raised.value.exit_code == 2
    assert not list((project / "outputs" / "ci").glob("2*"))
    monkeypatch.setenv("CI_SIGNING_KEY", "not a key")
    with pytest.raises(SigningKeyError, match="does not hold an Ed25519 private key"):
        runner.run("ci", project, stages=["assessment"])


def test_the_report_says_plainly_whether_the_evidence_is_signed(tmp_path, key):
    from runbook_lib.evidence.index_page import render

    signed = Manifest.load(_chain(tmp_path / "a", Trust(signer=key)) / RUNS[0]).data
    unsigned = Manifest.load(_chain(tmp_path / "b", Trust()) / RUNS[0]).data
    assert f"Ed25519 key <code>{key.fingerprint}</code>" in render(signed, {}, {})
    page = render(unsigned, {}, {})
    assert "Not signed." in page and "tamper-evident only against accidents" in page


# --- (a) and the anchor ---------------------------------------------------------------------


@pytest.fixture
def ci_anchor(project) -> Anchor:
    import sqlite3

    from runbook_lib.config.params import load_params
    from runbook_lib.evidence.trust import anchor_for

    (project / "work" / "ci").mkdir(parents=True)
    sqlite3.connect(project / "work" / "ci" / "target.db").close()  # an empty target
    return anchor_for(load_params("ci", project_root=project))


@pytest.fixture
def anchored_chain(project, ci_anchor) -> Path:
    return _chain(project, Trust(anchor=ci_anchor))


def cut_newest_run(env_dir: Path) -> None:
    """Remove the newest run folder and its lines, which are the ledger's tail."""
    newest = sorted(p for p in env_dir.iterdir() if p.is_dir())[-1]
    shutil.rmtree(newest)
    path = env_dir / "ledger.jsonl"
    kept = [line for line in path.read_text().splitlines() if newest.name not in line]
    path.write_text("".join(line + "\n" for line in kept))


def test_every_seal_records_its_line_in_the_targets_runbook_ledger(anchored_chain, ci_anchor):
    entries, _ = ledger.read(anchored_chain / "ledger.jsonl")
    lines = ci_anchor.lines()
    assert [(a.seq, a.entry_sha256, a.run_id) for a in lines] == [
        (e.seq, e.entry_sha256, e.run_id) for e in entries
    ]
    assert lines[-1].facts["stages"]["assessment"]["status"] == "passed"
    assert lines[-1].facts["status"] == "passed"
    manifest = json.loads((anchored_chain / RUNS[0] / "manifest.json").read_text())
    assert manifest["anchor"] == {"table": "runbook_ledger", "in": "target (sqlite)"}
    assert verify_run(anchored_chain / RUNS[-1], anchored=lines).passed


def test_a_cutting_the_newest_run_and_its_ledger_tail_fails_verify_against_the_target(
    anchored_chain, capsys
):
    from runbook_lib.cli import main

    cut_newest_run(anchored_chain)
    assert verify_run(anchored_chain / RUNS[0]).passed  # the files alone still hold together
    assert main(["verify", "--env", "ci", "--against-target"]) == 3
    out = capsys.readouterr().out
    assert (
        f"line 4 (against the target): missing, though the target anchored it (run {RUNS[1]}" in out
    )
    assert "the ledger was cut" in out


def test_b_a_re_sealed_manifest_is_not_anchored_and_fails_verify_against_the_target(
    anchored_chain, ci_anchor, capsys
):
    from runbook_lib.cli import main

    run_dir = anchored_chain / RUNS[-1]
    rewrite_artifact(run_dir)
    forge_line(anchored_chain, run_dir)
    assert main(["verify", str(run_dir)]) == 0  # unsigned, the files hold together
    assert main(["verify", "--env", "ci", "--against-target"]) == 3
    assert "line 7 (against the target): not anchored in the target" in capsys.readouterr().out


def test_an_edited_line_that_was_anchored_fails_verify_against_the_target(
    anchored_chain, ci_anchor
):
    path = anchored_chain / "ledger.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[5]["detail"] = "failed"
    body = {k: v for k, v in lines[5].items() if k != "entry_sha256"}
    lines[5]["entry_sha256"] = hashlib.sha256(ledger.canonical_json(body).encode()).hexdigest()
    path.write_text("".join(ledger.canonical_json(line) + "\n" for line in lines[:6]))
    found = [
        p.render()
        for p in verify_run(anchored_chain / RUNS[0], anchored=ci_anchor.lines()).problems
    ]
    assert any(
        "line 6 (against the target): differs from the line the target anchored" in p for p in found
    )


def test_no_seal_launders_a_forged_line_into_the_anchor(anchored_chain, ci_anchor):
    run_dir = anchored_chain / RUNS[-1]
    rewrite_artifact(run_dir)
    forge_line(anchored_chain, run_dir)
    before = len(ci_anchor.lines())
    with pytest.raises(EvidenceError, match="no longer matches its anchor") as raised:
        with change_run(run_dir, "report", trust=Trust(anchor=ci_anchor)) as manifest:
            manifest.data["note"] = "after the forgery"
    assert "ledger line 7: not anchored in the target" in str(raised.value)
    assert len(ci_anchor.lines()) == before
    assert not (run_dir / "manifest.tmp").exists()


def test_a_run_recorded_with_an_anchor_refuses_a_seal_without_one(anchored_chain):
    with pytest.raises(EvidenceError, match="is anchored in target"):
        with change_run(anchored_chain / RUNS[0], "report") as manifest:
            manifest.data["note"] = "no anchor"


def test_the_first_seal_into_an_empty_anchor_records_the_lines_the_files_hold(project, ci_anchor):
    env_dir = _chain(project, Trust())
    _sealed_run(env_dir, "20260103T000000Z-cccccc", Trust(anchor=ci_anchor))
    assert [a.seq for a in ci_anchor.lines()] == list(range(1, 10))
    assert [a.facts is None for a in ci_anchor.lines()] == [True] * 6 + [False] * 3


def test_anchor_and_signature_together_name_the_key_the_target_recorded(project, ci_anchor, key):
    env_dir = _chain(project, Trust(signer=key, anchor=ci_anchor))
    assert {a.signer for a in ci_anchor.lines()} == {key.fingerprint}
    assert verify_run(env_dir / RUNS[0], anchored=ci_anchor.lines()).passed


@pytest.mark.postgres
def test_a_the_anchor_on_postgresql_catches_a_cut_tail(tmp_path, postgres_url):
    from runbook_lib.config.connections import make_engine

    engine = make_engine(postgres_url, poolclass=sa.pool.NullPool)
    anchor = Anchor(engine, "ci", "target (postgresql)")
    env_dir = _chain(tmp_path, Trust(anchor=anchor))
    assert verify_run(env_dir / RUNS[0], anchored=anchor.lines()).passed
    cut_newest_run(env_dir)
    found = [p.render() for p in verify_run(env_dir / RUNS[0], anchored=anchor.lines()).problems]
    assert sum("the ledger was cut" in p for p in found) == 3, found
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM runbook_ledger")).scalar() == 6


# --- (c) and (d): the gates read anchored facts (the runbook on the ci demo) ------------------


def _orders_in_target(project: Path) -> int:
    import sqlite3

    with sqlite3.connect(project / "work" / "ci" / "target.db") as connection:
        return connection.execute("SELECT count(*) FROM orders").fetchone()[0]


def flip_trial_scrap(notebook: Path) -> None:
    """Make the glued ``trial`` say passed: the one scrap the full load's gate reads."""
    data = json.loads(notebook.read_text())
    for cell in data["cells"]:
        for output in cell.get("outputs", []):
            scrap = output.get("data", {}).get("application/scrapbook.scrap.json+json")
            if scrap and scrap["name"] == "trial":
                scrap["data"]["passed"] = True
    notebook.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def reseal_trial_as_passed(run_dir: Path) -> None:
    """The manifest rewritten to the flipped notebook, and a matching ledger line, by hand."""
    flip_trial_scrap(run_dir / "02_trial.ipynb")
    path = run_dir / "manifest.json"
    data = json.loads(path.read_text())
    for stage in data["stages"]:
        if stage["name"] == "trial":
            stage.update(status="passed", sha256_notebook=sha256_file(run_dir / "02_trial.ipynb"))
            stage.pop("failure", None)
            stage.pop("error", None)
    data.update(status="passed", failed_stage=None)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    forge_line(run_dir.parent, run_dir)


def _gate_as_the_notebook_calls_it(project: Path, run_dir: Path) -> str:
    from runbook_lib.config.params import load_params
    from runbook_lib.errors import RunbookError
    from runbook_lib.run import stages
    from runbook_lib.run.context import StageContext

    context = StageContext(load_params("ci", project_root=project), run_dir)
    try:
        stages.backup_target(context)
    except RunbookError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        context.connections.dispose()
    return "no refusal"


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> dict:
    """One ci run through the attacks: (c) a failed trial flipped to passed and re-sealed by hand;
    the files restored; (d) the trial re-run and approved, then the params loosened."""
    from conftest import copy_project
    from helpers import runbook

    project = copy_project(tmp_path_factory.mktemp("insider") / "project")
    params = project / "params" / "ci.yaml"
    original = params.read_text()
    params.write_text(original.replace("max_reject_rate: 0.05", "max_reject_rate: 0.001"))
    runbook(project, "demo-data", "--env", "ci", check=True)
    steps: dict = {"project": project}
    steps["failed_trial"] = runbook(
        project, "run", "--env", "ci", "--stages", "assessment,mapping,trial"
    )
    run_dir = steps["run_dir"] = next((project / "outputs" / "ci").glob("2*"))
    run_id = run_dir.name
    kept = [run_dir.parent / "ledger.jsonl", run_dir / "manifest.json", run_dir / "02_trial.ipynb"]
    recorded = {path: path.read_bytes() for path in kept}

    # (c) flip the glued trial, re-seal by hand, and put the full load's own gate back as it was
    reseal_trial_as_passed(run_dir)
    params.write_text(original)
    steps["forged_verify_files"] = runbook(project, "verify", str(run_dir))
    steps["forged_load"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "full_load"
    )
    steps["orders_after_forged_load"] = _orders_in_target(project)
    steps["forged_gate"] = _gate_as_the_notebook_calls_it(project, run_dir)
    steps["forged_approve"] = runbook(
        project, "approve", "--env", "ci", "--run-id", run_id, "--operator", "alice"
    )
    steps["approval_after_forged_approve"] = (run_dir / "approval.json").exists()
    steps["forged_verify_target"] = runbook(project, "verify", "--env", "ci", "--against-target")
    for path, content in recorded.items():
        path.write_bytes(content)
    steps["restored_verify"] = runbook(project, "verify", "--env", "ci", "--against-target")

    # (d) a passed trial, approved; then the params loosened under that approval
    approved = original.replace("requires_approval: false", "requires_approval: true")
    params.write_text(approved)
    steps["trial_again"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "trial"
    )
    steps["approve"] = runbook(
        project, "approve", "--env", "ci", "--run-id", run_id, "--operator", "alice"
    )
    steps["approval"] = json.loads((run_dir / "approval.json").read_text())
    params.write_text(approved.replace("max_reject_rate: 0.05", "max_reject_rate: 0.5"))
    steps["loosened_load"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "full_load"
    )
    steps["orders_after_loosened_load"] = _orders_in_target(project)
    params.write_text(approved)
    steps["load"] = runbook(
        project, "run", "--env", "ci", "--run-id", run_id, "--stages", "full_load"
    )
    steps["orders_after_load"] = _orders_in_target(project)
    steps["verify_end"] = runbook(project, "verify", "--env", "ci", "--against-target")
    return steps


@pytest.mark.notebooks
def test_c_a_flipped_trial_scrap_re_sealed_by_hand_is_refused_by_the_full_load(story):
    assert story["failed_trial"].returncode == 1, story["failed_trial"].stderr
    assert story["forged_verify_files"].returncode == 0  # the files alone hold together
    result = story["forged_load"]
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no longer matches its anchor" in result.stderr
    assert "not anchored in the target" in result.stderr
    assert story["orders_after_forged_load"] == 0


@pytest.mark.notebooks
def test_c_the_full_loads_gate_itself_checks_the_trial_against_the_anchored_record(story):
    gate = story["forged_gate"]
    assert gate.startswith("EvidenceError: 02_trial.ipynb of run"), gate
    assert "is not the trial notebook the target anchored" in gate


@pytest.mark.notebooks
def test_c_a_forged_trial_cannot_be_approved_and_verify_against_the_target_names_it(story):
    result = story["forged_approve"]
    assert result.returncode == 3, result.stderr
    assert "is not the trial notebook the target anchored" in result.stderr
    assert story["approval_after_forged_approve"] is False
    verify = story["forged_verify_target"]
    assert verify.returncode == 3 and "not anchored in the target" in verify.stdout
    assert story["restored_verify"].returncode == 0, story["restored_verify"].stdout


@pytest.mark.notebooks
def test_d_params_changed_after_the_approval_make_it_outdated(story):
    assert story["trial_again"].returncode == 0, story["trial_again"].stderr
    assert story["approve"].returncode == 0, story["approve"].stderr
    approval = story["approval"]
    assert approval["params_file"] == "params/ci.yaml" and len(approval["params_sha256"]) == 64
    result = story["loosened_load"]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the params changed since alice approved run" in result.stderr
    assert "the approval is outdated" in result.stderr
    assert story["orders_after_loosened_load"] == 0


@pytest.mark.notebooks
def test_d_the_approved_params_still_load_and_everything_verifies_against_the_target(story):
    assert story["load"].returncode == 0, story["load"].stderr
    assert story["orders_after_load"] > 0
    assert story["verify_end"].returncode == 0, story["verify_end"].stdout


def test_verify_against_a_missing_sqlite_target_creates_nothing_and_fails(project, capsys):
    from runbook_lib.cli import main

    _chain(project, Trust())
    assert main(["verify", "--env", "ci", "--against-target"]) == 3
    assert "no line of this environment is anchored" in capsys.readouterr().out
    assert not (project / "work" / "ci" / "target.db").exists()
