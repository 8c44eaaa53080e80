"""A stage's output is the stage's own: no kernel or papermill noise on the operator's terminal.

papermill warns about a parameter it cannot read in a notebook's ``parameters`` cell (a help
comment holding a second ``=``) and then about every value it passes that the notebook seems not to
declare; ipykernel warns on every start that its local TCP sockets are unencrypted. The runner
passes ``env``, ``run_dir`` and, to the full load, ``mode``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nbformat
import papermill
import pytest

from runbook_lib.stage_table import STAGES

REPO = Path(__file__).resolve().parent.parent
PASSED = {
    name: {"env", "run_dir"} | ({"mode"} if name == "full_load" else set()) for name in STAGES
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_papermill_reads_every_parameter_the_runner_passes_without_a_warning(stage, caplog):
    caplog.set_level(logging.WARNING, logger="papermill")

    declared = papermill.inspect_notebook(str(REPO / "notebooks" / STAGES[stage].notebook))

    assert PASSED[stage] <= set(declared)
    assert [r.getMessage() for r in caplog.records] == []


def _tiny_project(root: Path) -> Path:
    """A project whose assessment notebook only prints its parameters (params/ from the repo)."""
    import shutil

    shutil.copytree(REPO / "params", root / "params")
    (root / "notebooks").mkdir()
    cell = nbformat.v4.new_code_cell('env: str = "dev"  # env\nrun_dir: str = ""  # run folder')
    cell.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(
        cells=[cell, nbformat.v4.new_code_cell("print('stage output', env)")],
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Py"}},
    )
    nbformat.write(notebook, root / "notebooks" / STAGES["assessment"].notebook)
    return root


@pytest.mark.notebooks
def test_a_stage_prints_its_own_output_and_no_kernel_warning(tmp_path, capfd):
    from runbook_lib.run import runner

    project = _tiny_project(tmp_path / "project")
    run_dir = project / "outputs" / "ci" / "run-1"
    run_dir.mkdir(parents=True)
    runner.quiet_papermill_logs()

    entry = runner.execute_stage("assessment", "ci", run_dir, project)

    out, err = capfd.readouterr()
    assert entry["status"] == "passed", entry
    assert "stage output ci" in out
    assert "IPKernelApp" not in err and "without encryption" not in err
    assert err.strip() == ""
    outputs = json.loads((run_dir / "00_assessment.ipynb").read_text())["cells"][-1]["outputs"]
    assert outputs[0]["text"] == ["stage output ci\n"]
