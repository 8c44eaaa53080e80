"""The toolkit's own tables in a target, declared in one place.

Rejects, checkpoints, snapshots (and the id counters before them), suspended foreign keys,
pending self-references and the evidence ledger's anchor share one ``MetaData``, so the trial's
scratch target, rollback and validation name them from one place. Each is created on first use inside the target it
describes; the modules that read and write them are ``load.quarantine``, ``load.checkpoints``,
``load.backup``, ``load.foreign_keys``, ``load.self_references`` and ``evidence.anchor``.
"""

from __future__ import annotations

import sqlalchemy as sa

BOOKKEEPING = sa.MetaData()
REJECTS_TABLE = "runbook_rejects"
CHECKPOINTS_TABLE = "runbook_checkpoints"
SNAPSHOTS_TABLE = "runbook_snapshots"
SUSPENDED_TABLE = "runbook_suspended_keys"
PENDING_REFERENCES_TABLE = "runbook_pending_references"
COUNTERS_TABLE = "runbook_counters"
LEDGER_TABLE = "runbook_ledger"
PARTITIONS_TABLE = "runbook_partitions"

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
    sa.Column(
        "nulled", sa.Text
    ),  # added after the first release: nullable, see add_missing_columns
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

# A reference into the target being loaded, waiting for its parent's row: the child was written
# with the column NULL, in the same transaction as this row (see load.self_references).
pending_references = sa.Table(
    PENDING_REFERENCES_TABLE,
    BOOKKEEPING,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("mode", sa.String(16), primary_key=True),
    sa.Column("target_table", sa.String(64), primary_key=True),
    sa.Column("source_system", sa.String(16), primary_key=True),
    sa.Column("source_key", sa.String(191), primary_key=True),
    sa.Column("column_name", sa.String(64), primary_key=True),
    sa.Column("source_table", sa.String(64), nullable=False),
    sa.Column("parent_system", sa.String(16), nullable=False),
    sa.Column("parent_key", sa.String(191), nullable=False),
    sa.Column("key_values", sa.Text, nullable=False),
    mysql_charset="utf8mb4",
)


def add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """Add the nullable columns a newer toolkit declares to a bookkeeping table made by an older one."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    missing = [c for c in table.columns if c.name not in present and c.nullable]
    if not missing:
        return
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as connection:
        for column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"
            )


# The id counters (sequences, identities, AUTO_INCREMENT) of the snapshotted tables as they were
# before a run's load, so a rollback puts them back (see db.sequences).
counters_before = sa.Table(
    COUNTERS_TABLE,
    BOOKKEEPING,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("column_name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger),
    sa.Column("is_called", sa.Boolean, nullable=False),
    mysql_charset="utf8mb4",
)


# Every line of an environment's evidence ledger (outputs/<env>/ledger.jsonl), recorded by the seal
# that wrote it: an anchor outside outputs/, so cutting or re-sealing the files without database
# access no longer matches (see evidence.anchor). ``facts``: JSON of what the manifest then said
# (each stage's status and notebook sha256, params and spec sha256, the approval's sha256).
ledger_anchor = sa.Table(
    LEDGER_TABLE,
    BOOKKEEPING,
    sa.Column("env", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("entry_sha256", sa.String(64), nullable=False),
    sa.Column("signer", sa.String(64)),
    sa.Column("facts", sa.Text),
    sa.Column("anchored_at", sa.String(32), nullable=False),
    mysql_charset="utf8mb4",
)


# The key-range plan of a partitioned load (runbook_lib.scale): one row per partition of a source,
# cut from the source before the load; each partition's own checkpoint sits in runbook_checkpoints
# (source_table "<table>#p<n>"), and its attempts, worker and time are recorded here.
partitions = sa.Table(
    PARTITIONS_TABLE,
    BOOKKEEPING,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("mode", sa.String(16), primary_key=True),
    sa.Column("target_table", sa.String(64), primary_key=True),
    sa.Column("source_system", sa.String(16), primary_key=True),
    sa.Column("source_table", sa.String(64), primary_key=True),
    sa.Column("partition_no", sa.Integer, primary_key=True),
    sa.Column("after_key", sa.Text),  # exclusive lower bound (JSON list), NULL: from the first key
    sa.Column("until_key", sa.Text),  # inclusive upper bound (JSON list), NULL: to the last key
    sa.Column("planned_rows", sa.BigInteger, nullable=False),
    sa.Column("first_id", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(128)),
    sa.Column("seconds", sa.Float),
    sa.Column("finished_at", sa.String(32)),
    mysql_charset="utf8mb4",
)
