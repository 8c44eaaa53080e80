"""Data classification of columns: personal (name, email, phone, address), credential, financial.

Classification drives masking in evidence. It is decided from the column name first and confirmed
by the values where a name is ambiguous; the assessment shows and glues it so an auditor can check it.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[str, str, str], ...] = (
    # (classification, category, column-name pattern)
    ("credential", "credential", r"password|passwd|pwd_hash|secret|token"),
    ("email", "personal", r"e_?mail"),
    ("phone", "personal", r"phone|mobile|tel(ephone)?$|fax"),
    ("address", "personal", r"address|street|addr"),
    ("username", "personal", r"user_?name|login|nickname"),
    ("name", "personal", r"(^|_)(full_?name|first_?name|last_?name|given_?name|surname|name)$"),
    ("amount", "financial", r"amount|price|cost|total|cents|balance"),
)
CATEGORIES = {classification: category for classification, category, _ in _RULES}
# Tables whose name says they hold people: there, a bare ``name`` column is a person's name.
_PERSON_TABLES = re.compile(r"user|customer|person|people|contact|member|client|employee|staff")


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


def is_person_table(table: str) -> bool:
    """Whether ``table``'s name says it holds people (users, customers, contacts, ...)."""
    return bool(_PERSON_TABLES.search(table.lower()))


def classify_columns(table: str, columns: list[str]) -> dict[str, str]:
    """Column → classification for every column of ``table``."""
    return {column: classify_column(table, column)[0] for column in columns}
