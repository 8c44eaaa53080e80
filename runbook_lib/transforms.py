"""Named, pure value transforms that a mapping spec applies to legacy columns.

A spec names a transform and its keyword options; the loader looks it up with
:func:`get_transform` and calls it once per value (or per tuple of values for ``inputs > 1``).
Registering a transform is one decorator: :func:`register` reads the accepted and required
options from the function's keyword-only parameters, so a spec can be checked without a call.

Conventions every transform follows:

- ``None`` in gives ``None`` out (a tuple of ``None`` for multi-output transforms); only
  ``required`` is about presence. A blank string is missing data too for the parsing transforms
  (numbers, money, dates, names, email, phone): it gives ``None``, never a quarantine.
- A value that cannot be transformed raises :class:`~runbook_lib.errors.TransformError` whose
  ``rule`` is the quarantine rule. Messages describe the value's shape, or mask it, and never echo
  an email address or phone number in full.
- A bad *option* (an unknown time zone, an invalid ``unit``) is a spec error and raises a plain
  ``ValueError`` or ``TypeError``, never ``TransformError``: it is not the row's fault.
- Money and decimals are exact ``Decimal`` (floats enter through ``repr``), rounded half-even
  under a private context, so a caller's ``decimal.getcontext()`` cannot change a result.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Any
from zoneinfo import ZoneInfo

import email_validator
import phonenumbers

from runbook_lib.errors import TransformError, UnknownTransformError

# --------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Transform:
    """A registered transform and what a spec may pass to it."""

    name: str
    func: Callable[..., Any]
    inputs: int
    outputs: tuple[str, ...] | None
    options: tuple[str, ...]
    required_options: tuple[str, ...]
    doc: str

    def __call__(self, *values: Any, **options: Any) -> Any:
        """Apply the transform to ``inputs`` positional values with keyword options."""
        return self.func(*values, **options)


REGISTRY: dict[str, Transform] = {}


def register(
    name: str, *, inputs: int = 1, outputs: tuple[str, ...] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as transform ``name``; return the function unchanged.

    Options are the function's keyword-only parameters; those without a default are required.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY:
            raise ValueError(f"transform {name!r} is already registered")
        params = inspect.signature(func).parameters.values()
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        if len(positional) != inputs:
            raise ValueError(f"transform {name!r} takes {len(positional)} values, not {inputs}")
        keyword = [p for p in params if p.kind is p.KEYWORD_ONLY]
        doc = (inspect.getdoc(func) or "").partition("\n")[0]
        REGISTRY[name] = Transform(
            name=name,
            func=func,
            inputs=inputs,
            outputs=outputs,
            options=tuple(p.name for p in keyword),
            required_options=tuple(p.name for p in keyword if p.default is p.empty),
            doc=doc,
        )
        return func

    return decorator


def get_transform(name: str) -> Transform:
    """Return the transform registered as ``name``, or raise with the closest names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownTransformError(name, difflib.get_close_matches(name, REGISTRY, n=3)) from None


def describe_transforms() -> list[dict[str, Any]]:
    """List every transform as a JSON-safe dict, sorted by name, for the coverage view."""
    return [
        {
            "name": t.name,
            "inputs": t.inputs,
            "outputs": list(t.outputs) if t.outputs is not None else None,
            "options": list(t.options),
            "required_options": list(t.required_options),
            "doc": t.doc,
        }
        for t in sorted(REGISTRY.values(), key=lambda t: t.name)
    ]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _shape(value: Any, limit: int = 40) -> str:
    """Describe a value without revealing it: digits become 9, letters A or a."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    text = value if len(value) <= limit else value[:limit] + "..."
    return repr(
        re.sub(r"[^\W\d_]", lambda m: "A" if m[0].isupper() else "a", re.sub(r"\d", "9", text))
    )


# --------------------------------------------------------------------------------------------
# Text


@register("identity")
def identity(value: Any) -> Any:
    """Return the value unchanged."""
    return value


@register("strip")
def strip(value: Any) -> Any:
    """Trim, collapse inner whitespace runs to one space; blank becomes None."""
    if not isinstance(value, str):
        return value
    return " ".join(value.split()) or None


@register("lower")
def lower(value: Any) -> Any:
    """Lowercase a string; other values pass through."""
    return value.lower() if isinstance(value, str) else value


@register("upper")
def upper(value: Any) -> Any:
    """Uppercase a string; other values pass through."""
    return value.upper() if isinstance(value, str) else value


@register("required")
def required(value: Any) -> Any:
    """Reject None or a blank string (rule missing_required); otherwise pass the value through."""
    if _blank(value):
        raise TransformError("missing_required", "a value is required but the source is empty")
    return value


# --------------------------------------------------------------------------------------------
# Numbers and money

# Quantize under a bounded precision: a value like "1e999999999" fails instead of allocating a
# billion digits. Products are computed exactly (Inexact is trapped) so they are rounded once.
_QUANTIZE = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Overflow])
_EXACT = Context(
    prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, Overflow, Inexact]
)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"([+-]?\d+)(?:\.0*)?", re.ASCII)


def _decimal(value: Any, rule: str) -> Decimal | None:
    """Exact Decimal from Decimal/int/float/numeric str; None for blank; else TransformError."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif value is None:
        return None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not _NUMBER.fullmatch(text):
            raise TransformError(rule, f"{_shape(value)} is not a number")
        result = Decimal(text)
    else:
        raise TransformError(rule, f"{_shape(value)} is not a number")
    if not result.is_finite():
        raise TransformError(rule, f"{result} is not a finite number")
    return result


def _quantize(value: Decimal, scale: int, rule: str) -> Decimal:
    try:
        return value.quantize(
            Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN, context=_QUANTIZE
        )
    except InvalidOperation:
        raise TransformError(
            rule, f"a number of magnitude 1E{value.adjusted()} is too large"
        ) from None


@register("to_int")
def to_int(value: Any) -> int | None:
    """Integer from an int, digits, or a Decimal/float without fraction (invalid_integer)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        match = _INTEGER.fullmatch(text)
        if match:
            try:
                return int(match[1])
            except ValueError:  # more digits than int() accepts from text
                pass
        raise TransformError("invalid_integer", f"{_shape(value)} is not a whole number")
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        number = _decimal(value, "invalid_integer")
        if number is not None and number == number.to_integral_value():
            return int(number)
        raise TransformError("invalid_integer", f"{value!r} has a fractional part")
    if value is None:
        return None
    raise TransformError("invalid_integer", f"{_shape(value)} is not a whole number")


@register("to_decimal")
def to_decimal(value: Any, *, scale: int = 2) -> Decimal | None:
    """Exact Decimal rounded half-even to ``scale`` places (invalid_decimal)."""
    number = _decimal(value, "invalid_decimal")
    return None if number is None else _quantize(number, scale, "invalid_decimal")


@register("non_negative")
def non_negative(value: Any) -> Any:
    """Pass a number through unless it is below zero (negative_quantity)."""
    number = _decimal(value, "invalid_decimal")
    if number is not None and number < 0:
        raise TransformError("negative_quantity", f"{number} is below zero")
    return value


@register("money")
def money(value: Any, *, unit: str, scale: int = 2) -> Decimal | None:
    """Exact Decimal amount in major units, from major or minor units (invalid_amount).

    ``unit='minor'`` takes a whole number of minor units: 12345 with scale 2 is 123.45.
    """
    if unit not in ("major", "minor"):
        raise ValueError(f"money: unit must be 'major' or 'minor', not {unit!r}")
    number = _decimal(value, "invalid_amount")
    if number is None:
        return None
    if unit == "minor":
        if number != number.to_integral_value():
            raise TransformError("invalid_amount", "an amount in minor units has a fraction")
        number = number.scaleb(-scale, context=_EXACT)
    return _quantize(number, scale, "invalid_amount")


@register("convert_currency", inputs=2)
def convert_currency(
    amount: Any, currency: Any, *, to: str, rates: dict[str, Any], scale: int = 2
) -> Decimal | None:
    """Convert an amount to currency ``to``; ``rates`` are units of ``to`` per source unit.

    Exact product, rounded once half-even to ``scale``. A currency with no rate raises
    unknown_currency (so does a missing currency next to an amount).
    """
    number = _decimal(amount, "invalid_amount")
    if number is None:
        return None
    code = currency.strip().upper() if isinstance(currency, str) else currency
    if code == to.upper():
        return _quantize(number, scale, "invalid_amount")
    rate = rates.get(code) if isinstance(code, str) else None
    if rate is None and isinstance(code, str):
        rate = next((r for c, r in rates.items() if c.upper() == code), None)
    if rate is None:
        known = ", ".join(sorted(rates))
        raise TransformError(
            "unknown_currency", f"no rate from {str(currency)[:12]!r} to {to} (rates: {known})"
        )
    try:
        rate = Decimal(repr(rate) if isinstance(rate, float) else rate)
    except (InvalidOperation, TypeError, ValueError):
        rate = None
    if rate is None or not rate.is_finite():
        raise ValueError(f"convert_currency: the rate for {code} is not a number")
    return _quantize(_EXACT.multiply(number, rate), scale, "invalid_amount")


# --------------------------------------------------------------------------------------------
# Names

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
# Transliterated foreign and minority names (约翰·史密斯) keep the given name first.
_MIDDLE_DOT = re.compile(r"[·・‧•･]")
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 "
    "西门 百里 闻人 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 仲孙 钟离 呼延 赫连 "
    # Traditional forms, for Hong Kong and Taiwan sources.
    "歐陽 司馬 諸葛 東方 尉遲 公孫 長孫 軒轅 獨孤 南宮 西門 聞人 濮陽 鍾離".split()
)


@register("split_name", outputs=("first_name", "last_name"))
def split_name(value: Any) -> tuple[str | None, str | None]:
    """Split a full name into (first_name, last_name); Chinese names are surname first.

    Western: the last token is the surname, everything before it the given names. Chinese:
    spaces are dropped, a compound surname (欧阳, 司马, ...) takes two characters, else one.
    """
    if _blank(value):
        return (None, None)
    if not isinstance(value, str):
        value = str(value)
    if _CJK.search(value):
        name = "".join(value.split())
        dots = _MIDDLE_DOT.findall(name)
        if dots:
            given, _, family = name.rpartition(dots[-1])
            return (given or None, family or None)
        size = 2 if name[:2] in _COMPOUND_SURNAMES else 1
        return (name[size:] or None, name[:size])
    given, _, family = " ".join(value.split()).rpartition(" ")
    return (given, family) if given else (family, None)


@register("join_name", inputs=2)
def join_name(first: Any, last: Any) -> str | None:
    """Join first and last name ("first last"; Chinese names surname first, no space)."""
    first = strip(first) if isinstance(first, str) else first
    last = strip(last) if isinstance(last, str) else last
    if not first or not last:
        return first or last or None
    if _CJK.search(first) or _CJK.search(last):
        return f"{last}{first}"
    return f"{first} {last}"


# --------------------------------------------------------------------------------------------
# Dates and times

# The subset of strptime directives parsed here without strptime, with strptime's own patterns
# (CPython Lib/_strptime.py); tests check agreement with datetime.strptime.
_FAST_DIRECTIVES = {
    "Y": r"(\d\d\d\d)",
    "m": r"(1[0-2]|0[1-9]|[1-9])",
    "d": r"(3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])",
    "H": r"(2[0-3]|[0-1]\d|\d)",
    "M": r"([0-5]\d|\d)",
    "S": r"(6[0-1]|[0-5]\d|\d)",
    "f": r"([0-9]{1,6})",
}
_STRPTIME_DIRECTIVES = set("aAbBcdfGHIjmMpSUuVwWxXyYzZ%")


def _compile_format(fmt: str) -> Callable[[str], datetime | None] | None:
    """Compile a strptime format to a fast parser, or None when strptime must do it.

    Raises ValueError for a format strptime would reject (a spec error).
    """
    parts: list[str] = []
    order: list[str] = []
    pieces = re.split(r"(%.?|\s+)", fmt)
    for piece in pieces:
        if piece.startswith("%"):
            directive = piece[1:]
            if directive not in _STRPTIME_DIRECTIVES:
                raise ValueError(f"{fmt!r} is not a strptime format (bad directive {piece!r})")
            if directive != "%" and directive in order:
                raise ValueError(f"{fmt!r} repeats the directive {piece!r}")
            order.append(directive)
            parts.append(_FAST_DIRECTIVES.get(directive, "%" if directive == "%" else ""))
        elif piece and piece.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(piece))
    if not {"Y", "m", "d"} <= set(order) or not set(order) <= set(_FAST_DIRECTIVES) | {"%"}:
        return None
    regex = re.compile("".join(parts), re.IGNORECASE)
    groups = [d for d in order if d != "%"]
    positions = [groups.index(field) if field in groups else None for field in "YmdHMS"]
    micro = groups.index("f") if "f" in groups else None

    def parse(text: str) -> datetime | None:
        # strptime semantics: the first match must end at the end of the text (not fullmatch).
        match = regex.match(text)
        if match is None or match.end() != len(text):
            return None
        g = match.groups()
        fields = [0 if i is None else int(g[i]) for i in positions]
        try:
            return datetime(*fields, 0 if micro is None else int(g[micro].ljust(6, "0")))
        except ValueError:
            return None

    return parse


def _strptime_parser(fmt: str) -> Callable[[str], datetime | None]:
    def parse(text: str) -> datetime | None:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            return None

    return parse


@functools.lru_cache(maxsize=256)
def _datetime_parser(
    formats: tuple[str, ...], tz: str
) -> tuple[tuple[Callable[[str], datetime | None], ...], ZoneInfo]:
    """Compile (formats, tz) once per spec entry.

    Formats are always tried in spec order: trying the last match first would make an ambiguous
    value (01/02/2023 under %d/%m/%Y and %m/%d/%Y) depend on row order.
    """
    if not formats:
        raise ValueError("parse_datetime: formats must list at least one strptime format")
    try:
        zone = ZoneInfo(tz)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"parse_datetime: {tz!r} is not an IANA time zone") from exc
    parsers = tuple(_compile_format(f) or _strptime_parser(f) for f in formats)
    return parsers, zone


def _to_utc(moment: datetime, zone: ZoneInfo) -> datetime:
    # Naive local times use PEP 495 fold=0: an ambiguous time (clocks back) is the first
    # occurrence; a nonexistent one (clocks forward) uses the offset before the change.
    if moment.tzinfo is None:  # same as .replace(tzinfo=zone).astimezone(UTC), 40% cheaper
        return (moment - zone.utcoffset(moment)).replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@register("parse_datetime")
def parse_datetime(value: Any, *, formats: list[str], tz: str) -> datetime | None:
    """Aware UTC datetime from local text in one of ``formats`` (unparseable_datetime).

    ``tz`` is the IANA zone of naive source values; date-only formats give local midnight.
    A datetime passes through (naive ones are localized to ``tz``); a date is local midnight.
    """
    key = (formats,) if isinstance(formats, str) else tuple(formats)
    parsers, zone = _datetime_parser(key, tz)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        for parse in parsers:
            moment = parse(text)
            if moment is not None:
                return _to_utc(moment, zone)
        raise TransformError(
            "unparseable_datetime",
            f"{_shape(text)} matches none of the formats {list(key)}",
        )
    if isinstance(value, datetime):
        return _to_utc(value, zone)
    if isinstance(value, date):
        return _to_utc(datetime(value.year, value.month, value.day), zone)
    if value is None:
        return None
    raise TransformError("unparseable_datetime", f"{_shape(value)} is not a date or text")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@register("epoch_to_utc")
def epoch_to_utc(value: Any) -> datetime | None:
    """Aware UTC datetime from whole seconds since 1970-01-01 UTC (invalid_epoch)."""
    try:
        seconds = to_int(value)
    except TransformError:
        raise TransformError("invalid_epoch", f"{_shape(value)} is not whole seconds") from None
    if seconds is None:
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise TransformError("invalid_epoch", f"{seconds} seconds is out of range") from None


# --------------------------------------------------------------------------------------------
# Contact details. Errors mask the value and use `from None`: a chained library exception
# would carry the full address or number into logs.

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


@register("normalize_email")
def normalize_email(value: Any) -> str | None:
    """Trimmed, lowercased, validated email address (invalid_email); no DNS lookups.

    The whole address is lowercased: addresses that differ only by case are one person.
    """
    if not isinstance(value, str):
        if value is None:
            return None
        raise TransformError("invalid_email", f"{_shape(value)} is not an email address")
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


def _cn_mobile_pattern() -> re.Pattern[str]:
    """CN mobile numbers as the library's own metadata defines them (not all of 1[3-9]xxx)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    general, mobile = meta.general_desc, meta.mobile
    if 11 not in mobile.possible_length or 11 not in general.possible_length:
        raise RuntimeError("phonenumbers CN metadata changed: mobile numbers are not 11 digits")
    # The national number must match both descriptions to be valid; digits are ASCII only.
    return re.compile(
        rf"(?=(?:{general.national_number_pattern})\Z)(?:{mobile.national_number_pattern})\Z",
        re.ASCII,
    )


_CN_MOBILE_SHAPE = re.compile(r"(?:\+86)?(1[0-9]{10})")
_CN_MOBILE = _cn_mobile_pattern()


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


@register("phone_e164")
def phone_e164(value: Any, *, region: str) -> str | None:
    """E.164 phone number, parsed with ``region`` as the default country (invalid_phone).

    Canonical Chinese mobiles skip the library via a pattern taken from its own metadata;
    other values go through ``phonenumbers`` behind a bounded LRU cache.
    """
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"phone_e164: {region!r} is not a region phonenumbers knows")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        if value is None:
            return None
        raise TransformError("invalid_phone", f"{_shape(value)} is not a phone number")
    text = value.strip()
    if not text:
        return None
    shape = _CN_MOBILE_SHAPE.fullmatch(text)
    if shape is not None and (region == "CN" or text[0] == "+") and _CN_MOBILE.match(shape[1]):
        return "+86" + shape[1]
    return _phone_slow(text, region)


# --------------------------------------------------------------------------------------------
# Lookups and keys

_NO_DEFAULT: Any = object()
_STRING_KEYS: dict[int, tuple[dict[Any, Any], dict[str, Any]]] = {}


def _string_keyed(values: dict[Any, Any]) -> dict[str, Any]:
    """``values`` re-keyed by str(key), built once per mapping object (do not mutate it)."""
    cached = _STRING_KEYS.get(id(values))
    if cached is not None and cached[0] is values:
        return cached[1]
    keyed: dict[str, Any] = {}
    for key, target in values.items():
        if str(key) in keyed:
            raise ValueError(f"map_values: keys {key!r} collide once compared as strings")
        keyed[str(key)] = target
    if len(_STRING_KEYS) >= 256:
        _STRING_KEYS.clear()
    _STRING_KEYS[id(values)] = (values, keyed)  # holding `values` keeps its id from reuse
    return keyed


@register("map_values")
def map_values(value: Any, *, values: dict[Any, Any], default: Any = _NO_DEFAULT) -> Any:
    """Look a code up in ``values``, keys compared as strings (unmapped_value).

    An unmapped code gives ``default`` when the spec sets one.
    """
    if value is None:
        return None
    keyed = _string_keyed(values)
    key = str(value)
    if key in keyed:
        return keyed[key]
    if default is not _NO_DEFAULT:
        return default
    known = ", ".join(list(keyed)[:10]) + (", ..." if len(keyed) > 10 else "")
    raise TransformError("unmapped_value", f"{key[:40]!r} is not in the mapping ({known})")


@register("prefix")
def prefix(value: Any, *, prefix: str, width: int = 0) -> str | None:
    """Derived key: ``prefix`` followed by the value zero-padded to ``width``."""
    if value is None:
        return None
    return f"{prefix}{str(value).zfill(width)}"
