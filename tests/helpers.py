"""Set-ups several test files share: the ``runbook`` command in a subprocess, a stage context.

Fixtures live in ``conftest.py``; these are plain functions a test calls with its own arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNBOOK = [sys.executable, "-m", "runbook_lib.cli"]


def runbook(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
    operator: str | None = None,
    check: bool = False,
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    """Run ``runbook ARGS`` in ``project`` as a user would; ``check`` fails the test on exit != 0.

    ``env`` adds to (or overrides) this process's environment; ``operator`` sets
    ``RUNBOOK_OPERATOR``, the name the evidence records.
    """
    environ = {**os.environ, **(env or {})}
    if operator is not None:
        environ["RUNBOOK_OPERATOR"] = operator
    result = subprocess.run(
        [*RUNBOOK, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"runbook {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def ci_context(project: Path, run_dir: Path | None = None, stage: str | None = None):
    """The stage context of the ``ci`` environment of ``project`` (no notebook needed)."""
    from runbook_lib.config.params import load_params
    from runbook_lib.run.context import StageContext

    return StageContext(load_params("ci", project_root=project), run_dir, stage=stage)
