"""Checks of a source's ``sample`` and ``filters`` against the live source, by YAML path.

A ``sample.parent`` must be a mapped table of the same system (and ``parent_key`` one of its
columns): a typo would otherwise surface as a ``ValueError`` in the trial, after it wrote. A
filter's ``exclude_where`` is run once by the source database itself, on no rows, exactly as
the loader embeds it: a syntax error or an unknown column is a spec error now, in the
database's own words, rather than a failed load.
"""

from __future__ import annotations

import sqlalchemy as sa

from runbook_lib.mapping.model import SourceMapping

Problem = tuple[str, str]


def sample_problems(
    path: str,
    system: str,
    source: SourceMapping,
    mapped: set[tuple[str, str]],
    inspector: sa.Inspector,
    tables: set[str],
) -> list[Problem]:
    """What is wrong with ``source.sample``'s parent: not mapped, or its key not a column."""
    sample = source.sample
    if sample is None or sample.parent is None:
        return []
    if (system, sample.parent) not in mapped and sample.parent not in tables:
        # (a real table left unmapped is reported as such: neither mapped nor ignored)
        known = sorted(table for s, table in mapped if s == system)
        return [
            (
                f"{path}.sample.parent",
                f"{sample.parent!r} is not a mapped table of {system}; its mapped tables: {known}",
            )
        ]
    if sample.parent_key is None or (system, sample.parent) not in mapped:
        return []
    columns = [c["name"] for c in inspector.get_columns(sample.parent)]
    if sample.parent_key not in columns:
        return [
            (
                f"{path}.sample.parent_key",
                f"no column {sample.parent_key!r} in {system}.{sample.parent}; columns: {columns}",
            )
        ]
    return []


def filter_problems(
    path: str,
    table: str,
    source: SourceMapping,
    inspector: sa.Inspector,
    skip: set[str] = frozenset(),
) -> list[Problem]:
    """Each filter whose condition the source database refuses (syntax, unknown column, ...).

    The database's message is about the condition, not rows (nothing is read); the stage's
    evidence is scrubbed as a whole anyway.
    """
    problems = []
    for filter_ in source.filters:
        where = f"{path}.filters.{filter_.name}.exclude_where"
        if where in skip:  # refused already (not a predicate on its own table): never executed
            continue
        query = sa.select(sa.literal(1)).select_from(sa.table(table))
        query = query.where(
            sa.text(f"(CASE WHEN ({filter_.exclude_where}) THEN 1 ELSE 0 END) = 0")
        ).limit(0)
        try:
            with _connect(inspector) as connection:
                connection.execute(query).all()
        except sa.exc.DBAPIError as exc:
            lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
            problems.append(
                (
                    where,
                    f"filter {filter_.name!r}: the source database refuses the condition "
                    f"{filter_.exclude_where!r}: {lines[0][:300]}",
                )
            )
    return problems


def _connect(inspector: sa.Inspector):
    bind = inspector.bind
    if isinstance(bind, sa.Engine):
        return bind.connect()
    return bind.begin_nested()
