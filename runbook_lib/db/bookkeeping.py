"""The toolkit's own tables in a target: rejects, checkpoints, snapshots, suspended foreign keys.

One ``MetaData`` holds all four, so the trial's scratch target, rollback and validation name them
from one place. Each is created on first use (``ensure``) inside the target it describes; the
modules that read and write them are ``load.quarantine``, ``load.checkpoints``, ``load.backup``
and ``load.foreign_keys``.
"""

from __future__ import annotations

import sqlalchemy as sa

BOOKKEEPING = sa.MetaData()
REJECTS_TABLE = "runbook_rejects"
CHECKPOINTS_TABLE = "runbook_checkpoints"
SNAPSHOTS_TABLE = "runbook_snapshots"
SUSPENDED_TABLE = "runbook_suspended_keys"

rejects = sa.Table(
    REJECTS_TABLE,
    BOOKKEEPING,
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

checkpoints = sa.Table(
    CHECKPOINTS_TABLE,
    BOOKKEEPING,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("mode", sa.String(16), primary_key=True),
    sa.Column("target_table", sa.String(64), primary_key=True),
    sa.Column("source_system", sa.String(16), primary_key=True),
    sa.Column("source_table", sa.String(64), primary_key=True),
    sa.Column("last_key", sa.Text),
    sa.Column("watermark", sa.Text),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("loaded", sa.Integer, nullable=False),
    sa.Column("merged", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Text, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("done", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    mysql_charset="utf8mb4",
)

snapshots = sa.Table(
    SNAPSHOTS_TABLE,
    BOOKKEEPING,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("strategy", sa.String(32), nullable=False),
    sa.Column("location", sa.String(500), nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("taken_at", sa.String(32), nullable=False),
    mysql_charset="utf8mb4",
)

suspended_keys = sa.Table(
    SUSPENDED_TABLE,
    BOOKKEEPING,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(128), primary_key=True),
    sa.Column("constraint_name", sa.String(128), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
)
