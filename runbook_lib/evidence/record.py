"""The one writer of a run's evidence: every change is require intact → change → seal.

Whoever adds to a run folder — the runner opening a run, keeping a re-run stage's earlier
attempt, recording a stage, closing it; an approval; a rewritten report — goes through
``open_run``, ``keep_attempt`` or ``change_run``: the run's recorded evidence is first proven
unchanged (``verify.require_intact``), the manifest is changed in memory, the report
(``index.html``) is rewritten when asked, and the new manifest version is sealed in the
environment's ledger (``ledger.seal``, write-ahead). Nothing else writes a manifest.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runbook_lib.errors import EvidenceWriteError, RunbookError
from runbook_lib.evidence import index_page, ledger
from runbook_lib.evidence.run_folder import (
    ATTEMPT_FIELDS,
    MANIFEST,
    Manifest,
    attempt_name,
    sha256_file,
    utc_now,
    writing,
)
from runbook_lib.evidence.trust import Trust
from runbook_lib.evidence.verify import require_intact
from runbook_lib.privacy.scrub import scrub_error


def open_run(run_dir: Path, detail: str, *, trust: Trust | None = None, **fields: Any) -> Manifest:
    """Create a run folder with its manifest, linked to the env's previous run, and seal it.

    Refuses when the environment's ledger is damaged: new evidence must not be chained to a
    broken history.
    """
    trust = trust or Trust()
    ledger.require_sound(run_dir.parent)
    manifest = Manifest.create(run_dir, **fields, **trust.manifest_fields())
    try:
        _seal(manifest, "open", detail, trust, opening=True)
    except EvidenceWriteError:
        # never recorded: no run folder is left for verify to find outside the ledger
        if not (run_dir / MANIFEST).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return manifest


def _seal(
    manifest: Manifest, event: str, detail: str, trust: Trust | None, *, opening: bool = False
) -> ledger.Entry | None:
    trust = trust or Trust()
    return ledger.seal(
        manifest, event, detail, opening=opening, signer=trust.signer, anchor=trust.anchor
    )


@contextmanager
def change_run(
    run_dir: Path,
    event: str,
    detail: str = "",
    *,
    report: bool = False,
    trust: Trust | None = None,
) -> Iterator[Manifest]:
    """Change a run's manifest: proven intact first, the report rewritten if asked, then sealed.

    The block changes the yielded manifest; if it raises, nothing is written.
    """
    if not (run_dir / MANIFEST).is_file():
        raise RunbookError(f"no run folder {run_dir}", hint="runbook status lists the runs")
    require_intact(run_dir)
    manifest = Manifest.load(run_dir)
    yield manifest
    if report:
        attach_report(manifest)
    _seal(manifest, event, detail, trust)


def keep_attempt(run_dir: Path, stage: str, trust: Trust | None = None) -> dict[str, Any] | None:
    """Before ``stage`` runs again in this run: keep its recorded attempt, then seal.

    The attempt's notebook and HTML, proven intact, are copied to their attempt names
    (``04_validation.attempt-1.ipynb``) and listed with their sha256, status, times and failure
    under the stage's ``attempts``; the stage is entered as ``running`` until the runner records
    the new attempt, so the file it is about to overwrite is no longer vouched for. An attempt
    that never finished (the process was killed) is kept as ``interrupted``, without files:
    nothing vouched for them. Returns the kept attempt, or None if the stage never ran here.
    """
    if not (run_dir / MANIFEST).is_file():
        raise RunbookError(f"no run folder {run_dir}", hint="runbook status lists the runs")
    recorded = Manifest.load(run_dir).stage(stage)
    if recorded is None:
        return None
    number = len(recorded.get("attempts", [])) + 1
    detail = f"{stage} attempt {number} kept"
    if recorded.get("status") != "running":
        detail += f" as {attempt_name(recorded['notebook'], number)}"
    with change_run(run_dir, "attempt", detail, trust=trust) as manifest:
        entry = manifest.stage(stage)
        if entry.get("status") == "running":
            kept = {
                "attempt": number,
                "status": "interrupted",
                "started_at": entry.get("started_at"),
                "note": "never finished: its notebook, if any, was not recorded and is not kept",
            }
        else:
            kept = {"attempt": number, **{k: entry[k] for k in ATTEMPT_FIELDS if k in entry}}
            for kind in ("notebook", "html"):
                if f"sha256_{kind}" in entry:
                    name = attempt_name(entry[kind], number)
                    with writing(run_dir):
                        shutil.copyfile(run_dir / entry[kind], run_dir / name)
                    kept |= {kind: name, f"sha256_{kind}": sha256_file(run_dir / name)}
        manifest.data["stages"] = [
            {
                "name": stage,
                "notebook": entry["notebook"],
                "status": "running",
                "started_at": utc_now(),
                "attempt": number + 1,
                "attempts": [*entry.get("attempts", []), kept],
            }
            if s["name"] == stage
            else s
            for s in manifest.data["stages"]
        ]
    return kept


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


def rewrite_report(run_dir: Path, trust: Trust | None = None) -> tuple[Path, ledger.Entry | None]:
    """``runbook report``: rewrite an intact run's page; the ledger line if its bytes changed."""
    if not (run_dir / MANIFEST).is_file():
        raise RunbookError(f"no run folder {run_dir}", hint="runbook report outputs/<env>/<run_id>")
    require_intact(run_dir)
    manifest = Manifest.load(run_dir)
    path = index_page.attach_report(manifest)
    return path, _seal(manifest, "report", "", trust)
