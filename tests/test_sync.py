"""Incremental sync after a full load: new rows by key watermark, changed rows by a change column,
deletions at the source reported (never applied), idempotent re-runs, and validation afterwards."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
import yaml

from runbook_demo.build import build_demo
from runbook_lib.config.params import load_params
from runbook_lib.load import loader, sync
from runbook_lib.run.context import StageContext
from runbook_lib.validate.validation import validate as run_validation

WATERMARKS = {
    ("customers", "legacy_a.users"): "id",
    ("orders", "legacy_a.orders"): "id",
    ("order_items", "legacy_a.order_items"): "id",
    ("user_events", "legacy_a.user_events"): "id",
    ("carts", "legacy_a.carts"): "updated_at",
}


@pytest.fixture
def synced(project):
    """The ci demo fully loaded, with watermarks declared and carts given a change column."""
    spec_path = project / "params" / "mapping" / "demo.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    for (target, source), column in WATERMARKS.items():
        spec["targets"][target]["sources"][source]["watermark"] = {"column": column}
    spec["targets"]["customers"]["sources"]["legacy_b.customers"].pop(
        "watermark", None
    )  # one without
    spec["targets"]["carts"]["sources"]["legacy_a.carts"]["ignore"] = {
        "updated_at": "change tracking only"
    }
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    build_demo("ci", project)
    legacy_a = project / "work" / "ci" / "legacy_a.db"
    with sqlite3.connect(legacy_a) as connection:
        connection.execute("ALTER TABLE carts ADD COLUMN updated_at TEXT")
        connection.execute("UPDATE carts SET updated_at = '2024-06-01 00:00:00'")
    ctx = StageContext(load_params("ci", project_root=project), None)
    loader.load(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        run_id="run-1",
        mode="full",
        chunk_size=300,
        max_reject_rate=0.05,
        target_label="target",
    )
    return ctx, legacy_a


def _sync(ctx, run_id):
    return sync.sync(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        run_id=run_id,
        chunk_size=300,
        max_reject_rate=0.5,
        target_label="target",
    )


def _by_source(report):
    return {f"{r.source_system}.{r.source_table}": r for r in report.results}


def test_sync_without_source_changes_applies_nothing(synced):
    ctx, _legacy_a = synced
    report = _by_source(_sync(ctx, "run-2"))
    assert all(r.inserted == r.updated == r.merged == 0 for r in report.values())
    assert report["legacy_b.customers"].skipped == "no watermark declared in the spec"


def test_new_changed_and_deleted_source_rows_are_synced_and_reported(synced):
    ctx, legacy_a = synced
    with sqlite3.connect(legacy_a) as connection:
        top_user = connection.execute("SELECT max(id) FROM users").fetchone()[0]
        an_email = connection.execute("SELECT email FROM users WHERE id = 5").fetchone()[0]
        top_order = connection.execute("SELECT max(id) FROM orders").fetchone()[0]
        connection.execute(
            "INSERT INTO users VALUES (?, 'newbie', 'x', '王小明', 'wang.xm@example.com', '13800138000', '', "
            "'2024-12-30 10:00:00')",
            (top_user + 1,),
        )
        connection.execute(  # the same person as user 5, a second account: merged
            "INSERT INTO users VALUES (?, 'again', 'x', 'Same Person', ?, NULL, '', '2024-12-30 11:00:00')",
            (top_user + 2, an_email.upper()),
        )
        connection.execute(
            "INSERT INTO orders VALUES (?, ?, 88.80, 1, '2024-12-30 12:00:00', NULL)",
            (top_order + 1, top_user + 1),
        )
        connection.execute(
            "INSERT INTO orders VALUES (?, ?, 10.00, 42, '2024-12-30 12:00:00', NULL)",
            (top_order + 2, top_user + 1),
        )  # unknown status: quarantined
        connection.execute(
            "INSERT INTO order_items (order_id, sku, quantity, unit_price) "
            "VALUES (?, 'SKU-00001', 2, 44.40)",
            (top_order + 1,),
        )
        gone = connection.execute("SELECT max(id) FROM user_events").fetchone()[0]
        connection.execute("DELETE FROM user_events WHERE id = ?", (gone,))
        changed_cart = connection.execute(
            "SELECT id FROM carts WHERE added_at >= '2023-01-01' LIMIT 1"
        ).fetchone()[0]
        connection.execute(
            "UPDATE carts SET quantity = 9, updated_at = '2024-12-31 00:00:00' WHERE id = ?",
            (changed_cart,),
        )

    report = _sync(ctx, "run-2")
    results = _by_source(report)
    assert results["legacy_a.users"].inserted == 1 and results["legacy_a.users"].merged == 1
    assert results["legacy_a.orders"].inserted == 1
    assert results["legacy_a.orders"].quarantined == {"unmapped_value": 1}
    assert results["legacy_a.order_items"].inserted == 1
    assert results["legacy_a.user_events"].deleted_at_source == 1
    assert results["legacy_a.user_events"].deleted_keys == (str(gone),)
    assert results["legacy_a.carts"].updated == 1 and results["legacy_a.carts"].inserted == 0
    assert results["legacy_a.carts"].watermark_after == "2024-12-31 00:00:00"
    with ctx.target_engine().connect() as connection:
        quantity = connection.execute(
            sa.text("SELECT quantity FROM carts WHERE source_key = :k"), {"k": str(changed_cart)}
        ).scalar_one()
        assert quantity == 9

    again = _by_source(_sync(ctx, "run-2"))  # re-running the same sync run changes nothing more
    assert again["legacy_a.users"].inserted == 1 and again["legacy_a.orders"].inserted == 1
    later = _by_source(_sync(ctx, "run-3"))
    assert all(r.inserted == r.updated == r.merged == 0 for r in later.values())

    validation = run_validation(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        run_id="run-2",
        target_label="target",
        chunk_size=300,
        max_unexplained_differences=0,
    )
    differences = [(d.source_key, d.kind) for t in validation.tables for d in t.differences]
    assert (
        str(gone),
        "extra",
    ) in differences  # the deleted source row is still in the target: reported


def test_validation_after_a_sync_balances_with_the_full_loads_quarantine(synced):
    ctx, legacy_a = synced
    with sqlite3.connect(legacy_a) as connection:
        top_user = connection.execute("SELECT max(id) FROM users").fetchone()[0]
        top_order = connection.execute("SELECT max(id) FROM orders").fetchone()[0]
        connection.execute(
            "INSERT INTO users VALUES (?, 'n', 'x', '赵云', 'zhao.yun@example.com', NULL, '', '2024-12-30 10:00:00')",
            (top_user + 1,),
        )
        connection.execute(
            "INSERT INTO orders VALUES (?, ?, 12.30, 3, '2024-12-30 12:00:00', NULL)",
            (top_order + 1, top_user + 1),
        )
    assert _sync(ctx, "run-2").passed
    validation = run_validation(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        run_id="run-2",
        target_label="target",
        chunk_size=300,
        max_unexplained_differences=0,
    )
    assert validation.passed, validation.render()


def test_a_sync_runs_report_shows_what_it_applied_per_source(synced):
    from runbook_lib.evidence import index_page

    ctx, legacy_a = synced
    with sqlite3.connect(legacy_a) as connection:
        top = connection.execute("SELECT max(id) FROM user_events").fetchone()[0]
        connection.executemany(
            "INSERT INTO user_events VALUES (?, 1, 'view', 'SKU-00001', '2024-12-31 09:00:00')",
            [(top + 1,), (top + 2,)],
        )
        connection.execute("DELETE FROM user_events WHERE id = 1")
    glued = _sync(ctx, "run-2").to_dict()
    manifest = {
        "env": "ci",
        "run_id": "run-2",
        "status": "passed",
        "stages": [{"name": "full_load", "status": "passed", "notebook": "03_full_load.ipynb"}],
    }

    page = index_page.render(manifest, {"full_load": {"full_load": glued}})

    figures = index_page.key_figures("full_load", {"full_load": glued})
    assert figures == (
        "incremental sync: 2 inserted, 0 updated, 0 merged, 0 quarantined (0.00%, gate 50.00%); "
        "1 deleted at the source (reported, not applied)"
    )
    assert figures in page
    assert '<section id="sync">' in page
    events = page[page.index("legacy_a.user_events</td>") :].split("</tr>")[0]
    assert [cell.split(">")[-1] for cell in events.split("</td>")][:9] == [
        "legacy_a.user_events",
        "user_events",
        "id",
        str(top),
        str(top + 2),
        "2",
        "0",
        "0",
        "0",
    ]
    assert "no watermark declared in the spec" in page  # legacy_b.customers
    assert 'id="accounting-figure"' in page


def test_deletes_apply_removes_the_rows_gone_from_the_source_and_a_rollback_brings_them_back(
    project,
):
    from runbook_lib.load import backup
    from runbook_lib.run.stages import sync_snapshot_tables

    spec_path = project / "params" / "mapping" / "demo.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    events = spec["targets"]["user_events"]["sources"]["legacy_a.user_events"]
    events["deletes"] = "apply"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    target = ctx.target_engine()
    loader.load(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id="run-1",
        mode="full",
        chunk_size=300,
        max_reject_rate=0.05,
        target_label="target",
    )
    with sqlite3.connect(project / "work" / "ci" / "legacy_a.db") as connection:
        connection.execute("DELETE FROM user_events WHERE id IN (3, 4, 5)")
    tables = sync_snapshot_tables(ctx.spec)
    assert "runbook_rejects" in tables
    before = backup.snapshot(target, tables, "run-2")
    report = _by_source(_sync(ctx, "run-2"))
    events_result = report["legacy_a.user_events"]
    assert (events_result.deleted_at_source, events_result.deleted_applied) == (3, 3)
    assert report["legacy_a.orders"].deleted_applied == 0  # deletes: report, the default
    with target.connect() as connection:
        left = connection.execute(
            sa.text("SELECT source_key FROM user_events WHERE source_key IN ('3', '4', '5')")
        ).all()
    assert left == []
    validation = run_validation(
        ctx.spec,
        ctx.source_engines(),
        target,
        run_id="run-2",
        target_label="target",
        chunk_size=300,
        max_unexplained_differences=0,
    )
    assert validation.passed, validation.render()
    restored = backup.restore(target, before)
    assert restored.passed
    with target.connect() as connection:
        assert (
            connection.execute(
                sa.text("SELECT count(*) FROM user_events WHERE source_key IN ('3', '4', '5')")
            ).scalar()
            == 3
        )


def test_deletes_apply_is_refused_for_a_merge_target_and_without_a_watermark(project):
    from runbook_lib.mapping.check import check_spec

    spec_path = project / "params" / "mapping" / "demo.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["targets"]["customers"]["sources"]["legacy_a.users"]["deletes"] = "apply"
    carts = spec["targets"]["carts"]["sources"]["legacy_a.carts"]
    carts["deletes"] = "apply"
    carts.pop("watermark", None)
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    build_demo("ci", project)
    ctx = StageContext(load_params("ci", project_root=project), None)
    sources = {s: sa.inspect(e) for s, e in ctx.source_engines().items()}
    check = check_spec(ctx.spec, sources, sa.inspect(ctx.target_engine()))
    problems = dict(check.problems)
    assert "merges records" in problems["targets.customers.sources.legacy_a.users.deletes"]
    assert "needs a watermark" in problems["targets.carts.sources.legacy_a.carts.deletes"]
