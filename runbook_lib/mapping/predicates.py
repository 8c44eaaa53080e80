"""The SQL a spec holds, parsed (sqlglot) and held to what it may read: its own table's columns.

A filter (``exclude_where``) decides which rows of one source table are migrated. It is a
predicate on that table alone: one expression, no statement, no subquery or ``EXISTS``, no other
table (a qualified column names its own table or nothing), no column the spec does not see, and
no credential column (a filter reading ``password_hash`` decides by a secret, and its counts
leak it). Functions are the dialect's own; a user-defined function that reads other tables is out
of a parser's reach, and the source connection's grants are the guard there.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from runbook_lib.errors import ExpressionError
from runbook_lib.privacy.classification import classify_column

# SQLAlchemy dialect names → sqlglot's
_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
# what a predicate may not hold: a statement, a query, a table
_STATEMENTS = (exp.Query, exp.Subquery, exp.Exists, exp.DML, exp.DDL, exp.Command, exp.Table)


def predicate_problems(
    text: str,
    table: str,
    columns: Collection[str] | None,
    *,
    dialect: str | None = None,
    credentials: Collection[str] = (),
) -> list[str]:
    """Why ``text`` is not a predicate on ``table``'s own ``columns`` (empty: it is).

    ``columns`` None: the live columns are not known here (a stage about to run the filter), so
    only what the text itself shows is judged. ``credentials`` are columns classified credential
    beyond what their names say (the assessment's); a name that says credential counts anyway.
    """
    read = _DIALECTS.get(dialect or "", None)
    try:
        parsed = [node for node in sqlglot.parse(text, read=read) if node is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [f"not a valid SQL expression: {first}"]
    if len(parsed) != 1:
        return [f"one SQL expression, not {len(parsed)} statements"]
    (root,) = parsed
    problems: list[str] = []
    statements = sorted(
        {type(node).__name__ for node in root.walk() if isinstance(node, _STATEMENTS)}
    )
    if statements:
        problems.append(
            "a filter is a predicate on its own table: no subquery, statement or other table "
            f"(found {', '.join(statements)})"
        )
    known = {name.lower(): name for name in columns or ()}
    secret = {name.lower() for name in credentials}
    for column in root.find_all(exp.Column):
        if statements:  # inside a subquery only a credential is worth naming besides
            if classify_column(table, column.name)[0] == "credential":
                problems.append(f"column {column.sql()!r} is a credential")
            continue
        name = column.name
        qualifier = column.table
        if column.args.get("db") is not None or column.args.get("catalog") is not None:
            problems.append(f"column {column.sql()!r} names another schema")
            continue
        if qualifier and qualifier.lower() != table.lower():
            problems.append(
                f"column {column.sql()!r} reads table {qualifier!r}: a filter reads only {table}"
            )
            continue
        if columns is not None and name.lower() not in known:
            problems.append(f"no column {name!r} in {table}; columns: {sorted(columns)}")
            continue
        real = known.get(name.lower(), name)
        if real.lower() in secret or classify_column(table, real)[0] == "credential":
            problems.append(
                f"column {real!r} is a credential: a filter may not decide by it (its counts "
                "would tell what it holds)"
            )
    return list(dict.fromkeys(problems))


@lru_cache(maxsize=256)
def refuse_unsafe_filter(text: str, table: str) -> str:
    """``text``, or ``ExpressionError``: the guard before any stage runs a filter on ``table``.

    The mapping check names the problem with its YAML path; this guard keeps a stage that runs
    before it (the assessment) or without it from executing a filter that reads beyond its table.
    """
    problems = predicate_problems(text, table, None)
    if problems:
        raise ExpressionError(f"filter {text!r} on {table}: {'; '.join(problems)}")
    return text
