"""The ledger anchored outside ``outputs/``: every line also recorded in the target database.

The files alone are self-consistent by construction: whoever can write ``outputs/`` can cut the
newest run and its ledger tail, or re-seal an edited manifest, and the chain still holds. So each
seal also records its ledger line in the target's ``runbook_ledger`` table (``db.bookkeeping``),
in a transaction committed *before* the line is appended to ``ledger.jsonl``, together with what
the manifest then said (``facts``: each stage's status and notebook sha256, the params and spec
sha256, the approval's sha256). A seal first checks that the files still agree with the anchor
and refuses otherwise, so a forged line is never laundered into the anchor by a later seal.

``compare`` is the check ``runbook verify --env ENV --against-target`` runs: every anchored
line present and unchanged in the file ledger (a cut tail, a re-sealed or edited line is named),
no line of the file past the anchor's head (appended without database access), and each line
signed by the key the anchor recorded. The first seal into an empty anchor (a new target, or a
target rebuilt by ``runbook demo-data``) records the lines the files hold then.

An insider who can write both ``outputs/`` and the target's ``runbook_ledger`` can forge both;
the signing key is what stands against that one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import BOOKKEEPING, LEDGER_TABLE, ledger_anchor
from runbook_lib.errors import EvidenceError, GateFailedError
from runbook_lib.evidence.ledger import Entry, LedgerProblem
from runbook_lib.evidence.run_folder import sha256_file, utc_now


@dataclass(frozen=True)
class AnchoredLine:
    """One ledger line as the target recorded it when it was sealed."""

    seq: int
    run_id: str
    event: str
    manifest_sha256: str
    entry_sha256: str
    signer: str | None
    facts: dict[str, Any] | None
    anchored_at: str


def manifest_facts(data: dict[str, Any]) -> dict[str, Any]:
    """What a manifest version says that gates rely on: stage outcomes and the hashes they bind."""
    return {
        "status": data.get("status"),
        "params_sha256": data.get("params_sha256"),
        "mapping_spec_sha256": (data.get("mapping_spec") or {}).get("sha256"),
        "approval_sha256": (data.get("approval") or {}).get("sha256"),
        "approval_cutover_sha256": (data.get("approval_cutover") or {}).get("sha256"),
        "stages": {
            stage["name"]: {
                "status": stage.get("status"),
                "sha256_notebook": stage.get("sha256_notebook"),
            }
            for stage in data.get("stages", [])
        },
    }


def compare(entries: Sequence[Entry], anchored: Sequence[AnchoredLine]) -> list[LedgerProblem]:
    """Where the file ledger and the target's anchor disagree (1-based seq as the line)."""
    if not anchored:
        return (
            [
                LedgerProblem(
                    1, f"no line of this environment is anchored in the target's {LEDGER_TABLE}"
                )
            ]
            if entries
            else []
        )
    by_seq = {entry.seq: entry for entry in entries}
    problems = []
    for line in anchored:
        entry = by_seq.get(line.seq)
        if entry is None:
            problems.append(
                LedgerProblem(
                    line.seq,
                    f"missing, though the target anchored it (run {line.run_id}, {line.event}, "
                    f"{line.anchored_at}): the ledger was cut",
                )
            )
        elif entry.entry_sha256 != line.entry_sha256:
            problems.append(
                LedgerProblem(
                    line.seq,
                    f"differs from the line the target anchored (run {line.run_id}, "
                    f"{line.entry_sha256[:12]} → {entry.entry_sha256[:12]}): re-sealed or edited",
                )
            )
        elif line.signer != entry.signer:
            problems.append(
                LedgerProblem(
                    line.seq, f"signed by {entry.signer}, the target anchored {line.signer}"
                )
            )
    head = max(line.seq for line in anchored)
    problems += [
        LedgerProblem(
            entry.seq,
            f"not anchored in the target (its anchor ends at line {head}): appended without "
            "database access",
        )
        for entry in entries
        if entry.seq > head
    ]
    return problems


class Anchor:
    """The ``runbook_ledger`` table of one environment in its target database."""

    def __init__(self, engine: sa.Engine, env: str, label: str) -> None:
        self.engine = engine
        self.env = env
        self.label = label

    def _missing_file(self) -> Path | None:
        """A SQLite target that is not there (never created by reading or anchoring it)."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        path = Path(url.database)
        return None if path.is_file() else path

    def lines(self) -> list[AnchoredLine]:
        """Every anchored line of this environment, in order (none if the table is not there)."""
        if self._missing_file() is not None:
            return []
        try:
            with self.engine.connect() as connection:
                return self._lines(connection)
        except sa.exc.DBAPIError as exc:
            raise EvidenceError(
                f"cannot read the ledger anchor in {self.label}: {type(exc.orig).__name__}",
                hint="the target must be reachable to check the evidence against it",
            ) from None

    def _lines(self, connection: sa.Connection) -> list[AnchoredLine]:
        if LEDGER_TABLE not in sa.inspect(connection).get_table_names():
            return []
        rows = connection.execute(
            sa.select(ledger_anchor)
            .where(ledger_anchor.c.env == self.env)
            .order_by(ledger_anchor.c.seq)
        ).mappings()
        return [
            AnchoredLine(
                seq=row["seq"],
                run_id=row["run_id"],
                event=row["event"],
                manifest_sha256=row["manifest_sha256"],
                entry_sha256=row["entry_sha256"],
                signer=row["signer"],
                facts=json.loads(row["facts"]) if row["facts"] else None,
                anchored_at=row["anchored_at"],
            )
            for row in rows
        ]

    def append(self, entries: Sequence[Entry], entry: Entry, manifest: dict[str, Any]) -> None:
        """Anchor ``entry`` (the line about to be appended after ``entries``), in one transaction.

        Refused when the file ledger no longer agrees with the anchor. An empty anchor first
        records the lines the files hold.
        """
        missing = self._missing_file()
        if missing is not None:
            raise EvidenceError(
                f"could not anchor ledger line {entry.seq} of env {self.env}: {self.label} is "
                f"no file ({missing}); nothing was recorded",
                hint=f"create the target first (for the demo: runbook demo-data --env {self.env})",
            )
        try:
            with self.engine.begin() as connection:
                BOOKKEEPING.create_all(connection, tables=[ledger_anchor])
                anchored = self._lines(connection)
                problems = compare(entries, anchored) if anchored else []
                if problems:
                    details = "\n".join(f"  ledger line {p.line}: {p.message}" for p in problems)
                    raise EvidenceError(
                        f"the ledger of env {self.env} no longer matches its anchor in "
                        f"{self.label}; nothing was recorded:\n{details}",
                        hint=f"runbook verify --env {self.env} --against-target; investigate first",
                    )
                earlier = [] if anchored else list(entries)
                now = utc_now()
                connection.execute(
                    ledger_anchor.insert(),
                    [self._row(line, None, now) for line in earlier]
                    + [self._row(entry, manifest_facts(manifest), now)],
                )
        except sa.exc.DBAPIError as exc:
            raise EvidenceError(
                f"could not anchor ledger line {entry.seq} of env {self.env} in {self.label} "
                f"({type(exc.orig).__name__}): nothing was recorded",
                hint="the target must be reachable to record evidence; try again",
            ) from None

    def retract(self, entry: Entry) -> None:
        """Remove ``entry``'s anchor when its line could not be appended (best effort, said)."""
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    ledger_anchor.delete().where(
                        ledger_anchor.c.env == self.env,
                        ledger_anchor.c.seq == entry.seq,
                        ledger_anchor.c.entry_sha256 == entry.entry_sha256,
                    )
                )
        except sa.exc.DBAPIError as exc:
            raise EvidenceError(
                f"ledger line {entry.seq} of env {self.env} could not be written, and its anchor "
                f"in {self.label} could not be removed ({type(exc.orig).__name__})",
                hint=f"runbook verify --env {self.env} --against-target names the line",
            ) from None

    def _row(self, entry: Entry, facts: dict | None, now: str) -> dict[str, Any]:
        return {
            "env": self.env,
            "seq": entry.seq,
            "run_id": entry.run_id,
            "event": entry.event,
            "manifest_sha256": entry.manifest_sha256,
            "entry_sha256": entry.entry_sha256,
            "signer": entry.signer,
            "facts": json.dumps(facts, sort_keys=True) if facts is not None else None,
            "anchored_at": now,
        }

    def facts_of(self, run_id: str) -> dict[str, Any] | None:
        """What the newest anchored version of ``run_id``'s manifest said (None if never anchored)."""
        found = [line for line in self.lines() if line.run_id == run_id and line.facts]
        return found[-1].facts if found else None

    def vouch_for_stage(self, run_dir: Path, stage: str, notebook: str) -> dict[str, Any]:
        """The anchored facts of ``run_dir``, once its ``stage`` passed *by the target's record*.

        A gate reads a notebook's scraps only after this: the notebook on disk must be the one the
        target anchored for that stage (its sha256), and the anchored status must be ``passed``.
        A notebook edited and re-sealed without database access is refused (exit 3).
        """
        run_id = run_dir.name
        facts = self.facts_of(run_id)
        hint = f"runbook verify --env {self.env} --against-target"
        if facts is None:
            raise EvidenceError(
                f"run {run_id} is not anchored in {self.label}: nothing vouches for its {stage} "
                "beyond the files",
                hint=f"{hint}; re-run the {stage} stage into this run",
            )
        anchored = facts.get("stages", {}).get(stage) or {}
        path = run_dir / notebook
        current = sha256_file(path) if path.is_file() else "missing"
        if anchored.get("sha256_notebook") != current:
            raise EvidenceError(
                f"{notebook} of run {run_id} is not the {stage} notebook the target anchored "
                f"({str(anchored.get('sha256_notebook'))[:12]} → {current[:12]}): changed after "
                "it was recorded",
                hint=hint,
            )
        if anchored.get("status") != "passed":
            raise GateFailedError(
                f"the {stage} of run {run_id} is recorded in {self.label} as "
                f"{anchored.get('status')}, not passed",
                hint=f"fix what {notebook} shows, then re-run the {stage}",
            )
        return facts

    def record(self) -> dict:
        """What a manifest says about its anchor (no URL: the connection's name and dialect)."""
        return {"table": LEDGER_TABLE, "in": self.label}
