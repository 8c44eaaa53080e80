"""Checkpoints: how far each source of a load has got, written in the same transaction as its chunk.

Because a chunk's rows, crosswalk rows, rejects and checkpoint commit together, a load killed at any
moment (even ``kill -9``) leaves the target and its checkpoints consistent: re-running the stage
continues after the last committed key, and every row ends up in the target exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import (
    BOOKKEEPING,
    CHECKPOINTS_TABLE,
    add_missing_columns,
    checkpoints,
)


@dataclass(frozen=True)
class Checkpoint:
    """Where one source of one run's load stands."""

    last_key: tuple | None = None
    watermark: str | None = None
    chunks: int = 0
    rows_read: int = 0
    loaded: int = 0
    merged: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    done: bool = False
    # values dropped by ``on_error: "null"`` in rows that were kept, by "column:rule"
    nulled: dict[str, int] = field(default_factory=dict)

    def advance(
        self,
        *,
        last_key: tuple,
        rows: int,
        loaded: int,
        merged: int,
        rejected: dict[str, int],
        seconds: float,
        nulled: dict[str, int] | None = None,
    ) -> Checkpoint:
        return replace(
            self,
            last_key=last_key,
            chunks=self.chunks + 1,
            rows_read=self.rows_read + rows,
            loaded=self.loaded + loaded,
            merged=self.merged + merged,
            quarantined=_added(self.quarantined, rejected),
            seconds=self.seconds + seconds,
            nulled=_added(self.nulled, nulled or {}),
        )


def _added(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    total = dict(counts)
    for name, count in more.items():
        total[name] = total.get(name, 0) + count
    return total


@dataclass(frozen=True)
class CheckpointKey:
    """Which load a checkpoint belongs to."""

    run_id: str
    mode: str
    target_table: str
    source_system: str
    source_table: str

    def where(self):
        c = checkpoints.c
        return sa.and_(
            c.run_id == self.run_id,
            c.mode == self.mode,
            c.target_table == self.target_table,
            c.source_system == self.source_system,
            c.source_table == self.source_table,
        )


def ensure_checkpoints_table(engine: sa.Engine) -> None:
    """Create the checkpoint table in the target if it is not there yet (or add a new column)."""
    BOOKKEEPING.create_all(engine, tables=[checkpoints])
    add_missing_columns(engine, checkpoints)


def read(connection: sa.Connection, key: CheckpointKey) -> Checkpoint:
    """The committed progress of one source (a fresh ``Checkpoint`` if it never started)."""
    row = connection.execute(sa.select(checkpoints).where(key.where())).mappings().one_or_none()
    if row is None:
        return Checkpoint()
    return Checkpoint(
        last_key=None if row["last_key"] is None else tuple(json.loads(row["last_key"])),
        watermark=row["watermark"],
        chunks=row["chunks"],
        rows_read=row["rows_read"],
        loaded=row["loaded"],
        merged=row["merged"],
        quarantined=json.loads(row["quarantined"]),
        seconds=row["seconds"],
        done=bool(row["done"]),
        nulled=json.loads(row["nulled"] or "{}"),
    )


def write(connection: sa.Connection, key: CheckpointKey, progress: Checkpoint) -> None:
    """Record ``progress`` inside the caller's transaction (the chunk's own)."""
    values = {
        "last_key": None
        if progress.last_key is None
        else json.dumps(list(progress.last_key), default=str),
        "watermark": progress.watermark,
        "chunks": progress.chunks,
        "rows_read": progress.rows_read,
        "loaded": progress.loaded,
        "merged": progress.merged,
        "quarantined": json.dumps(progress.quarantined, sort_keys=True),
        "seconds": round(progress.seconds, 3),
        "done": progress.done,
        "nulled": json.dumps(progress.nulled, sort_keys=True),
        "updated_at": datetime.now(UTC).isoformat(timespec="microseconds"),  # see load.history
    }
    updated = connection.execute(checkpoints.update().where(key.where()).values(**values)).rowcount
    if not updated:
        connection.execute(checkpoints.insert().values(**key.__dict__, **values))


def has_any(engine: sa.Engine, run_id: str, mode: str) -> bool:
    """Whether a load of this run and mode has committed anything."""
    if CHECKPOINTS_TABLE not in sa.inspect(engine).get_table_names():
        return False
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(
            checkpoints.c.run_id == run_id, checkpoints.c.mode == mode
        )
        return connection.execute(query).scalar_one() > 0


def latest_done(
    engine: sa.Engine, target_table: str, source_system: str, source_table: str
) -> Checkpoint | None:
    """Where the newest finished load or sync of this source left off (what a sync continues from)."""
    if CHECKPOINTS_TABLE not in sa.inspect(engine).get_table_names():
        return None
    c = checkpoints.c
    query = (
        sa.select(c.run_id, c.mode)
        .where(
            c.target_table == target_table,
            c.source_system == source_system,
            c.source_table == source_table,
            c.done.is_(True),
            c.mode.in_(("full", "sync")),
        )
        .order_by(c.updated_at.desc(), c.run_id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        found = connection.execute(query).one_or_none()
        if found is None:
            return None
        return read(
            connection,
            CheckpointKey(found.run_id, found.mode, target_table, source_system, source_table),
        )
