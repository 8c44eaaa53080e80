"""Target column constraints checked in Python before a chunk is written.

SQLite does not enforce ``VARCHAR(n)`` or ``NUMERIC(p, s)``; PostgreSQL does, and a refused value
there would abort the whole chunk. Checking the declared constraints of the target itself makes a
row that cannot fit a *quarantined row with a reason* on every dialect — so a trial on SQLite
catches what production on PostgreSQL would refuse.

Checks run a column at a time over a whole chunk (one tight pass per constrained column), since
they touch every value the load writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from operator import is_not

import sqlalchemy as sa

Violation = tuple[str, str]
_TEXT_OR_NULL = frozenset({str, type(None)})
_DECIMAL_OR_NULL = frozenset({Decimal, type(None)})
ColumnCheck = Callable[[Sequence], dict[int, Violation]]


def _not_null(name: str) -> ColumnCheck:
    def check(values: Sequence) -> dict[int, Violation]:
        if None not in values:
            return {}
        return {
            i: ("target_not_null", f"{name}: the target requires a value")
            for i, v in enumerate(values)
            if v is None
        }

    return check


def _max_length(name: str, length: int) -> ColumnCheck:
    def check(values: Sequence) -> dict[int, Violation]:
        if set(map(type, values)) <= _TEXT_OR_NULL:  # the usual column: C-level passes only
            longest = max(map(len, filter(None, values)), default=0)
        else:
            longest = max((len(v) for v in values if type(v) is str), default=0)
        if longest <= length:
            return {}
        return {
            i: ("target_too_long", f"{name}: {len(v)} characters, the target allows {length}")
            for i, v in enumerate(values)
            if type(v) is str and len(v) > length
        }

    return check


def _max_digits(name: str, precision: int, scale: int) -> ColumnCheck:
    limit = Decimal(10) ** (precision - scale)

    def check(values: Sequence) -> dict[int, Violation]:
        if set(map(type, values)) <= _DECIMAL_OR_NULL:  # the usual column: C-level passes only
            decimals = list(filter(partial(is_not, None), values))
        else:
            decimals = [v for v in values if isinstance(v, Decimal)]
        if not decimals or (max(decimals) < limit and min(decimals) > -limit):
            return {}
        return {
            i: (
                "target_numeric_overflow",
                f"{name}: {precision - scale} digits before the point at most",
            )
            for i, v in enumerate(values)
            if isinstance(v, Decimal) and abs(v) >= limit
        }

    return check


def _column_checks(column: sa.Column, generated: set[str]) -> list[ColumnCheck]:
    checks = []
    if not column.nullable and column.name not in generated and not column.primary_key:
        checks.append(_not_null(column.name))
    length = getattr(column.type, "length", None)
    if isinstance(column.type, sa.String) and length:
        checks.append(_max_length(column.name, length))
    if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Float):
        if column.type.precision is not None and column.type.scale is not None:
            checks.append(_max_digits(column.name, column.type.precision, column.type.scale))
    return checks


def chunk_checker(
    table: sa.Table, columns: list[str], generated: set[str]
) -> Callable[[Mapping[str, Sequence]], dict[int, Violation]]:
    """A checker of a chunk's target columns (name → values).

    It returns {row index: (rule, message)} of each row's first violation.
    """
    checks = [
        (name, check)
        for name in columns
        if name in table.c
        for check in _column_checks(table.c[name], generated)
    ]

    def violations(chunk: Mapping[str, Sequence]) -> dict[int, Violation]:
        found: dict[int, Violation] = {}
        for name, check in checks:
            if name in chunk:
                for index, violation in check(chunk[name]).items():
                    found.setdefault(index, violation)
        return found

    return violations


def as_columns(rows: list[dict], names: list[str]) -> dict[str, list]:
    """Rows as dicts turned into the columns :func:`chunk_checker` reads (missing → None)."""
    return {name: [row.get(name) for row in rows] for name in names}
