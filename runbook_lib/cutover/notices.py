"""Notices for the people the migration changed: merged accounts, corrected contact data, names.

For every source row the mapping carries into a person's record the notices say what changed for
that person, by reason:

* ``merged`` — the record became part of another account (a merge target's crosswalk names the
  survivor);
* ``email_normalized`` / ``phone_normalized`` — the address or number is kept in another form
  (``LI.Wei@Example.com `` → ``li.wei@example.com``, a local number in E.164);
* ``email_removed`` / ``phone_removed`` — the value was invalid and not migrated
  (``on_error: "null"``);
* ``name_split`` — one name field became a first and a last name.

The file holds real contact data, so it is written outside ``outputs/`` (refused inside), readable
by its owner only (``0600``), never into evidence: the evidence holds its counts per reason, its
sha256 and a masked sample. Each row also carries its notice text, rendered from a template per
reason (``{old}``, ``{new}``, ``{merged_into}``, ``{source}``, ``{contact}``).
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.db.lookups import key_in
from runbook_lib.errors import RunbookError
from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.privacy.masking import EvidenceMasker

TEMPLATES = {
    "merged": "Your record {source} is now part of account {merged_into}: you sign in with it.",
    "email_normalized": "We now keep your email address as {new} (it was {old}).",
    "email_removed": "Your email address {old} could not be used; please give us a valid one.",
    "phone_normalized": "We now keep your phone number as {new} (it was {old}).",
    "phone_removed": "Your phone number {old} could not be used; please give us a valid one.",
    "name_split": "We now keep your name as first name and last name: {new} (it was {old}).",
}
COLUMNS = ("person_id", "contact", "reason", "old", "new", "source", "notice")
SAMPLE = 3


@dataclass(frozen=True)
class Notice:
    """One change for one person."""

    person_id: int | None
    contact: str | None  # where to reach them: the email the target keeps
    reason: str
    old: str
    new: str
    source: str  # system.table:key of the source record

    def row(self, templates: Mapping[str, str]) -> dict:
        text = templates.get(self.reason, TEMPLATES[self.reason]).format(
            old=self.old,
            new=self.new,
            merged_into=self.new,
            source=self.source,
            contact=self.contact or "",
        )
        return {
            "person_id": self.person_id,
            "contact": self.contact,
            "reason": self.reason,
            "old": self.old,
            "new": self.new,
            "source": self.source,
            "notice": text,
        }


@dataclass(frozen=True)
class NoticesFile:
    """What the evidence may say of the notices file: counts, hash, a masked sample."""

    path: str
    rows: int
    by_reason: dict[str, int]
    sha256: str
    masked_sample: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "rows": self.rows,
            "by_reason": dict(self.by_reason),
            "sha256": self.sha256,
            "masked_sample": list(self.masked_sample),
        }

    def render(self) -> str:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(self.by_reason.items())) or "none"
        return (
            f"notices: {self.rows:,} rows written outside the evidence ({reasons}); "
            f"sha256 {self.sha256[:16]}…"
        )


def collect(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    masker: EvidenceMasker,
    chunk_size: int = 1_000,
) -> Iterator[Notice]:
    """Every notice, source by source in load order, streamed."""
    metadata = sa.MetaData()
    metadata.reflect(target, only=_tables(spec, target))
    for pipeline in ordered_sources(spec):
        personal = _personal_columns(pipeline, masker)
        merge = pipeline.target.merge
        if not personal and merge is None:
            continue
        yield from _notices_of(
            pipeline, sources[pipeline.system], target, metadata, personal, chunk_size
        )


def _tables(spec: LoadedSpec, target: sa.Engine) -> list[str]:
    present = set(sa.inspect(target).get_table_names())
    return [t for t in spec.touched_tables() if t in present]


def _personal_columns(pipeline: CompiledSource, masker: EvidenceMasker) -> list[tuple]:
    """(column mapping, kind) of the mappings that write a person's email, phone or name."""
    found = []
    for column in pipeline.columns:
        if not column.inputs or column.references is not None:
            continue
        kinds = {masker.classification(pipeline.target_name, o) for o in column.outputs}
        if "email" in kinds:
            found.append((column, "email"))
        elif "phone" in kinds:
            found.append((column, "phone"))
        elif kinds == {"name"} and len(column.outputs) > 1 and len(column.inputs) == 1:
            found.append((column, "name"))
    return found


def _notices_of(pipeline, source, target, metadata, personal, chunk_size) -> Iterator[Notice]:
    table = metadata.tables[pipeline.target_name]
    merge = pipeline.target.merge
    owner = metadata.tables[merge.crosswalk] if merge else table
    id_column = pipeline.target.id_column
    contact_column = next(
        (c.outputs[0] for c, kind in personal if kind == "email" and len(c.outputs) == 1), None
    )
    with source.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
            pipeline.select()
        )
        for partition in result.partitions(chunk_size):
            rows = [tuple(r) for r in partition]
            good, _rejects = pipeline.transform_chunk(rows)
            if not good:
                continue
            keys = [out["source_key"] for _raw, out in good]
            owners = _owners(target, owner, pipeline, keys, id_column, merge)
            contacts = _contacts(target, table, id_column, contact_column, owners)
            for raw, out in good:
                key = out["source_key"]
                if key not in owners:  # not in the target (quarantined later, or a stray)
                    continue
                person, rule = owners[key]
                where = f"{pipeline.system}.{pipeline.table}:{pipeline.key_of(key)}"
                contact = contacts.get(person)
                if merge is not None and rule not in (None, "new"):
                    yield Notice(person, contact, "merged", where, str(person), where)
                values = pipeline.raw_dict(raw)
                for column, kind in personal:
                    yield from _changes(column, kind, values, out, person, contact, where)


def _changes(column, kind, values, out, person, contact, where) -> Iterator[Notice]:
    old = values.get(column.inputs[0])
    if old is None or (isinstance(old, str) and not old.strip()):
        return
    new = [out.get(o) for o in column.outputs]
    if kind == "name":
        if any(n is not None for n in new):
            yield Notice(
                person,
                contact,
                "name_split",
                str(old),
                " / ".join(str(n or "") for n in new),
                where,
            )
        return
    value = new[0]
    if value is None:
        yield Notice(person, contact, f"{kind}_removed", str(old), "", where)
    elif str(value) != str(old):
        yield Notice(person, contact, f"{kind}_normalized", str(old), str(value), where)


def _owners(target, owner, pipeline, keys, id_column, merge) -> dict[str, tuple[int, str | None]]:
    """Source key → (the person's target id, the crosswalk's match rule for merge targets)."""
    found = {}
    columns = [owner.c.source_key, owner.c[id_column]]
    if merge is not None and "match_rule" in owner.c:
        columns.append(owner.c.match_rule)
    with target.connect() as connection:
        for condition in key_in(owner.c.source_key, keys, target.dialect.name):
            query = sa.select(*columns).where(owner.c.source_system == pipeline.system, condition)
            for row in connection.execute(query):
                found[row[0]] = (row[1], row[2] if len(row) > 2 else None)
    return found


def _contacts(target, table, id_column, contact_column, owners) -> dict[int, str]:
    if contact_column is None or not owners:
        return {}
    ids = sorted({person for person, _rule in owners.values()})
    found = {}
    with target.connect() as connection:
        for condition in key_in(table.c[id_column], ids, target.dialect.name):
            query = sa.select(table.c[id_column], table.c[contact_column]).where(condition)
            found.update(connection.execute(query).all())
    return found


def write(
    notices: Iterator[Notice],
    path: Path,
    *,
    outputs: Path,
    templates: Mapping[str, str] | None = None,
    masker: EvidenceMasker,
) -> NoticesFile:
    """Write the notices CSV at ``path`` (owner-only, never under ``outputs``); its evidence."""
    path = Path(path).resolve()
    if path.is_relative_to(Path(outputs).resolve()):
        raise RunbookError(
            f"the notices file {path} would be inside {outputs}: it holds real contact data and "
            "must never become evidence",
            hint="set cutover.notices.path to a folder outside outputs/ (and outside the repo)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    sample: list[dict] = []
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps no wider mode
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for notice in notices:
            row = notice.row(templates or {})
            writer.writerow(row)
            counts[notice.reason] += 1
            if counts[notice.reason] <= 1 and len(sample) < SAMPLE * 3:
                sample.append(_masked(row, notice, masker))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return NoticesFile(str(path), sum(counts.values()), dict(counts), digest, tuple(sample))


def _masked(row: dict, notice: Notice, masker: EvidenceMasker) -> dict:
    """A sample row for the evidence: every value that could name the person masked."""
    kind = notice.reason.partition("_")[0]
    value_kind = kind if kind in ("email", "phone", "name") else "other"
    return {
        "reason": row["reason"],
        "person_id": row["person_id"],
        "contact": masker.mask("", "email", row["contact"]) if row["contact"] else None,
        "old": _mask_kind(masker, value_kind, row["old"]),
        "new": _mask_kind(masker, value_kind, row["new"]),
        "source": row["source"].rpartition(":")[0],
    }


def _mask_kind(masker: EvidenceMasker, kind: str, value: str) -> str | None:
    if not value:
        return value
    column = {"email": "email", "phone": "phone", "name": "full_name"}.get(kind, "note")
    shown = masker.mask("people", column, value)
    return None if shown is None else str(shown)
