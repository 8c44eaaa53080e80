"""The loader's Arrow route writes exactly the target its rows route writes.

Both routes load the same sources into two fresh targets; every table the load wrote — the
target tables, the crosswalk, the rejects (rule, message and raw row, in the order written)
and the checkpoints' record of each chunk (last key, rows, counts) — must hash the same,
row for row. On the ci demo (three systems, a merge, the planted defects, a chunk size that
cuts every table several times) and on the HR + sales scenario (key prefixes, self-references,
CHECK constraints the target refuses rows by, identity columns), SQLite targets, and the demo
on PostgreSQL too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from runbook_demo.build import build_demo
from runbook_lib.config.connections import make_engine
from runbook_lib.config.params import load_params
from runbook_lib.db.bookkeeping import REJECTS_TABLE
from runbook_lib.load import arrow_route, backup, loader
from runbook_lib.load.checkpoints import CHECKPOINTS_TABLE
from runbook_lib.mapping.compiled import ordered_sources
from runbook_lib.mapping.model import LoadedSpec, MappingSpec, load_spec
from runbook_lib.run.context import StageContext

SCENARIOS = Path(__file__).parent / "scenarios"
# what a checkpoint records of the rows, not of the clock
CHECKPOINT_COLUMNS = (
    "target_table, source_system, source_table, last_key, chunks, rows_read, loaded, merged, "
    "quarantined, done"
)


def _load(spec, sources, target: sa.Engine, engine: str, chunk_size: int):
    return loader.load(
        spec,
        sources,
        target,
        run_id="run-1",
        mode="full",
        chunk_size=chunk_size,
        max_reject_rate=1.0,
        target_label="target",
        engine=engine,
    )


def _contents(target: sa.Engine, tables: list[str]) -> dict:
    """Every written table's (rows, sha256), and the checkpoints without their times."""
    found = {}
    with target.connect() as connection:
        for name in [*tables, REJECTS_TABLE]:
            table = sa.Table(name, sa.MetaData(), autoload_with=connection)
            found[name] = backup.table_digest(connection, table)
        found[CHECKPOINTS_TABLE] = connection.execute(
            sa.text(f"SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_TABLE} ORDER BY 1, 2, 3")
        ).all()
    return found


def _assert_both_routes_write_the_same(spec, sources, make_target, chunk_size: int):
    reports = {}
    contents = {}
    for engine in ("rows", "arrow"):
        target = make_target(engine)
        reports[engine] = _load(spec, sources, target, engine, chunk_size)
        contents[engine] = _contents(target, spec.touched_tables())
        target.dispose()
    arrow, rows = reports["arrow"], reports["rows"]
    assert {r.engine for r in arrow.results} == {"arrow"}, arrow.render()
    assert {r.engine for r in rows.results} == {"rows"}
    assert [r.fallback for r in arrow.results] == [None] * len(arrow.results)

    def counted(report):
        drop = ("seconds", "engine", "engine_fallback")
        return [{k: v for k, v in t.items() if k not in drop} for t in report.to_dict()["tables"]]

    assert counted(arrow) == counted(rows)
    assert contents["arrow"] == contents["rows"]
    assert arrow.quarantined > 0 and contents["arrow"][REJECTS_TABLE][0] == arrow.quarantined
    return arrow


def test_the_ci_demo_loads_byte_for_byte_the_same_by_both_routes(project):
    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    sources = ctx.source_engines()

    def target(engine: str) -> sa.Engine:
        url = sa.engine.make_url(f"sqlite:///{project / 'work' / f'target_{engine}.db'}")
        from runbook_demo.target_schema import create_target_schema

        made = make_engine(url)
        create_target_schema(made)
        return made

    report = _assert_both_routes_write_the_same(ctx.spec, sources, target, chunk_size=700)
    assert report.source_rows > 7_000


@pytest.mark.postgres
def test_the_ci_demo_loads_the_same_by_both_routes_into_postgresql(
    project, postgres_url, second_postgres_url
):
    from runbook_demo.target_schema import create_target_schema

    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    urls = {"rows": postgres_url, "arrow": second_postgres_url}

    def target(engine: str) -> sa.Engine:
        made = make_engine(urls[engine])
        create_target_schema(made)
        return made

    _assert_both_routes_write_the_same(ctx.spec, ctx.source_engines(), target, chunk_size=700)


@pytest.mark.postgres
def test_binary_copy_writes_the_same_postgresql_target_as_text_copy(
    project, postgres_url, second_postgres_url, monkeypatch
):
    from runbook_demo.target_schema import create_target_schema
    from runbook_lib.db import writes

    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    contents = {}
    binary_chunks = []
    chosen = writes._binary_types

    def counted(*args):
        oids = chosen(*args)
        binary_chunks.append(oids is not None)
        return oids

    for how, url in (("text", postgres_url), ("binary", second_postgres_url)):
        if how == "text":
            monkeypatch.setattr(writes, "_binary_types", lambda *args: None)
        else:
            monkeypatch.setattr(writes, "_binary_types", counted)
        target = make_engine(url)
        create_target_schema(target)
        _load(ctx.spec, ctx.source_engines(), target, "arrow", 700)
        contents[how] = _contents(target, ctx.spec.touched_tables())
        target.dispose()
    assert contents["binary"] == contents["text"]
    assert sum(binary_chunks) > len(binary_chunks) // 2  # most chunks went binary


def test_the_hr_sales_scenario_loads_byte_for_byte_the_same_by_both_routes(tmp_path):
    sys.path.insert(0, str(SCENARIOS))
    from hr_sales.legacy import build_legacy
    from hr_sales.target import create_target

    build_legacy(f"sqlite:///{tmp_path / 'store.db'}")
    sources = {"store": make_engine(sa.engine.make_url(f"sqlite:///{tmp_path / 'store.db'}"))}
    spec = load_spec(SCENARIOS / "hr_sales" / "spec.yaml")

    def target(engine: str) -> sa.Engine:
        url = sa.engine.make_url(f"sqlite:///{tmp_path / f'target_{engine}.db'}")
        create_target(url)
        return make_engine(url)

    _assert_both_routes_write_the_same(spec, sources, target, chunk_size=300)


def test_a_chunk_with_a_value_arrow_cannot_hold_goes_as_rows_and_says_why(tmp_path):
    path = tmp_path / "odd.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE src (id INTEGER PRIMARY KEY, name TEXT)"))
        connection.execute(sa.text("INSERT INTO src VALUES (1, 'a'), (2, 'b')"))
    spec = LoadedSpec(
        path=tmp_path / "spec.yaml",
        sha256="0" * 64,
        spec=MappingSpec.model_validate(
            {
                "version": 1,
                "name": "odd",
                "systems": {"s": "s"},
                "targets": {
                    "dst": {
                        "sources": {"s.src": {"key": "id", "columns": {"name": {"from": "name"}}}}
                    }
                },
            }
        ),
    )
    (pipeline,) = ordered_sources(spec)
    route = arrow_route.choose()
    read = list(arrow_route.chunks(pipeline, engine, pipeline.select(), 1, route))
    assert [(b.columns["name"], last, n) for b, _r, last, n in read] == [
        (["a"], (1,), 1),
        (["b"], (2,), 1),
    ]
    after_last = pipeline.select(after_key=(2,))  # no rows: the result closes its cursor at once
    assert list(arrow_route.chunks(pipeline, engine, after_last, 1, route)) == []
    odd = [(1, object()), (2, "b")]  # a value no driver returns: no exact Arrow form
    notes: set[str] = set()
    batch, rejects = arrow_route._by_kernels(pipeline, odd, notes)
    assert batch.columns["name"] == [odd[0][1], "b"] and not rejects
    assert notes == {"a value with no exact Arrow form (ValueError): chunk taken as rows"}
    assert arrow_route.choose("rows").engine == "rows"
    with pytest.raises(ValueError, match="valid: arrow, rows"):
        arrow_route.choose("duckdb")
