"""The `runbook` command as a user meets it: bad input stops early, failures name the stage."""

from __future__ import annotations

import hashlib
import json
from functools import partial

import pytest
import yaml
from helpers import runbook as run_cli

runbook = partial(run_cli, timeout=600)


def test_bad_params_file_fails_naming_file_and_field_and_writes_nothing(project):
    params = project / "params" / "ci.yaml"
    data = yaml.safe_load(params.read_text())
    data["gates"]["max_reject_rat"] = 0.1
    data["load"]["chunk_size"] = "lots"
    params.write_text(yaml.safe_dump(data))
    result = runbook(project, "run", "--env", "ci")
    assert result.returncode == 2
    assert "params/ci.yaml" in result.stderr
    assert (
        "gates.max_reject_rat: unknown field; valid fields here: max_reject_rate" in result.stderr
    )
    assert "load.chunk_size" in result.stderr and "valid integer" in result.stderr
    assert not (project / "outputs").exists()
    assert not (project / "work").exists()


def test_unset_url_variable_fails_before_any_run_folder_exists(project):
    result = runbook(
        project,
        "run",
        "--env",
        "staging",
        env={"STAGING_TARGET_URL": "", "STAGING_LEGACY_A_URL": ""},
    )
    assert result.returncode == 2
    assert "STAGING_LEGACY_A_URL is not set" in result.stderr
    assert not (project / "outputs").exists()


def test_unknown_stage_is_refused_with_the_valid_names(project):
    result = runbook(project, "run", "--env", "ci", "--stages", "assessment,fulload")
    assert result.returncode == 2
    assert "unknown stage(s) fulload" in result.stderr and "full_load" in result.stderr


def test_status_without_runs_says_so(project):
    result = runbook(project, "status")
    assert result.returncode == 0 and "no runs yet" in result.stdout


def test_a_new_environment_is_a_params_file_of_its_name_and_every_command_takes_it(project):
    data = yaml.safe_load((project / "params" / "ci.yaml").read_text())
    data.update(env="uat-2", work_dir="work/uat-2")
    for connection in [*data["sources"].values(), data["target"], data["trial_target"]]:
        connection["url"] = connection["url"].replace("work/ci/", "work/uat-2/")
    (project / "params" / "uat-2.yaml").write_text(yaml.safe_dump(data))
    built = runbook(project, "demo-data", "--env", "uat-2")
    assert built.returncode == 0, built.stderr
    assert (project / "work" / "uat-2" / "target.db").is_file()
    assert not (project / "work" / "ci").exists()  # the demo's own ci files are left alone
    status = runbook(project, "status", "--env", "uat-2")
    assert status.returncode == 0 and "no runs yet for env uat-2" in status.stdout


@pytest.mark.parametrize("name", ["../ci", "Prod"])
def test_an_unsafe_environment_name_exits_two_saying_what_a_name_is(project, name):
    result = runbook(project, "run", "--env", name)
    assert result.returncode == 2
    assert f"{name!r} is not an environment name" in result.stderr
    assert "lower-case letters, digits" in result.stderr
    assert not (project / "outputs").exists()


def test_an_environment_without_a_params_file_lists_those_there_are(project):
    result = runbook(project, "sync", "--env", "qa")
    assert result.returncode == 2
    assert "unknown environment 'qa': there is no params/qa.yaml" in result.stderr
    assert "environments here: ci, dev, prod, staging" in result.stderr


@pytest.mark.notebooks
def test_failed_stage_stops_the_run_exits_one_and_is_recorded(project):
    assert runbook(project, "demo-data", "--env", "ci").returncode == 0
    spec_path = project / "params" / "mapping" / "demo.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    del spec["targets"]["orders"]["sources"]["legacy_a.orders"]["columns"]["amount"]
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    result = runbook(project, "run", "--env", "ci")
    assert result.returncode == 1
    assert "stage mapping failed" in result.stderr
    run_dir = next(p.parent for p in (project / "outputs" / "ci").glob("*/manifest.json"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["failed_stage"] == "mapping"
    assert [s["name"] for s in manifest["stages"]] == ["assessment", "mapping"]
    assert "required target column orders.amount is not mapped" in manifest["stages"][1]["error"]
    # why it failed crossed papermill as data, not as a traceback to parse
    failure = manifest["stages"][1]["failure"]
    assert failure["type"] == "MappingSpecError" and failure["exit_code"] == 2
    assert (
        "orders.amount" in failure["message"]
        and failure["hint"] == "fix the spec; nothing was written"
    )
    assert "fix the spec; nothing was written" in result.stderr
    assert (run_dir / "01_mapping.html").is_file()  # the failed stage still leaves its evidence
    assert not (run_dir / "02_trial.ipynb").exists()


def test_rerun_of_an_unknown_run_id_is_refused(project):
    result = runbook(project, "run", "--env", "ci", "--run-id", "20990101T000000Z-abcdef")
    assert result.returncode == 2 and "no run 20990101T000000Z-abcdef" in result.stderr


@pytest.mark.parametrize("env", ["dev", "ci", "staging", "prod"])
def test_every_shipped_params_file_validates(env):
    from runbook_lib.config.params import load_params

    assert load_params(env).env == env


@pytest.mark.notebooks
def test_resume_continues_a_failed_run_at_its_failed_stage(project):
    assert runbook(project, "demo-data", "--env", "ci").returncode == 0
    params = project / "params" / "ci.yaml"
    data = yaml.safe_load(params.read_text())
    data["gates"]["max_reject_rate"] = 0.0001  # the trial's gate fails
    params.write_text(yaml.safe_dump(data))
    failed = runbook(project, "run", "--env", "ci")
    assert failed.returncode == 1 and "stage trial failed" in failed.stderr
    run_dir = next(p.parent for p in (project / "outputs" / "ci").glob("*/manifest.json"))
    trial = json.loads((run_dir / "manifest.json").read_text())["stages"][2]
    assert trial["failure"]["type"] == "GateFailedError"
    assert "triage the rejects by rule" in trial["failure"]["hint"]
    data["gates"]["max_reject_rate"] = 0.05  # the lead accepts the quarantine and resumes
    params.write_text(yaml.safe_dump(data))
    resumed = runbook(project, "run", "--env", "ci", "--resume", run_dir.name)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {run_dir.name} at trial" in resumed.stdout
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "passed"
    # the manifest records the params the resume ran with, each invocation its own
    assert manifest["params"]["gates"]["max_reject_rate"] == 0.05
    assert manifest["params_sha256"] == hashlib.sha256(params.read_bytes()).hexdigest()
    first, second = (i["params_sha256"] for i in manifest["invocations"])
    assert first != second == manifest["params_sha256"]
    assert [s["name"] for s in manifest["stages"]] == [
        "assessment",
        "mapping",
        "trial",
        "full_load",
        "validation",
    ]
    assert runbook(project, "verify", str(run_dir)).returncode == 0
    nothing_left = runbook(project, "run", "--env", "ci", "--resume", run_dir.name)
    assert nothing_left.returncode == 2 and "nothing to resume" in nothing_left.stderr


@pytest.mark.notebooks
def test_sync_applies_new_source_rows_in_a_run_of_its_own(project):
    import sqlite3

    assert runbook(project, "demo-data", "--env", "ci").returncode == 0
    assert runbook(project, "run", "--env", "ci").returncode == 0
    with sqlite3.connect(project / "work" / "ci" / "legacy_a.db") as connection:
        top = connection.execute("SELECT max(id) FROM user_events").fetchone()[0]
        connection.executemany(
            "INSERT INTO user_events VALUES (?, 1, 'view', 'SKU-00001', '2024-12-31 09:00:00')",
            [(top + 1,), (top + 2,)],
        )
    result = runbook(project, "sync", "--env", "ci")
    assert result.returncode == 0, result.stderr
    from runbook_lib.evidence.scraps import read_scraps

    runs = sorted(p.parent for p in (project / "outputs" / "ci").glob("*/manifest.json"))
    sync_run = runs[-1]
    glued = read_scraps(sync_run / "03_full_load.ipynb")["full_load"]
    assert glued["mode"] == "incremental" and glued["inserted"] == 2
    assert read_scraps(sync_run / "04_validation.ipynb")["validation"]["passed"] is True


def test_an_unexpected_error_exits_70_scrubbed_and_debug_shows_its_traceback(monkeypatch, capsys):
    from runbook_lib import cli

    def broken(_args):
        raise RuntimeError("cannot reach postgresql://app:S3cr3tPw@db:5432/x")

    monkeypatch.setattr(cli, "_status", broken)
    assert cli.main(["status"]) == 70
    err = capsys.readouterr().err
    assert "unexpected error (a bug): RuntimeError" in err and "--debug" in err
    assert "S3cr3tPw" not in err and "Traceback" not in err
    assert cli.main(["--debug", "status"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "in broken" in err and "S3cr3tPw" not in err


def test_ctrl_c_exits_130_saying_how_to_resume(monkeypatch, capsys):
    from runbook_lib import cli

    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_status", interrupted)
    assert cli.main(["status"]) == 130
    assert "--resume" in capsys.readouterr().err


def test_damaged_evidence_exits_three(project):
    from runbook_lib.errors import EXIT_EVIDENCE, EvidenceError

    assert EvidenceError("x").exit_code == EXIT_EVIDENCE == 3
    (project / "outputs" / "ci").mkdir(parents=True)
    (project / "outputs" / "ci" / "ledger.jsonl").write_text("not a ledger line\n")
    result = runbook(project, "run", "--env", "ci")
    assert result.returncode == 3 and "ledger.jsonl line 1" in result.stderr
    assert not [p for p in (project / "outputs" / "ci").iterdir() if p.is_dir()]
