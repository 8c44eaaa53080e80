"""The append-only ledger of an environment's evidence: ``outputs/<env>/ledger.jsonl``.

Every time a run's manifest is written (a run opens, a stage ends, the run closes, a stage is
re-run, the run is rolled back, approved or its report rewritten) ``seal`` saves the manifest and
appends one line recording the manifest's sha256. So the ledger holds every version of every
manifest, in order, and a manifest changed outside ``seal`` no longer matches its last line.

Each line is canonical JSON (sorted keys, no spaces) holding ``seq`` (1, 2, ...), the sha256 of
the previous line (``prev``) and its own sha256 (``entry_sha256``, over the other fields): editing
any byte of a line, or removing one, breaks the line itself or the next one. When a run opens, its
manifest's ``chain`` names the previous run of the environment and the ledger line (``seq`` and
manifest sha256) of that run's manifest at that moment: removing a run from the middle breaks the
chain even where the ledger is intact.

Where params configure a signing key (``evidence.signing_key_env``), each line also carries the
public key (``key``, inside what ``entry_sha256`` covers) and an Ed25519 signature of its
``entry_sha256`` (``sig``); ``signature_problems`` says which lines are unsigned, wrongly signed
or signed by another key. Once a ledger holds a signed line, ``seal`` refuses to append without
the key: a ledger never silently goes back to unsigned.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runbook_lib.errors import EvidenceError, SigningKeyError
from runbook_lib.evidence import signing
from runbook_lib.evidence.run_folder import MANIFEST, Manifest, sha256_file, utc_now, writing

LEDGER = "ledger.jsonl"
GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """One ledger line: a version of one run's manifest."""

    seq: int
    at: str
    run_id: str
    event: str
    detail: str
    manifest_sha256: str
    prev: str
    entry_sha256: str
    key: str | None = None  # the signer's public key (base64), where the line is signed
    sig: str | None = None  # Ed25519 signature of entry_sha256

    def line(self) -> str:
        return canonical_json({k: v for k, v in asdict(self).items() if v is not None})

    @property
    def signer(self) -> str | None:
        """The fingerprint of the key that signed this line, if any."""
        return signing.fingerprint(self.key) if self.key else None


def canonical_json(data: dict) -> str:
    """The one byte form of a ledger line."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _entry_hash(fields: dict) -> str:
    body = {k: v for k, v in fields.items() if k not in ("entry_sha256", "sig") and v is not None}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def ledger_path(run_dir: Path) -> Path:
    """The ledger of the environment a run folder belongs to."""
    return run_dir.parent / LEDGER


@dataclass(frozen=True)
class LedgerProblem:
    """Where the ledger is damaged (1-based line number) and how."""

    line: int
    message: str


def read(path: Path) -> tuple[list[Entry], list[LedgerProblem]]:
    """Every intact entry, and every problem: unreadable, edited, out of order or unchained lines."""
    if not path.is_file():
        return [], []
    entries: list[Entry] = []
    problems: list[LedgerProblem] = []
    previous = GENESIS
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw:
            continue
        try:
            fields = json.loads(raw.decode("utf-8"))
            entry = Entry(**fields)
        except (ValueError, TypeError):
            problems.append(LedgerProblem(number, "not a ledger entry (unreadable or edited)"))
            previous = None
            continue
        if entry.line().encode("utf-8") != raw:
            problems.append(LedgerProblem(number, "not in canonical form (edited)"))
        if _entry_hash(fields) != entry.entry_sha256:
            problems.append(LedgerProblem(number, "its entry_sha256 does not match its content"))
        if previous is not None and entry.prev != previous:
            problems.append(
                LedgerProblem(number, "does not chain to the line before it (a line removed?)")
            )
        expected = entries[-1].seq + 1 if entries else 1
        if entry.seq != expected:
            problems.append(LedgerProblem(number, f"seq {entry.seq} where {expected} was due"))
        previous = entry.entry_sha256
        entries.append(entry)
    return entries, problems


def latest(entries: list[Entry], run_id: str) -> Entry | None:
    """The last recorded version of ``run_id``'s manifest."""
    found = [e for e in entries if e.run_id == run_id]
    return found[-1] if found else None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the ledger itself (created empty if new) while appending."""
    with writing(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
    with handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: one writer at a time by convention
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def seal(
    manifest: Manifest,
    event: str,
    detail: str = "",
    *,
    opening: bool = False,
    signer: signing.Signer | None = None,
    anchor: Any = None,
) -> Entry | None:
    """Save ``manifest`` and append its hash to the ledger (no line when nothing changed).

    Write-ahead: the new version is written to ``manifest.tmp``, its line appended, and only then
    does it replace ``manifest.json``; ``recover`` finishes a seal a crash cut between the two.
    ``opening`` links a new run to the previous run of its environment first. Refuses to append to
    a damaged ledger: new evidence must not be chained to a broken history. ``signer`` signs the
    line; without one, a ledger already signed (or a manifest that names a key) is refused.
    ``anchor`` (``evidence.anchor.Anchor``) records the line in the target database first; a
    manifest that names an anchor is refused without one.
    """
    path = ledger_path(manifest.run_dir)
    with _locked(path):
        entries, problems = read(path)
        _refuse_damaged(path, [*problems, *signature_problems(entries).problems])
        if opening:
            manifest.data["chain"] = _link(entries, manifest.data["run_id"])
        try:
            digest = sha256_file(manifest.write_pending())
        except BaseException:
            manifest.pending_path.unlink(missing_ok=True)
            raise
        last = latest(entries, manifest.data["run_id"])
        if last is not None and last.manifest_sha256 == digest:
            manifest.commit_pending()
            return None
        try:
            _refuse_unsigned(path, entries, manifest, signer)
            _refuse_unanchored(manifest, anchor)
        except (SigningKeyError, EvidenceError):
            manifest.pending_path.unlink(missing_ok=True)
            raise
        fields = {
            "seq": len(entries) + 1,
            "at": utc_now(),
            "run_id": manifest.data["run_id"],
            "event": event,
            "detail": detail,
            "manifest_sha256": digest,
            "prev": entries[-1].entry_sha256 if entries else GENESIS,
        }
        if signer is not None:
            fields["key"] = signer.public_key
        digest = _entry_hash(fields)
        sig = signer.sign(digest) if signer is not None else None
        entry = Entry(**fields, entry_sha256=digest, sig=sig)
        anchored = False
        try:
            if anchor is not None:
                anchor.append(entries, entry, manifest.data)  # committed before the line
                anchored = True
            append_line(path, entry.line().encode("utf-8") + b"\n")
        except BaseException:
            manifest.pending_path.unlink(missing_ok=True)  # not recorded: manifest.json stands
            if anchored:  # the line never reached the file (a full disk): nor does its anchor
                anchor.retract(entry)
            raise
        manifest.commit_pending()
        return entry


def append_line(path: Path, line: bytes) -> None:
    """Append one ledger line whole, or not at all: a failed write is cut back off the file."""
    with writing(path.parent), path.open("ab") as handle:
        size = handle.seek(0, os.SEEK_END)
        try:
            _write(handle, line)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            handle.truncate(size)  # a half-written line would damage the whole ledger
            raise


def _write(handle, data: bytes) -> None:
    """The ledger's write of bytes (one place, where a full disk shows)."""
    handle.write(data)


def recover(run_dir: Path) -> bool:
    """Finish a seal interrupted after its ledger line: the pending manifest is the recorded one."""
    pending = Manifest(run_dir, {}).pending_path
    if not pending.is_file():
        return False
    path = ledger_path(run_dir)
    with _locked(path):
        last = latest(read(path)[0], run_dir.name)
        if last is None or sha256_file(pending) != last.manifest_sha256:
            return False
        pending.replace(run_dir / MANIFEST)
        return True


def require_sound(env_dir: Path) -> None:
    """Refuse to start a run whose evidence would be chained to a damaged ledger."""
    path = env_dir / LEDGER
    entries, problems = read(path)
    _refuse_damaged(path, [*problems, *signature_problems(entries).problems])


def _refuse_damaged(path: Path, problems: list[LedgerProblem]) -> None:
    if problems:
        first = problems[0]
        raise EvidenceError(
            f"{path} line {first.line}: {first.message}; nothing was recorded",
            hint="runbook verify <a run folder of this env> lists every problem; investigate first",
        )


def _refuse_unanchored(manifest: Manifest, anchor: Any) -> None:
    named = manifest.data.get("anchor")
    if anchor is None and named:
        raise EvidenceError(
            f"run {manifest.data.get('run_id')} is anchored in {named.get('in')} and this seal has "
            "no access to it: nothing was recorded",
            hint="record evidence from the project, with the target reachable",
        )


def _refuse_unsigned(
    path: Path, entries: list[Entry], manifest: Manifest, signer: signing.Signer | None
) -> None:
    """A signed ledger is only ever extended by its own key (a line without it would be forged)."""
    named = (manifest.data.get("signing") or {}).get("fingerprint")
    signed = next((e for e in reversed(entries) if e.key), None)
    if signer is None:
        if named or signed:
            key = named or signed.signer
            raise SigningKeyError(
                f"the evidence of {path.parent.name} is signed (key {key}), and no signing key "
                "was given: nothing was recorded",
                hint="set params evidence.signing_key_env and export that variable from your "
                "secret store",
            )
        return
    if signed is not None and signed.signer != signer.fingerprint:
        raise SigningKeyError(
            f"{path} is signed by key {signed.signer} (line {signed.seq}); the key given is "
            f"{signer.fingerprint} ({signer.key_env}): nothing was recorded",
            hint=f"export the environment's own private key as {signer.key_env}",
        )


@dataclass(frozen=True)
class Signatures:
    """Who signed an environment's ledger, and which lines do not hold up."""

    signers: tuple[str, ...]  # fingerprints, in order of first use
    signed: int
    unsigned: int
    problems: tuple[LedgerProblem, ...]

    @property
    def fingerprint(self) -> str | None:
        return self.signers[0] if self.signers else None


def signature_problems(entries: list[Entry], trusted: str | None = None) -> Signatures:
    """Check every line's signature; ``trusted`` is the fingerprint the auditor expects.

    Without ``trusted``, the key of the first signed line is the environment's key. A line is a
    problem when its signature does not verify, when another key signed it, or when it is
    unsigned after the ledger's first signed line (appended without the key). Unsigned lines before
    the first signed one were recorded before a key was configured: counted, not refused.
    """
    first = next((e for e in entries if e.key), None)
    expected = trusted or (first.signer if first else None)
    problems: list[LedgerProblem] = []
    signers: list[str] = []
    signed = unsigned = 0
    for number, entry in enumerate(entries, start=1):
        if not entry.key:
            unsigned += 1
            if first is not None and entry.seq > first.seq:
                problems.append(
                    LedgerProblem(
                        number,
                        f"unsigned, though the ledger is signed from line {first.seq} by "
                        f"{first.signer}: appended without the key",
                    )
                )
            continue
        signed += 1
        if entry.signer not in signers:
            signers.append(entry.signer)
        if not entry.sig or not signing.signature_valid(entry.key, entry.entry_sha256, entry.sig):
            problems.append(LedgerProblem(number, "its signature does not verify: wrongly signed"))
        elif entry.signer != expected:
            problems.append(
                LedgerProblem(number, f"signed by key {entry.signer}, not by {expected}")
            )
    if trusted and first is None and entries:
        problems.append(LedgerProblem(1, f"no line is signed, {trusted} was expected"))
    return Signatures(tuple(signers), signed, unsigned, tuple(problems))


def _link(entries: list[Entry], run_id: str) -> dict:
    """The chain field of a new run: the previous run opened in this env and its manifest then."""
    previous = previous_run(entries, run_id)
    if previous is None:
        return {"ledger": LEDGER, "previous_run_id": None}
    last = latest(entries, previous)
    return {
        "ledger": LEDGER,
        "previous_run_id": previous,
        "previous_manifest_sha256": last.manifest_sha256,
        "previous_ledger_seq": last.seq,
    }


def previous_run(entries: list[Entry], run_id: str) -> str | None:
    """The run opened last before ``run_id`` was (or, for a run not yet opened, before now)."""
    opened = [e.run_id for e in entries if e.event == "open"]
    if run_id in opened:
        opened = opened[: opened.index(run_id)]
    return opened[-1] if opened else None
