"""Canonical text of values and rows, so equal data hashes equally in every dialect.

Decimals keep their digits as produced by the mapping (the target column's scale); timestamps
become UTC ISO text whether the database returned them aware (PostgreSQL) or naive UTC (SQLite,
MySQL); NULL has its own marker so it never equals an empty string.

Validation compares rows by two sha256-based numbers that SQL can compute too
(``runbook_lib.rowhash`` spells them per dialect): ``key_bucket`` (the first hex digits of the
sha256 of a row's source key, so a key always falls in the same range whatever its values) and
``row_hash`` (the first 60 bits of the sha256 of the key and the row's canonical text, summed
per range without overflow in any database).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal

NULL = "\\N"
FIELD_SEPARATOR = "\x1f"
ROW_HASH_HEX_DIGITS = 15  # 60 bits: a sum of a million of them fits a BIGINT-free NUMERIC/DECIMAL
SUM_MASK = (1 << 64) - 1  # per-range sums are compared modulo 2**64


def _text(value: str) -> str:
    # escape so no text can pose as the NULL marker or a field separator
    return value.replace("\\", "\\\\").replace(FIELD_SEPARATOR, "\\x1f")


def _datetime(value: datetime) -> str:
    if value.tzinfo is UTC:
        value = value.replace(tzinfo=None)
    elif value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ")


def _decimal(value: Decimal) -> str:
    # -0.00 and 0.00 are one number; databases without signed zero return the latter
    return format(value.copy_abs() if value.is_zero() else value, "f")


def _float(value: float) -> str:
    return _decimal(Decimal(repr(value)))


_BY_TYPE = {
    str: _text,
    int: str,
    Decimal: _decimal,
    datetime: _datetime,
    date: date.isoformat,
    bool: lambda value: "1" if value else "0",
    float: _float,
    bytes: bytes.hex,
}


def canonical(value: object) -> str:
    """The text every dialect's representation of ``value`` maps to."""
    if value is None:
        return NULL
    render = _BY_TYPE.get(type(value))
    if render is not None:
        return render(value)
    # subclasses, in the order that keeps bool before int and datetime before date
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, bytes):
        return value.hex()
    return _text(str(value))


def row_text(values) -> str:
    """Canonical text of a row of values."""
    by_type = _BY_TYPE
    return FIELD_SEPARATOR.join(
        [NULL if v is None else (by_type.get(type(v)) or canonical)(v) for v in values]
    )


def key_bucket(key: str, width: int) -> str:
    """The key range of ``key``: the first ``width`` hex digits of its sha256 (as SQL computes it)."""
    return hashlib.sha256(key.encode()).hexdigest()[:width]


def row_hash(key: str, values) -> int:
    """First 60 bits of sha256(key, US, canonical row text): what ``rowhash`` computes in SQL."""
    data = f"{key}{FIELD_SEPARATOR}{row_text(values)}".encode()
    return int(hashlib.sha256(data).hexdigest()[:ROW_HASH_HEX_DIGITS], 16)


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
