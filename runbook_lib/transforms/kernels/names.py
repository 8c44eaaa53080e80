"""Kernel of ``split_name`` (``transforms.names``): both rules, with Python's whitespace."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.transforms.kernels.arrays import WHITESPACE_CLASS, decided, is_text, trimmed
from runbook_lib.transforms.kernels.text import collapse_whitespace
from runbook_lib.transforms.names import _COMPOUND_SURNAMES, _MIDDLE_DOT, CJK
from runbook_lib.transforms.registry import register_kernel

# The per-value module's own character classes, written for RE2 (\x{...} for \u and \U).
_CJK = re.sub(r"\\[uU]([0-9a-fA-F]+)", r"\\x{\1}", CJK.pattern)
_DOTS = _MIDDLE_DOT.pattern
_COMPOUND = pa.array(sorted(_COMPOUND_SURNAMES))


def _empty_to_null(strings: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)


@register_kernel("split_name")
def split_name_kernel(values: pa.Array):
    """All text, by both rules (compound surnames, middle dots, Unicode spaces); other types per value."""
    if not is_text(values):  # str(value) of other types: per value
        return None
    values = values.cast(pa.string())
    blank = pc.equal(trimmed(values), "")
    chinese = pc.match_substring_regex(values, _CJK)
    # Western: the last token is the surname; one token is a first name alone.
    western = collapse_whitespace(values)
    parts = pc.extract_regex(western, r"^(?P<given>.*) (?P<family>[^ ]*)$")
    several = pc.is_valid(parts)
    western_first = pc.if_else(several, pc.struct_field(parts, "given"), western)
    western_last = pc.if_else(
        several, pc.struct_field(parts, "family"), pa.scalar(None, pa.string())
    )
    # Chinese: spaces dropped; after a middle dot the family name (约翰·史密斯), else the
    # surname first, two characters for a compound one.
    name = pc.replace_substring_regex(values, WHITESPACE_CLASS + "+", "")
    dotted = pc.extract_regex(name, f"^(?P<given>.*){_DOTS}(?P<family>.*)$")
    has_dot = pc.is_valid(dotted)
    compound = pc.is_in(pc.utf8_slice_codeunits(name, 0, 2), value_set=_COMPOUND)
    size_two_first = pc.utf8_slice_codeunits(name, 2)
    size_one_first = pc.utf8_slice_codeunits(name, 1)
    chinese_first = pc.if_else(
        has_dot,
        pc.struct_field(dotted, "given"),
        pc.if_else(compound, size_two_first, size_one_first),
    )
    chinese_last = pc.if_else(
        has_dot,
        pc.struct_field(dotted, "family"),
        pc.if_else(
            compound, pc.utf8_slice_codeunits(name, 0, 2), pc.utf8_slice_codeunits(name, 0, 1)
        ),
    )
    nothing = pa.scalar(None, pa.string())
    first = pc.if_else(
        blank, nothing, pc.if_else(chinese, _empty_to_null(chinese_first), western_first)
    )
    last = pc.if_else(
        blank, nothing, pc.if_else(chinese, _empty_to_null(chinese_last), western_last)
    )
    return decided(first, last)
