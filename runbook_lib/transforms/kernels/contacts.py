"""Kernels of ``normalize_email`` and ``phone_e164`` (``transforms.contacts``).

The per-value functions already decide canonical shapes by pattern and ask the libraries
(email-validator, phonenumbers) only about the rest; these kernels run the same patterns over a
whole column in RE2 and leave every other value — unusual but valid ones included — to the
per-value function, so the libraries stay the authority on them.
"""

from __future__ import annotations

import functools

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.transforms.contacts import (
    _EMAIL_FAST,
    _SEPARATORS,
    _SPECIAL_USE_TLDS,
    _cn_mobile_parts,
    _nanp_parts,
)
from runbook_lib.transforms.kernels.arrays import (
    all_of,
    any_of,
    decided,
    flags,
    is_integer,
    is_text,
    none_of,
    trimmed,
)
from runbook_lib.transforms.registry import register_kernel

_SPECIAL_USE = pa.array(sorted(_SPECIAL_USE_TLDS))
# _CN_MOBILE_SHAPE and _NANP_SHAPE with named groups (a test holds them to the originals)
_CN_SHAPE = r"^(?:\+86)?(?P<number>1[0-9]{10})$"
_US_SHAPE = r"^(?P<plus>\+1)?(?P<number>[2-9][0-9]{9})$"


def _full(pattern: str) -> str:
    return f"^(?:{pattern})$"


@register_kernel("normalize_email")
def normalize_email_kernel(values: pa.Array):
    """Canonical ASCII addresses by the per-value pattern; the rest per value (email-validator)."""
    if not is_text(values):
        return None
    address = trimmed(values)
    # .lower() outside ASCII is Python's own (and can even yield ASCII): those rows go per value
    lowered = pc.ascii_lower(address)
    shaped = pc.match_substring_regex(lowered, _full(_EMAIL_FAST.pattern))
    # the per-value function's groups 1 and 2: in a canonical address, after its only "@"
    domain = pc.extract_regex(lowered, r"@(?P<domain>.*\.(?P<tld>[^.]*))$")
    canonical = all_of(
        shaped,
        pc.string_is_ascii(address),
        pc.less_equal(pc.utf8_length(lowered), 254),
        pc.is_valid(domain),
        none_of(
            pc.match_substring(pc.struct_field(domain, "domain"), "--"),
            pc.is_in(pc.struct_field(domain, "tld"), value_set=_SPECIAL_USE),
        ),
    )
    blank = pc.equal(address, "")
    out = pc.if_else(flags(blank), pa.scalar(None, pa.string()), lowered)
    return decided(out, undecided=all_of(pc.is_valid(values), none_of(canonical, blank)))


@functools.cache
def _phone_patterns() -> tuple[str, str, str, str] | None:
    """The library's national-number patterns, if RE2 can run them (else no kernel)."""
    patterns = (*_cn_mobile_parts(), *_nanp_parts())
    try:
        for pattern in patterns:
            pc.match_substring_regex(pa.array(["0"]), _full(pattern))
    except pa.ArrowInvalid:
        return None
    return patterns


@register_kernel("phone_e164")
def phone_e164_kernel(values: pa.Array, *, region: str):
    """CN mobiles and US numbers in the usual shapes; the rest per value (phonenumbers)."""
    patterns = _phone_patterns()
    if not isinstance(region, str) or patterns is None:
        return None
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        return None  # a spec error: the per-value function raises it
    if is_integer(values):
        values = values.cast(pa.string())
    elif not is_text(values):
        return None
    cn_general, cn_mobile, us_general, us_kinds = patterns
    text = trimmed(values)
    # str.isdigit() and the separators are Python's own outside ASCII: those rows go per value
    compact = pc.replace_substring_regex(text, _SEPARATORS.pattern, "")
    plus = pc.starts_with(compact, "+")
    cn = pc.extract_regex(compact, _CN_SHAPE)
    cn_number = pc.struct_field(cn, "number")
    is_cn = all_of(
        pc.is_valid(cn),
        pa.scalar(True) if region == "CN" else plus,
        pc.match_substring_regex(cn_number, _full(cn_general)),
        pc.match_substring_regex(cn_number, _full(cn_mobile)),
    )
    us = pc.extract_regex(compact, _US_SHAPE)
    us_number = pc.struct_field(us, "number")
    is_us = all_of(
        pc.invert(is_cn),  # the per-value function tries CN first
        pc.is_valid(us),
        pa.scalar(True) if region == "US" else pc.not_equal(pc.struct_field(us, "plus"), ""),
        pc.match_substring_regex(us_number, _full(us_general)),
        pc.match_substring_regex(us_number, _full(us_kinds)),
    )
    nothing = pa.scalar(None, pa.string())
    out = pc.if_else(
        is_cn,
        pc.binary_join_element_wise("+86", cn_number, ""),
        pc.if_else(is_us, pc.binary_join_element_wise("+1", us_number, ""), nothing),
    )
    blank = pc.equal(text, "")
    canonical = all_of(pc.string_is_ascii(text), any_of(is_cn, is_us))
    return decided(out, undecided=all_of(pc.is_valid(values), none_of(canonical, blank)))
