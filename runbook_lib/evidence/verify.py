"""``runbook verify RUN_DIR``: re-hash every artifact and walk the environment's chain of runs.

Needs nothing but the ``outputs/<env>/`` folder: an auditor can verify a copy. It checks

* the ledger: every line canonical, self-hashed and chained to the one before;
* every run the ledger records: its folder and manifest exist, the manifest hashes as the ledger's
  last line for it says, every artifact hashes as the manifest says, no file is unaccounted for,
  and its ``chain`` names the run opened before it with a manifest version the ledger recorded;
* every run folder on disk is in the ledger, the verified one included.

* with ``anchored`` (``runbook verify --env ENV --against-target`` reads it from the target's
  ``runbook_ledger``): every anchored line still in the file ledger, unchanged, and no file line
  past the anchor's head;
* the signatures (where the ledger is signed): every line signed, by one key, and each
  signature valid; an unsigned line after the first signed one was appended without the key.

A problem names the file. Without a signing key, passing proves the evidence is as it was
recorded, not who recorded it: anyone able to write ``outputs/`` could rewrite an artifact, its
manifest and the ledger, and ``verify`` says so plainly. With a key, keep its fingerprint (and
the ledger head printed here) in the change record, outside this folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.errors import EvidenceError
from runbook_lib.evidence import ledger, signing
from runbook_lib.evidence.ledger import LEDGER
from runbook_lib.evidence.run_folder import MANIFEST, Manifest, sha256_file

if TYPE_CHECKING:
    from runbook_lib.evidence.anchor import AnchoredLine


@dataclass(frozen=True)
class Problem:
    """One thing that does not verify, named by its path."""

    path: str
    message: str

    def render(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Verification:
    """What ``verify_run`` checked and what it found."""

    run_dir: Path
    runs: tuple[str, ...]
    artifacts: int
    ledger_entries: int
    ledger_head: str | None
    manifest_seq: int | None
    problems: tuple[Problem, ...]
    signers: tuple[str, ...] = ()  # fingerprints of the keys that signed the ledger
    signed_lines: int = 0
    unsigned_lines: int = 0
    anchored_lines: int | None = None  # None: not checked against the target

    @property
    def signed(self) -> bool:
        return bool(self.signers)

    def signing_text(self) -> str:
        """What the signatures prove, in one sentence (the plain warning when there are none)."""
        if not self.signed:
            return signing.UNSIGNED_NOTE
        earlier = (
            f"; {self.unsigned_lines} earlier line(s) unsigned (before a key was configured)"
            if self.unsigned_lines
            else ""
        )
        return (
            f"{self.signed_lines} ledger line(s) signed by {', '.join(self.signers)}{earlier}: "
            "compare the fingerprint with the one in your change record"
        )

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "run_dir": str(self.run_dir),
            "passed": self.passed,
            "runs": list(self.runs),
            "artifacts": self.artifacts,
            "ledger_entries": self.ledger_entries,
            "ledger_head": self.ledger_head,
            "manifest_seq": self.manifest_seq,
            "problems": [{"path": p.path, "message": p.message} for p in self.problems],
            "signing": {
                "signed": self.signed,
                "signers": list(self.signers),
                "signed_lines": self.signed_lines,
                "unsigned_lines": self.unsigned_lines,
                "note": self.signing_text(),
            },
            "anchor": {
                "checked": self.anchored_lines is not None,
                "anchored_lines": self.anchored_lines,
            },
        }

    def render(self) -> str:
        name = self.run_dir.name
        if self.passed:
            return (
                f"verified run {name}: manifest = ledger line {self.manifest_seq}; "
                f"{self.artifacts} artifacts re-hashed across {len(self.runs)} run(s) of the chain; "
                f"ledger head {self.ledger_head} ({self.ledger_entries} lines)\n"
                f"{self._signing_line()}{self._anchor_line()}"
            )
        lines = [f"run {name} does NOT verify: {len(self.problems)} problem(s)"]
        lines += [f"  {problem.render()}" for problem in self.problems]
        lines.append(self._signing_line() + self._anchor_line())
        return "\n".join(lines)

    def _anchor_line(self) -> str:
        if self.anchored_lines is None:
            return ""
        return f"\nanchor: {self.anchored_lines} line(s) anchored in the target" + (
            ", every one matching the ledger" if self.passed else ""
        )

    def _signing_line(self) -> str:
        return ("signatures: " if self.signed else "NOT SIGNED: ") + self.signing_text()

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise EvidenceError(self.render(), hint="the evidence changed after it was recorded")


def verify_run(
    run_dir: Path,
    *,
    trusted_key: str | None = None,
    require_signed: bool = False,
    anchored: Sequence[AnchoredLine] | None = None,
) -> Verification:
    """Verify ``run_dir`` and the whole chain of its environment.

    ``trusted_key`` is the fingerprint the auditor expects every line to be signed with (without
    it, the key of the first signed line); ``require_signed`` (params configure a key) makes a
    ledger without any signed line a problem. ``anchored`` is the target's record of the
    ledger (``anchor.Anchor.lines``), compared line by line.
    """
    run_dir = Path(run_dir).resolve()
    env_dir = run_dir.parent
    shown = _Shown(env_dir)
    path = env_dir / LEDGER
    problems: list[Problem] = []
    if not path.is_file():
        problems.append(Problem(shown(path), "missing: nothing vouches for the manifests"))
    entries, damaged = ledger.read(path)
    problems += [Problem(f"{shown(path)} line {p.line}", p.message) for p in damaged]
    signatures = ledger.signature_problems(entries, trusted_key)
    problems += [Problem(f"{shown(path)} line {p.line}", p.message) for p in signatures.problems]
    if require_signed and entries and not signatures.signed:
        problems.append(
            Problem(shown(path), "params configure a signing key, and no ledger line is signed")
        )
    if anchored is not None:
        from runbook_lib.evidence.anchor import compare

        problems += [
            Problem(f"{shown(path)} line {p.line} (against the target)", p.message)
            for p in compare(entries, anchored)
        ]
    recorded = list(dict.fromkeys(e.run_id for e in entries))
    artifacts = 0
    for run_id in recorded:
        found, count = _check_run(env_dir / run_id, entries, shown, strict=True)
        problems += found
        artifacts += count
    on_disk = sorted(p.name for p in env_dir.iterdir() if (p / MANIFEST).is_file())
    for name in on_disk:
        if name not in recorded:
            problems.append(Problem(shown(env_dir / name / MANIFEST), f"not recorded in {LEDGER}"))
    if run_dir.name not in recorded and run_dir.name not in on_disk:
        problems.append(
            Problem(shown(run_dir), "no such run: neither a run folder nor in the ledger")
        )
    last = ledger.latest(entries, run_dir.name)
    return Verification(
        run_dir=run_dir,
        runs=tuple(recorded),
        artifacts=artifacts,
        ledger_entries=len(entries),
        ledger_head=entries[-1].entry_sha256[:16] if entries else None,
        manifest_seq=last.seq if last else None,
        problems=tuple(problems),
        signers=signatures.signers,
        signed_lines=signatures.signed,
        unsigned_lines=signatures.unsigned,
        anchored_lines=len(anchored) if anchored is not None else None,
    )


def require_intact(run_dir: Path) -> None:
    """Refuse to add evidence to a run whose recorded evidence changed (re-run, rollback, approve).

    Checks the ledger, the run's manifest against its last ledger line and every listed artifact
    (a re-run stage's earlier attempt is kept, and unlisted, before its files are rewritten);
    files not yet listed (a stage interrupted by a crash) are left to the re-run to replace, and a
    seal a crash interrupted after its ledger line is finished first (``ledger.recover``).
    """
    run_dir = Path(run_dir).resolve()
    ledger.recover(run_dir)
    shown = _Shown(run_dir.parent)
    path = ledger.ledger_path(run_dir)
    entries, damaged = ledger.read(path)
    damaged += ledger.signature_problems(entries).problems
    problems = [Problem(f"{shown(path)} line {p.line}", p.message) for p in damaged]
    problems += _check_run(run_dir, entries, shown, strict=False)[0]
    if problems:
        details = "\n".join(f"  {p.render()}" for p in problems)
        raise EvidenceError(
            f"run {run_dir.name} does not verify; nothing was changed:\n{details}",
            hint=f"runbook verify {shown(run_dir)}",
        )


def _check_run(
    folder: Path,
    entries: list[ledger.Entry],
    shown: _Shown,
    *,
    strict: bool,
) -> tuple[list[Problem], int]:
    run_id = folder.name
    last = ledger.latest(entries, run_id)
    manifest_path = folder / MANIFEST
    if last is None:
        return [Problem(shown(manifest_path), f"not recorded in {LEDGER}")], 0
    if not folder.is_dir():
        return [
            Problem(
                shown(folder),
                f"run {run_id} is recorded in {LEDGER} (line {last.seq}) but its folder is "
                "missing: removed from the chain",
            )
        ], 0
    if not manifest_path.is_file():
        return [Problem(shown(manifest_path), "missing")], 0
    problems = []
    digest = sha256_file(manifest_path)
    if digest != last.manifest_sha256:
        problems.append(
            Problem(
                shown(manifest_path),
                f"sha256 {digest[:12]} differs from its last ledger record (line {last.seq}, "
                f"{last.manifest_sha256[:12]}): changed after it was recorded",
            )
        )
    try:
        manifest = Manifest.load(folder)
    except (ValueError, UnicodeDecodeError, EvidenceError):
        return [*problems, Problem(shown(manifest_path), "not readable JSON")], 0
    if manifest.data.get("run_id") != run_id:
        problems.append(Problem(shown(manifest_path), f"names run {manifest.data.get('run_id')}"))
    listed = manifest.artifacts()
    for name, expected in listed.items():
        artifact = folder / name
        if not artifact.is_file():
            problems.append(Problem(shown(artifact), "listed in the manifest but missing"))
        elif sha256_file(artifact) != expected:
            problems.append(
                Problem(shown(artifact), "sha256 differs from the manifest: changed after the run")
            )
    if strict:
        for item in sorted(folder.iterdir()):
            if item.name not in listed and item.name != MANIFEST:
                problems.append(Problem(shown(item), "not covered by the manifest"))
        problems += _check_link(folder, manifest.data.get("chain"), entries, shown)
    return problems, len(listed) + 1


def _check_link(
    folder: Path, chain: dict | None, entries: list[ledger.Entry], shown: _Shown
) -> list[Problem]:
    where = shown(folder / MANIFEST)
    expected = ledger.previous_run(entries, folder.name)
    if not isinstance(chain, dict):
        return [Problem(where, "has no chain link to the previous run")]
    named = chain.get("previous_run_id")
    if named != expected:
        return [Problem(where, f"its chain names previous run {named}, the ledger says {expected}")]
    if named is None:
        return []
    problems = []
    if not (folder.parent / named / MANIFEST).is_file():
        problems.append(Problem(where, f"its previous run {named} is missing: the chain is broken"))
    recorded = next((e for e in entries if e.seq == chain.get("previous_ledger_seq")), None)
    if (
        recorded is None
        or recorded.run_id != named
        or recorded.manifest_sha256 != chain.get("previous_manifest_sha256")
    ):
        problems.append(
            Problem(where, f"its link to run {named}'s manifest matches no line of {LEDGER}")
        )
    return problems


class _Shown:
    """Paths as ``outputs/<env>/<run>/<file>`` (relative to the outputs folder's parent)."""

    def __init__(self, env_dir: Path) -> None:
        self.base = env_dir.parent.parent

    def __call__(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.base))
        except ValueError:
            return str(path)
