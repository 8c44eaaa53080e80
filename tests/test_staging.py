"""The staging runbook against the real servers: legacy A on MariaDB, B and the CRM on SQLite,
target and trial target on PostgreSQL, each in a database made for this test and dropped after."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa
from helpers import runbook as run_cli

from runbook_lib.evidence.scraps import read_scraps

pytestmark = [pytest.mark.postgres, pytest.mark.mariadb, pytest.mark.notebooks]


def test_staging_runbook_passes_against_mariadb_and_postgresql(
    project, postgres_url, second_postgres_url, mariadb_url
):
    env = {
        **os.environ,
        "STAGING_LEGACY_A_URL": mariadb_url.render_as_string(hide_password=False),
        "STAGING_TARGET_URL": postgres_url.render_as_string(hide_password=False),
        "STAGING_TRIAL_TARGET_URL": second_postgres_url.render_as_string(hide_password=False),
    }

    def runbook(*args):
        return run_cli(project, *args, env=env, check=True, timeout=1200)

    runbook("demo-data", "--env", "staging", "--orders", "3000")
    runbook("run", "--env", "staging")
    run_dir = next(p.parent for p in (project / "outputs" / "staging").glob("*/manifest.json"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "passed"
    validation = read_scraps(run_dir / "04_validation.ipynb")["validation"]
    assert validation["passed"] and validation["differences"] == 0
    assert all(t["balanced"] for t in validation["tables"])
    target = sa.create_engine(postgres_url)
    try:
        with target.connect() as connection:
            chinese = connection.execute(
                sa.text(
                    "SELECT count(*) FROM customers c JOIN customer_xref x ON x.customer_id = c.customer_id "
                    "WHERE x.source_system = 'legacy_a' AND c.last_name ~ '[一-龥]'"
                )
            ).scalar_one()
            zone = connection.execute(
                sa.text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'orders' AND column_name = 'ordered_at'"
                )
            ).scalar_one()
    finally:
        target.dispose()
    assert chinese > 100  # utf8mb4 end to end: Chinese surnames from MariaDB arrive in PostgreSQL
    assert zone == "timestamp with time zone"
    assert runbook("verify", str(run_dir)).stdout.startswith("verified run")
