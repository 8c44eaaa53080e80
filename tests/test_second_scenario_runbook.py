"""The whole runbook, notebooks and all, on the second scenario (HR + sales), as a user runs it.

A project (the ``hr_project`` fixture in conftest.py) gets ``params/hr.yaml`` (the scenario's
template: any environment name works), the legacy store built by the scenario's builder and the
new schema from its DDL — on SQLite, and with a PostgreSQL target and trial target — then
``runbook run --env hr`` and ``runbook rollback``.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from helpers import runbook

from runbook_lib.evidence.scraps import read_scraps

pytestmark = pytest.mark.notebooks


def test_the_runbook_passes_on_the_second_scenario_and_rolls_back_exactly(hr_project):
    project, planted, targets, environ = hr_project
    result = runbook(project, "run", "--env", "hr", env=environ, check=True)
    assert "passed" in result.stdout
    run_dir = next((project / "outputs" / "hr").glob("2*"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "passed"
    load = read_scraps(run_dir / "03_full_load.ipynb")["full_load"]
    assert {t["source_table"]: t["quarantined_by_rule"] for t in load["tables"]} == {
        table: t["quarantined"] for table, t in planted["tables"].items()
    }
    validation = read_scraps(run_dir / "04_validation.ipynb")["validation"]
    assert validation["differences"] == 0 and validation["orphans"] == 0
    checks = {c["name"]: c for c in validation["checks"]}
    introduced = planted["checks"]["invoice_total_matches_lines"]["target"]["introduced"]
    assert [k["key"] for k in checks["invoice_total_matches_lines"]["new_keys"]] == [
        str(k) for k in introduced
    ]
    trial = read_scraps(run_dir / "02_trial.ipynb")["trial"]
    assert trial["passed"] and trial["validation"]["differences"] == 0
    page = (run_dir / "index.html").read_text()
    assert "Cross-table checks" in page and "invoice_total_matches_lines" in page
    engine = sa.create_engine(targets["target"])
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM people")).scalar() == (
            planted["tables"]["employee"]["loaded"] + planted["tables"]["customer"]["loaded"]
        )
    rolled = runbook(
        project, "rollback", "--env", "hr", "--run-id", run_dir.name, env=environ, check=True
    )
    assert "rolled back" in rolled.stdout
    proof = read_scraps(run_dir / "05_rollback.ipynb")["rollback"]
    assert proof["passed"] and all(t["equal"] for t in proof["tables"])
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM people")).scalar() == 0
    engine.dispose()
    assert runbook(project, "verify", str(run_dir)).returncode == 0
