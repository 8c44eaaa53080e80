"""One run at a time per target: the lock ``runbook run``, ``sync`` and ``rollback`` hold.

Two locks, taken before anything is written, released when the command ends however it ends:

* ``outputs/<env>/run.lock``, beside the env's evidence and outside every run folder (``verify``
  looks only at folders holding a manifest), says who holds it: the run and command, operator,
  OS account, host, pid, since when. The process holds an operating-system lock (``flock``) on
  it; when the process dies — ``kill -9`` included — that lock goes and the file is stale: the
  next run takes it over and says whose it was, so ``--resume`` works as before;
* on PostgreSQL and MySQL/MariaDB, the target's advisory lock (``db.locks``), held by a session
  of its own, so environments or machines sharing one target exclude each other too.

A command that finds either taken raises ``RunLockedError`` (exit 1) naming the holder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from runbook_lib.config.connections import Connections, make_engine
from runbook_lib.config.params import LoadedParams
from runbook_lib.db.locks import advisory_lock
from runbook_lib.errors import RunLockedError
from runbook_lib.evidence.provenance import who_and_where
from runbook_lib.evidence.run_folder import runs_root, utc_now, writing

LOCK_FILE = "run.lock"
# A killed holder's database session ends a moment after its process: how long to wait for it.
STALE_SESSION_SECONDS = 15.0
Echo = Callable[[str], None]


@contextmanager
def hold(
    params: LoadedParams,
    *,
    run_id: str,
    command: str,
    stages: Sequence[str] = (),
    echo: Echo = print,
) -> Iterator[dict[str, Any]]:
    """Hold the env's lock file and the target's advisory lock while the block runs."""
    env_dir = runs_root(params.project_root, params.env)
    found = who_and_where(params.model.operator)
    info = {
        "run_id": run_id,
        "command": command,
        "stages": list(stages),
        "operator": found["operator"],
        "os_user": found["os_user"],
        "host": found["host"],
        "pid": os.getpid(),
        "since": utc_now(),
    }
    lock_file = _LockFile(env_dir / LOCK_FILE)
    with writing(env_dir):  # a read-only or full outputs/<env>/: said, before anything else
        stale = lock_file.acquire(info, params.env)
    try:
        if stale is not None:
            echo(
                f"took over the stale lock of env {params.env}: {describe(stale)} ended without "
                "releasing it (killed?)"
            )
        with _target_lock(params, info, wait=STALE_SESSION_SECONDS if stale else 0.0):
            yield info
    finally:
        lock_file.release()


def holder(env_dir: Path) -> dict[str, Any] | None:
    """Who holds ``env_dir``'s lock now; None when it is free (a stale file holds nothing)."""
    path = env_dir / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl = _fcntl()
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read(descriptor) or {"note": "its holder is writing who it is"}
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)


def refuse_if_busy(env_dir: Path, env: str) -> None:
    """Before a pre-flight: a busy env is said at once (``hold`` still decides, atomically)."""
    held = holder(env_dir)
    if held is not None:
        raise RunLockedError(busy_message(env, held), holder=held, hint=_BUSY_HINT.format(env=env))


_BUSY_HINT = (
    "wait for it to end (runbook status --env {env} says while it runs); "
    "a killed run's lock is taken over by the next run"
)


def describe(info: dict[str, Any]) -> str:
    """``runbook sync of run R (stages) by alice (alice@host, pid 12) since T``."""
    if "run_id" not in info:
        return info.get("note", "another runbook command")
    stages = f" ({', '.join(info['stages'])})" if info.get("stages") else ""
    return (
        f"runbook {info.get('command')} of run {info['run_id']}{stages} by {info.get('operator')} "
        f"({info.get('os_user')}@{info.get('host')}, pid {info.get('pid')}) since {info.get('since')}"
    )


def busy_message(env: str, info: dict[str, Any]) -> str:
    """What ``runbook status`` and a refused command say about a held lock."""
    return f"env {env} is busy: {describe(info)}; one run at a time per target"


class _LockFile:
    """``run.lock``: an ``flock`` on it, and who holds it written in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.descriptor: int | None = None

    def acquire(self, info: dict[str, Any], env: str) -> dict[str, Any] | None:
        """Take the lock or raise naming its holder; returns a stale holder's record, if any."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fcntl = _fcntl()
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is None:  # pragma: no cover - not POSIX: only the database lock excludes
                break
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = _read(descriptor) or {"note": "a command that is starting"}
                os.close(descriptor)
                raise RunLockedError(
                    busy_message(env, held),
                    holder=held,
                    hint=_BUSY_HINT.format(env=env),
                ) from None
            try:  # the file we locked may have been removed by a holder releasing it meanwhile
                if os.stat(self.path).st_ino == os.fstat(descriptor).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(descriptor)
        stale = _read(descriptor)
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, (json.dumps(info, indent=2) + "\n").encode("utf-8"), 0)
            os.fsync(descriptor)
        except OSError:  # a full disk: hold nothing, leave no half-written holder
            self.path.unlink(missing_ok=True)
            os.close(descriptor)
            raise
        self.descriptor = descriptor
        return stale

    def release(self) -> None:
        if self.descriptor is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: no one holds a removed file
        finally:
            os.close(self.descriptor)
            self.descriptor = None


@contextmanager
def _target_lock(params: LoadedParams, info: dict[str, Any], *, wait: float) -> Iterator[None]:
    """The target's advisory lock, where its dialect has one, on a session of its own."""
    url = Connections(params).url("target")
    lock = advisory_lock(url.get_backend_name())
    if lock is None:
        yield
        return
    engine = make_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    owner = f"runbook {info['command']} {info['run_id']} pid {info['pid']}@{info['host']}"
    try:
        try:
            connection = engine.connect()
        except sa.exc.DBAPIError:  # unreachable: nothing can write it; the stages will say so
            yield
            return
        with connection:
            deadline = time.monotonic() + wait
            while not lock.acquire(connection, owner):
                if time.monotonic() >= deadline:
                    label = f"target ({url.get_backend_name()})"
                    raise RunLockedError(
                        f"the {label} of env {params.env} is locked by {lock.holder(connection)}; "
                        "one run at a time per target",
                        holder={"database": lock.holder(connection)},
                        hint="another environment or machine is running against this target: "
                        "wait for it to end",
                    )
                time.sleep(0.5)
            try:
                yield
            finally:
                try:
                    lock.release(connection)
                except sa.exc.DBAPIError:  # the session is gone, and its lock with it
                    pass
    finally:
        engine.dispose()


def _read(descriptor: int) -> dict[str, Any] | None:
    """The holder's record in the lock file; None when empty or unreadable."""
    try:
        raw = os.pread(descriptor, 1 << 16, 0)
        found = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _fcntl():
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    return fcntl
