"""One run at a time per target: ``runbook run``, ``sync`` and ``rollback`` hold a lock while they run.

Two locks, taken before anything is written and released when the command ends, however it ends:

* ``outputs/<env>/run.lock``, beside the env's evidence (outside every run folder): who holds it
  (operator, OS account, host, pid), the run and command, since when. The kernel's file lock on it
  goes with the process, so the lock of a killed run (``kill -9``) is stale: the next run takes it
  over and says so, and ``--resume`` works as before;
* on PostgreSQL and MySQL/MariaDB, an advisory lock in the target database
  (``pg_try_advisory_lock``, ``GET_LOCK``) held by a session of its own, so two environments (or
  machines) pointed at one target exclude each other too; the server frees it when the session
  dies.

A second command exits 1 at once, naming who holds the lock; nothing is written.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import pytest
import yaml
from helpers import runbook as run_cli

from runbook_lib.config.params import load_params
from runbook_lib.errors import RunLockedError
from runbook_lib.evidence.record import open_run
from runbook_lib.evidence.verify import verify_run
from runbook_lib.run import lock

runbook = partial(run_cli, operator="lock-test", timeout=120)
RUN = "20260101T000000Z-aaaaaa"


def _params(project: Path, env: str = "ci"):
    return load_params(env, project_root=project)


def _hold(project: Path, env: str = "ci", run_id: str = RUN, notes: list | None = None):
    return lock.hold(
        _params(project, env),
        run_id=run_id,
        command="sync",
        stages=["mapping", "full_load", "validation"],
        echo=(notes if notes is not None else []).append,
    )


def test_a_second_run_sync_or_rollback_of_the_env_exits_one_at_once_naming_the_holder(project):
    open_run(project / "outputs" / "ci" / RUN, "rollback", run_id=RUN, env="ci", status="passed")
    with _hold(project):
        recorded = json.loads((project / "outputs" / "ci" / "run.lock").read_text())
        results = {}
        for args in (["run"], ["sync"], ["rollback", "--run-id", RUN]):
            started = time.monotonic()
            results[args[0]] = (runbook(project, *args, "--env", "ci"), time.monotonic() - started)

    assert recorded["pid"] == os.getpid() and recorded["host"] == socket.gethostname()
    assert (recorded["run_id"], recorded["command"]) == (RUN, "sync")
    for command, (result, seconds) in results.items():
        assert result.returncode == 1, (command, result.stderr)
        assert seconds < 30, command
        assert (
            f"env ci is busy: runbook sync of run {RUN} (mapping, full_load, validation) by "
            f"{recorded['operator']} ({recorded['os_user']}@{recorded['host']}, pid {os.getpid()}) "
            f"since {recorded['since']}"
        ) in result.stderr
        assert "one run at a time per target" in result.stderr
    runs = [p.name for p in (project / "outputs" / "ci").iterdir() if p.is_dir()]
    assert runs == [RUN]  # no run folder was opened


def test_the_lock_is_released_however_the_command_ends(project):
    with _hold(project):
        pass
    assert not (project / "outputs" / "ci" / "run.lock").exists()
    with pytest.raises(RuntimeError), _hold(project):
        raise RuntimeError("a stage crashed")
    assert lock.holder(project / "outputs" / "ci") is None
    with _hold(project):  # free again
        assert lock.holder(project / "outputs" / "ci")["run_id"] == RUN


def test_a_lock_in_another_env_does_not_stop_this_one(project):
    data = yaml.safe_load((project / "params" / "ci.yaml").read_text())
    data["env"] = "ci2"
    for connection in [*data["sources"].values(), data["target"], data["trial_target"]]:
        connection["url"] = connection["url"].replace("work/ci/", "work/ci2/")
    (project / "params" / "ci2.yaml").write_text(yaml.safe_dump(data))
    with _hold(project, "ci"), _hold(project, "ci2", run_id="20260101T000000Z-bbbbbb"):
        assert lock.holder(project / "outputs" / "ci2")["run_id"] == "20260101T000000Z-bbbbbb"


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from runbook_lib.config.params import load_params
    from runbook_lib.run import lock

    params = load_params(sys.argv[2], project_root=Path(sys.argv[1]))
    with lock.hold(params, run_id=sys.argv[3], command="run", stages=["full_load"], echo=print):
        print("holding", flush=True)
        time.sleep(600)
    """
)


def _holder_killed(project: Path, env: str, run_id: str, environ: dict | None = None) -> int:
    """Start a process that holds the env's lock, SIGKILL it while it holds it; its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project), env, run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(environ or {})},
    )
    assert process.stdout.readline().strip() == "holding", process.stderr.read()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return process.pid


def _server_env(project: Path, env: str, url) -> dict:
    """Make ``env``'s target the database at ``url`` (by variable); the variable to set."""
    path = project / "params" / f"{env}.yaml"
    data = yaml.safe_load(path.read_text())
    data["target"] = {"url_env": "RUNBOOK_LOCK_TEST_TARGET"}
    path.write_text(yaml.safe_dump(data))
    return {"RUNBOOK_LOCK_TEST_TARGET": url.render_as_string(hide_password=False)}


def test_the_lock_of_a_killed_run_is_taken_over_with_a_note(project, databases, monkeypatch):
    environ = {} if databases.dialect == "sqlite" else _server_env(project, "ci", databases.new())
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    dead = _holder_killed(project, "ci", "20260101T000000Z-dead00", environ)
    stale = json.loads((project / "outputs" / "ci" / "run.lock").read_text())
    assert stale["pid"] == dead
    assert lock.holder(project / "outputs" / "ci") is None  # a stale file holds nothing

    notes: list[str] = []
    with _hold(project, notes=notes):
        assert lock.holder(project / "outputs" / "ci")["pid"] == os.getpid()

    assert notes == [
        f"took over the stale lock of env ci: runbook run of run 20260101T000000Z-dead00 "
        f"(full_load) by {stale['operator']} ({stale['os_user']}@{stale['host']}, pid {dead}) "
        f"since {stale['since']} ended without releasing it (killed?)"
    ]


@pytest.mark.parametrize("databases", ["postgresql", "mariadb"], indirect=True)
def test_two_envs_on_one_server_target_exclude_each_other_by_the_database_lock(
    project, databases, monkeypatch
):
    url = databases.new()
    data = yaml.safe_load((project / "params" / "ci.yaml").read_text())
    (project / "params" / "ci2.yaml").write_text(yaml.safe_dump({**data, "env": "ci2"}))
    for env in ("ci", "ci2"):
        for name, value in _server_env(project, env, url).items():
            monkeypatch.setenv(name, value)

    with _hold(project, "ci"):
        with pytest.raises(RunLockedError) as refused, _hold(project, "ci2", run_id="other"):
            pass
        assert not (project / "outputs" / "ci2" / "run.lock").exists()
    with _hold(project, "ci2", run_id="other"):  # free once the first run ended
        pass

    message = refused.value.message
    assert refused.value.exit_code == 1
    backend = {"postgresql": "postgresql", "mariadb": "mysql"}[databases.dialect]  # its driver
    assert message.startswith(f"the target ({backend}) of env ci2 is locked by ")
    assert "one run at a time per target" in message
    if databases.dialect == "postgresql":  # the session names the run holding it
        assert f"runbook sync {RUN} pid {os.getpid()}" in message


def test_verify_and_status_read_around_a_held_or_stale_lock(project):
    run_dir = project / "outputs" / "ci" / RUN
    open_run(run_dir, "assessment", run_id=RUN, env="ci", status="passed")
    _holder_killed(project, "ci", "20260101T000000Z-dead00")  # a stale lock file stays

    assert verify_run(run_dir).passed
    with _hold(project, run_id="20260102T000000Z-bbbbbb"):
        assert verify_run(run_dir).passed
        status = runbook(project, "status", "--env", "ci")
        assert status.returncode == 0
        assert "env ci is busy: runbook sync of run 20260102T000000Z-bbbbbb" in status.stdout
    assert runbook(project, "verify", str(run_dir)).returncode == 0
    assert "busy" not in runbook(project, "status", "--env", "ci").stdout


@pytest.mark.notebooks
def test_a_run_killed_during_its_load_resumes_taking_over_its_stale_lock(project):
    import sqlite3

    from helpers import RUNBOOK

    params = project / "params" / "ci.yaml"
    data = yaml.safe_load(params.read_text())
    data["load"]["chunk_size"] = 100  # many chunks: the kill lands inside the load
    params.write_text(yaml.safe_dump(data))
    runbook(project, "demo-data", "--env", "ci", check=True)
    process = subprocess.Popen(
        [*RUNBOOK, "run", "--env", "ci"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUNBOOK_OPERATOR": "lock-test"},
    )
    deadline = time.monotonic() + 300
    while True:
        assert process.poll() is None, "the run ended before its load could be killed"
        assert time.monotonic() < deadline, "the full load never started"
        try:
            with sqlite3.connect(project / "work" / "ci" / "target.db", timeout=1) as connection:
                query = "SELECT count(*) FROM runbook_checkpoints WHERE source_table = 'orders'"
                if connection.execute(query).fetchone()[0]:
                    break
        except sqlite3.OperationalError:
            pass  # the checkpoint table is not there yet
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # the runbook command; its kernel follows it
    process.wait(timeout=30)
    stale = json.loads((project / "outputs" / "ci" / "run.lock").read_text())
    assert stale["pid"] == process.pid

    resumed = runbook(project, "run", "--env", "ci", "--resume", stale["run_id"], timeout=600)

    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {stale['run_id']} at full_load" in resumed.stdout
    assert "took over the stale lock of env ci: runbook run of run " in resumed.stdout
    assert f"pid {process.pid}) since {stale['since']}" in resumed.stdout
    assert not (project / "outputs" / "ci" / "run.lock").exists()
    run_dir = project / "outputs" / "ci" / stale["run_id"]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "passed"
    assert runbook(project, "verify", str(run_dir)).returncode == 0
