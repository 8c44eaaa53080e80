"""Numbers and money: exact Decimals in major units, and conversion by a rate table."""

from __future__ import annotations

import re
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

from runbook_lib.errors import TransformError
from runbook_lib.transforms.registry import register, value_shape

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
            raise TransformError(rule, f"{value_shape(value)} is not a number")
        result = Decimal(text)
    else:
        raise TransformError(rule, f"{value_shape(value)} is not a number")
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


@register("to_int", returns="integer")
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
        raise TransformError("invalid_integer", f"{value_shape(value)} is not a whole number")
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        number = _decimal(value, "invalid_integer")
        if number is not None and number == number.to_integral_value():
            return int(number)
        raise TransformError("invalid_integer", f"{value!r} has a fractional part")
    if value is None:
        return None
    raise TransformError("invalid_integer", f"{value_shape(value)} is not a whole number")


@register("to_decimal", returns="decimal")
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


@register("money", returns="decimal")
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


@register("convert_currency", inputs=2, returns="decimal")
def convert_currency(
    amount: Any,
    currency: Any,
    *,
    to: str,
    rates: dict[str, Any],
    scale: int = 2,
    unit: str = "major",
) -> Decimal | None:
    """Convert an amount to currency ``to``; ``rates`` are units of ``to`` per source unit.

    Exact product, rounded once half-even to ``scale``. A currency with no rate raises
    unknown_currency (so does a missing currency next to an amount). ``unit='minor'`` reads
    the amount as whole minor units first, as :func:`money` does (USD cents: 12345 is 123.45).
    """
    if unit not in ("major", "minor"):
        raise ValueError(f"convert_currency: unit must be 'major' or 'minor', not {unit!r}")
    number = _decimal(amount, "invalid_amount")
    if number is None:
        return None
    if unit == "minor":
        if number != number.to_integral_value():
            raise TransformError("invalid_amount", "an amount in minor units has a fraction")
        number = number.scaleb(-scale, context=_EXACT)
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


@register("convert_amount", returns="decimal")
def convert_amount(
    amount: Any,
    *,
    currency: str = "",
    to: str = "",
    rates: dict[str, Any] | None = None,
    scale: int = 2,
    unit: str = "major",
) -> Decimal | None:
    """Convert an amount in the currency the source implies (``currency``) to ``to``.

    :func:`convert_currency` for a table without a currency column: same rates, same rounding.
    ``currency``, ``to`` and ``rates`` must all be given (checked when the spec is checked).
    """
    if not currency or not to or not isinstance(rates, dict):
        raise ValueError("convert_amount: give the options currency, to and rates")
    return convert_currency(amount, currency, to=to, rates=rates, scale=scale, unit=unit)
