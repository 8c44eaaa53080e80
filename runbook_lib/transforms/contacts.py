"""Contact details: email normalization and validation, phone numbers to E.164.

Errors mask the value and use ``from None``: a chained library exception would carry the full
address or number into logs.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import email_validator
import phonenumbers

from runbook_lib.errors import TransformError
from runbook_lib.transforms.registry import register, value_shape

# The canonical shape, only where email_validator is known to agree (see the tests): a dot-atom
# local part, LDH labels of at most 63 characters with no "--" (which rules out Punycode and
# RFC 5890 R-LDH labels), a letters-only TLD that is not a special-use name, at most 254 chars.
_EMAIL_FAST = re.compile(
    r"[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}))"
)
_SPECIAL_USE_TLDS = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def _email_fast(address: str) -> str | None:
    """Return the lowercased address if it is canonical, or None to ask the library."""
    match = _EMAIL_FAST.fullmatch(address)
    if match is None or len(address) > 254 or "--" in match[1] or match[2] in _SPECIAL_USE_TLDS:
        return None
    return address


def _mask_email(address: str) -> str:
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain[:60]}"


@register("normalize_email", returns="text")
def normalize_email(value: Any) -> str | None:
    """Trimmed, lowercased, validated email address (invalid_email); no DNS lookups.

    The whole address is lowercased: addresses that differ only by case are one person.
    """
    if not isinstance(value, str):
        if value is None:
            return None
        raise TransformError("invalid_email", f"{value_shape(value)} is not an email address")
    address = value.strip().lower()
    if not address:
        return None
    fast = _email_fast(address)
    if fast is not None:
        return fast
    try:
        return email_validator.validate_email(address, check_deliverability=False).normalized
    except email_validator.EmailNotValidError as exc:
        raise TransformError("invalid_email", f"{_mask_email(address)}: {exc}") from None


def _cn_mobile_parts() -> tuple[str, str]:
    """CN mobile numbers as the library's own metadata defines them (not all of 1[3-9]xxx).

    (general, mobile): a valid CN mobile's national number fully matches both.
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    general, mobile = meta.general_desc, meta.mobile
    if 11 not in mobile.possible_length or 11 not in general.possible_length:
        raise RuntimeError("phonenumbers CN metadata changed: mobile numbers are not 11 digits")
    return general.national_number_pattern, mobile.national_number_pattern


def _nanp_parts() -> tuple[str, str]:
    """Valid 10-digit US national numbers as the library's metadata defines them.

    (general, kinds): ``is_valid_number`` holds when the number matches the general description
    and any one number type (with 10 among its possible lengths); US is the first region of +1,
    so such a number is valid and formats as ``+1`` and its ten digits.
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region("US")
    if 10 not in meta.general_desc.possible_length:
        raise RuntimeError("phonenumbers US metadata changed: numbers are not 10 digits")
    kinds = (
        meta.premium_rate,
        meta.toll_free,
        meta.shared_cost,
        meta.voip,
        meta.personal_number,
        meta.pager,
        meta.uan,
        meta.voicemail,
        meta.fixed_line,
        meta.mobile,
    )
    alternatives = "|".join(
        f"(?:{kind.national_number_pattern})"
        for kind in kinds
        if kind is not None
        and kind.national_number_pattern
        and (not kind.possible_length or 10 in kind.possible_length)
    )
    return meta.general_desc.national_number_pattern, alternatives


def _both(parts: tuple[str, str]) -> re.Pattern[str]:
    """A national number that fully matches both patterns; digits are ASCII only."""
    first, second = parts
    return re.compile(rf"(?=(?:{first})\Z)(?:{second})\Z", re.ASCII)


_CN_MOBILE_SHAPE = re.compile(r"(?:\+86)?(1[0-9]{10})")
_CN_MOBILE = _both(_cn_mobile_parts())
_NANP_SHAPE = re.compile(r"(\+1)?([2-9][0-9]{9})")
_NANP = _both(_nanp_parts())
# Separators phonenumbers ignores inside a number: spaces, hyphens, dots and parentheses.
_SEPARATORS = re.compile(r"[ \-.()]+")


def _mask_phone(text: str) -> str:
    text = text[:40]
    return repr(re.sub(r"\d", "*", text[:-2]) + text[-2:])


@functools.lru_cache(maxsize=65536)
def _phone_slow(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise TransformError(
            "invalid_phone", f"{_mask_phone(text)} is not a phone number"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise TransformError(
            "invalid_phone", f"{_mask_phone(text)} is not a valid number (region {region})"
        )
    if number.extension:
        raise TransformError(
            "invalid_phone", f"{_mask_phone(text)} has an extension, which E.164 cannot hold"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@register("phone_e164", returns="text")
def phone_e164(value: Any, *, region: str) -> str | None:
    """E.164 phone number, parsed with ``region`` as the default country (invalid_phone).

    Chinese mobiles and US numbers in the usual shapes (spaces, hyphens, dots, parentheses;
    ``+86``/``+1`` or the region's own numbers) skip the library via patterns taken from its
    own metadata; other values go through ``phonenumbers`` behind a bounded LRU cache.
    """
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"phone_e164: {region!r} is not a region phonenumbers knows")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        if value is None:
            return None
        raise TransformError("invalid_phone", f"{value_shape(value)} is not a phone number")
    text = value.strip()
    if not text:
        return None
    fast = _phone_fast(text, region)
    return fast if fast is not None else _phone_slow(text, region)


def _phone_fast(text: str, region: str) -> str | None:
    """E.164 for a CN mobile or a US number in a common shape, or None to ask the library."""
    compact = _SEPARATORS.sub("", text) if not text.isdigit() else text
    if not compact or not (compact[0] == "+" or compact[0].isdigit()):
        return None
    shape = _CN_MOBILE_SHAPE.fullmatch(compact)
    if shape is not None and (region == "CN" or compact[0] == "+") and _CN_MOBILE.match(shape[1]):
        return "+86" + shape[1]
    shape = _NANP_SHAPE.fullmatch(compact)
    if shape is not None and (region == "US" or shape[1]) and _NANP.match(shape[2]):
        return "+1" + shape[2]
    return None
