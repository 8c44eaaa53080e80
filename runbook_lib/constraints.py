"""Target column constraints checked in Python before a chunk is written.

SQLite does not enforce ``VARCHAR(n)`` or ``NUMERIC(p, s)``; PostgreSQL does, and a refused value
there would abort the whole chunk. Checking the declared constraints of the target itself makes a
row that cannot fit a *quarantined row with a reason* on every dialect — so a trial on SQLite
catches what production on PostgreSQL would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import sqlalchemy as sa

Check = Callable[[dict], tuple[str, str] | None]


def _column_checks(
    column: sa.Column, generated: set[str]
) -> list[Callable[[object], tuple[str, str] | None]]:
    name = column.name
    checks = []
    if not column.nullable and name not in generated and not column.primary_key:
        checks.append(
            lambda v: (
                ("target_not_null", f"{name}: the target requires a value") if v is None else None
            )
        )
    length = getattr(column.type, "length", None)
    if isinstance(column.type, sa.String) and length:

        def too_long(v, length=length):
            if isinstance(v, str) and len(v) > length:
                return "target_too_long", f"{name}: {len(v)} characters, the target allows {length}"
            return None

        checks.append(too_long)
    if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Float):
        precision, scale = column.type.precision, column.type.scale
        if precision is not None and scale is not None:
            limit = Decimal(10) ** (precision - scale)

            def overflow(v, limit=limit):
                if isinstance(v, Decimal) and abs(v) >= limit:
                    return (
                        "target_numeric_overflow",
                        f"{name}: {precision - scale} digits before the point at most",
                    )
                return None

            checks.append(overflow)
    return checks


def row_checker(table: sa.Table, columns: list[str], generated: set[str]) -> Check:
    """A function returning (rule, message) for the first constraint a row breaks, else None."""
    by_column = [
        (name, check)
        for name in columns
        if name in table.c
        for check in _column_checks(table.c[name], generated)
    ]

    def first_violation(row: dict) -> tuple[str, str] | None:
        for name, check in by_column:
            found = check(row.get(name))
            if found:
                return found
        return None

    return first_violation
