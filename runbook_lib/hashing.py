"""Canonical text of values and rows, so equal data hashes equally in every dialect.

Decimals keep their digits as produced by the mapping (the target column's scale); timestamps
become UTC ISO text whether the database returned them aware (PostgreSQL) or naive UTC (SQLite,
MySQL); NULL has its own marker so it never equals an empty string.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal

NULL = "\\N"
FIELD_SEPARATOR = "\x1f"


def canonical(value: object) -> str:
    """The text every dialect's representation of ``value`` maps to."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, bytes):
        return value.hex()
    # escape so no text can pose as the NULL marker or a field separator
    return str(value).replace("\\", "\\\\").replace(FIELD_SEPARATOR, "\\x1f")


def row_text(values) -> str:
    """Canonical text of a row of values."""
    return FIELD_SEPARATOR.join(canonical(value) for value in values)


def row_digest(key: str, values) -> int:
    """A 64-bit digest of a keyed row; summed per bucket, it cannot cancel out like XOR."""
    data = f"{key}{FIELD_SEPARATOR}{row_text(values)}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def bucket_of(key: str, buckets: int) -> int:
    """A stable bucket for a key (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % buckets


class TableHasher:
    """An order-sensitive sha256 over rows fed in primary-key order."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.rows = 0

    def add(self, values) -> None:
        self._hash.update(row_text(values).encode())
        self._hash.update(b"\n")
        self.rows += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
