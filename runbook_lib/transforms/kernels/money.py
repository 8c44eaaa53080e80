"""Kernels of the number and money transforms (``transforms.money``), on exact fixed-point numbers.

The arithmetic is ``kernels.fixed``'s: int64 coefficients, half-even in integer arithmetic, a
rate's product exact before it is rounded once, floats by their shortest repr (2.675 → 2.68).
Rows it leaves out — past 18 digits, in exponent notation, negative zeros, every failing value
— go to the per-value function.

The result type is ``decimal128(38, scale)``: exact for every value with at most 38 digits, which
covers every NUMERIC a target column can declare; a per-value result beyond it (a negative zero
too) makes that chunk's column a union that holds it exactly (``kernels.arrays``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runbook_lib.transforms.kernels.arrays import (
    all_of,
    decided,
    decimal_array,
    decimal_signs,
    flags,
    is_text,
    none_of,
    trimmed,
)
from runbook_lib.transforms.kernels.fixed import (
    _MAX_DIGITS,
    Fixed,
    decimals,
    fixed_numbers,
    minor_units,
    rounded,
    times,
    whole_numbers,
)
from runbook_lib.transforms.registry import register_kernel


def _supported_scale(scale: Any) -> bool:
    return isinstance(scale, int) and not isinstance(scale, bool) and 0 <= scale <= _MAX_DIGITS


@register_kernel("to_decimal")
def to_decimal_kernel(values: pa.Array, *, scale: int = 2):
    """Numbers within 18 digits and plain decimal text, scale 0..18; the rest per value."""
    numbers = fixed_numbers(values) if _supported_scale(scale) else None
    if numbers is None:
        return None
    array, undecided = decimals(numbers, scale)
    return decided(array, undecided=undecided)


@register_kernel("money")
def money_kernel(values: pa.Array, *, unit: str, scale: int = 2):
    """Major or whole minor units within 18 digits, scale 0..18; the rest per value."""
    numbers = fixed_numbers(values) if _supported_scale(scale) else None
    if numbers is None or unit not in ("major", "minor"):
        return None  # a bad unit is a spec error: the per-value function raises it
    if unit == "minor":
        numbers = minor_units(numbers, scale)
    array, undecided = decimals(numbers, scale)
    return decided(array, undecided=undecided)


def _rate(code: str, to: str, rates: dict) -> Decimal | None:
    """``convert_currency``'s rate for an upper-case ``code``: 1 for ``to`` itself, else the table's.

    None where the per-value function must decide (no rate: unknown_currency; a rate that is no
    number: the spec error it raises).
    """
    if code == to.upper():
        return Decimal(1)
    rate = rates.get(code)
    if rate is None:
        rate = next((r for c, r in rates.items() if c.upper() == code), None)
    if rate is None:
        return None
    try:
        rate = Decimal(repr(rate) if isinstance(rate, float) else rate)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return rate if rate.is_finite() else None


def _converted(numbers: Fixed, rows_of_rate: dict[Decimal, np.ndarray], scale: int) -> tuple:
    """The amounts times their rows' rate, rounded once; rows without a rate left undecided."""
    coefficient = np.zeros_like(numbers.coefficient)
    exact = np.zeros_like(numbers.exact)
    for rate, rows in rows_of_rate.items():
        product = rounded(times(numbers, rate), scale)
        coefficient = np.where(rows, product.coefficient, coefficient)
        exact = exact | (rows & product.exact)
    array = decimal_array(np.where(exact, coefficient, 0), scale, ~numbers.missing)
    return array, pa.array(~(exact | numbers.missing))


def _amounts(amount: pa.Array, scale: Any, unit: str) -> Fixed | None:
    numbers = fixed_numbers(amount) if _supported_scale(scale) else None
    if numbers is None or unit not in ("major", "minor"):
        return None
    return minor_units(numbers, scale) if unit == "minor" else numbers


@register_kernel("convert_currency")
def convert_currency_kernel(
    amount: pa.Array,
    currency: pa.Array,
    *,
    to: str,
    rates: dict,
    scale: int = 2,
    unit: str = "major",
):
    """Each row's ASCII currency code to its rate, times the amount, rounded once; the rest per value."""
    numbers = _amounts(amount, scale, unit)
    if numbers is None or not is_text(currency) or not isinstance(to, str):
        return None
    # .upper() outside ASCII is Python's own: those rows (and NULL currencies) go per value
    codes = pc.dictionary_encode(pc.ascii_upper(trimmed(currency)))
    index = pc.fill_null(codes.indices, -1).to_numpy(zero_copy_only=False)
    if not len(codes.dictionary):  # no currency at all: unknown_currency, per value
        return decided(pa.nulls(len(amount), pa.decimal128(38, scale)), undecided=~numbers.missing)
    code_of_row = codes.dictionary.take(pc.fill_null(codes.indices, 0))
    ascii_rows = flags(pc.string_is_ascii(code_of_row)).to_numpy(zero_copy_only=False)
    rows_of_rate: dict[Decimal, np.ndarray] = {}
    for position, code in enumerate(codes.dictionary.to_pylist()):
        rate = _rate(code, to, rates) if code else None
        if rate is not None:
            rows = (index == position) & ascii_rows
            rows_of_rate[rate] = rows_of_rate[rate] | rows if rate in rows_of_rate else rows
    array, undecided = _converted(numbers, rows_of_rate, scale)
    return decided(array, undecided=undecided)


@register_kernel("convert_amount")
def convert_amount_kernel(
    amount: pa.Array,
    *,
    currency: str = "",
    to: str = "",
    rates: dict | None = None,
    scale: int = 2,
    unit: str = "major",
):
    """The source currency's rate times each amount, rounded once; the rest per value."""
    numbers = _amounts(amount, scale, unit)
    if numbers is None or not currency or not to or not isinstance(rates, dict):
        return None
    if not isinstance(currency, str) or not isinstance(to, str):
        return None
    rate = _rate(currency.strip().upper(), to, rates)
    if rate is None:
        return None
    array, undecided = _converted(numbers, {rate: np.ones(len(amount), dtype=bool)}, scale)
    return decided(array, undecided=undecided)


@register_kernel("non_negative")
def non_negative_kernel(values: pa.Array):
    """Numbers at or above zero and unsigned numeric text; anything else per value."""
    kind = values.type
    present = pc.is_valid(values)
    if pa.types.is_integer(kind):
        return decided(values, undecided=flags(pc.less(values, 0)))
    if pa.types.is_decimal(kind) and kind.bit_width == 128:
        return decided(values, undecided=decimal_signs(values))
    if pa.types.is_floating(kind):
        # NaN and inf are invalid_decimal; -0.0 is not below zero
        fine = all_of(pc.is_finite(values), pc.greater_equal(values, 0))
        return decided(values, undecided=all_of(present, pc.invert(fine)))
    if not is_text(values):
        return None
    text = trimmed(values)
    # _NUMBER of the per-value function; a sign or a huge exponent goes per value
    number = pc.match_substring_regex(
        text, r"^\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,9})?$"
    )
    return decided(values, undecided=all_of(present, none_of(number, pc.equal(text, ""))))


@register_kernel("to_int")
def to_int_kernel(values: pa.Array):
    """Integers as they are; integral floats below 2^53, integral decimals, digit text; the rest per value."""
    kind = values.type
    if pa.types.is_integer(kind):
        return decided(values)
    integers = whole_numbers(values)
    if integers is None:
        return None
    numbers, exact, missing = integers
    return decided(
        pa.array(numbers, pa.int64(), mask=~exact), undecided=pa.array(~(exact | missing))
    )
