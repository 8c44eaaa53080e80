"""Kernel of ``to_bool`` (``transforms.flags``)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.transforms.flags import FALSE_TEXTS, TRUE_TEXTS
from runbook_lib.transforms.kernels.arrays import (
    all_of,
    any_of,
    decided,
    flags,
    is_text,
    none_of,
    trimmed,
)
from runbook_lib.transforms.registry import register_kernel

_TRUE = pa.array(sorted(TRUE_TEXTS))
_FALSE = pa.array(sorted(FALSE_TEXTS))


@register_kernel("to_bool")
def to_bool_kernel(values: pa.Array):
    """Booleans, 0/1 numbers, BIT(1) bytes and ASCII yes/no spellings; anything else per value."""
    kind = values.type
    if pa.types.is_boolean(kind):
        return decided(values)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        one, zero = pc.equal(values, 1), pc.equal(values, 0)
        # any other number (2, NaN) is invalid_boolean: the per-value function says so
        return decided(one, undecided=all_of(pc.is_valid(values), none_of(one, zero)))
    if pa.types.is_binary(kind):  # MySQL BIT(1)
        one, zero = pc.equal(values, b"\x01"), pc.equal(values, b"\x00")
        return decided(one, undecided=all_of(pc.is_valid(values), none_of(one, zero)))
    if not is_text(values):
        return None
    text = trimmed(values)
    blank = pc.equal(text, "")
    # casefold() maps some non-ASCII letters to ASCII ("ſ" → "s"): only ASCII is decided here
    lowered = pc.ascii_lower(text)
    yes, no = pc.is_in(lowered, value_set=_TRUE), pc.is_in(lowered, value_set=_FALSE)
    flag = pc.if_else(flags(yes), True, pc.if_else(flags(no), False, pa.scalar(None, pa.bool_())))
    known = all_of(pc.string_is_ascii(text), any_of(yes, no))
    return decided(flag, undecided=all_of(pc.is_valid(values), none_of(blank, known)))
