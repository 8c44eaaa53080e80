"""The ci runbook end to end with ``engine: dask`` (a ``LocalCluster`` of two workers).

Same notebooks, same evidence: every stage passes, the full-load notebook glues the engine, the
plan and each partition's worker, attempts and time, and the target's every table hash equals
that of a local load of the same sources.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml
from helpers import runbook
from test_scale import digests, local_load

from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.params import load_params
from runbook_lib.evidence.scraps import read_scraps
from runbook_lib.run.context import StageContext

pytestmark = [pytest.mark.notebooks, pytest.mark.cluster]


def test_the_ci_runbook_on_dask_passes_and_loads_the_local_target(project):
    path = project / "params" / "ci.yaml"
    params = yaml.safe_load(path.read_text())
    params["engine"] = {"dask": {"local_workers": 2, "partition_rows": 400}}
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    runbook(project, "demo-data", "--env", "ci", check=True)
    result = runbook(project, "run", "--env", "ci", operator="dask-test", check=True)
    assert "[4/5] full_load passed" in result.stdout
    run_dir = next((project / "outputs" / "ci").glob("*/manifest.json")).parent
    glued = read_scraps(run_dir / "03_full_load.ipynb")["full_load"]
    assert glued["engine"] == "dask" and glued["workers"] == 2
    cut = [p for p in glued["partitions"] if p["partition"] >= 0]
    assert len(cut) > len({p["source"] for p in cut})
    assert all(p["worker"].startswith("tcp://") and p["attempts"] >= 1 for p in glued["partitions"])
    assert sum(p["planned_rows"] for p in cut) + sum(
        t["source_rows"] for t in glued["tables"] if t["target_table"] == "customers"
    ) == sum(t["source_rows"] - t["filtered"] for t in glued["tables"])
    ctx = StageContext(load_params("ci", project_root=project), None)
    reference = sa.create_engine(f"sqlite:///{project / 'reference.db'}")
    target = sa.create_engine(f"sqlite:///{project / 'work' / 'ci' / 'target.db'}")
    try:
        create_target_schema(reference)
        local_load(ctx, reference, run_dir.name)
        tables = ctx.spec.touched_tables()
        assert digests(target, tables) == digests(reference, tables)
    finally:
        reference.dispose()
        target.dispose()
