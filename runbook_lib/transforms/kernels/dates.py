r"""Kernels of ``parse_datetime`` and ``epoch_to_utc`` (``transforms.dates``), to timestamp[us, UTC].

Text is parsed by the per-value function's own regex for each format (``strptime_regex``), run
in RE2 with the same leftmost-first semantics: a format matches where its first match ends at
the end of the text, formats are tried in spec order, and the fields must make a real date — so
``2021-02-30`` is unparseable here too, where pyarrow's ``strptime`` rolls it over to March.
Only ASCII text is decided (Python's ``\\d``, ``\\s`` and IGNORECASE are Unicode-aware, RE2's are
not); a format that needs real strptime directives stops the kernel there, its rows go on per
value. Fields become microseconds by integer civil-date arithmetic, not by a parse.

Local times reach UTC with the per-value function's PEP 495 ``fold=0`` semantics, by a table of
the zone's offsets taken from ``zoneinfo`` itself (not pyarrow's ``assume_timezone``, whose
``nonexistent`` options both differ in a DST gap): a transition at UTC instant T from offset a to b
splits local time at T + max(a, b), which is how ``zoneinfo`` resolves both a gap (the offset
before) and a fold (the first occurrence).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.db.type_rules import ZERO_DATES
from runbook_lib.transforms.dates import _datetime_parser, strptime_regex
from runbook_lib.transforms.kernels.arrays import UTC_TIMESTAMP, decided, is_text, trimmed
from runbook_lib.transforms.kernels.fixed import whole_numbers
from runbook_lib.transforms.registry import register_kernel

_MICROS = 1_000_000
_ASCII_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"  # Python's \s, for ASCII text
# Years whose offsets are tabled; others go per value (and none of them overflow at UTC).
_FIRST_YEAR, _LAST_YEAR = 1800, 2400
# datetime's range in epoch seconds (epoch_to_utc refuses the rest)
_EPOCH_MIN = int((datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
_EPOCH_MAX = int(
    (
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    ).total_seconds()
)
_ZERO_DATES = pa.array(sorted(ZERO_DATES))


_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}


@functools.lru_cache(maxsize=64)
def _fixed_layout(fmt: str) -> tuple[str, tuple[tuple[str, int, int], ...]] | None:
    """The zero-padded shape of a format of fixed-width fields, and where each field sits.

    Fields as (directive, start, width); None for a format with any other field.

    In a text of exactly that shape every field is at its widest, so the fixed-position reading
    is its only full-length parse; and the per-value regex takes it first whenever each field is
    in its range (it tries the two-digit alternatives first). A field out of range leaves only
    shorter parses, which end before the text does: no match, as per value.
    """
    if _format_pattern(fmt) is None:
        return None
    shape, fields, position = [], [], 0
    for piece in re.split(r"(%.?|\s+)", fmt):
        if piece.startswith("%"):
            directive = piece[1:]
            if directive == "%":
                shape.append("%")
                position += 1
                continue
            if directive not in _WIDTHS:
                return None
            shape.append(f"[0-9]{{{_WIDTHS[directive]}}}")
            fields.append((directive, position, _WIDTHS[directive]))
            position += _WIDTHS[directive]
        elif piece and piece.isspace():
            shape.append(_ASCII_SPACE[:-1])  # one whitespace character: the shape is fixed
            position += 1
        elif piece:
            shape.append(re.escape(piece))
            position += len(piece)
    return f"^(?i:{''.join(shape)})$", tuple(fields)


def _fixed_fields(text: pa.Array, fields: tuple[tuple[str, int, int], ...]) -> tuple:
    """Local microseconds and whether the fields make a real date, read at fixed positions."""
    value = {"Y": 1, "m": 1, "d": 1, "H": 0, "M": 0, "S": 0}
    numbers = {}
    for directive, start, width in fields:
        digits = pc.utf8_slice_codeunits(text, start, start + width)
        numbers[directive] = digits.cast(pa.int64()).to_numpy(zero_copy_only=False)
    count = len(text)
    year, month, day, hour, minute, second = (
        numbers.get(d, np.full(count, value[d], dtype=np.int64)) for d in "YmdHMS"
    )
    real = _real_date(year, month, day, hour, minute, second)
    return _local_micros(year, month, day, hour, minute, second, 0), real, year


@functools.lru_cache(maxsize=64)
def _format_pattern(fmt: str) -> tuple[str, str, tuple[str, ...]] | None:
    """The RE2 patterns of one format, and its directives in order.

    First, its first match with the rest of the text as a last group (the per-value semantics:
    that rest must be empty); second, a full match (necessary for that). None for a format only
    strptime parses.
    """
    compiled = strptime_regex(fmt, digit="[0-9]", space=_ASCII_SPACE, named=True)
    if compiled is None or not fmt.isascii():
        return None  # a non-ASCII literal could match ASCII text case-insensitively in Python
    pattern, order = compiled
    first = f"^(?i:{pattern})(?P<rest>(?s:.*))$"
    return first, f"^(?i:{pattern})$", tuple(d for d in order if d != "%")


def _field(parts: pa.Array, directives: tuple[str, ...], name: str, default: int) -> np.ndarray:
    if name not in directives:
        return np.full(len(parts), default, dtype=np.int64)
    text = pc.utf8_trim(pc.struct_field(parts, name), " ")  # %d also takes " 5"
    if name == "f":
        text = pc.utf8_rpad(text, 6, padding="0")
    return pc.fill_null(text, "0").cast(pa.int64()).to_numpy(zero_copy_only=False)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    lengths = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    return lengths[np.clip(month, 0, 12)] + ((month == 2) & leap)


def _real_date(year, month, day, hour, minute, second) -> np.ndarray:
    """Where ``datetime(...)`` accepts the fields (the regex of %S admits 60 and 61)."""
    return (
        (year >= 1)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= _days_in_month(year, month))
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )


def _local_micros(year, month, day, hour, minute, second, micro) -> np.ndarray:
    seconds = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    return seconds * _MICROS + micro


def _parsed(parts: pa.Array, directives: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """(local microseconds, whether ``datetime(...)`` accepts the fields, the year) per row."""
    year, month, day = (_field(parts, directives, name, 1) for name in "Ymd")
    hour, minute, second, micro = (_field(parts, directives, name, 0) for name in "HMSf")
    real = _real_date(year, month, day, hour, minute, second)
    return _local_micros(year, month, day, hour, minute, second, micro), real, year


def _format_over(text: pa.Array, fmt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One format over (trimmed, ASCII) text: (matched, local µs, real date, year) per row.

    Texts in the format's fixed shape are read at fixed positions; the others that can match
    at all (a full match is necessary) go through the per-value regex with its semantics.
    """
    pattern, full, directives = _format_pattern(fmt)
    count = len(text)
    matched = np.zeros(count, dtype=bool)
    local = np.zeros(count, dtype=np.int64)
    real = np.zeros(count, dtype=bool)
    year = np.zeros(count, dtype=np.int64)
    remaining = np.arange(count)
    layout = _fixed_layout(fmt)
    if layout is not None:
        shape, fields = layout
        shaped = np.flatnonzero(_mask(pc.match_substring_regex(text, shape)))
        if len(shaped):
            micros, good, years = _fixed_fields(text.take(pa.array(shaped)), fields)
            # a field out of range (no match) and no such date (February 30th) end alike:
            # the next format is tried; only a real date is taken
            matched[shaped] = good
            local[shaped], real[shaped], year[shaped] = micros, good, years
            remaining = np.setdiff1d(remaining, shaped, assume_unique=True)
    if len(remaining):
        candidates = text.take(pa.array(remaining))
        possible = remaining[_mask(pc.match_substring_regex(candidates, full))]
        if len(possible):
            parts = pc.extract_regex(text.take(pa.array(possible)), pattern)
            ends = _mask(pc.equal(pc.struct_field(parts, "rest"), ""))
            micros, good, years = _parsed(parts, directives)
            matched[possible] = ends
            local[possible], real[possible], year[possible] = micros, good & ends, years
    return matched, local, real & matched, year


def _local_text(text: pa.Array, formats: tuple[str, ...]):
    """(local µs, parsed, rows left to the per-value function) of trimmed text.

    Each format runs only over the rows no earlier format took.
    """
    count = len(text)
    present = _mask(pc.is_valid(text))
    ascii_text = _mask(pc.string_is_ascii(text))
    pending = present & ascii_text & ~_mask(pc.equal(text, ""))
    local = np.zeros(count, dtype=np.int64)
    parsed = np.zeros(count, dtype=bool)
    out_of_table = np.zeros(count, dtype=bool)
    every_format = True
    for fmt in formats:
        if _format_pattern(fmt) is None:  # strptime's own directives: this format on, per value
            every_format = False
            break
        rows = np.flatnonzero(pending)
        if not len(rows):
            break
        matched, micros, real_date, year = _format_over(text.take(pa.array(rows)), fmt)
        in_table = (year >= _FIRST_YEAR) & (year <= _LAST_YEAR)
        real = matched & real_date & in_table
        # a real date outside the tabled years ends the search; the per-value function decides
        beyond = matched & real_date & ~in_table
        local[rows[real]] = micros[real]
        parsed[rows[real]] = True
        out_of_table[rows[beyond]] = True
        pending[rows[real | beyond]] = False
    zero = np.zeros(count, dtype=bool)
    if every_format:  # matched by no format: a MySQL zero date is no date, else unparseable
        zero = pending & _mask(pc.is_in(text, value_set=_ZERO_DATES))
    undecided = (pending & ~zero) | out_of_table | (present & ~ascii_text)
    return local, parsed, undecided


def _mask(array: pa.Array) -> np.ndarray:
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


# --- local time to UTC --------------------------------------------------------------------------


def _offset_at(zone: ZoneInfo, second: int) -> int:
    """The zone's UTC offset in seconds at a UTC instant (unambiguous)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=second)
    return int(moment.astimezone(zone).utcoffset().total_seconds())


@functools.lru_cache(maxsize=1024)
def _year_breaks(zone: ZoneInfo, year: int) -> tuple[tuple[int, int], ...]:
    """(local second where an offset starts, the offset) for a span around ``year``.

    The first entry is the offset in force two days before the year (no transition needed);
    each transition found after it starts its offset at T + max(before, after) local seconds.
    Transitions are found by probing every hour and bisecting to the second: no zone changes
    its offset twice within an hour.
    """
    start = int(
        (datetime(year, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    )
    start -= 2 * 86400
    end = start + 370 * 86400
    breaks = [(start + _offset_at(zone, start), _offset_at(zone, start))]
    before = breaks[0][1]
    for probe in range(start + 3600, end + 3600, 3600):
        after = _offset_at(zone, probe)
        if after == before:
            continue
        low, high = probe - 3600, probe  # offset(low) == before, offset(high) != before
        while high - low > 1:
            middle = (low + high) // 2
            if _offset_at(zone, middle) == before:
                low = middle
            else:
                high = middle
        breaks.append((high + max(before, after), after))
        before = after
    return tuple(breaks)


def _utc_micros(local: np.ndarray, years: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """UTC microseconds of naive local microseconds, with ``fold=0`` semantics."""
    if not len(local):
        return local
    table = sorted({b for year in np.unique(years).tolist() for b in _year_breaks(zone, year)})
    starts = np.array([s for s, _o in table], dtype=np.int64) * _MICROS
    offsets = np.array([o for _s, o in table], dtype=np.int64) * _MICROS
    index = np.searchsorted(starts, local, side="right") - 1
    return local - offsets[np.clip(index, 0, None)]


def _civil_year(micros: np.ndarray) -> np.ndarray:
    return micros.astype("datetime64[us]").astype("datetime64[Y]").astype(np.int64) + 1970


def _to_utc(local: np.ndarray, parsed: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    utc = np.zeros_like(local)
    if parsed.any():
        utc[parsed] = _utc_micros(local[parsed], _civil_year(local[parsed]), zone)
    return utc


def _timestamps(utc: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(utc, pa.int64(), mask=~valid).cast(UTC_TIMESTAMP)


@register_kernel("parse_datetime")
def parse_datetime_kernel(values: pa.Array, *, formats: list[str], tz: str):
    """ASCII text in the regex formats, naive/aware timestamps and dates of 1800..2400; the rest per value."""
    try:
        key, zone = (formats,) if isinstance(formats, str) else tuple(formats), None
        _parsers, zone = _datetime_parser(key, tz)
    except (TypeError, ValueError):
        return None  # a spec error: the per-value function raises it
    kind = values.type
    if is_text(values):
        local, parsed, undecided = _local_text(trimmed(values), key)
    elif pa.types.is_timestamp(kind) and kind.unit != "ns":
        if kind.tz is not None:  # an aware datetime is converted, not localized
            utc, valid = _micros(values.cast(UTC_TIMESTAMP))
            return decided(
                values.cast(UTC_TIMESTAMP), undecided=pa.array(_out_of_table(utc, valid))
            )
        local, parsed = _micros(values.cast(pa.timestamp("us")))
        undecided = _out_of_table(local, parsed)
        parsed &= ~undecided
    elif pa.types.is_date32(kind):  # a date is local midnight
        local, parsed = _micros(values.cast(pa.timestamp("us")))
        undecided = _out_of_table(local, parsed)
        parsed &= ~undecided
    else:
        return None
    utc = _to_utc(local, parsed, zone)
    return decided(_timestamps(utc, parsed), undecided=pa.array(undecided))


def _micros(timestamps: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    valid = _mask(pc.is_valid(timestamps))
    micros = pc.fill_null(timestamps.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    return micros, valid


def _out_of_table(local: np.ndarray, valid: np.ndarray) -> np.ndarray:
    years = _civil_year(np.where(valid, local, 0))
    return valid & ((years < _FIRST_YEAR) | (years > _LAST_YEAR))


@register_kernel("epoch_to_utc")
def epoch_to_utc_kernel(values: pa.Array):
    """Whole seconds (integers, integral floats, digit text) within datetime's range; the rest per value."""
    integers = whole_numbers(values)
    if integers is None:
        return None
    seconds, exact, missing = integers
    exact = exact & (seconds >= _EPOCH_MIN) & (seconds <= _EPOCH_MAX)
    return decided(
        _timestamps(np.where(exact, seconds, 0) * _MICROS, exact),
        undecided=pa.array(~(exact | missing)),
    )
