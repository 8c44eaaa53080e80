"""Masking of personal data before it reaches evidence: emails, phones, names, free text.

Masks keep just enough to recognise a record in a conversation (first letter, domain, last two
digits, initials) and nothing that identifies a person on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from runbook_lib.db.canonical import canonical
from runbook_lib.privacy.classification import PHONE_IN_TEXT, classify_column
from runbook_lib.transforms.names import CJK

_UNREADABLE = object()
# not right after "/" or ":": the user of a URL (scheme://user@host) is not an email address
_EMAIL_IN_TEXT = re.compile(r"(?<![/:\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_email(value: object) -> object:
    """``li.wei@example.com`` → ``l***@example.com``."""
    if not isinstance(value, str) or not value:
        return value
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return _mask_text(value)
    return f"{local[:1]}***@{domain}" if local else f"***@{domain}"


def mask_phone(value: object) -> object:
    """Keep only the last two digits: ``+8613812345678`` → ``***78``."""
    if value is None:
        return None
    digits = re.sub(r"\D", "", str(value))
    return f"***{digits[-2:]}" if len(digits) >= 2 else "***"


def mask_name(value: object) -> object:
    """Names to initials: ``Mary Ann Smith`` → ``M. A. S.``; ``欧阳娜娜`` → ``欧*``."""
    if not isinstance(value, str) or not value.strip():
        return value
    text = value.strip()
    if CJK.search(text):
        return f"{text[0]}*"
    return " ".join(f"{part[0]}." for part in text.split())


def _mask_text(value: object) -> object:
    if not isinstance(value, str) or not value:
        return value
    return f"{value[:1]}***"


def _redact(value: object) -> object:
    return None if value is None else "[redacted]"


def mask_birth_date(value: object) -> object:
    """A birth date keeps its year: ``1990-01-02`` → ``1990-**-**``."""
    if value is None:
        return None
    year = getattr(value, "year", None)
    if isinstance(year, int):
        return f"{year:04d}-**-**"
    text = str(value).strip()
    found = re.search(r"(?<!\d)(\d{4})(?!\d)", text)
    return f"{found.group(1)}-**-**" if found else "**"


def mask_postal_code(value: object) -> object:
    """A postal code keeps its first two characters (the region): ``30303`` → ``30***``."""
    if value is None:
        return None
    text = str(value).strip()
    return f"{text[:2]}***" if text else text


def mask_contacts_in_text(text: object) -> object:
    """Every email address and phone number inside free text masked; the rest kept."""
    if not isinstance(text, str) or not text:
        return text
    text = mask_emails_in_text(text)
    return PHONE_IN_TEXT.sub(lambda match: str(mask_phone(match.group(0))), text)


MASKERS: dict[str, Callable[[object], object]] = {
    "email": mask_email,
    "phone": mask_phone,
    "name": mask_name,
    "address": _mask_text,
    "username": _mask_text,
    "credential": _redact,
    "company": _mask_text,
    "birth_date": mask_birth_date,
    "postal_code": mask_postal_code,
    "contact_text": mask_contacts_in_text,
}


def mask_value(classification: str, value: object) -> object:
    """Mask ``value`` according to its column's classification (``other`` passes through)."""
    return MASKERS.get(classification, lambda v: v)(value)


def mask_row(row: dict, classifications: dict[str, str]) -> dict:
    """Every value of ``row`` masked by its column's classification."""
    return {
        name: mask_value(classifications.get(name, "other"), value) for name, value in row.items()
    }


def mask_emails_in_text(text: str) -> str:
    """Every email address inside free text (an error message, a log line) masked."""
    return _EMAIL_IN_TEXT.sub(lambda match: str(mask_email(match.group(0))), text or "")


@dataclass(frozen=True)
class EvidenceMasker:
    """How every value is shown in evidence: masked by its column's classification.

    The one place that decides. ``classifications`` maps ``system.table`` (a source) or a bare
    target table name to column → classification, as the assessment glued them; the target
    columns the spec fills from a personal source column inherit its classification. A column
    nobody classified is classified from its name, and email addresses are masked wherever they
    appear in a text value classified ``other``. Findings, profiles, previews, row differences,
    the reject triage and the transform playground all show values through ``mask``.
    """

    classifications: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_classification(
        cls, classified: Iterable[Mapping] | None, spec: Any = None
    ) -> EvidenceMasker:
        """From the assessment's glued ``classification``, extended through ``spec``.

        ``classified`` holds rows of system, table, column and classification; with ``spec`` (a
        ``LoadedSpec``: privacy sits below mapping, so it is not imported here),
        each target column filled from a personal source column is classified like it.
        """
        found: dict[str, dict[str, str]] = {}
        for column in classified or ():
            table = f"{column['system']}.{column['table']}"
            found.setdefault(table, {})[column["column"]] = column["classification"]
        if spec is not None:
            for target_name, _target, system, table, source in spec.sources():
                known = found.get(f"{system}.{table}", {})
                for targets_text, mapping in source.columns.items():
                    inherited = [
                        known.get(name) or classify_column(table, name)[0]
                        for name in mapping.inputs
                    ]
                    personal = next((kind for kind in inherited if kind != "other"), None)
                    if personal is None:
                        continue
                    for output in (name.strip() for name in targets_text.split(",")):
                        found.setdefault(target_name, {}).setdefault(output, personal)
        return cls(found)

    @classmethod
    def from_assessment(cls, assessment: Mapping) -> EvidenceMasker:
        """From the glued ``assessment`` of stage 00 (its ``classification``, or ``columns``)."""
        return cls.from_classification(
            assessment.get("classification") or assessment.get("columns") or []
        )

    def known(self, table: str, column: str) -> str | None:
        """The classification given for ``table.column`` (glued, inherited), or None."""
        return self.classifications.get(table, {}).get(column)

    def classification(self, table: str, column: str) -> str:
        """The classification of ``table.column`` (``system.table`` for a source)."""
        known = self.known(table, column)
        if known is not None:
            return known
        return classify_column(table.rpartition(".")[2], column)[0]

    def with_columns(self, table: str, kinds: Mapping[str, str]) -> EvidenceMasker:
        """A copy with ``table``'s columns classified as ``kinds`` say (they win over what was known)."""
        found = {name: dict(columns) for name, columns in self.classifications.items()}
        found.setdefault(table, {}).update(kinds)
        return EvidenceMasker(found)

    def mask(self, table: str, column: str, value: object) -> object:
        """``value`` of ``table.column`` as evidence may show it."""
        kind = self.classification(table, column)
        if kind == "other" and isinstance(value, str):
            return mask_contacts_in_text(value)
        return mask_value(kind, value)

    def for_column(self, table: str, column: str) -> Callable[[object], object]:
        """``mask`` bound to one column, for a view that shows many of its values."""
        return partial(self.mask, table, column)

    def text(self, table: str, column: str, value: object) -> str | None:
        """``mask`` as canonical text (``None`` stays ``None``): how tables of evidence show it."""
        shown = self.mask(table, column, value)
        if shown is None:
            return None
        return shown if isinstance(shown, str) else canonical(shown)

    def mask_row(self, table: str, row: Mapping) -> dict:
        """``row`` of ``table`` with every value masked."""
        return {column: self.mask(table, column, value) for column, value in row.items()}

    def mask_rows(self, table: str, rows: Iterable[Mapping]) -> list[dict]:
        return [self.mask_row(table, dict(row)) for row in rows]

    def mask_reject(self, reject: dict) -> dict:
        """A row of the reject table for evidence: its raw source row and message masked."""
        table = f"{reject.get('source_system')}.{reject.get('source_table')}"
        shown = dict(reject)
        raw = reject.get("raw_row")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = _UNREADABLE
        if isinstance(raw, dict):
            shown["raw_row"] = self.mask_row(table, raw)
        elif raw is not None:
            shown["raw_row"] = "[unreadable raw row hidden]"
        if isinstance(reject.get("message"), str):
            shown["message"] = mask_emails_in_text(reject["message"])
        return shown
