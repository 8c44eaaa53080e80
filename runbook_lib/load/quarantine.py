"""The reject table: every source row that could not be loaded, with the rule that stopped it.

The raw row is kept in the target database (so it can be repaired and replayed); evidence only ever
shows rejects through ``masking``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

REJECTS_TABLE = "runbook_rejects"

RUNBOOK_METADATA = sa.MetaData()
rejects = sa.Table(
    REJECTS_TABLE,
    RUNBOOK_METADATA,
    sa.Column("reject_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("target_table", sa.String(64), nullable=False),
    sa.Column("source_system", sa.String(16), nullable=False),
    sa.Column("source_table", sa.String(64), nullable=False),
    sa.Column("source_key", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("raw_row", sa.Text, nullable=False),
    sa.UniqueConstraint(
        "run_id", "target_table", "source_system", "source_key", name="uq_rejects_row"
    ),
    mysql_charset="utf8mb4",
)


@dataclass(frozen=True)
class Reject:
    """One quarantined source row."""

    target_table: str
    source_system: str
    source_table: str
    source_key: str
    rule: str
    message: str
    raw_row: dict

    def as_row(self, run_id: str) -> dict:
        return {
            "run_id": run_id,
            "target_table": self.target_table,
            "source_system": self.source_system,
            "source_table": self.source_table,
            "source_key": self.source_key,
            "rule": self.rule,
            "message": self.message[:500],
            "raw_row": json.dumps(self.raw_row, default=str, ensure_ascii=False),
        }


def ensure_rejects_table(engine: sa.Engine) -> None:
    """Create the reject table in the target if it is not there yet."""
    RUNBOOK_METADATA.create_all(engine, tables=[rejects])


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


def sample_rejects(engine: sa.Engine, run_id: str, per_rule: int = 3) -> list[dict]:
    """A few rejects per rule (raw rows unmasked: mask before showing them)."""
    query = (
        sa.select(rejects)
        .where(rejects.c.run_id == run_id)
        .order_by(rejects.c.target_table, rejects.c.rule, rejects.c.reject_id)
    )
    seen: dict[tuple, int] = {}
    picked = []
    with engine.connect() as connection:
        for row in connection.execute(query):
            group = (row.target_table, row.rule)
            if seen.get(group, 0) < per_rule:
                seen[group] = seen.get(group, 0) + 1
                picked.append(dict(row._mapping))
    return picked
