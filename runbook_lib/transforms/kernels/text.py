"""Kernels of the text transforms, lookups and derived keys (``transforms.text``)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.transforms.kernels.arrays import (
    WHITESPACE_CLASS,
    all_of,
    any_of,
    decided,
    flags,
    is_integer,
    is_text,
    none_of,
    to_arrow,
)
from runbook_lib.transforms.registry import register_kernel
from runbook_lib.transforms.text import _NO_DEFAULT, _string_keyed


def _null_if_empty(strings: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(strings, ""), pa.scalar(None, strings.type), strings)


def collapse_whitespace(strings: pa.Array) -> pa.Array:
    """``" ".join(value.split())``: runs of Python whitespace (U+3000, U+00A0 too) to one space."""
    spaced = pc.replace_substring_regex(strings, WHITESPACE_CLASS + "+", " ")
    return pc.utf8_trim(spaced, " ")


@register_kernel("identity")
def identity_kernel(values: pa.Array):
    """Every row, unchanged."""
    return decided(values)


@register_kernel("strip")
def strip_kernel(values: pa.Array):
    """Every row: Python's whitespace (U+3000, U+00A0 too) trimmed and collapsed; non-text as is."""
    if not is_text(values):  # strip passes anything but text through
        return decided(values)
    return decided(_null_if_empty(collapse_whitespace(values)))


def _ascii_case(values: pa.Array, convert) -> Any:
    # Python's full case mapping differs from Arrow's utf8_lower/upper outside ASCII
    # ("ß".upper() is "SS", "İ".lower() has two code points): only ASCII text is decided here.
    if not is_text(values):
        return decided(values)
    return decided(
        convert(values), undecided=none_of(pc.string_is_ascii(values), pc.is_null(values))
    )


@register_kernel("lower")
def lower_kernel(values: pa.Array):
    """ASCII text; other text per value (Python's full case mapping)."""
    return _ascii_case(values, pc.ascii_lower)


@register_kernel("upper")
def upper_kernel(values: pa.Array):
    """ASCII text; other text per value (``"ß".upper()`` is ``"SS"``)."""
    return _ascii_case(values, pc.ascii_upper)


@register_kernel("required")
def required_kernel(values: pa.Array):
    """Every present value; NULL and blank text per value (missing_required)."""
    missing = pc.is_null(values)
    if is_text(values):
        missing = any_of(missing, pc.match_substring_regex(values, f"^{WHITESPACE_CLASS}*$"))
    return decided(values, undecided=missing)


def _as_text(values: pa.Array) -> pa.Array | None:
    """``str(value)`` where Arrow's cast writes the same text (integers, text, booleans)."""
    if is_text(values):
        return values
    if is_integer(values):
        return values.cast(pa.string())
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "True", "False")
    return None  # str(float), str(Decimal) differ from Arrow's casts: per value


@register_kernel("map_values")
def map_values_kernel(codes: pa.Array, *, values: dict, default: Any = _NO_DEFAULT):
    """Integer, text and boolean codes by ``index_in``; an unmapped code per value unless a default."""
    keys = _as_text(codes)
    if keys is None:
        return None
    try:
        keyed = _string_keyed(values)
    except ValueError:  # colliding keys: the per-value function says so, on the first value
        return None
    names = pa.array(list(keyed), pa.string())
    targets = list(keyed.values())
    index = pc.index_in(keys, value_set=names)
    missed = all_of(pc.is_null(index), pc.is_valid(codes))
    if default is not _NO_DEFAULT:
        targets.append(default)
        index = pc.if_else(missed, len(targets) - 1, index)
        return decided(to_arrow(targets).take(index))
    # an unmapped code is NULL after index_in: it must become the per-value unmapped_value
    return decided(to_arrow(targets).take(index), undecided=missed)


@register_kernel("prefix")
def prefix_kernel(values: pa.Array, *, prefix: str, width: int = 0):
    """Integers and text, zero-padded never truncated; a leading sign per value (zfill pads after it)."""
    text = _as_text(values) if not pa.types.is_boolean(values.type) else None
    if text is None or not isinstance(width, int):
        return None
    # str.zfill pads after a sign ("-42" → "-0042"): signed values go per value
    signed = pc.match_substring_regex(text, "^[+-]")
    # utf8_lpad never truncates a longer value (DuckDB's lpad does; zfill does not)
    padded = pc.utf8_lpad(text, max(width, 0), padding="0") if width > 0 else text
    joined = pc.binary_join_element_wise(pa.scalar(f"{prefix}"), padded, "")
    return decided(joined, undecided=flags(signed))
