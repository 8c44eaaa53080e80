"""The migration lead's view: ``00_assessment.ipynb`` run by hand in JupyterLab, in headless Chromium.

A temporary project gets the ci demo and one ``runbook run --env ci --stages assessment`` (the
only stage the page needs, which keeps the test short). JupyterLab is started on a free localhost
port over its ``notebooks/`` folder, with a copy of the assessment notebook whose parameters cell
says ``env = "ci"`` (nothing else differs; ``run_dir`` stays empty, so it reads the latest ci run
and shows its widgets). The test runs all cells from the Run menu and checks what the page shows:
the findings table, a rendered plotly figure, the run picker widget, and no error output. A
screenshot goes to the test's tmp folder, and to ``lab_assessment.png`` in
``RUNBOOK_SCREENSHOT_DIR`` when set (``docs/`` for the README).

The unit tests at the end cover the logic behind the lab's widgets (no browser, no kernel).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path

import pytest
from helpers import runbook as run_cli

REPO = Path(__file__).resolve().parent.parent
CI_NOTEBOOK = "00_assessment_ci.ipynb"


runbook = partial(run_cli, operator="lab-test", check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def notebook_for_env(source: Path, destination: Path, env: str) -> None:
    """A copy of ``source`` whose parameters cell sets ``env`` instead of the default."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    text = "".join(cell["source"])
    assert 'env: str = "dev"' in text, text
    cell["source"] = text.replace('env: str = "dev"', f'env: str = "{env}"')
    destination.write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")


def lab_settings(folder: Path) -> None:
    """Render every cell (no windowing, so the page text is the whole notebook), and no news."""
    settings = {
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false"},
    }
    for name, values in settings.items():
        path = folder / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def wait_until_answering(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited {server.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer at {url} within {seconds:.0f} s")


def run_all_cells(page, attempts: int = 4) -> None:
    """Run > Run All Cells, again until a cell starts (a click before the kernel connects is lost)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = (
        "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
        ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    )
    for _ in range(attempts):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(started, timeout=10_000)
            return
        except PlaywrightTimeout:  # the click came too early: try once more
            continue
    pytest.fail("no cell started after Run All Cells")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    """A ci project with one passed run, and the URL of JupyterLab serving its notebooks."""
    from conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("lab") / "project")
    runbook(project, "demo-data", "--env", "ci")
    runbook(project, "run", "--env", "ci", "--stages", "assessment")
    notebooks = project / "notebooks"
    notebook_for_env(notebooks / "00_assessment.ipynb", notebooks / CI_NOTEBOOK, "ci")
    lab_settings(project / ".jupyter" / "lab" / "user-settings")
    port = free_port()
    log = (project / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--notebook-dir={notebooks}",
        ],
        cwd=project,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(project / ".jupyter")},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{base}/api/status", server)
        yield project, base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.notebooks
@pytest.mark.browser
def test_the_assessment_runs_by_hand_in_jupyterlab_with_its_figure_and_run_picker(
    lab, browser, tmp_path
):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    project, base = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        page.goto(f"{base}/lab/tree/{CI_NOTEBOOK}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=30_000
        )
        select_kernel = page.locator(".jp-Dialog").get_by_role("button", name="Select")
        try:  # the lab may still ask which kernel to start
            select_kernel.click(timeout=3_000)
        except PlaywrightTimeout:  # no dialog: the kernel started by itself
            pass
        run_all_cells(page)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        page.wait_for_selector(".jp-OutputArea-output .widget-dropdown select", timeout=30_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
            ".every(p => !p.textContent.includes('[*]'))",
            timeout=60_000,
        )
        text = page.locator(".jp-Notebook").inner_text()
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        shot = tmp_path / "lab_assessment.png"
        page.screenshot(path=str(shot))
        page.locator(".widget-dropdown").first.scroll_into_view_if_needed()
        picker_shot = tmp_path / "lab_run_picker.png"
        page.screenshot(path=str(picker_shot))
        if os.environ.get("RUNBOOK_SCREENSHOT_DIR"):
            folder = Path(os.environ["RUNBOOK_SCREENSHOT_DIR"])
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, folder / shot.name)
            shutil.copy(picker_shot, folder / picker_shot.name)
        errors = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")
        tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
        assert not tracebacks, tracebacks
        assert "env ci, run " in text
        assert "invalid_email" in text or "severity" in text, text[:3000]
        assert page.locator(".js-plotly-plot").count() >= 2
        run_id = next((project / "outputs" / "ci").glob("*/manifest.json")).parent.name
        picked = page.locator(".widget-dropdown select").nth(1).input_value()
        assert picked == f"{run_id} · passed", picked
        assert f'run_dir = "outputs/ci/{run_id}"' in text
        assert shot.stat().st_size > 10_000
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"page at failure: {tmp_path / 'failure.png'}")
        errors = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")
        print("\n".join(errors.all_inner_texts())[-4000:])
        raise
    finally:
        page.close()


# --------------------------------------------------------------------------------------------
# the logic behind the widgets


def write_run(project: Path, env: str, run_id: str, manifest: dict) -> None:
    folder = project / "outputs" / env / run_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_widgets_are_off_with_a_run_dir_or_outside_a_kernel():
    from runbook_lib.ui.widgets import interactive

    assert interactive("outputs/ci/RUN") is False  # papermill always passes run_dir
    assert interactive("") is False  # pytest runs no Jupyter kernel


def test_run_choices_list_runs_newest_first_with_their_status(tmp_path):
    from runbook_lib.ui.widgets import environments, run_choices, run_summary

    (tmp_path / "params").mkdir()
    for env in ("prod", "ci"):
        (tmp_path / "params" / f"{env}.yaml").write_text("")
    stages = [{"name": "assessment", "status": "passed", "started_at": "a", "finished_at": "b"}]
    write_run(tmp_path, "ci", "20261101T000000Z-aaaaaa", {"status": "passed", "stages": stages})
    write_run(
        tmp_path,
        "ci",
        "20261102T000000Z-bbbbbb",
        {"status": "failed", "failed_stage": "mapping", "stages": []},
    )
    assert environments(tmp_path) == ["ci", "prod"]
    assert run_choices(tmp_path, "ci") == {
        "20261102T000000Z-bbbbbb · failed at mapping": "outputs/ci/20261102T000000Z-bbbbbb",
        "20261101T000000Z-aaaaaa · passed": "outputs/ci/20261101T000000Z-aaaaaa",
    }
    assert run_choices(tmp_path, "prod") == {}
    assert run_summary(tmp_path, "outputs/ci/20261101T000000Z-aaaaaa") == [
        {"stage": "assessment", "status": "passed", "started_at": "a", "finished_at": "b"}
    ]
    assert run_summary(tmp_path, "outputs/ci/missing") == []


def test_the_parameters_to_paste_name_env_and_run_folder():
    from runbook_lib.ui.widgets import parameters_line

    assert parameters_line("ci", "outputs/ci/R") == 'env = "ci"\nrun_dir = "outputs/ci/R"'


def test_run_picker_is_nothing_when_not_interactive(tmp_path):
    from runbook_lib.ui.widgets import run_picker

    assert run_picker(tmp_path, "ci", active=False) is None


def test_headless_progress_is_the_line_printer(capsys):
    import io

    from runbook_lib.ui.progress import progress_callback

    out = io.StringIO()
    report = progress_callback(False, out)
    report("orders", 0, 10)
    report("orders", 10, 10)
    assert "orders: 10 rows to go" in out.getvalue()
    assert "orders: 10/10 rows" in out.getvalue()
    assert capsys.readouterr().out == ""


def test_interactive_progress_shows_one_bar_per_table_that_fills_up():
    pytest.importorskip("ipywidgets")
    from runbook_lib.ui.progress import bar_progress

    shown = []
    report = bar_progress(display=shown.append)
    report("orders", 0, 200)
    report("orders", 100, 200)
    report("users", 5, 0)
    assert len(shown) == 2
    orders, users = shown
    assert (orders.value, orders.max, orders.bar_style) == (100, 200, "")
    assert orders.description == "orders: 100/200 rows"
    report("orders", 200, 200)
    assert (orders.value, orders.bar_style) == (200, "success")
    assert (users.description, users.bar_style) == ("users: 5 rows", "info")


def test_reject_triage_filters_by_rule_and_table_and_masks_the_raw_row(tmp_path):
    import sqlalchemy as sa

    from runbook_lib.load.quarantine import ensure_rejects_table, write_rejects
    from runbook_lib.mapping.compiled import Reject
    from runbook_lib.privacy.masking import EvidenceMasker
    from runbook_lib.ui.widgets import triage_rows

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    ensure_rejects_table(engine)
    raw = {"id": 7, "email": "zhang.wei@example.com", "status": "9"}
    batch = [
        Reject("customers", "legacy_a", "users", "7", "invalid_email", "bad", raw),
        Reject("orders", "legacy_a", "orders", "8", "unmapped_value", "status 9", {"id": 8}),
        Reject("orders", "legacy_a", "orders", "9", "unmapped_value", "status 9", {"id": 9}),
    ]
    with engine.begin() as connection:
        write_rejects(connection, "RUN", batch)
        write_rejects(connection, "OTHER", batch[:1])
    masker = EvidenceMasker({"legacy_a.users": {"email": "email"}})
    assert len(triage_rows(engine, "RUN", masker)) == 3
    assert [r["source_key"] for r in triage_rows(engine, "RUN", masker, table="orders")] == [
        "8",
        "9",
    ]
    assert len(triage_rows(engine, "RUN", masker, rule="unmapped_value", limit=1)) == 1
    (shown,) = triage_rows(engine, "RUN", masker, rule="invalid_email", table="customers")
    assert shown["raw.email"] != raw["email"] and "zhang.wei" not in str(shown)
    assert (shown["raw.id"], shown["raw.status"], shown["rule"]) == (7, "9", "invalid_email")
    assert "run_id" not in shown and "raw_row" not in shown


def test_triage_and_approval_are_nothing_when_not_interactive():
    from runbook_lib.ui.widgets import approval_button, reject_triage

    assert reject_triage(object(), active=False) is None
    assert approval_button(object(), active=False) is None
