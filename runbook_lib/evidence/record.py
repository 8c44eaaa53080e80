"""The one writer of a run's evidence: every change is require intact → change → seal.

Whoever adds to a run folder — the runner opening a run, recording a stage, closing it; an
approval; a rewritten report — goes through ``open_run`` or ``change_run``: the run's recorded
evidence is first proven unchanged (``verify.require_intact``), the manifest is changed in
memory, the report (``index.html``) is rewritten when asked, and the new manifest version is
sealed in the environment's ledger (``ledger.seal``, write-ahead). Nothing else writes a
manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runbook_lib.errors import RunbookError
from runbook_lib.evidence import index_page, ledger
from runbook_lib.evidence.run_folder import MANIFEST, Manifest
from runbook_lib.evidence.verify import require_intact
from runbook_lib.privacy.scrub import scrub_error


def open_run(run_dir: Path, detail: str, **fields: Any) -> Manifest:
    """Create a run folder with its manifest, linked to the env's previous run, and seal it.

    Refuses when the environment's ledger is damaged: new evidence must not be chained to a
    broken history.
    """
    ledger.require_sound(run_dir.parent)
    manifest = Manifest.create(run_dir, **fields)
    ledger.seal(manifest, "open", detail, opening=True)
    return manifest


@contextmanager
def change_run(
    run_dir: Path,
    event: str,
    detail: str = "",
    *,
    report: bool = False,
    replacing: Iterable[str] = (),
) -> Iterator[Manifest]:
    """Change a run's manifest: proven intact first, the report rewritten if asked, then sealed.

    ``replacing`` names artifacts the caller has just rewritten (a re-run stage's notebook and
    HTML), whose old hashes are not checked. The block changes the yielded manifest; if it
    raises, nothing is written.
    """
    if not (run_dir / MANIFEST).is_file():
        raise RunbookError(f"no run folder {run_dir}", hint="runbook status lists the runs")
    require_intact(run_dir, replacing)
    manifest = Manifest.load(run_dir)
    yield manifest
    if report:
        attach_report(manifest)
    ledger.seal(manifest, event, detail)


def attach_report(manifest: Manifest, secrets: frozenset[str] | None = None) -> str | None:
    """Write ``index.html`` into the manifest; a report that cannot be built costs no record.

    Returns the error (scrubbed) when the page could not be written; it is kept in the
    manifest as ``report_error`` and the stale page is removed.
    """
    try:
        index_page.attach_report(manifest)
    except Exception as exc:  # noqa: BLE001 - recorded in the manifest and shown, never swallowed
        (manifest.run_dir / index_page.REPORT).unlink(missing_ok=True)
        manifest.data.pop("report", None)
        manifest.data["report_error"] = scrub_error(f"{type(exc).__name__}: {exc}", secrets)
        return manifest.data["report_error"]
    manifest.data.pop("report_error", None)
    return None


def rewrite_report(run_dir: Path) -> tuple[Path, ledger.Entry | None]:
    """``runbook report``: rewrite an intact run's page; the ledger line if its bytes changed."""
    if not (run_dir / MANIFEST).is_file():
        raise RunbookError(f"no run folder {run_dir}", hint="runbook report outputs/<env>/<run_id>")
    require_intact(run_dir)
    manifest = Manifest.load(run_dir)
    path = index_page.attach_report(manifest)
    return path, ledger.seal(manifest, "report")
