"""Evidence an auditor can trust, on real runs: the chain, tampering, the report, masking, offline.

One module-scoped chain of three ``ci`` runs in a temporary project, made with the CLI:

1. the whole runbook (passes), then ``runbook rollback`` of it (the manifest changes after its
   ledger lines, and two invocations are recorded);
2. ``assessment,mapping`` with a mapping spec missing ``orders.amount``: fails at mapping — a failed
   run is evidence too and must verify;
3. ``assessment`` alone, after the spec is restored.

Tampering is done on copies of ``outputs/ci``; the chain itself stays intact for the other tests.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import yaml
from helpers import runbook as run_cli

from runbook_lib.evidence.run_folder import sha256_file
from runbook_lib.evidence.scraps import read_scraps

pytestmark = pytest.mark.notebooks
REPO = Path(__file__).resolve().parent.parent


runbook = partial(run_cli, operator="evidence-test", check=True)


@dataclass(frozen=True)
class Chain:
    project: Path
    runs: tuple[Path, ...]
    printed: str

    @property
    def env_dir(self) -> Path:
        return self.project / "outputs" / "ci"


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Chain:
    from conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("evidence") / "project")
    printed = [runbook(project, "demo-data", "--env", "ci").stdout]
    printed.append(runbook(project, "run", "--env", "ci").stdout)
    first = only_new_run(project, [])
    printed.append(runbook(project, "rollback", "--env", "ci", "--run-id", first.name).stdout)
    spec_path = project / "params" / "mapping" / "demo.yaml"
    original = spec_path.read_bytes()
    spec = yaml.safe_load(original)
    del spec["targets"]["orders"]["sources"]["legacy_a.orders"]["columns"]["amount"]
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    failed = runbook(project, "run", "--env", "ci", "--stages", "assessment,mapping", check=False)
    assert failed.returncode == 1, failed.stderr
    second = only_new_run(project, [first])
    spec_path.write_bytes(original)
    printed.append(runbook(project, "run", "--env", "ci", "--stages", "assessment").stdout)
    third = only_new_run(project, [first, second])
    return Chain(project, (first, second, third), "\n".join(printed))


def only_new_run(project: Path, known: list[Path]) -> Path:
    runs = [p for p in (project / "outputs" / "ci").iterdir() if p.is_dir() and p not in known]
    assert len(runs) == 1, runs
    return runs[0]


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def ledger_lines(env_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (env_dir / "ledger.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------------------------
# the chain


def test_every_run_of_the_chain_verifies_and_exits_zero(chain):
    for run_dir in chain.runs:
        result = runbook(chain.project, "verify", str(run_dir.relative_to(chain.project)))
        assert f"verified run {run_dir.name}" in result.stdout
        assert "across 3 run(s) of the chain" in result.stdout


def test_the_failed_run_is_recorded_sealed_and_verifiable(chain):
    failed = manifest(chain.runs[1])
    assert (failed["status"], failed["failed_stage"]) == ("failed", "mapping")
    assert "orders.amount is not mapped" in failed["stages"][1]["error"]
    closing = [e for e in ledger_lines(chain.env_dir) if e["run_id"] == chain.runs[1].name][-1]
    assert (closing["event"], closing["detail"]) == ("close", "failed")
    assert closing["manifest_sha256"] == sha256_file(chain.runs[1] / "manifest.json")


def test_the_ledger_holds_every_manifest_version_including_the_rollback(chain):
    first = [e for e in ledger_lines(chain.env_dir) if e["run_id"] == chain.runs[0].name]
    assert [(e["event"], e["detail"]) for e in first] == [
        ("open", "assessment,mapping,trial,full_load,validation"),
        ("stage", "assessment passed"),
        ("stage", "mapping passed"),
        ("stage", "trial passed"),
        ("stage", "full_load passed"),
        ("stage", "validation passed"),
        ("close", "passed"),
        ("reopen", "rollback"),
        ("stage", "rollback passed"),
        ("close", "rolled_back"),
    ]
    assert first[-1]["manifest_sha256"] == sha256_file(chain.runs[0] / "manifest.json")


def test_each_manifest_links_the_previous_run_as_the_ledger_recorded_it(chain):
    lines = {e["seq"]: e for e in ledger_lines(chain.env_dir)}
    assert manifest(chain.runs[0])["chain"]["previous_run_id"] is None
    for previous, run_dir in zip(chain.runs, chain.runs[1:], strict=False):
        link = manifest(run_dir)["chain"]
        assert link["previous_run_id"] == previous.name
        recorded = lines[link["previous_ledger_seq"]]
        assert recorded["run_id"] == previous.name
        assert recorded["manifest_sha256"] == link["previous_manifest_sha256"]


def test_every_manifest_records_operator_host_versions_and_code(chain):
    for run_dir in chain.runs:
        data = manifest(run_dir)
        assert data["operator"] == "ci"  # params/ci.yaml names its operator
        for field in ("os_user", "host", "python", "platform", "params_sha256", "versions"):
            assert data[field], field
        assert "git_commit" in data and "git_dirty" in data
        assert data["mapping_spec"]["path"] == "params/mapping/demo.yaml"
        assert {"papermill", "scrapbook", "SQLAlchemy", "runbook-lib"} <= set(data["versions"])
    first = manifest(chain.runs[0])
    assert [i["command"] for i in first["invocations"]] == ["run", "rollback"]
    assert first["invocations"][1]["stages"] == ["rollback"]
    code = first.get("runbook_lib")
    if code is not None:  # the package lives outside the temporary project: its own git state
        assert set(code) == {"path", "git_commit", "git_dirty"}
    spec = read_scraps(chain.runs[0] / "01_mapping.ipynb")["mapping_spec"]["sha256"]
    assert first["mapping_spec"]["sha256"] == spec
    assert {s["mapping_spec_sha256"] for s in first["stages"]} == {spec}


@dataclass(frozen=True)
class Tamper:
    run: int
    change: str
    named: str
    message: str


TAMPERING = {
    "notebook-byte": Tamper(0, "byte:03_full_load.ipynb", "03_full_load.ipynb", "sha256 differs"),
    "html-byte": Tamper(0, "byte:04_validation.html", "04_validation.html", "sha256 differs"),
    "report-byte": Tamper(1, "byte:index.html", "index.html", "sha256 differs"),
    "manifest-byte": Tamper(1, "byte:manifest.json", "manifest.json", "last ledger record"),
    "ledger-byte": Tamper(2, "ledger", "ledger.jsonl line 3", "entry_sha256 does not match"),
    "run-removed-from-the-middle": Tamper(2, "remove:1", "", "missing: removed from the chain"),
}


@pytest.mark.parametrize("case", TAMPERING.values(), ids=TAMPERING.keys())
def test_verify_exits_three_naming_what_was_tampered_with(chain, tmp_path, case):
    outputs = tmp_path / "outputs"
    shutil.copytree(chain.env_dir, outputs / "ci")
    runs = [outputs / "ci" / run.name for run in chain.runs]
    kind, _, target = case.change.partition(":")
    if kind == "byte":
        flip_byte(runs[case.run] / target)
    elif kind == "ledger":
        path = outputs / "ci" / "ledger.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        lines[2] = lines[2].replace('"event":"stage"', '"event":"stagE"')
        path.write_text("".join(lines))
    else:
        shutil.rmtree(runs[int(target)])
    named = case.named or runs[1].name
    result = subprocess.run(
        [sys.executable, "-m", "runbook_lib.cli", "verify", str(runs[case.run])],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout  # evidence damaged
    assert "does NOT verify" in result.stdout
    assert any(named in line and case.message in line for line in result.stdout.splitlines()), (
        result.stdout
    )


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_rerunning_a_stage_into_a_tampered_run_is_refused_and_records_nothing(chain, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(chain.project, project)
    run_dir = project / "outputs" / "ci" / chain.runs[2].name
    flip_byte(run_dir / "00_assessment.html")
    ledger_before = (project / "outputs" / "ci" / "ledger.jsonl").read_bytes()
    result = runbook(
        project,
        "run",
        "--env",
        "ci",
        "--run-id",
        run_dir.name,
        "--stages",
        "assessment",
        check=False,
    )
    assert result.returncode == 3  # evidence damaged
    assert "does not verify; nothing was changed" in result.stderr
    assert "00_assessment.html: sha256 differs from the manifest" in result.stderr
    assert (project / "outputs" / "ci" / "ledger.jsonl").read_bytes() == ledger_before


# --------------------------------------------------------------------------------------------
# the report


def test_the_run_writes_its_report_and_the_manifest_vouches_for_it(chain):
    for run_dir in chain.runs:
        data = manifest(run_dir)
        assert data["report"]["file"] == "index.html"
        assert data["report"]["sha256"] == sha256_file(run_dir / "index.html")


def test_the_report_shows_who_what_when_and_each_stages_figures(chain):
    run_dir = chain.runs[0]
    data = manifest(run_dir)
    page = (run_dir / "index.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for stage in ("assessment", "mapping", "trial", "full_load", "validation", "rollback"):
        assert re.search(rf"\b{stage}\s+passed", text), stage
    for html_file in ("00_assessment.html", "03_full_load.html", "05_rollback.html"):
        assert f'href="{html_file}"' in page
    assert data["mapping_spec"]["sha256"][:16] in page
    assert data["started_at"] in text and re.search(r"Operator\s+ci\b", text)
    full_load = read_scraps(run_dir / "03_full_load.ipynb")["full_load"]
    assert f"{full_load['loaded']:,} loaded" in text
    assert f"{full_load['quarantined']:,} quarantined" in text
    assert "0 row differences" in text and "every hash equals its pre-load hash" in text
    assert "Approval" in text and "not required" in text
    assert len(re.findall(r"plotly\.js v\d", page)) == 1  # embedded once
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", page)
    failed = html.unescape((chain.runs[1] / "index.html").read_text())
    assert "orders.amount is not mapped" in failed and "at stage <b>mapping</b>" in failed


def test_runbook_report_rewrites_the_same_bytes_and_adds_no_ledger_line(chain):
    run_dir = chain.runs[2]
    before = (run_dir / "index.html").read_bytes(), (chain.env_dir / "ledger.jsonl").read_bytes()
    result = runbook(chain.project, "report", str(run_dir))
    assert "(unchanged)" in result.stdout
    after = (run_dir / "index.html").read_bytes(), (chain.env_dir / "ledger.jsonl").read_bytes()
    assert after == before


# --------------------------------------------------------------------------------------------
# no personal data in clear text, anywhere in outputs/ci (3 runs, reports, manifests, ledger)


@pytest.fixture(scope="module")
def personal(chain):
    from test_masking_scan import PersonalData

    return PersonalData(chain.project / "work" / "ci")


def test_no_email_phone_or_name_of_the_demo_sources_appears_in_clear_text(chain, personal):
    assert len(personal.emails) > 400 and len(personal.phones) > 400 and len(personal.names) > 400
    hits = personal.scan(chain.env_dir)
    assert hits == [], hits[:20]
    assert personal.scan(chain.project / "outputs") == []  # the ledger and lock files included
    for line in chain.printed.splitlines():
        assert not personal.leaks(line), line


# --------------------------------------------------------------------------------------------
# offline in a browser


def open_offline(browser, page_path: Path, width: int = 1400):
    """The page, opened from disk, and every URL it tried to fetch that is not the file itself."""
    page = browser.new_page(viewport={"width": width, "height": 1000})
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.route(re.compile(r"^https?://"), lambda route: route.abort())
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=15_000)
    external = [url for url in fetched if not url.startswith(("file:", "data:", "blob:"))]
    return page, external


@pytest.mark.browser
def test_the_report_opens_offline_with_its_stage_table_and_a_rendered_figure(chain, browser):
    page, external = open_offline(browser, chain.runs[0] / "index.html")
    try:
        assert external == []
        rows = page.locator("table.stages tr").all_inner_texts()
        assert len(rows) == 1 + 6  # header + six stages
        assert all("passed" in row for row in rows[1:])
        assert page.locator("#accounting-figure .main-svg").count() >= 1
        assert page.locator("#accounting-figure .bars path").count() > 0  # bars were drawn
        target = os.environ.get("RUNBOOK_SCREENSHOT_DIR")  # docs/ when refreshing docs/report.png
        shot = (Path(target) if target else chain.project) / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
    finally:
        page.close()


@pytest.mark.browser
def test_a_stage_html_renders_its_plotly_figures_with_no_network(chain, browser):
    page, external = open_offline(browser, chain.runs[0] / "00_assessment.html")
    try:
        assert external == []
        assert page.locator(".js-plotly-plot").count() == 2
        assert page.evaluate("typeof window.Plotly") == "object"
    finally:
        page.close()
