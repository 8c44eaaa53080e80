"""A row the target database refuses, told apart from any other database error, per dialect.

What the loader's pre-check cannot see — a CHECK constraint, a trigger, an exclusion constraint, a
unique key across chunks — surfaces as an error of the whole statement. ``refused_by_target``
says whether an error is such a row-level refusal and names what refused it (the constraint's
name, never the row's values: evidence must not carry them); anything else (a lost connection,
a missing table) is not a refusal and stops the load.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

# PostgreSQL SQLSTATE classes: 22 data exception (a value out of range, too long), 23 integrity
# constraint violation (check, unique, foreign key, not null, exclusion), P0 a trigger's RAISE.
_PG_CLASSES = ("22", "23", "P0")
# MySQL/MariaDB error numbers of a refused row.
_MYSQL_REFUSALS = {
    1048: "not null",
    1062: "unique key",
    1264: "numeric range",
    1365: "division by zero",
    1406: "column length",
    1451: "foreign key",
    1452: "foreign key",
    1644: "a trigger (SIGNAL)",
    3819: "check",
    4025: "check",  # MariaDB
}
# Where each MySQL/MariaDB message names what refused the row; anchored on the words around the
# name, so a quoted value before it (a duplicate entry) is never taken for it.
_CONSTRAINT = r"CONSTRAINT `([^`]+)`"
_MYSQL_NAMES = {
    1048: r"^Column '([^']+)'",
    1062: r" for key '([^']+)'\s*$",
    1264: r" for column '([^']+)'",
    1406: r" for column '([^']+)'",
    1451: _CONSTRAINT,
    1452: _CONSTRAINT,
    3819: r"^Check constraint '([^']+)'",
    4025: _CONSTRAINT,
}


def refused_by_target(error: BaseException) -> str | None:
    """What refused the row (``check people_salary_positive``), or None: not a row refusal.

    ``error`` is SQLAlchemy's wrapper or the driver's own exception (psycopg's COPY raises it
    unwrapped). The answer names a constraint or a column, never a value of the row.
    """
    original = getattr(error, "orig", None) or error
    args = getattr(original, "args", None)
    if isinstance(args, tuple) and args and isinstance(args[0], int):
        # PyMySQL / mysqlclient: (errno, message); checked first, PyMySQL has a sqlstate too
        kind = _MYSQL_REFUSALS.get(args[0])
        if kind is None:
            return None
        pattern = _MYSQL_NAMES.get(args[0])
        found = re.search(pattern, str(args[1])) if pattern and len(args) > 1 else None
        return f"{kind} {found.group(1)}" if found else kind
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:  # psycopg
        if not sqlstate.startswith(_PG_CLASSES):
            return None
        diag = getattr(original, "diag", None)
        name = getattr(diag, "constraint_name", None) if diag else None
        kind = _pg_kind(sqlstate)
        if name:
            return f"{kind} {name}"
        table = getattr(diag, "table_name", None) if diag else None
        return f"{kind} on {table}" if table else kind
    if isinstance(error, sa.exc.IntegrityError) or type(original).__name__ == "IntegrityError":
        # SQLite: "CHECK constraint failed: name"
        text = str(original)
        kind, _, name = text.partition(" constraint failed")
        if name.startswith(":"):
            return f"{kind.lower()} {name[1:].strip()}"
        return f"{kind.lower()} constraint" if kind else "a constraint or trigger"
    return None


def _pg_kind(sqlstate: str) -> str:
    return {
        "23514": "check",
        "23505": "unique key",
        "23503": "foreign key",
        "23502": "not null",
        "23P01": "exclusion",
    }.get(sqlstate, "a trigger" if sqlstate.startswith("P0") else "the target's rules")
