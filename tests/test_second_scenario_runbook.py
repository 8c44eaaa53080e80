"""The whole runbook, notebooks and all, on the second scenario (HR + sales), as a user runs it.

A project gets ``params/hr.yaml`` (the scenario's template: any environment name works), the
legacy store built by the scenario's builder and the new schema from its DDL — on SQLite, and with
a PostgreSQL target and trial target — then ``runbook run --env hr`` and ``runbook rollback``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from helpers import runbook

sys.path.insert(0, str(Path(__file__).parent / "scenarios"))

from hr_sales.legacy import build_legacy  # noqa: E402
from hr_sales.target import create_target  # noqa: E402

from runbook_lib.evidence.scraps import read_scraps  # noqa: E402

pytestmark = pytest.mark.notebooks
SCENARIO = Path(__file__).parent / "scenarios" / "hr_sales"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hr_project(request, project):
    params = yaml.safe_load((SCENARIO / "params.yaml.template").read_text())
    (project / "tests" / "scenarios").mkdir(parents=True)
    spec = project / "params" / "mapping" / "hr_sales.yaml"
    spec.write_text((SCENARIO / "spec.yaml").read_text())
    params["mapping"] = "params/mapping/hr_sales.yaml"
    # the one invoice whose quarantined return line breaks its total: named, then accepted
    params["gates"]["max_new_check_violations"] = 1
    work = project / "work" / "hr"
    work.mkdir(parents=True)
    planted = build_legacy(f"sqlite:///{work / 'store.db'}")
    environ = {}
    if request.param == "sqlite":
        targets = {
            "target": f"sqlite:///{work / 'target.db'}",
            "trial_target": f"sqlite:///{work / 'trial_target.db'}",
        }
    else:
        url = request.getfixturevalue("postgres_url")
        trial = request.getfixturevalue("second_postgres_url")
        targets = {
            "target": url.render_as_string(hide_password=False),
            "trial_target": trial.render_as_string(hide_password=False),
        }
        params["target"] = {"url_env": "HR_TARGET_URL"}
        params["trial_target"] = {"url_env": "HR_TRIAL_TARGET_URL"}
        environ = {
            "HR_TARGET_URL": targets["target"],
            "HR_TRIAL_TARGET_URL": targets["trial_target"],
        }
    for url in targets.values():
        create_target(url)
    (project / "params" / "hr.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project, planted, targets, environ


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
