"""Evidence that cannot be written: a full disk, a read-only ``outputs/``.

The run stops with an ``EvidenceWriteError`` (exit 3) naming the folder and its free space; every
evidence write is whole or undone, so the manifest and the ledger stay as last recorded (``verify``
passes), and the run resumes once space is back. A read-only folder is real (``chmod``, and
``chattr +i`` where the tests run as root, whom modes do not stop); a full disk is simulated at
the one place evidence bytes reach the disk (``run_folder._write``, ``ledger._write``): the write
puts half its bytes down, then fails with ``ENOSPC``, as a filling disk does.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from contextlib import contextmanager

import pytest
from helpers import runbook
from test_bad_input import sqlite_files

from runbook_lib.errors import EXIT_EVIDENCE, EvidenceWriteError
from runbook_lib.evidence import ledger, run_folder
from runbook_lib.evidence.record import change_run, open_run
from runbook_lib.evidence.verify import verify_run

RUN = "20260101T000000Z-aaaaaa"


def full_disk(monkeypatch, *modules) -> None:
    """From now on every evidence write through ``modules`` writes half its bytes, then ENOSPC."""

    def write(handle, data: bytes) -> None:
        handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for module in modules or (run_folder, ledger):
        monkeypatch.setattr(module, "_write", write)


def snapshot(env_dir) -> dict[str, bytes]:
    return {
        str(p.relative_to(env_dir)): p.read_bytes()
        for p in sorted(env_dir.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def opened(project):
    run_dir = project / "outputs" / "ci" / RUN
    open_run(run_dir, "assessment", run_id=RUN, env="ci", status="running")
    return run_dir


def test_a_full_disk_while_writing_the_manifest_leaves_manifest_and_ledger_as_recorded(opened):
    before = snapshot(opened.parent)
    with pytest.MonkeyPatch.context() as disk, pytest.raises(EvidenceWriteError) as info:
        full_disk(disk, run_folder)
        with change_run(opened, "stage", "assessment passed") as manifest:
            manifest.data["status"] = "passed"

    message = str(info.value)
    assert str(opened) in message and "the disk is full" in message
    assert "free space there:" in message and "MiB" in message
    assert info.value.exit_code == EXIT_EVIDENCE and info.value.free_bytes is not None
    assert snapshot(opened.parent) == before  # no manifest.tmp, no ledger line
    assert verify_run(opened).passed

    # space is back: the same change is recorded
    with change_run(opened, "stage", "assessment passed") as manifest:
        manifest.data["status"] = "passed"
    assert verify_run(opened).passed
    assert run_folder.Manifest.load(opened).data["status"] == "passed"


def test_a_full_disk_half_way_through_a_ledger_line_cuts_the_half_line_off(opened):
    before = snapshot(opened.parent)
    with pytest.MonkeyPatch.context() as disk, pytest.raises(EvidenceWriteError) as info:
        full_disk(disk, ledger)
        with change_run(opened, "stage", "assessment passed") as manifest:
            manifest.data["status"] = "passed"

    assert str(opened.parent) in str(info.value)
    assert snapshot(opened.parent) == before
    assert ledger.read(opened.parent / "ledger.jsonl")[1] == []  # no damaged line
    assert verify_run(opened).passed


def test_a_run_that_cannot_open_for_a_full_disk_leaves_no_folder_behind(project):
    env_dir = project / "outputs" / "ci"
    first = env_dir / RUN
    open_run(first, "x", run_id=RUN, env="ci", status="passed")
    before = snapshot(env_dir)

    with pytest.MonkeyPatch.context() as disk, pytest.raises(EvidenceWriteError):
        full_disk(disk)
        open_run(env_dir / "20260102T000000Z-bbbbbb", "x", run_id="x2", env="ci", status="running")

    assert snapshot(env_dir) == before
    assert sorted(p.name for p in env_dir.iterdir() if p.is_dir()) == [RUN]
    assert verify_run(first).passed


@contextmanager
def read_only(folder):
    """``folder`` made read-only for real: its mode, and the immutable flag when we are root."""
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None
    folder.chmod(0o555)
    try:
        if immutable:
            subprocess.run(["chattr", "+i", str(folder)], check=True)
        probe = folder / "probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("cannot make a folder read-only here")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        folder.chmod(0o755)


def test_a_read_only_outputs_folder_exits_three_naming_it_and_its_free_space(project):
    sqlite_files(project)
    env_dir = project / "outputs" / "ci"
    env_dir.mkdir(parents=True)

    with read_only(env_dir):
        result = runbook(project, "run", "--env", "ci", timeout=120)

    assert result.returncode == EXIT_EVIDENCE, result.stderr
    assert "cannot write evidence in" in result.stderr and "outputs/ci" in result.stderr
    assert "not writable" in result.stderr and "free space there:" in result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert list(env_dir.iterdir()) == []


def test_a_read_only_run_folder_refuses_a_rerun_and_leaves_it_verifiable(opened):
    before = snapshot(opened.parent)
    with read_only(opened):
        with pytest.raises(EvidenceWriteError) as info:
            with change_run(opened, "reopen", "mapping") as manifest:
                manifest.data["status"] = "running"
    assert str(opened) in str(info.value)
    assert snapshot(opened.parent) == before
    assert verify_run(opened).passed


@pytest.mark.notebooks
def test_a_run_that_fills_the_disk_stops_clearly_and_resumes_once_space_is_back(
    project,
):
    from runbook_demo.build import build_demo
    from runbook_lib.run import runner

    build_demo("ci", project)
    real_execute = runner.execute_stage

    with pytest.MonkeyPatch.context() as disk, pytest.raises(EvidenceWriteError) as info:

        def execute_then_fill_the_disk(stage, *args, **kwargs):
            entry = real_execute(stage, *args, **kwargs)
            if stage == "mapping":
                full_disk(disk)  # the stage ran; the disk fills before it is recorded
            return entry

        disk.setattr(runner, "execute_stage", execute_then_fill_the_disk)
        runner.run("ci", project, stages=["assessment", "mapping"], echo=lambda _line: None)

    (run_dir,) = [p for p in (project / "outputs" / "ci").iterdir() if p.is_dir()]
    assert "the disk is full" in str(info.value) and "free space there:" in str(info.value)
    assert f"--resume {run_dir.name}" in str(info.value)
    manifest = run_folder.Manifest.load(run_dir).data
    assert [(s["name"], s["status"]) for s in manifest["stages"]] == [("assessment", "passed")]
    assert not (run_dir / "01_mapping.ipynb").exists()  # never recorded, not kept
    assert not (project / "outputs" / "ci" / "run.lock").exists()
    assert verify_run(run_dir).passed

    # space is back
    assert runner.stages_to_resume(run_dir)[0] == "mapping"
    outcome = runner.run(
        "ci", project, stages=["mapping"], run_id=run_dir.name, echo=lambda _line: None
    )
    assert outcome.status == "passed"
    assert verify_run(run_dir).passed


def test_a_full_disk_after_the_target_anchored_the_line_retracts_the_anchor(project):
    from runbook_lib.config.params import load_params
    from runbook_lib.evidence.trust import Trust, anchor_for

    sqlite_files(project, names=("target",))
    anchor = anchor_for(load_params("ci", project_root=project))
    trust = Trust(anchor=anchor)
    run_dir = project / "outputs" / "ci" / RUN
    open_run(run_dir, "assessment", trust=trust, run_id=RUN, env="ci", status="running")
    before, anchored = snapshot(run_dir.parent), [(a.seq, a.entry_sha256) for a in anchor.lines()]

    with pytest.MonkeyPatch.context() as disk, pytest.raises(EvidenceWriteError):
        full_disk(disk, ledger)  # the target takes the anchor, then the ledger file is full
        with change_run(run_dir, "stage", "assessment passed", trust=trust) as manifest:
            manifest.data["status"] = "passed"

    assert snapshot(run_dir.parent) == before
    assert [(a.seq, a.entry_sha256) for a in anchor.lines()] == anchored
    # space is back: the next seal is anchored and verifies against the target
    with change_run(run_dir, "stage", "assessment passed", trust=trust) as manifest:
        manifest.data["status"] = "passed"
    assert verify_run(run_dir, anchored=anchor.lines()).passed
