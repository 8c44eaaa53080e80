"""Kernel of ``split_name`` (``transforms.names``): both rules, with Python's whitespace."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.transforms.kernels.arrays import WHITESPACE_CLASS, decided, is_text, rows_where
from runbook_lib.transforms.kernels.text import collapse_whitespace
from runbook_lib.transforms.names import _COMPOUND_SURNAMES, _MIDDLE_DOT, CJK
from runbook_lib.transforms.registry import register_kernel

# The per-value module's own character classes, written for RE2 (\x{...} for \u and \U).
_CJK = re.sub(r"\\[uU]([0-9a-fA-F]+)", r"\\x{\1}", CJK.pattern)
_DOTS = _MIDDLE_DOT.pattern
_COMPOUND = pa.array(sorted(_COMPOUND_SURNAMES))
# Text that " ".join(text.split()) would change: whitespace other than single inner spaces.
_UNTIDY = WHITESPACE_CLASS.replace("\\x{20}", "") + "|  |^ | $"
_NOTHING = pa.scalar(None, pa.string())


def _empty_to_null(strings: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(strings, ""), _NOTHING, strings)


def _tidy(names: pa.Array, untidy: str, tidy) -> pa.Array:
    """``tidy`` applied only where ``untidy`` matches (most names are tidy already)."""
    rows = rows_where(pc.match_substring_regex(names, untidy))
    if not len(rows):
        return names
    mask = np.zeros(len(names), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(names, pa.array(mask), tidy(names.take(pa.array(rows))))


def _western(names: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The last token is the surname; one token is a first name alone."""
    tidy = _tidy(names, _UNTIDY, collapse_whitespace)
    # from the right, at most once: [given names, surname], or [the one token]
    parts = pc.split_pattern(pc.fill_null(tidy, ""), " ", max_splits=1, reverse=True)
    offsets = parts.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    tokens = parts.flatten()
    several = pa.array(offsets[1:] - offsets[:-1] == 2)
    head = pa.array(offsets[:-1] - offsets[0])
    given = tokens.take(head)
    family = tokens.take(pa.array(np.minimum(offsets[:-1] - offsets[0] + 1, len(tokens) - 1)))
    first = pc.if_else(several, given, tidy)
    last = pc.if_else(several, family, _NOTHING)
    blank = pc.equal(tidy, "")
    return pc.if_else(blank, _NOTHING, first), pc.if_else(blank, _NOTHING, last)


def _chinese(names: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Spaces dropped; the family name after a middle dot, else the surname first.

    After a middle dot (约翰·史密斯) the family name comes last; otherwise the surname is one
    character, two for a compound one (欧阳, 司马, ...).
    """

    def drop_spaces(strings: pa.Array) -> pa.Array:
        return pc.replace_substring_regex(strings, WHITESPACE_CLASS + "+", "")

    name = _tidy(names, WHITESPACE_CLASS, drop_spaces)
    compound = pc.is_in(pc.utf8_slice_codeunits(name, 0, 2), value_set=_COMPOUND)
    first = pc.if_else(compound, pc.utf8_slice_codeunits(name, 2), pc.utf8_slice_codeunits(name, 1))
    last = pc.if_else(
        compound, pc.utf8_slice_codeunits(name, 0, 2), pc.utf8_slice_codeunits(name, 0, 1)
    )
    dotted = rows_where(pc.match_substring_regex(name, _DOTS))
    if len(dotted):
        parts = pc.extract_regex(
            name.take(pa.array(dotted)), f"^(?P<given>.*){_DOTS}(?P<family>.*)$"
        )
        mask = pa.array(np.isin(np.arange(len(name)), dotted))
        first = pc.replace_with_mask(first, mask, pc.struct_field(parts, "given"))
        last = pc.replace_with_mask(last, mask, pc.struct_field(parts, "family"))
    return _empty_to_null(first), _empty_to_null(last)


@register_kernel("split_name")
def split_name_kernel(values: pa.Array):
    """All text, by both rules (compound surnames, middle dots, Unicode spaces); other types per value."""
    if not is_text(values):  # str(value) of other types: per value
        return None
    values = values.cast(pa.string())
    chinese = pc.fill_null(pc.match_substring_regex(values, _CJK), False)
    rows = rows_where(chinese)
    first, last = _western(values)
    if len(rows):
        taken = pa.array(rows)
        chinese_first, chinese_last = _chinese(values.take(taken))
        first = pc.replace_with_mask(first, chinese, chinese_first)
        last = pc.replace_with_mask(last, chinese, chinese_last)
    return decided(first, last)
