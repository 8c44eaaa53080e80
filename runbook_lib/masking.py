"""Masking of personal data before it reaches evidence: emails, phones, names, free text.

Masks keep just enough to recognise a record in a conversation (first letter, domain, last two
digits, initials) and nothing that identifies a person on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CJK = re.compile(r"[\u3400-\u9fff]")


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
    if _CJK.search(text):
        return f"{text[0]}*"
    return " ".join(f"{part[0]}." for part in text.split())


def _mask_text(value: object) -> object:
    if not isinstance(value, str) or not value:
        return value
    return f"{value[:1]}***"


def _redact(value: object) -> object:
    return None if value is None else "[redacted]"


MASKERS: dict[str, Callable[[object], object]] = {
    "email": mask_email,
    "phone": mask_phone,
    "name": mask_name,
    "address": _mask_text,
    "credential": _redact,
}


def mask_value(classification: str, value: object) -> object:
    """Mask ``value`` according to its column's classification (``other`` passes through)."""
    return MASKERS.get(classification, lambda v: v)(value)


def mask_row(row: dict, classifications: dict[str, str]) -> dict:
    """Every value of ``row`` masked by its column's classification."""
    return {
        name: mask_value(classifications.get(name, "other"), value) for name, value in row.items()
    }
