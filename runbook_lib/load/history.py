"""Which runs' loads and syncs are in a target, in the order they wrote it: the target's own record.

Read from the bookkeeping tables every load writes into the target itself — ``runbook_snapshots``
(taken before a load's or sync's first row), ``runbook_checkpoints`` (what it committed, chunk by
chunk) and ``runbook_suspended_keys`` (a PostgreSQL load's foreign keys still dropped) — so the
answer does not depend on an outputs folder: a load whose notebook never saved, or one run by a
script or from another machine, counts too. A rollback deletes its run's checkpoints, so a
rolled-back run is no longer in the target.

A rollback restores its run's snapshot, so it would delete whatever a later run wrote since:
``refuse_out_of_order`` refuses it, naming the later runs, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import (
    CHECKPOINTS_TABLE,
    SNAPSHOTS_TABLE,
    SUSPENDED_TABLE,
    checkpoints,
    snapshots,
    suspended_keys,
)
from runbook_lib.errors import RollbackOrderError

KINDS = {"full": "full load", "sync": "sync"}


@dataclass(frozen=True)
class TargetWrite:
    """One run whose load or sync is in the target: when it snapshotted, when it last wrote."""

    run_id: str
    kinds: tuple[str, ...]
    snapshot_at: str | None
    last_write_at: str | None

    @property
    def since(self) -> str:
        """When it started writing: its snapshot, or (a load without one) its last chunk."""
        return self.snapshot_at or self.last_write_at or ""

    def describe(self) -> str:
        kinds = (
            ", ".join(KINDS.get(k, k) for k in self.kinds) or "load killed before its first chunk"
        )
        return f"{self.run_id} ({kinds})"


def runs_in_target(engine: sa.Engine) -> list[TargetWrite]:
    """Every run whose load or sync is (still) in ``engine``, oldest first."""
    present = set(sa.inspect(engine).get_table_names())
    snapshot_at: dict[str, str] = {}
    writes: dict[str, dict] = {}
    with engine.connect() as connection:
        if SNAPSHOTS_TABLE in present:
            query = sa.select(snapshots.c.run_id, sa.func.min(snapshots.c.taken_at)).group_by(
                snapshots.c.run_id
            )
            snapshot_at = dict(connection.execute(query).all())
        if CHECKPOINTS_TABLE in present:
            c = checkpoints.c
            query = (
                sa.select(c.run_id, c.mode, sa.func.max(c.updated_at))
                .where(c.mode.in_(tuple(KINDS)))
                .group_by(c.run_id, c.mode)
            )
            for run_id, mode, last in connection.execute(query):
                found = writes.setdefault(run_id, {"kinds": set(), "last": ""})
                found["kinds"].add(mode)
                found["last"] = max(found["last"], last or "")
        if SUSPENDED_TABLE in present:  # a load killed after dropping its keys, before a chunk
            for (run_id,) in connection.execute(sa.select(suspended_keys.c.run_id).distinct()):
                writes.setdefault(run_id, {"kinds": set(), "last": ""})
    found = [
        TargetWrite(
            run_id=run_id,
            kinds=tuple(sorted(w["kinds"], key=list(KINDS).index)),
            snapshot_at=snapshot_at.get(run_id),
            last_write_at=w["last"] or None,
        )
        for run_id, w in writes.items()
    ]
    return sorted(found, key=lambda w: (w.since, w.run_id))


def later_runs(engine: sa.Engine, run_id: str) -> list[TargetWrite]:
    """The runs in the target that wrote it after ``run_id`` took its snapshot, newest first.

    Later means: snapshotted after it, or committed a chunk after it (a resumed load, a script
    that synced without a snapshot). Empty when ``run_id`` took no snapshot.
    """
    runs = runs_in_target(engine)
    with engine.connect() as connection:
        if SNAPSHOTS_TABLE not in sa.inspect(connection).get_table_names():
            return []
        taken = connection.execute(
            sa.select(sa.func.min(snapshots.c.taken_at)).where(snapshots.c.run_id == run_id)
        ).scalar()
    if taken is None:
        return []
    later = [
        w
        for w in runs
        if w.run_id != run_id and ((w.snapshot_at or "") > taken or (w.last_write_at or "") > taken)
    ]
    return list(reversed(later))


def refuse_out_of_order(engine: sa.Engine, run_id: str, env: str = "ENV") -> None:
    """Refuse to roll back ``run_id`` while a later run's load or sync is in the target."""
    later = later_runs(engine, run_id)
    if not later:
        return
    named = ", ".join(w.describe() for w in later)
    runs = "run" if len(later) == 1 else "runs"
    order = [*(w.run_id for w in later), run_id]
    raise RollbackOrderError(
        f"run {run_id} cannot be rolled back: {runs} {named} loaded or synced this target after "
        f"{run_id}'s snapshot; restoring it would delete their rows while their evidence says "
        "they passed, and the next sync would skip those rows. Nothing was changed",
        later_runs=tuple(w.run_id for w in later),
        hint="roll back the newest first: "
        + ", then ".join(f"runbook rollback --env {env} --run-id {r}" for r in order),
    )
