"""Cross-table invariants the spec declares (``checks:``), run on the sources and on the target.

Two kinds, each a parent table and a child table joined by the child's ``parent_key``:

* ``sum_equals`` — the parent's ``column`` equals the sum of its children's ``expression``
  (a parent without children sums to 0), compared after rounding both to ``scale`` decimals, so a
  SQLite source's binary floats and a PostgreSQL target's exact numerics are judged alike;
* ``has_children`` — every parent has at least one child.

An expression is arithmetic over the child's columns (``UnitPrice * Quantity``): names, numbers,
``+ - * /`` and parentheses, parsed here into a SQLAlchemy expression, so every column is quoted
for its dialect (mixed-case names work on PostgreSQL) and nothing else can reach the SQL. The
assessment reports the source's violations as findings; validation counts the target's, and
those the source did not already have are the ones the migration introduced (the gate).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import sqlalchemy as sa

from runbook_lib.errors import ExpressionError
from runbook_lib.mapping.model import CheckSide, InvariantCheck

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/()]))"
)
EXAMPLES = 3


def expression_columns(text: str) -> list[str]:
    """The column names an expression reads, in order (raises ``ExpressionError``)."""
    return [value for kind, value in _tokens(text) if kind == "name"]


def expression(text: str, table: sa.TableClause) -> sa.ColumnElement:
    """``text`` as a SQLAlchemy expression over the columns of ``table``."""
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        token = tokens[position]
        position += 1
        return token

    def sum_() -> sa.ColumnElement:
        value = product()
        while peek() in (("op", "+"), ("op", "-")):
            op = take()[1]
            value = value + product() if op == "+" else value - product()
        return value

    def product() -> sa.ColumnElement:
        value = factor()
        while peek() in (("op", "*"), ("op", "/")):
            op = take()[1]
            value = value * factor() if op == "*" else value / factor()
        return value

    def factor() -> sa.ColumnElement:
        token = peek()
        if token is None:
            raise ExpressionError(f"{text!r}: ends where a value was expected")
        kind, value = take()
        if kind == "number":
            return sa.literal(Decimal(value))
        if kind == "name":
            return table.c[value]
        if value == "-":
            return -factor()
        if value == "(":
            inner = sum_()
            if take() != ("op", ")"):
                raise ExpressionError(f"{text!r}: a '(' is not closed")
            return inner
        raise ExpressionError(f"{text!r}: unexpected {value!r}")

    result = sum_()
    if position != len(tokens):
        raise ExpressionError(f"{text!r}: unexpected {tokens[position][1]!r}")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(
                f"{text!r}: only column names, numbers, + - * / and parentheses are allowed"
            )
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    if not tokens:
        raise ExpressionError("an empty expression")
    return tokens


@dataclass(frozen=True)
class Violation:
    """One parent row that breaks a check: its key (as the side names it) and what was found."""

    key: str
    detail: str


def violations(
    connection: sa.Connection,
    check: InvariantCheck,
    side: CheckSide,
    *,
    key_column: str | None = None,
) -> Iterator[Violation]:
    """The parents of ``side`` that break ``check``, in key order, streamed.

    ``key_column`` names the parent column that identifies a violation in the report (default:
    the parent key; on the target, ``source_key``, to compare with the source's violations).
    """
    parent_spec, child_spec = side.parent, side.child
    parent_names = {parent_spec.key, key_column or parent_spec.key}
    if parent_spec.column:
        parent_names.add(parent_spec.column)
    parent = sa.table(parent_spec.table, *(sa.column(n) for n in parent_names)).alias("p")
    child_names = {child_spec.parent_key, *expression_columns(child_spec.expression or "0")}
    child = sa.table(child_spec.table, *(sa.column(n) for n in child_names if n)).alias("c")
    shown = parent.c[key_column or parent_spec.key]
    joined = parent.outerjoin(child, child.c[child_spec.parent_key] == parent.c[parent_spec.key])
    if check.kind == "has_children":
        query = (
            sa.select(shown)
            .select_from(joined)
            .group_by(shown)
            .having(sa.func.count(child.c[child_spec.parent_key]) == 0)
            .order_by(shown)
        )
        for (key,) in connection.execution_options(stream_results=True).execute(query):
            yield Violation(str(key), "no child row")
        return
    total = sa.func.coalesce(sa.func.sum(expression(child_spec.expression, child)), 0)
    value = parent.c[parent_spec.column]
    query = (
        sa.select(shown, value, total).select_from(joined).group_by(shown, value).order_by(shown)
    )
    unit = Decimal(1).scaleb(-check.scale)
    for key, stated, summed in connection.execution_options(stream_results=True).execute(query):
        left, right = _rounded(stated, unit), _rounded(summed, unit)
        if left != right:
            yield Violation(str(key), f"{parent_spec.column} {left} ≠ sum {right}")


def _rounded(value: object, unit: Decimal) -> Decimal | None:
    if value is None:
        return None
    try:
        number = (
            value
            if isinstance(value, Decimal)
            else Decimal(repr(value) if isinstance(value, float) else str(value))
        )
    except InvalidOperation:
        return None
    return number.quantize(unit, rounding=ROUND_HALF_EVEN)
