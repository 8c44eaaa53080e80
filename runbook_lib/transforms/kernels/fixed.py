"""Exact fixed-point numbers of a column, in int64 coefficients: what the money kernels compute on.

Every amount becomes an int64 coefficient per row and one decimal exponent for the column
(value = coefficient × 10^exponent), plus its sign bit, since a Decimal keeps the sign of a zero
(``-0.001`` rounds to ``-0.00``). Rounding is half-even on the coefficients; a product (a rate)
is exact before it is rounded once. Nothing goes through a float or Arrow's decimal casts, which
truncate or round half away from zero. Rows outside an 18-digit coefficient, in exponent
notation, negative zeros and every value that is no number are left out (``exact`` false): the
per-value function decides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.transforms.kernels.arrays import (
    INT64_MAX,
    decimal_array,
    decimal_coefficients,
    int64_values,
    is_text,
    trimmed,
)

_MAX_DIGITS = 18  # every 18-digit coefficient fits int64, with room for 2 × remainder
_POWERS = [10**k for k in range(_MAX_DIGITS + 1)]
_PLAIN_NUMBER = r"^(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?$"
_HAS_DIGIT = r"[0-9]"


@dataclass(frozen=True)
class Fixed:
    """Exact numbers of a column: value = coefficient × 10^exponent where ``exact``."""

    coefficient: np.ndarray  # int64
    exponent: int
    negative: np.ndarray  # the sign bit, which a zero keeps
    exact: np.ndarray  # rows with a value computed here
    missing: np.ndarray  # rows that are None (NULL or blank text)

    def where(self, exact: np.ndarray) -> Fixed:
        return Fixed(self.coefficient, self.exponent, self.negative, exact, self.missing)


def _mask(array: pa.Array) -> np.ndarray:
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def fixed_numbers(values: pa.Array) -> Fixed | None:
    """The exact numbers of an integer, float, decimal or text column (None: another type)."""
    kind = values.type
    missing = _mask(pc.is_null(values))
    if pa.types.is_integer(kind):
        try:
            coefficient = int64_values(values)
        except pa.ArrowInvalid:  # uint64 past int64
            return None
        return Fixed(coefficient, 0, coefficient < 0, ~missing, missing)
    if pa.types.is_decimal(kind) and kind.bit_width == 128:
        coefficient, fits = decimal_coefficients(values)
        return Fixed(coefficient, -kind.scale, coefficient < 0, fits, missing)
    if pa.types.is_floating(kind):
        return _fixed_from_floats(values.cast(pa.float64()), missing)
    if is_text(values):
        text = trimmed(values)
        return _fixed_from_text(text, missing | _mask(pc.equal(text, "")))
    return None


_FLOAT_PLACES = 15  # beyond, and for any row the search leaves open, the text route decides


def _fixed_from_floats(values: pa.Array, missing: np.ndarray) -> Fixed:
    """Floats by the value of their shortest repr, ``Decimal(repr(x))``.

    For each row, the fewest places f at which a whole number n (below 2^53) gives the float
    back: fl(n / 10^f) == x, where both operands are exact, so the division rounds once,
    correctly. Fewest places is fewest significant digits, which is what repr() writes; where
    exactly one n qualifies, it is repr's value. The other rows (two candidates, more places,
    2^53 and beyond) take Arrow's float-to-text cast, which writes the shortest round-trip
    digits too; NaN and inf stay undecided. The parity suite checks both against repr().
    """
    x = pc.fill_null(values, 0.0).to_numpy(zero_copy_only=False)
    count = len(x)
    coefficient = np.zeros(count, dtype=np.int64)
    places = np.full(count, -1, dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        open_rows = np.flatnonzero(np.isfinite(x) & (np.abs(x) < 2.0**53) & ~missing)
        for f in range(_FLOAT_PLACES + 1):
            if not len(open_rows):
                break
            scale, target = 10.0**f, x[open_rows]
            near = np.rint(target * scale)
            hits = np.zeros(len(open_rows), dtype=np.int64)
            found = np.zeros(len(open_rows))
            for step in (-1.0, 0.0, 1.0):
                candidate = near + step
                ok = (np.abs(candidate) < 2.0**53) & (candidate / scale == target)
                hits += ok
                found = np.where(ok, candidate, found)
            unique = hits == 1
            coefficient[open_rows[unique]] = found[unique].astype(np.int64)
            places[open_rows[unique]] = f
            open_rows = open_rows[hits == 0]  # two candidates: the text route decides
    exact = places >= 0
    rest = np.flatnonzero(~exact & ~missing)
    by_text = None
    if len(rest):
        text = values.take(pa.array(rest)).cast(pa.string())
        by_text = _fixed_from_text(text, np.zeros(len(rest), dtype=bool))
    common = int(places.max(initial=0))
    if by_text is not None:
        common = max(common, -by_text.exponent)
    result = np.zeros(count, dtype=np.int64)
    fine = np.zeros(count, dtype=bool)
    for f in np.unique(places[exact]).tolist():
        rows = np.flatnonzero(places == f)
        result[rows], fine[rows] = _shift_up(coefficient[rows], common - f)
    if by_text is not None:
        scaled, fits = _shift_up(by_text.coefficient, common + by_text.exponent)
        result[rest], fine[rest] = scaled, fits & by_text.exact
    return Fixed(result, -common, np.signbit(x), fine & ~missing, missing)


def _fixed_from_text(text: pa.Array, missing: np.ndarray) -> Fixed:
    """Plain decimal text (``-12.50``, ``.5``, ``7.``) exactly; exponents stay undecided."""
    parts = pc.extract_regex(text, _PLAIN_NUMBER)
    matched = _mask(pc.is_valid(parts)) & _mask(pc.match_substring_regex(text, _HAS_DIGIT))
    whole = pc.utf8_ltrim(pc.struct_field(parts, "whole"), "0")
    fraction = pc.utf8_rtrim(pc.struct_field(parts, "fraction"), "0")  # value-preserving
    whole_digits = pc.fill_null(pc.utf8_length(whole), 0).to_numpy(zero_copy_only=False)
    fraction_digits = pc.fill_null(pc.utf8_length(fraction), 0).to_numpy(zero_copy_only=False)
    usable = matched & (fraction_digits <= _MAX_DIGITS)
    places = int(fraction_digits[usable].max()) if usable.any() else 0
    exact = usable & (whole_digits + places <= _MAX_DIGITS)
    digits = pc.binary_join_element_wise(
        whole, pc.utf8_rpad(pc.fill_null(fraction, ""), places, padding="0"), ""
    )
    digits = pc.if_else(pa.array(exact), digits, "0")
    digits = pc.if_else(pc.equal(digits, ""), "0", digits)
    magnitude = pc.fill_null(digits, "0").cast(pa.int64()).to_numpy(zero_copy_only=False)
    negative = _mask(pc.equal(pc.struct_field(parts, "sign"), "-"))
    coefficient = np.where(negative, -magnitude, magnitude)
    return Fixed(coefficient, -places, negative, exact & ~missing, missing)


def _shift_up(coefficient: np.ndarray, places: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients × 10^places, and where that stays within int64."""
    if places > _MAX_DIGITS:
        return np.zeros_like(coefficient), coefficient == 0
    fits = np.abs(coefficient) <= INT64_MAX // _POWERS[places]
    return np.where(fits, coefficient, 0) * _POWERS[places], fits


def rounded(numbers: Fixed, scale: int) -> Fixed:
    """The numbers rounded half-even to ``scale`` places (exponent -scale), as Decimal.quantize."""
    shift = numbers.exponent + scale
    coefficient = numbers.coefficient
    exact = numbers.exact & (coefficient != np.iinfo(np.int64).min)
    if shift >= 0:
        coefficient, fits = _shift_up(coefficient, shift)
        exact = exact & fits
    else:
        magnitude = np.abs(np.where(exact, coefficient, 0))
        if -shift > _MAX_DIGITS + 1:  # an int64 magnitude (< 9.3e18) is below half of 10^20
            kept = np.zeros_like(magnitude)
        elif -shift == _MAX_DIGITS + 1:  # 10^19 is past int64: above half of it rounds to 1
            # (a product of an amount and a rate can hold 19 digits; exactly half stays 0, even)
            kept = (magnitude > 5 * 10**_MAX_DIGITS).astype(magnitude.dtype)
        else:
            divisor = _POWERS[-shift]
            kept, remainder = np.divmod(magnitude, divisor)
            twice = 2 * remainder
            kept = kept + ((twice > divisor) | ((twice == divisor) & (kept % 2 == 1)))
        coefficient = np.where(coefficient < 0, -kept, kept)
    # a Decimal keeps the sign of a zero (-0.001 → -0.00); decimal128 cannot hold it
    exact = exact & ~(numbers.negative & (coefficient == 0))
    return Fixed(coefficient, -scale, numbers.negative, exact, numbers.missing)


def times(numbers: Fixed, rate: Decimal) -> Fixed:
    """The exact product with ``rate`` (a Decimal's sign is the XOR of the factors' signs)."""
    sign, digits, exponent = rate.as_tuple()
    factor = int("".join(map(str, digits)) or "0")
    if factor > INT64_MAX:
        return numbers.where(np.zeros_like(numbers.exact))
    fits = np.abs(numbers.coefficient) <= (INT64_MAX // factor if factor else INT64_MAX)
    product = np.where(fits, numbers.coefficient, 0) * (-factor if sign else factor)
    negative = numbers.negative ^ bool(sign)
    return Fixed(
        product, numbers.exponent + exponent, negative, numbers.exact & fits, numbers.missing
    )


def whole_units(numbers: Fixed) -> tuple[np.ndarray, np.ndarray]:
    """(integers, where exact and without a fraction) of the numbers."""
    if numbers.exponent >= 0:
        coefficient, fits = _shift_up(numbers.coefficient, numbers.exponent)
        return coefficient, numbers.exact & fits
    if -numbers.exponent > _MAX_DIGITS:  # only a zero coefficient is whole at this scale
        return np.zeros_like(numbers.coefficient), numbers.exact & (numbers.coefficient == 0)
    divisor = _POWERS[-numbers.exponent]
    magnitude = np.abs(numbers.coefficient)
    whole, fraction = np.divmod(magnitude, divisor)
    exact = numbers.exact & (fraction == 0) & (numbers.coefficient != np.iinfo(np.int64).min)
    return np.where(numbers.coefficient < 0, -whole, whole), exact


def minor_units(numbers: Fixed, scale: int) -> Fixed:
    """A whole number of minor units as an amount of ``scale`` places (12345 → 123.45)."""
    units, exact = whole_units(numbers)
    return Fixed(units, -scale, numbers.negative, exact, numbers.missing)


def decimals(numbers: Fixed, scale: int) -> tuple[pa.Array, pa.Array]:
    """The decimal128(38, scale) array of rounded numbers and the rows left undecided."""
    result = rounded(numbers, scale)
    array = decimal_array(np.where(result.exact, result.coefficient, 0), scale, ~result.missing)
    return array, pa.array(~(result.exact | result.missing))


def whole_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(int64 values, exact, missing) of ``to_int`` over a float, decimal or text column."""
    kind = values.type
    missing = _mask(pc.is_null(values))
    if pa.types.is_integer(kind):
        try:
            return int64_values(values), ~missing, missing
        except pa.ArrowInvalid:
            return None
    if pa.types.is_floating(kind):
        # below 2^53 the float is the integer its repr() writes; above, repr() rounds it
        x = pc.fill_null(values.cast(pa.float64()), 0.5).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            exact = np.isfinite(x) & (np.abs(x) < 2.0**53) & (x == np.floor(x)) & ~missing
        return np.where(exact, x, 0).astype(np.int64), exact, missing
    if pa.types.is_decimal(kind) and kind.bit_width == 128:
        coefficient, fits = decimal_coefficients(values)
        numbers = Fixed(coefficient, -kind.scale, coefficient < 0, fits, missing)
        units, exact = whole_units(numbers)
        return units, exact, missing
    if is_text(values):
        text = trimmed(values)
        missing = missing | _mask(pc.equal(text, ""))
        parts = pc.extract_regex(text, r"^(?P<sign>[+-]?)0*(?P<digits>[0-9]+?)(?:\.0*)?$")
        digits = pc.struct_field(parts, "digits")
        exact = _mask(pc.less_equal(pc.utf8_length(digits), _MAX_DIGITS)) & ~missing
        magnitude = (
            pc.fill_null(pc.if_else(pa.array(exact), digits, "0"), "0")
            .cast(pa.int64())
            .to_numpy(zero_copy_only=False)
        )
        negative = _mask(pc.equal(pc.struct_field(parts, "sign"), "-"))
        return np.where(negative, -magnitude, magnitude), exact, missing
    return None
