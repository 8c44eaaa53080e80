"""The reject table: every source row that could not be loaded, with the rule that stopped it.

The table is declared in ``db.bookkeeping``, a reject is ``spec.compiled.Reject``. The raw row is
kept in the target database (so it can be repaired and replayed); evidence only ever shows rejects
through ``privacy.masking``.
"""

from __future__ import annotations

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import BOOKKEEPING, rejects
from runbook_lib.mapping.compiled import Reject


def ensure_rejects_table(engine: sa.Engine) -> None:
    """Create the reject table in the target if it is not there yet."""
    BOOKKEEPING.create_all(engine, tables=[rejects])


def write_rejects(connection: sa.Connection, run_id: str, batch: list[Reject]) -> None:
    """Insert a chunk's rejects in the chunk's own transaction."""
    if batch:
        connection.execute(rejects.insert(), [reject.as_row(run_id) for reject in batch])


def count_rejects(engine: sa.Engine, run_id: str) -> list[dict]:
    """Rejected rows per (target table, source system, rule) for one run, counted in the database."""
    query = (
        sa.select(
            rejects.c.target_table,
            rejects.c.source_system,
            rejects.c.source_table,
            rejects.c.rule,
            sa.func.count().label("rows"),
        )
        .where(rejects.c.run_id == run_id)
        .group_by(
            rejects.c.target_table, rejects.c.source_system, rejects.c.source_table, rejects.c.rule
        )
        .order_by(rejects.c.target_table, rejects.c.source_system, rejects.c.rule)
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
