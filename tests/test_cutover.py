"""The cut-over on the second scenario (HR + sales), as the migration lead runs it.

After a passed ``runbook run``, the sources go on changing: a new customer with an invoice, a
customer whose email changed (a change-column watermark), a customer deleted at the source
(``deletes: apply``). ``runbook cutover`` must apply exactly those changes, validate the target
again, write the per-person notices outside the evidence (owner-only), keep contact data out of
``outputs/``, record each measure beside its limit, and fail when a limit is exceeded. ``runbook
watch`` reads a run's progress from another process, and says when nobody holds a running run.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from helpers import RUNBOOK, runbook

from runbook_lib.evidence.scraps import read_scraps
from runbook_lib.run.watching import lab_view
from runbook_lib.ui.watch import watch_run

pytestmark = pytest.mark.notebooks
CHANGED_AT = "2026-06-01T09:00:00"


def _prepare_for_cutover(project: Path, limits: dict) -> tuple[Path, int]:
    """Watermarks on the customer, invoice and line sources; a change column on customer;
    a customer without invoices, to delete after the load. Returns the store's path and its id."""
    spec_path = project / "params" / "mapping" / "hr_sales.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    people = spec["targets"]["people"]["sources"]
    people["store.customer"]["watermark"] = {"column": "UpdatedAt"}
    people["store.customer"]["deletes"] = "apply"
    people["store.customer"]["ignore"]["UpdatedAt"] = (
        "when the row last changed: the sync's watermark"
    )
    spec["targets"]["invoices"]["sources"]["store.invoice"]["watermark"] = {"column": "InvoiceId"}
    lines = spec["targets"]["invoice_lines"]["sources"]["store.invoice_line"]
    lines["watermark"] = {"column": "InvoiceLineId"}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    params_path = project / "params" / "hr.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["cutover"] = {
        **limits,
        "freeze_window": "1s",
        "notices": {"path": "work/hr/notices/{run_id}.csv"},
    }
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    store = project / "work" / "hr" / "store.db"
    engine = sa.create_engine(f"sqlite:///{store}")
    with engine.begin() as connection:
        connection.execute(sa.text('ALTER TABLE customer ADD COLUMN "UpdatedAt" TEXT'))
        connection.execute(sa.text("UPDATE customer SET \"UpdatedAt\" = '2026-01-01T00:00:00'"))
        lonely = connection.execute(sa.text('SELECT max("CustomerId") + 1 FROM customer')).scalar()
        connection.execute(
            sa.text(
                'INSERT INTO customer ("CustomerId", "FirstName", "LastName", "Country", "Email", '
                "\"UpdatedAt\") VALUES (:id, 'Ngozi', 'Okafor', 'Canada', "
                "'ngozi.okafor@example.org', '2026-01-01T00:00:00')"
            ),
            {"id": lonely},
        )
    engine.dispose()
    return store, lonely


def _change_the_sources(store: Path, lonely: int) -> dict:
    """What happens at the source between the load and the switch."""
    engine = sa.create_engine(f"sqlite:///{store}")
    with engine.begin() as connection:
        newcomer = connection.execute(
            sa.text('SELECT max("CustomerId") + 1 FROM customer')
        ).scalar()
        connection.execute(
            sa.text(
                'INSERT INTO customer ("CustomerId", "FirstName", "LastName", "Country", "Email", '
                "\"UpdatedAt\") VALUES (:id, 'Tomasz', 'Wiśniewski', 'Poland', "
                "'Tomasz.W@Example.COM', :at)"
            ),
            {"id": newcomer, "at": CHANGED_AT},
        )
        invoice = connection.execute(sa.text('SELECT max("InvoiceId") + 1 FROM invoice')).scalar()
        template = connection.execute(
            sa.text('SELECT "InvoiceDate" FROM invoice ORDER BY "InvoiceId" LIMIT 1')
        ).scalar()
        connection.execute(
            sa.text(
                'INSERT INTO invoice ("InvoiceId", "CustomerId", "InvoiceDate", "BillingCountry", '
                "\"Total\") VALUES (:id, :customer, :at, 'Poland', 3.98)"
            ),
            {"id": invoice, "customer": newcomer, "at": template},
        )
        product = connection.execute(sa.text('SELECT min("ProductId") FROM product')).scalar()
        line = connection.execute(
            sa.text('SELECT max("InvoiceLineId") + 1 FROM invoice_line')
        ).scalar()
        connection.execute(
            sa.text(
                'INSERT INTO invoice_line ("InvoiceLineId", "InvoiceId", "ProductId", "UnitPrice", '
                '"Quantity") VALUES (:id, :invoice, :product, 1.99, 2)'
            ),
            {"id": line, "invoice": invoice, "product": product},
        )
        changed = connection.execute(
            sa.text(
                'SELECT min("CustomerId") FROM customer c WHERE "Email" IS NOT NULL AND '
                '"CustomerId" < :lonely'
            ),
            {"lonely": lonely},
        ).scalar()
        connection.execute(
            sa.text(
                'UPDATE customer SET "Email" = \'moved.away@example.net\', "UpdatedAt" = :at '
                'WHERE "CustomerId" = :id'
            ),
            {"id": changed, "at": CHANGED_AT},
        )
        connection.execute(sa.text('DELETE FROM customer WHERE "CustomerId" = :id'), {"id": lonely})
        emails = [e for (e,) in connection.execute(sa.text('SELECT "Email" FROM customer')) if e]
    engine.dispose()
    return {"newcomer": newcomer, "changed": changed, "lonely": lonely, "emails": emails}


def _source_rows(sync: dict, table: str) -> dict:
    return next(t for t in sync["tables"] if t["source_table"] == table)


def test_the_cutover_applies_the_last_changes_and_keeps_contact_data_out_of_the_evidence(
    hr_project,
):
    project, _planted, targets, environ = hr_project
    store, lonely = _prepare_for_cutover(
        project, {"max_downtime": "30m", "rpo": "30m", "rto": "30m"}
    )
    runbook(project, "run", "--env", "hr", env=environ, check=True)
    run_dir = next((project / "outputs" / "hr").glob("2*"))
    changes = _change_the_sources(store, lonely)

    result = runbook(project, "cutover", "--env", "hr", "--run-id", run_dir.name, env=environ)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = read_scraps(run_dir / "06_cutover.ipynb")["cutover"]
    assert record["passed"] and record["validation"]["passed"]
    customers = _source_rows(record["sync"], "customer")
    assert (customers["inserted"], customers["updated"], customers["deleted_applied"]) == (1, 1, 1)
    assert _source_rows(record["sync"], "invoice")["inserted"] == 1
    assert _source_rows(record["sync"], "invoice_line")["inserted"] == 1
    assert {m["name"]: m["within"] for m in record["measures"]} == {
        "downtime": True,
        "rpo": True,
        "rto": True,
    }
    engine = sa.create_engine(targets["target"])
    with engine.connect() as connection:
        keys = {
            k
            for (k,) in connection.execute(
                sa.text("SELECT source_key FROM people WHERE source_key LIKE 'customer:%'")
            )
        }
        moved = connection.execute(
            sa.text("SELECT email FROM people WHERE source_key = :k"),
            {"k": f"customer:{changes['changed']}"},
        ).scalar()
    engine.dispose()
    assert f"customer:{changes['newcomer']}" in keys and f"customer:{lonely}" not in keys
    assert moved == "moved.away@example.net"

    notices = project / "work" / "hr" / "notices" / f"{run_dir.name}.csv"
    assert stat.S_IMODE(notices.stat().st_mode) == 0o600
    assert record["notices"]["rows"] == len(notices.read_text().splitlines()) - 1 > 0
    assert "tomasz.w@example.com" in notices.read_text().lower()
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".html", ".json", ".jsonl"):
            text = path.read_text(errors="replace").lower()
            leaked = [e for e in changes["emails"] if e.lower() in text]
            assert not leaked, f"{path.name} shows {leaked[:3]}"
    page = (run_dir / "index.html").read_text()
    assert 'id="cutover"' in page and "Plan (projected by the trial) and actual" in page
    assert runbook(project, "verify", str(run_dir)).returncode == 0

    watched = runbook(project, "watch", "--env", "hr", "--once", env=environ, check=True)
    assert f"run {run_dir.name} (hr): passed" in watched.stdout
    assert "cutover passed" in watched.stdout and "store.customer" in watched.stdout


def test_a_cutover_over_its_downtime_limit_fails_and_says_which_limit(hr_project):
    project, _planted, _targets, environ = hr_project
    store, lonely = _prepare_for_cutover(project, {"max_downtime": "0.5s"})
    runbook(project, "run", "--env", "hr", env=environ, check=True)
    run_dir = next((project / "outputs" / "hr").glob("2*"))
    _change_the_sources(store, lonely)
    result = runbook(project, "cutover", "--env", "hr", "--run-id", run_dir.name, env=environ)
    assert result.returncode == 1
    assert "downtime" in result.stderr and "exceeds its limit of 0 s" in result.stderr
    record = read_scraps(run_dir / "06_cutover.ipynb")["cutover"]
    assert not record["passed"]
    assert [m["within"] for m in record["measures"] if m["name"] == "downtime"] == [False]


def test_watch_follows_a_load_in_another_process_and_names_a_killed_run(project):
    """A full load in a process of its own: watch shows it under way, then killed by kill -9."""
    from runbook_demo.build import build_demo

    build_demo("ci", project, orders=20000)
    params_path = project / "params" / "ci.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["load"]["chunk_size"] = 100  # many chunks: the load lasts long enough to be seen
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    process = subprocess.Popen(
        [*RUNBOOK, "run", "--env", "ci", "--stages", "mapping,trial,full_load"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its kernel too: kill -9 the whole group, as a crash would
    )
    target = sa.create_engine(f"sqlite:///{project / 'work' / 'ci' / 'target.db'}")
    seen = ""
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the load ended before it was seen"
            # polled in this process (cheap), then seen once as the operator would, by the command
            view = watch_run(project, "ci", engines={"target": target})
            if view.current == "full_load" and any(t.rows_read for t in view.tables):
                seen = runbook(project, "watch", "--env", "ci", "--once").stdout
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"watch never showed the full load under way:\n{seen}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        target.dispose()
    assert ": running, now full_load" in seen
    read = [line for line in seen.splitlines() if line.startswith("full ")]
    assert read and any(int(line.split()[2].replace(",", "")) > 0 for line in read)
    after = runbook(project, "watch", "--env", "ci", "--once").stdout
    assert "no process holds this run" in after and "--resume" in after
    panel = lab_view("ci")  # the lab's view of the same run: the same words
    panel.refresher.join(timeout=60)
    assert "no process holds this run" in panel.value and "now full_load" in panel.value
    manifest = json.loads(next((project / "outputs" / "ci").glob("2*/manifest.json")).read_text())
    assert (
        manifest["status"] == "running"
    )  # watch wrote nothing: the manifest is as the kill left it


def test_the_cutover_on_the_demo_matches_the_crosswalk_and_sets_the_counters(project):
    """The dev/ci demo: carts get a change column and ``deletes: apply``; a user joins."""
    from runbook_demo.build import build_demo

    spec_path = project / "params" / "mapping" / "demo.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    carts = spec["targets"]["carts"]["sources"]["legacy_a.carts"]
    carts.update(watermark={"column": "updated_at"}, deletes="apply")
    carts["ignore"] = {"updated_at": "change tracking only"}
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    params_path = project / "params" / "ci.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["cutover"] = {"max_downtime": "30m", "notices": {"path": "work/ci/notices.csv"}}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    build_demo("ci", project)
    legacy_a = sa.create_engine(f"sqlite:///{project / 'work' / 'ci' / 'legacy_a.db'}")
    with legacy_a.begin() as connection:
        connection.execute(sa.text("ALTER TABLE carts ADD COLUMN updated_at TEXT"))
        connection.execute(sa.text("UPDATE carts SET updated_at = '2024-06-01 00:00:00'"))
    runbook(project, "run", "--env", "ci", check=True)
    run_dir = next((project / "outputs" / "ci").glob("2*"))
    with legacy_a.begin() as connection:
        kept = connection.execute(
            sa.text("SELECT id FROM carts WHERE added_at >= '2023-01-01' ORDER BY id LIMIT 2")
        ).all()
        (changed,), (gone,) = kept
        connection.execute(
            sa.text(
                "UPDATE carts SET quantity = 7, updated_at = '2025-01-01 00:00:00' WHERE id = :i"
            ),
            {"i": changed},
        )
        connection.execute(sa.text("DELETE FROM carts WHERE id = :i"), {"i": gone})
        newcomer = connection.execute(sa.text("SELECT max(id) + 1 FROM users")).scalar()
        template = connection.execute(sa.text("SELECT * FROM users LIMIT 1")).mappings().one()
        # nobody else's name, email or phone: a new customer, not a merge into one
        row = {
            **template,
            "id": newcomer,
            "full_name": "Zephyrine Quillfeather",
            "email": f"newcomer{newcomer}@example.org",
            "phone": None,
        }
        columns = ", ".join(row)
        connection.execute(
            sa.text(f"INSERT INTO users ({columns}) VALUES ({', '.join(':' + c for c in row)})"),
            row,
        )
        emails = [e for (e,) in connection.execute(sa.text("SELECT email FROM users")) if e]
    legacy_a.dispose()

    runbook(project, "cutover", "--env", "ci", "--run-id", run_dir.name, check=True)
    record = read_scraps(run_dir / "06_cutover.ipynb")["cutover"]
    assert record["passed"]
    by_source = {f"{t['source_system']}.{t['source_table']}": t for t in record["sync"]["tables"]}
    cart_changes = by_source["legacy_a.carts"]
    assert (cart_changes["updated"], cart_changes["deleted_applied"]) == (1, 1)
    users = by_source["legacy_a.users"]
    assert users["inserted"] == 1, (users["merged"], users["quarantined_by_rule"])
    target = sa.create_engine(f"sqlite:///{project / 'work' / 'ci' / 'target.db'}")
    with target.connect() as connection:
        merged = connection.execute(
            sa.text("SELECT count(*) FROM customer_xref WHERE match_rule LIKE 'match:%'")
        ).scalar()
        highest = connection.execute(sa.text("SELECT max(customer_id) FROM customers")).scalar()
    target.dispose()
    notices = record["notices"]
    assert merged > 0 and notices["by_reason"]["merged"] == merged
    assert stat.S_IMODE((project / "work" / "ci" / "notices.csv").stat().st_mode) == 0o600
    counters = {(c["table"], c["column"]): c["after"] for c in record["counters"]}
    assert counters.get(("customers", "customer_id"), highest) >= highest
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".html", ".json", ".jsonl"):
            text = path.read_text(errors="replace").lower()
            assert not [e for e in emails if e.lower() in text], path.name


def test_four_eyes_the_run_operator_cannot_approve_and_the_cutover_needs_its_own_approval(
    hr_project,
):
    project, _planted, _targets, environ = hr_project
    _prepare_for_cutover(project, {"max_downtime": "30m"})
    params_path = project / "params" / "hr.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["requires_approval"] = True
    params["roles"] = {"operators": ["hr"], "approvers": ["alice", "hr"]}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))

    refused = runbook(project, "run", "--env", "hr", env=environ)
    assert refused.returncode == 1 and "stage full_load refused" in refused.stderr
    run_dir = next((project / "outputs" / "hr").glob("2*"))
    run_id = run_dir.name

    def approve(who: str, *extra: str):
        return runbook(project, "approve", "--env", "hr", "--run-id", run_id, "--operator", who,
                       *extra, env=environ)  # fmt: skip

    own = approve("hr")  # listed as an approver, but operated this run
    assert own.returncode == 1 and "four eyes" in own.stderr
    assert not (run_dir / "approval.json").exists()
    stranger = approve("mallory")
    assert stranger.returncode == 1 and "roles.approvers names alice, hr" in stranger.stderr
    assert approve("alice").returncode == 0
    runbook(project, "run", "--env", "hr", "--run-id", run_id, "--stages", "full_load,validation",
            env=environ, check=True)  # fmt: skip

    no_cutover_approval = runbook(
        project, "cutover", "--env", "hr", "--run-id", run_id, env=environ
    )
    assert no_cutover_approval.returncode == 1
    assert "requires an approval before the cut-over" in no_cutover_approval.stderr
    assert "--for cut-over" in no_cutover_approval.stderr
    assert approve("alice", "--for", "cut-over").returncode == 0
    recorded = json.loads((run_dir / "approval-cutover.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    validation = next(s for s in manifest["stages"] if s["name"] == "validation")
    assert recorded["evidence_sha256"] == validation["sha256_notebook"]
    assert recorded["run_operators"] == ["hr"]

    # validation again: new evidence, which alice has not read; the cut-over waits for her
    runbook(project, "run", "--env", "hr", "--run-id", run_id, "--stages", "validation",
            env=environ, check=True)  # fmt: skip
    stale = runbook(project, "cutover", "--env", "hr", "--run-id", run_id, env=environ)
    assert stale.returncode == 1 and "validation evidence" in stale.stderr
    assert approve("alice", "--for", "cut-over").returncode == 0
    runbook(project, "cutover", "--env", "hr", "--run-id", run_id, env=environ, check=True)
    page = (run_dir / "index.html").read_text()
    assert "approval-cutover.json" in page and "cut-over" in page
    assert runbook(project, "verify", str(run_dir), env=environ).returncode == 0

    # someone roles.operators does not name runs nothing
    params["operator"] = "dave"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    before = sorted(p.name for p in (project / "outputs" / "hr").iterdir())
    outsider = runbook(project, "run", "--env", "hr", env=environ)
    assert outsider.returncode == 1 and "dave is not an operator of env hr" in outsider.stderr
    assert sorted(p.name for p in (project / "outputs" / "hr").iterdir()) == before
