"""No secret in evidence: unit tests of the scrubbing, then a real run against PostgreSQL.

The integration test gives ``target`` and ``trial_target`` of a ``ci`` project copy as ``url_env``
naming variables that hold ``postgresql+psycopg://postgres:<PASSWORD>@127.0.0.1:5432/<db>`` (the
local server trusts local connections and ignores the password, so it connects). It runs the whole
runbook, then one stage replaced by a notebook that prints the URL and raises an exception whose
message holds it, and finds the password — raw or percent-encoded — nowhere under ``outputs/``
(run folders, reports, manifests, ledger) nor in anything the CLI printed.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa
import yaml
from helpers import runbook as run_cli

from runbook_lib.privacy.scrub import (
    ScrubbingWriter,
    protect_kernel,
    scrub_error,
    scrub_notebook,
    scrub_text,
    secret_values,
)

PASSWORD = "S3cr3t-XYZ@pg"  # '@' so the URL holds it percent-encoded: S3cr3t-XYZ%40pg
ENCODED = "S3cr3t-XYZ%40pg"
URL = f"postgresql+psycopg://postgres:{ENCODED}@127.0.0.1:5432/shop"

# --------------------------------------------------------------------------------------------
# units


def test_secret_values_are_url_passwords_decoded_and_encoded_and_secret_named_variables():
    environ = {
        "TARGET_URL": URL,
        "API_TOKEN": "tok-123456",
        "HOME": "/root",
        "SHORT_PASSWORD": "abc",  # too short to scrub literally
        "SQLITE_URL": "sqlite:///work/ci/target.db",
    }
    assert secret_values(environ) == {PASSWORD, ENCODED, "tok-123456"}


def test_scrub_text_hides_the_url_password_and_every_literal_secret():
    secrets = secret_values({"TARGET_URL": URL})
    text = f"could not reach {URL}; the password is {PASSWORD}"
    scrubbed = scrub_text(text, secrets)
    assert "S3cr3t" not in scrubbed
    assert "postgres:***@127.0.0.1" in scrubbed


def test_scrub_error_hides_sql_parameters_and_masks_emails():
    error = (
        "IntegrityError: duplicate key\n[SQL: INSERT INTO customers (email) VALUES (%(email)s)]\n"
        "[parameters: {'email': 'li.wei@example.com', 'phone': '+8613812345678'}]\n"
        "while loading li.wei@example.com"
    )
    scrubbed = scrub_error(error, frozenset())
    assert "[parameters: hidden from evidence]" in scrubbed
    assert "li.wei@example.com" not in scrubbed and "l***@example.com" in scrubbed
    assert "+8613812345678" not in scrubbed


def test_scrubbing_writer_hides_a_secret_split_across_writes():
    sink = io.StringIO()
    writer = ScrubbingWriter(sink, secret_values({"TARGET_URL": URL}))
    for piece in (
        "connecting to postgresql+psycopg://postgres:S3c",
        "r3t-XYZ%40pg@host/db\n",
        "ok",
    ):
        writer.write(piece)
    writer.flush()
    assert "S3cr3t" not in sink.getvalue()
    assert sink.getvalue().endswith("ok")


def test_scrub_notebook_cleans_sources_streams_rich_outputs_and_tracebacks(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"url = '{URL}'")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"using {URL}\n"),
        nbformat.v4.new_output("display_data", data={"text/html": f"<b>{PASSWORD}</b>"}),
        nbformat.v4.new_output(
            "error", ename="RuntimeError", evalue=f"no {URL}", traceback=[f"RuntimeError: no {URL}"]
        ),
    ]
    notebook.cells.append(cell)
    path = tmp_path / "stage.ipynb"
    nbformat.write(notebook, path)
    assert scrub_notebook(path, secret_values({"TARGET_URL": URL})) is True
    assert "S3cr3t" not in path.read_text()
    assert scrub_notebook(path, secret_values({"TARGET_URL": URL})) is False  # nothing left


def test_protect_kernel_scrubs_the_traceback_an_ipython_kernel_sends(monkeypatch):
    sent = []

    class Shell:
        def _showtraceback(self, etype, evalue, stb):
            sent.append((etype, str(evalue), stb))

    shell = Shell()
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    monkeypatch.setenv("RUNBOOK_TEST_TARGET_URL", URL)
    assert protect_kernel() is True
    assert protect_kernel() is False  # once only
    shell._showtraceback(RuntimeError, RuntimeError(f"no {URL}"), [f"RuntimeError: no {URL}"])
    assert sent and "S3cr3t" not in repr(sent)
    assert "postgres:***@" in sent[0][1]


# --------------------------------------------------------------------------------------------
# a real run against PostgreSQL


def runbook(project: Path, *args: str, environ: dict) -> subprocess.CompletedProcess:
    return run_cli(project, *args, env=environ)


def _with_password(url: sa.engine.URL) -> str:
    return url.set(password=PASSWORD).render_as_string(hide_password=False)


def _leaky_stage(project: Path) -> None:
    """Replace 00_assessment by a notebook that prints the target URL and fails quoting it."""
    path = project / "notebooks" / "00_assessment.ipynb"
    notebook = nbformat.read(path, as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import os\n"
            "import sqlalchemy as sa\n"
            "url = os.environ['RUNBOOK_SECRET_TARGET_URL']\n"
            "print('connecting to', url, 'as', sa.engine.make_url(url).password)\n"
            "raise ConnectionError(f'cannot reach the target at {url}')"
        ),
    ]
    nbformat.write(notebook, path)


@pytest.mark.postgres
@pytest.mark.notebooks
def test_a_password_from_the_environment_is_nowhere_in_evidence_or_output(
    tmp_path, postgres_url, second_postgres_url
):
    from conftest import copy_project

    project = copy_project(tmp_path / "project")
    params = project / "params" / "ci.yaml"
    data = yaml.safe_load(params.read_text())
    data["target"] = {"url_env": "RUNBOOK_SECRET_TARGET_URL"}
    data["trial_target"] = {"url_env": "RUNBOOK_SECRET_TRIAL_URL"}
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    environ = {
        "RUNBOOK_SECRET_TARGET_URL": _with_password(postgres_url),
        "RUNBOOK_SECRET_TRIAL_URL": _with_password(second_postgres_url),
    }
    assert ENCODED in environ["RUNBOOK_SECRET_TARGET_URL"]
    printed = []
    for args in (("demo-data", "--env", "ci"), ("run", "--env", "ci")):
        result = runbook(project, *args, environ=environ)
        assert result.returncode == 0, result.stderr[-3000:]
        printed += [result.stdout, result.stderr]
    _leaky_stage(project)
    failed = runbook(project, "run", "--env", "ci", "--stages", "assessment", environ=environ)
    assert failed.returncode == 1
    assert "cannot reach the target at postgresql+psycopg://postgres:***@" in failed.stderr
    printed += [failed.stdout, failed.stderr]

    runs = sorted(p for p in (project / "outputs" / "ci").iterdir() if p.is_dir())
    assert len(runs) == 2
    leaky = runs[1]
    for name in ("00_assessment.ipynb", "00_assessment.html", "manifest.json", "index.html"):
        assert (leaky / name).is_file(), name  # the failure is evidence, scrubbed
    assert "ConnectionError: cannot reach the target at" in (leaky / "manifest.json").read_text()
    for path in (project / "outputs").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in (PASSWORD, ENCODED, "S3cr3t"):
                assert secret.encode() not in content, f"{secret} in {path}"
    for text in printed:
        assert "S3cr3t" not in text
    verify = runbook(project, "verify", str(leaky), environ=environ)
    assert verify.returncode == 0, verify.stdout
