"""A run's folder and its manifest: where a run's evidence lives and how its artifacts are listed.

``outputs/<env>/<run_id>/`` holds the executed notebooks, their HTML, the report, an approval
and ``manifest.json``, which lists the sha256 of every artifact. The manifest is only ever
written through ``record`` (require intact → change → seal in the ledger).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_lib.errors import EvidenceError, EvidenceWriteError, RunbookError
from runbook_lib.evidence.scraps import json_safe

MANIFEST = "manifest.json"


def new_run_id(now: datetime | None = None) -> str:
    """Sortable by time: UTC timestamp, then a short random suffix against collisions."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


# What a run id may be: it names a folder inside outputs/<env>/, so never a path (no '/', '.')
RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it can only name a folder in ``outputs/<env>/``; a usage error otherwise."""
    if not RUN_ID.fullmatch(run_id or ""):
        raise RunbookError(
            f"{run_id!r} is not a run id",
            hint="a run id names a folder in outputs/<env>/ (e.g. 20261201T152654Z-a1e5ce), never "
            "a path; runbook status lists them",
        )
    return run_id


def utc_now() -> str:
    """Now, as ISO 8601 UTC to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def runs_root(project_root: Path, env: str) -> Path:
    """The folder holding the run folders of ``env``."""
    return project_root / "outputs" / env


def list_runs(project_root: Path, env: str | None = None) -> list[Path]:
    """Run folders (holding a manifest), oldest first."""
    base = project_root / "outputs"
    envs = (
        [env]
        if env
        else sorted(p.name for p in base.iterdir() if p.is_dir())
        if base.is_dir()
        else []
    )
    runs = []
    for name in envs:
        folder = base / name
        if folder.is_dir():
            runs += sorted(p for p in folder.iterdir() if (p / MANIFEST).is_file())
    return runs


def latest_run(project_root: Path, env: str) -> Path | None:
    """The newest run folder of ``env``, if any."""
    runs = list_runs(project_root, env)
    return runs[-1] if runs else None


# A write of evidence fails for want of space or permission: said as such, never a traceback.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
)


def free_bytes(folder: Path) -> int | None:
    """Free space where ``folder`` is (or would be): its nearest existing ancestor's disk."""
    for candidate in (Path(folder), *Path(folder).parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def write_failure(folder: Path, error: OSError, hint: str | None = None) -> EvidenceWriteError:
    """The error of a failed evidence write: the folder, why, and the free space there."""
    free = free_bytes(folder)
    shown = "unknown" if free is None else f"{free / 2**20:,.1f} MiB"
    why = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EFBIG: "the file is too large for the disk",
        errno.EROFS: "the folder is on a read-only file system",
    }.get(error.errno, f"the folder is not writable ({os.strerror(error.errno or 0)})")
    return EvidenceWriteError(
        f"cannot write evidence in {folder}: {why}; free space there: {shown}",
        folder=str(folder),
        free_bytes=free,
        hint=hint
        or "free space or make the folder writable; nothing half-written was kept, the manifest "
        "and the ledger are as last recorded",
    )


@contextmanager
def writing(folder: Path, hint: str | None = None) -> Iterator[None]:
    """Turn a failed write in ``folder`` (space, permission) into an ``EvidenceWriteError``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise write_failure(folder, exc, hint) from None


def write_evidence(path: Path, data: bytes) -> None:
    """The one write of a whole evidence file: on failure no partial file is left behind."""
    try:
        with writing(path.parent):
            with path.open("wb") as handle:
                _write(handle, data)
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _write(handle, data: bytes) -> None:
    """Evidence bytes onto the disk (one place, where a full disk shows)."""
    handle.write(data)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """``manifest.json`` of one run folder; ``ledger.seal`` saves it and records its hash."""

    def __init__(self, run_dir: Path, data: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.data = data

    @property
    def path(self) -> Path:
        return self.run_dir / MANIFEST

    @classmethod
    def create(cls, run_dir: Path, **fields: Any) -> Manifest:
        """A new run folder and its manifest (in memory: seal it to write and record it)."""
        with writing(run_dir.parent):
            run_dir.mkdir(parents=True, exist_ok=False)
        return cls(run_dir, {**fields, "stages": []})

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        """The manifest of ``run_dir``; an ``EvidenceError`` naming it if it is not readable."""
        path = run_dir / MANIFEST
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EvidenceError(
                f"{path}: not readable as a manifest ({exc})",
                hint=f"runbook verify {run_dir} says what changed; the ledger holds its "
                "recorded sha256",
            ) from None
        if not isinstance(data, dict):
            raise EvidenceError(f"{path}: not readable as a manifest (not a JSON object)")
        return cls(run_dir, data)

    @property
    def pending_path(self) -> Path:
        """Where the next version is written before it replaces ``manifest.json``."""
        return self.path.with_suffix(".tmp")

    def write_pending(self) -> Path:
        """Write the next version beside the current one (``seal`` records it, then commits it)."""
        text = json.dumps(json_safe(self.data), indent=2, ensure_ascii=False) + "\n"
        write_evidence(self.pending_path, text.encode("utf-8"))
        return self.pending_path

    def commit_pending(self) -> None:
        self.pending_path.replace(self.path)

    def save(self) -> None:
        """Write ``manifest.json`` without recording it (evidence goes through ``ledger.seal``)."""
        self.write_pending()
        self.commit_pending()

    def stage(self, name: str) -> dict[str, Any] | None:
        """The entry of stage ``name``, if it ran (or is running) in this run."""
        return next((s for s in self.data.get("stages", []) if s["name"] == name), None)

    def record_stage(self, entry: dict[str, Any]) -> None:
        """Enter a stage's latest attempt; a re-run's earlier ones stay under ``attempts``.

        Stages stay in runbook order.
        """
        earlier = (self.stage(entry["name"]) or {}).get("attempts", [])
        entry = {**entry, "attempt": len(earlier) + 1}
        if earlier:
            entry["attempts"] = earlier
        stages = [s for s in self.data["stages"] if s["name"] != entry["name"]]
        stages.append(entry)
        stages.sort(key=lambda s: s["notebook"])
        self.data["stages"] = stages

    def record_artifact(self, role: str, path: Path, **fields: Any) -> None:
        """A run-level artifact (``report``, ``approval``): its file name and sha256."""
        self.data[role] = {"file": path.name, "sha256": sha256_file(path), **fields}

    def artifacts(self) -> dict[str, str]:
        """File name → sha256 of every artifact the manifest vouches for."""
        found = {}
        for stage in self.data.get("stages", []):
            for attempt in (*stage.get("attempts", ()), stage):
                if "sha256_notebook" in attempt:
                    found[attempt["notebook"]] = attempt["sha256_notebook"]
                if "sha256_html" in attempt:
                    found[attempt["html"]] = attempt["sha256_html"]
        for role in RUN_ARTIFACTS:
            if isinstance(self.data.get(role), dict) and "sha256" in self.data[role]:
                found[self.data[role]["file"]] = self.data[role]["sha256"]
        return found

    def stage_entry(self, notebook: Path, html: Path | None, **fields: Any) -> dict[str, Any]:
        entry = {**fields, "notebook": notebook.name, "sha256_notebook": sha256_file(notebook)}
        if html is not None and html.is_file():
            entry |= {"html": html.name, "sha256_html": sha256_file(html)}
        return entry


RUN_ARTIFACTS = ("report", "approval", "approval_cutover")
# What an earlier attempt of a stage keeps of its entry, besides its files (renamed) and hashes.
ATTEMPT_FIELDS = (
    "status",
    "started_at",
    "finished_at",
    "seconds",
    "failure",
    "error",
    "mapping_spec_sha256",
)


def attempt_name(file_name: str, attempt: int) -> str:
    """``04_validation.ipynb``, attempt 1 → ``04_validation.attempt-1.ipynb`` (same for HTML)."""
    path = Path(file_name)
    return f"{path.stem}.attempt-{attempt}{path.suffix}"
