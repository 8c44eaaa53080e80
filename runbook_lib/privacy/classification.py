"""Data classification of columns: personal (name, email, phone, address, ...), credential, financial.

Classification drives masking in evidence. It is decided from the column name first; a column whose
name says nothing is classified from a sample of its values (``classify_values``): an email or a
phone in ``notes`` or ``contact`` is personal whatever the column is called. The assessment shows
and glues the outcome, so an auditor can check it, and every later stage masks by what it glued.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_RULES: tuple[tuple[str, str, str], ...] = (
    # (classification, category, column-name pattern)
    ("credential", "credential", r"password|passwd|pwd_hash|secret|token"),
    ("email", "personal", r"e_?mail"),
    ("phone", "personal", r"phone|mobile|tel(ephone)?$|fax"),
    ("address", "personal", r"address|street|addr"),
    ("postal_code", "personal", r"(^|_)(zip|zip_?code|postal_?code|post_?code|postcode)$"),
    ("birth_date", "personal", r"birth|(^|_)(dob|born|born_on)$"),
    ("username", "personal", r"user_?name|login|nickname"),
    ("name", "personal", r"(^|_)(full_?name|first_?name|last_?name|given_?name|surname|name)$"),
    ("company", "personal", r"(^|_)(company|employer|organi[sz]ation|business)(_?name)?$"),
    ("amount", "financial", r"amount|price|cost|total|cents|balance"),
)
CATEGORIES = {classification: category for classification, category, _ in _RULES} | {
    "contact_text": "personal"  # free text holding an email address or a phone number
}
# Tables whose name says they hold people: there, a bare ``name`` column is a person's name.
_PERSON_TABLES = re.compile(r"user|customer|person|people|contact|member|client|employee|staff")

# How many distinct values of a column ``classify_values`` looks at, and the share that decides.
SAMPLE_SIZE = 200
_SHARE = 0.6
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# a phone: optional +, digits in groups (spaces, dots, dashes, brackets), 7 to 15 digits
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
# inside text: an international number, or grouped digits of a local one (404-555-0147)
PHONE_IN_TEXT = re.compile(
    r"(?<![\w.-])(?:\+\d{1,3}[\s.-]?\(?\d[\d\s().-]{5,}\d"
    r"|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}|1[3-9]\d{9})(?![\w-])"
)
_STREET = re.compile(
    r"^\s*\d+[a-z]?,?\s+\S.*\b(street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|"
    r"court|ct|place|pl|square|sq|terrace|strasse|straße|rue|via|calle)\b\.?"
    r"|[路街道巷弄]\s*\d+\s*号",
    re.IGNORECASE,
)
_COMPANY = re.compile(
    r"\b(inc|llc|ltd|limited|gmbh|ag|plc|corp|corporation|co|company|s\.?a|b\.?v|pty|holdings)\b\.?\s*$"
    r"|有限公司|股份",
    re.IGNORECASE,
)


def classify_column(table: str, column: str) -> tuple[str, str]:
    """(classification, category) of ``table.column``; ``name`` only counts in person tables."""
    lowered = column.lower()
    for classification, category, pattern in _RULES:
        if re.search(pattern, lowered):
            if (
                classification == "name"
                and lowered == "name"
                and not _PERSON_TABLES.search(table.lower())
            ):
                continue
            return classification, category
    return "other", "other"


def is_phone(text: str) -> bool:
    """Whether ``text`` is a phone number as a whole (7 to 15 digits, written as phones are)."""
    text = text.strip()
    if not _PHONE.fullmatch(text):
        return False
    digits = sum(ch.isdigit() for ch in text)
    grouped = text.startswith("+") or "(" in text or bool(re.search(r"\d[\s.-]\d", text))
    return 7 <= digits <= 15 and grouped and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)


def holds_contact(text: str) -> bool:
    """Whether free ``text`` holds an email address or a phone number somewhere."""
    return bool(EMAIL.search(text) or PHONE_IN_TEXT.search(text))


def classify_values(values: Iterable[object]) -> str | None:
    """The classification a sample of a column's values shows, or None (nothing personal seen).

    A column is an ``email``, ``phone``, ``address`` or ``company`` column when most sampled
    text values are one; ``contact_text`` when any holds an email address or a phone number.
    """
    texts = [str(v).strip() for v in values if isinstance(v, str) and v.strip()]
    if not texts:
        return None
    need = max(1, int(len(texts) * _SHARE + 0.999))
    for kind, test in (
        ("email", EMAIL.fullmatch),
        ("phone", is_phone),
        ("address", _STREET.search),
        ("company", _COMPANY.search),
    ):
        if sum(bool(test(text)) for text in texts) >= need:
            return kind
    if any(holds_contact(text) for text in texts):
        return "contact_text"
    return None


def is_person_table(table: str) -> bool:
    """Whether ``table``'s name says it holds people (users, customers, contacts, ...)."""
    return bool(_PERSON_TABLES.search(table.lower()))


def classify_columns(table: str, columns: list[str]) -> dict[str, str]:
    """Column → classification for every column of ``table``."""
    return {column: classify_column(table, column)[0] for column in columns}
