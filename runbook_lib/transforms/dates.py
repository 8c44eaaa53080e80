"""Dates and times: local text in known formats, or epoch seconds, to aware UTC datetimes."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from runbook_lib.db.type_rules import ZERO_DATES
from runbook_lib.errors import TransformError
from runbook_lib.transforms.money import to_int
from runbook_lib.transforms.registry import register, value_shape

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


# ISO-shaped formats: text in exactly the zero-padded shape goes to datetime.fromisoformat (ten
# times cheaper than a regex and six int()s). The shapes admit only in-range fields, so the
# parse is the one strptime makes (fromisoformat only refuses impossible days, as datetime() does);
# any other text takes the general parser.
_FIELD_SHAPES = {
    "Y": "[0-9]{4}",
    "m": "(?:0[1-9]|1[0-2])",
    "d": "(?:0[1-9]|[12][0-9]|3[01])",
    "H": "(?:[01][0-9]|2[0-3])",
    "M": "[0-5][0-9]",
    "S": "[0-5][0-9]",
}
_ISO_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
)


def _iso_shape(fmt: str) -> re.Pattern | None:
    if fmt not in _ISO_FORMATS:
        return None
    return re.compile(re.sub(r"%([YmdHMS])", lambda m: _FIELD_SHAPES[m.group(1)], fmt))


def _compile_format(fmt: str) -> Callable[[str], datetime | None] | None:
    """Compile a strptime format to a fast parser, or None when strptime must do it.

    Raises ValueError for a format strptime would reject (a spec error).
    """
    general = _compile_general_format(fmt)
    shape = _iso_shape(fmt)
    if general is None or shape is None:
        return general
    canonical = shape.fullmatch
    from_iso = datetime.fromisoformat

    def parse(text: str) -> datetime | None:
        if canonical(text) is None:
            return general(text)
        try:
            return from_iso(text)
        except ValueError:  # February 30th: datetime() refuses it on the general path too
            return None

    return parse


def strptime_regex(
    fmt: str, *, digit: str = r"\d", space: str = r"\s+", named: bool = False
) -> tuple[str, list[str]] | None:
    """The general parser's regex for ``fmt`` and its directives in order.

    None when the format needs a directive only strptime parses. ``digit`` and ``space`` are
    what stands for a digit and a whitespace run, and ``named`` names each directive's group
    after it (the vectorized kernel writes the regex for RE2 so).
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
            pattern = _FAST_DIRECTIVES.get(directive, "%" if directive == "%" else "")
            if named and directive in _FAST_DIRECTIVES:  # each is one group: "(...)"
                pattern = f"(?P<{directive}>{pattern[1:]}"
            parts.append(pattern.replace(r"\d", digit))
        elif piece and piece.isspace():
            parts.append(space)
        else:
            parts.append(re.escape(piece))
    if not {"Y", "m", "d"} <= set(order) or not set(order) <= set(_FAST_DIRECTIVES) | {"%"}:
        return None
    return "".join(parts), order


def _compile_general_format(fmt: str) -> Callable[[str], datetime | None] | None:
    compiled = strptime_regex(fmt)
    if compiled is None:
        return None
    pattern, order = compiled
    regex = re.compile(pattern, re.IGNORECASE)
    groups = [d for d in order if d != "%"]
    # A missing field reads the "0" appended after the groups; microseconds pad to six digits.
    fields = itemgetter(*(groups.index(f) if f in groups else len(groups) for f in "YmdHMS"))
    micro = groups.index("f") if "f" in groups else None
    zero = ("0",)

    def parse(text: str) -> datetime | None:
        # strptime semantics: the first match must end at the end of the text (not fullmatch).
        match = regex.match(text)
        if match is None or match.end() != len(text):
            return None
        g = match.groups() + zero
        try:
            if micro is None:
                return datetime(*map(int, fields(g)))
            return datetime(*map(int, fields(g)), int(g[micro].ljust(6, "0")))
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


# parse_datetime's options are the same list object on every call of one spec entry: look its
# parsers up by identity before hashing the formats (a third of the cost of a parse).
_PARSERS: dict[tuple[int, str], tuple[Any, tuple[str, ...], tuple, ZoneInfo]] = {}


_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def _to_utc(moment: datetime, zone: ZoneInfo) -> datetime:
    # Naive local times use PEP 495 fold=0: an ambiguous time (clocks back) is the first
    # occurrence; a nonexistent one (clocks forward) uses the offset before the change.
    # Same as .replace(tzinfo=zone).astimezone(UTC); timedelta arithmetic on an aware epoch is
    # ten times cheaper than either replace() or astimezone(), which run once per legacy value.
    if moment.tzinfo is None:
        return _UTC_EPOCH + (moment - _NAIVE_EPOCH - zone.utcoffset(moment))
    return moment.astimezone(UTC)


@register("parse_datetime", returns="datetime")
def parse_datetime(value: Any, *, formats: list[str], tz: str) -> datetime | None:
    """Aware UTC datetime from local text in one of ``formats`` (unparseable_datetime).

    ``tz`` is the IANA zone of naive source values; date-only formats give local midnight.
    A datetime passes through (naive ones are localized to ``tz``); a date is local midnight.
    A MySQL zero date (``'0000-00-00 00:00:00'``, text as PyMySQL returns it) is no date: None.
    """
    cached = _PARSERS.get((id(formats), tz))
    if cached is not None and cached[0] is formats:
        _formats, key, parsers, zone = cached
    else:
        key = (formats,) if isinstance(formats, str) else tuple(formats)
        parsers, zone = _datetime_parser(key, tz)
        if len(_PARSERS) >= 256:
            _PARSERS.clear()
        _PARSERS[(id(formats), tz)] = (formats, key, parsers, zone)  # holding it pins its id
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        for parse in parsers:
            moment = parse(text)
            if moment is not None:
                return _in_range_utc(moment, zone, text)
        if text in ZERO_DATES:  # MySQL's "no date"; the assessment counts them (zero_date)
            return None
        raise TransformError(
            "unparseable_datetime",
            f"{value_shape(text)} matches none of the formats {list(key)}",
        )
    if isinstance(value, datetime):
        return _in_range_utc(value, zone, value)
    if isinstance(value, date):
        return _in_range_utc(datetime(value.year, value.month, value.day), zone, value)
    if value is None:
        return None
    raise TransformError("unparseable_datetime", f"{value_shape(value)} is not a date or text")


def _in_range_utc(moment: datetime, zone: ZoneInfo, shown: Any) -> datetime:
    try:
        return _to_utc(moment, zone)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise TransformError(
            "unparseable_datetime", f"{value_shape(shown)} is out of range once converted to UTC"
        ) from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@register("epoch_to_utc", returns="datetime")
def epoch_to_utc(value: Any) -> datetime | None:
    """Aware UTC datetime from whole seconds since 1970-01-01 UTC (invalid_epoch)."""
    try:
        seconds = to_int(value)
    except TransformError:
        raise TransformError(
            "invalid_epoch", f"{value_shape(value)} is not whole seconds"
        ) from None
    if seconds is None:
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise TransformError("invalid_epoch", f"{seconds} seconds is out of range") from None
