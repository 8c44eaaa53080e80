"""Who ran a run, where, with which code and package versions: the manifest's provenance fields."""

from __future__ import annotations

import getpass
import os
import platform
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

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
    package = Path(__file__).resolve().parent.parent  # runbook_lib/, not this subpackage
    if not package.is_relative_to(project_root.resolve()):
        code = git_state(package)
        state["runbook_lib"] = {"path": str(package), **code}
    return state
