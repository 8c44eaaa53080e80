"""Run folders, glued results, the manifest and HTML exports: everything an auditor reads.

scrapbook (unmaintained) and nbconvert sit behind this module alone, so either can be replaced.
Only JSON-safe values are glued: ``json_safe`` is the one place that converts.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import subprocess
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
PACKAGES = (
    "runbook-lib",
    "papermill",
    "scrapbook",
    "nbformat",
    "nbconvert",
    "jupyterlab",
    "pandas",
    "SQLAlchemy",
    "plotly",
    "pydantic",
    "ipywidgets",
    "psycopg",
    "PyMySQL",
)


def new_run_id(now: datetime | None = None) -> str:
    """Sortable by time: UTC timestamp, then a short random suffix against collisions."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


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


def json_safe(value: Any) -> Any:
    """Convert numpy scalars, Decimals, datetimes, paths and tuples into plain JSON values."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot glue a {type(value).__name__}")


def glue(name: str, value: Any) -> None:
    """Record ``value`` in the executing notebook for later stages and auditors."""
    import scrapbook

    scrapbook.glue(name, json_safe(value), encoder="json")


def glue_figure(name: str, figure) -> None:
    """Glue a plotly figure as its JSON (scrapbook cannot glue figure objects)."""
    glue(name, json.loads(figure.to_json()))


def read_scraps(notebook: Path) -> dict[str, Any]:
    """Everything glued in an executed notebook, by name."""
    import scrapbook

    if not notebook.is_file():
        return {}
    return {
        name: scrap.data for name, scrap in scrapbook.read_notebook(str(notebook)).scraps.items()
    }


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_html(notebook: Path) -> Path:
    """An HTML copy of an executed notebook; plotly.js travels inside it, so it renders offline."""
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    with warnings.catch_warnings():
        # scrapbook's own mimetype has no HTML form; the glued values are shown by the cells
        warnings.filterwarnings("ignore", message=".*is not able to be represented")
        body, _resources = HTMLExporter(template_name="lab").from_notebook_node(node)
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def git_state(project_root: Path) -> dict[str, Any]:
    """The commit the run came from, and whether the working tree differed from it."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args],
                cwd=project_root,
                capture_output=True,
                text=True,
                check=True,
                timeout=20,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def operator_name(configured: str | None) -> str:
    """Who runs: from params, else ``RUNBOOK_OPERATOR``, else the OS user."""
    if configured:
        return configured
    try:
        return os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Manifest:
    """``manifest.json`` of one run folder, rewritten after every stage so a crash leaves a record."""

    def __init__(self, run_dir: Path, data: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.data = data

    @classmethod
    def create(cls, run_dir: Path, **fields: Any) -> Manifest:
        run_dir.mkdir(parents=True, exist_ok=False)
        manifest = cls(run_dir, {**fields, "stages": []})
        manifest.save()
        return manifest

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        return cls(run_dir, json.loads((run_dir / MANIFEST).read_text(encoding="utf-8")))

    def save(self) -> None:
        path = self.run_dir / MANIFEST
        temporary = path.with_suffix(".tmp")
        temporary.write_text(
            json.dumps(json_safe(self.data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        temporary.replace(path)

    def record_stage(self, entry: dict[str, Any]) -> None:
        """Replace the entry of a re-run stage, keep stage order."""
        stages = [s for s in self.data["stages"] if s["name"] != entry["name"]]
        stages.append(entry)
        stages.sort(key=lambda s: s["notebook"])
        self.data["stages"] = stages
        self.save()

    def stage_entry(self, notebook: Path, html: Path | None, **fields: Any) -> dict[str, Any]:
        entry = {**fields, "notebook": notebook.name, "sha256_notebook": sha256_file(notebook)}
        if html is not None and html.is_file():
            entry |= {"html": html.name, "sha256_html": sha256_file(html)}
        return entry
