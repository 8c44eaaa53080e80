"""The demo scenario end to end: legacy sources with known defects, an empty target, ground truth.

``runbook demo-data --env ENV`` calls ``build_demo``. The ground truth (``truth.db`` in the work
folder) is for tests only; no stage reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from runbook_demo.generate import DemoSummary, build_demo_sources
from runbook_demo.target_schema import create_target_schema
from runbook_lib.config.connections import Connections, ensure_database, make_engine
from runbook_lib.config.params import load_params
from runbook_lib.errors import ParamsError
from runbook_lib.load.backup import BACKUP_SCHEMA
from runbook_lib.ui.progress import line_progress

DEMO_SYSTEMS = ("legacy_a", "legacy_b", "crm")


def empty_database(engine: sa.Engine) -> None:
    """Drop every table and snapshot (the demo's targets are the demo's own databases)."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {BACKUP_SCHEMA} CASCADE"))
    if engine.dialect.name == "sqlite" and engine.url.database:
        database = Path(engine.url.database)
        for copy in database.parent.glob(f"{database.stem}.backup-*.sqlite"):
            copy.unlink()


def build_demo(env: str, project_root: Path, *, orders: int | None = None) -> DemoSummary:
    """Build the demo sources of ``env`` at the size in its params, and an empty target schema."""
    params = load_params(env, project_root=project_root)
    demo = params.model.demo
    if demo is None:
        raise ParamsError(
            f"{params.path.name}: no 'demo' section: this environment has no demo data"
        )
    missing = [name for name in DEMO_SYSTEMS if name not in params.model.sources]
    if missing:
        raise ParamsError(
            f"{params.path.name}: field 'sources' lacks the demo connection(s) {missing}"
        )
    with Connections(params) as connections:
        for name in connections.names():
            ensure_database(connections.url(name))
        engines = {name: connections.engine(name) for name in DEMO_SYSTEMS}
        work = params.work_path
        work.mkdir(parents=True, exist_ok=True)
        truth = make_engine(sa.engine.make_url(f"sqlite:///{work / 'truth.db'}"))
        progress = line_progress()
        summary = build_demo_sources(
            engines,
            orders=orders or demo.orders,
            seed=demo.seed,
            truth_engine=truth,
            progress=lambda table, rows: progress(table, rows, 0),
        )
        truth.dispose()
        for name in ("target", "trial_target"):
            engine = connections.engine(name)
            empty_database(engine)
        create_target_schema(connections.engine("target"))
    (work / "demo_summary.json").write_text(
        json.dumps(summary.to_dict(), indent=2, ensure_ascii=False)
    )
    return summary
