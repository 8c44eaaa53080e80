"""Flags: legacy booleans (MySQL ``TINYINT(1)`` 0/1, ``'Y'``/``'N'``, ``'true'``/``'false'``) to bool."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from runbook_lib.errors import TransformError
from runbook_lib.transforms.registry import register, value_shape

# Spellings of a flag in legacy text columns, compared case-insensitively after stripping.
TRUE_TEXTS = frozenset(("1", "y", "yes", "t", "true", "on"))
FALSE_TEXTS = frozenset(("0", "n", "no", "f", "false", "off"))
_EXPECTED = "1/0, y/n, yes/no, t/f, true/false or on/off"
# MySQL BIT(1) as PyMySQL returns it
_BITS = {b"\x00": False, b"\x01": True}


@register("to_bool", returns="boolean")
def to_bool(value: Any) -> bool | None:
    """True or False from 0/1 (TINYINT(1), BIT(1)) or a yes/no spelling (invalid_boolean).

    Only 0 and 1 are flags: MySQL would read any other integer as true, but a 2 in a flag column
    is a defect to look at, not a yes.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal | float):
        if value == value and value in (0, 1):  # NaN equals nothing, not even itself
            return value == 1
        raise TransformError("invalid_boolean", "a number other than 0 or 1 is not a flag")
    if isinstance(value, str):
        text = value.strip().casefold()
        if not text:
            return None
        if text in TRUE_TEXTS:
            return True
        if text in FALSE_TEXTS:
            return False
        raise TransformError(
            "invalid_boolean", f"{value_shape(value.strip())} is not a flag (expected {_EXPECTED})"
        )
    if isinstance(value, bytes) and value in _BITS:
        return _BITS[value]
    if value is None:
        return None
    raise TransformError("invalid_boolean", f"{value_shape(value)} is not a flag")
