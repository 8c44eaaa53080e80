"""Run folders, glued results, the manifest and HTML exports: everything an auditor reads.

scrapbook (unmaintained) and nbconvert sit behind this module alone, so either can be replaced.
Only JSON-safe values are glued: ``json_safe`` is the one place that converts. Importing this
module inside a kernel (every stage notebook does) scrubs secrets from the kernel's tracebacks.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from runbook_lib.privacy import scrub

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


# the lab template, minus every script it would fetch: require.js, MathJax, mermaid, widgets
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
# plotly's notebook renderer adds a MathJax <script src="https://cdn..."> to every figure
_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>", re.IGNORECASE
)


def export_html(notebook: Path) -> Path:
    """An HTML copy of an executed notebook that makes no network request when opened.

    plotly.js travels inside it (embedded once by the notebook renderer); the template's CDN
    scripts are left out and the per-figure MathJax script tags are dropped from the copy.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    for cell in node.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if html:
                text = "".join(html) if isinstance(html, list) else html
                output["data"]["text/html"] = _EXTERNAL_SCRIPT.sub("", text)
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"runbook_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="runbook_offline.html.j2",
    )
    with warnings.catch_warnings():
        # scrapbook's own mimetype has no HTML form; the glued values are shown by the cells
        warnings.filterwarnings("ignore", message=".*is not able to be represented")
        body, _resources = exporter.from_notebook_node(node)
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


def git_state(folder: Path) -> dict[str, Any]:
    """The commit ``folder`` is checked out at, and whether its tracked files differ from it."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args],
                cwd=folder,
                capture_output=True,
                text=True,
                check=True,
                timeout=20,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def os_user() -> str:
    """The account running this process."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def operator_name(configured: str | None) -> str:
    """Who runs: from params, else ``RUNBOOK_OPERATOR``, else the OS user."""
    return configured or os.environ.get("RUNBOOK_OPERATOR") or os_user()


def who_and_where(configured_operator: str | None) -> dict[str, Any]:
    """The operator, the OS account, the host and the interpreter of this invocation."""
    return {
        "operator": operator_name(configured_operator),
        "os_user": os_user(),
        "host": platform.node(),
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
    }


def code_state(project_root: Path) -> dict[str, Any]:
    """Git state of the project, and of the installed ``runbook_lib`` when it lives elsewhere."""
    state = git_state(project_root)
    package = Path(__file__).resolve().parent
    if not package.is_relative_to(project_root.resolve()):
        code = git_state(package)
        state["runbook_lib"] = {"path": str(package), **code}
    return state


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
        run_dir.mkdir(parents=True, exist_ok=False)
        return cls(run_dir, {**fields, "stages": []})

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        return cls(run_dir, json.loads((run_dir / MANIFEST).read_text(encoding="utf-8")))

    @property
    def pending_path(self) -> Path:
        """Where the next version is written before it replaces ``manifest.json``."""
        return self.path.with_suffix(".tmp")

    def write_pending(self) -> Path:
        """Write the next version beside the current one (``seal`` records it, then commits it)."""
        self.pending_path.write_text(
            json.dumps(json_safe(self.data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return self.pending_path

    def commit_pending(self) -> None:
        self.pending_path.replace(self.path)

    def save(self) -> None:
        """Write ``manifest.json`` without recording it (evidence goes through ``ledger.seal``)."""
        self.write_pending()
        self.commit_pending()

    def record_stage(self, entry: dict[str, Any]) -> None:
        """Replace the entry of a re-run stage, keep stage order."""
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
            if "sha256_notebook" in stage:
                found[stage["notebook"]] = stage["sha256_notebook"]
            if "sha256_html" in stage:
                found[stage["html"]] = stage["sha256_html"]
        for role in RUN_ARTIFACTS:
            if isinstance(self.data.get(role), dict) and "sha256" in self.data[role]:
                found[self.data[role]["file"]] = self.data[role]["sha256"]
        return found

    def stage_entry(self, notebook: Path, html: Path | None, **fields: Any) -> dict[str, Any]:
        entry = {**fields, "notebook": notebook.name, "sha256_notebook": sha256_file(notebook)}
        if html is not None and html.is_file():
            entry |= {"html": html.name, "sha256_html": sha256_file(html)}
        return entry


RUN_ARTIFACTS = ("report", "approval")


scrub.protect_kernel()
