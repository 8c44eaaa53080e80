"""The validation notebook: thin, committed clean, and failing only after its evidence is glued.

The papermill test loads the ci demo with the library (as the full-load stage would, under the run
folder's id), changes one order's amount in the target, and executes ``04_validation`` alone on
that run folder: the stage must fail on the gate, and the notebook must still hold the glued
validation naming the changed key.
"""

from __future__ import annotations

import ast
import json
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa

from runbook_demo.build import build_demo
from runbook_lib.config.params import load_params
from runbook_lib.evidence import figures
from runbook_lib.evidence.scraps import read_scraps
from runbook_lib.load import loader
from runbook_lib.run.context import StageContext

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "04_validation.ipynb"
RUN_ID = "20261121T000000Z-abcdef"


def _code_cells():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in notebook.cells if c.cell_type == "code"]


def test_the_notebook_is_committed_with_outputs_cleared():
    for cell in _code_cells():
        assert cell.outputs == [] and cell.execution_count is None


def test_the_notebook_is_thin_parameters_calls_figures_glue_gate():
    cells = _code_cells()
    assert cells[0].metadata.get("tags") == ["parameters"]
    assert all("# " in line for line in cells[0].source.splitlines())  # each with its help
    for cell in cells:
        assert len(cell.source.splitlines()) <= 12
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(
                node, ast.FunctionDef | ast.ClassDef | ast.For | ast.While | ast.Lambda
            )
    glue = [c for c in cells if "glue(" in c.source]
    assert len(glue) == 1 and "nbval-ignore-output" in glue[0].metadata.get("tags", [])
    assert cells[-1].source.strip() == "validation.raise_if_failed()"


@pytest.mark.notebooks
def test_a_failed_gate_fails_the_stage_after_gluing_the_evidence(project):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    report = loader.load(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        run_id=RUN_ID,
        mode="full",
        chunk_size=500,
        max_reject_rate=0.05,
        target_label="target",
    )
    assert report.passed
    with ctx.target_engine().begin() as connection:
        key = connection.execute(
            sa.text("SELECT min(source_key) FROM orders WHERE source_system = 'legacy_b'")
        ).scalar_one()
        connection.execute(
            sa.text("UPDATE orders SET amount = :a WHERE source_key = :k"),
            {"a": str(Decimal("0.01")), "k": key},
        )
    ctx.target_engine().dispose()
    run_dir = project / "outputs" / "ci" / RUN_ID
    run_dir.mkdir(parents=True)
    output = run_dir / "04_validation.ipynb"
    with pytest.raises(PapermillExecutionError, match="GateFailedError"):
        papermill.execute_notebook(
            str(project / "notebooks" / "04_validation.ipynb"),
            str(output),
            parameters={"env": "ci", "run_dir": f"outputs/ci/{RUN_ID}"},
            cwd=str(project),
            kernel_name="python3",
            progress_bar=False,
        )
    validation = read_scraps(output)["validation"]
    assert validation["passed"] is False and validation["differences"] == 1
    (orders,) = [t for t in validation["tables"] if t["source_table"] == "sales_orders"]
    (difference,) = orders["difference_keys"]
    assert (difference["source_key"], difference["kind"], difference["columns"]) == (
        key,
        "changed",
        ["amount"],
    )
    assert "1 unexplained difference(s)" in " ".join(validation["failures"])
    # the dashboard and the tables were drawn before the gate
    text = output.read_text()
    assert "Differences found, by kind" in text and "expected → actual" in text


def test_the_dashboard_shows_rows_and_differences_per_source():
    validation = {
        "passed": False,
        "tables": [
            {
                "source_system": "legacy_a",
                "source_table": "orders",
                "target_table": "orders",
                "source_rows": 10,
                "loaded": 7,
                "merged": 0,
                "quarantined": 2,
                "filtered": 0,
                "differences_by_kind": {"missing": 1},
            }
        ],
    }
    figure = figures.reconciliation_dashboard(validation)
    bars = {trace.name: list(trace.y) for trace in figure.data}
    assert bars["source rows"] == [10] and bars["loaded"] == [7] and bars["quarantined"] == [2]
    assert bars["missing"] == [1] and bars["changed"] == [0]
    assert "FAILED" in figure.layout.title.text
    json.loads(figure.to_json())  # glue-able as JSON
