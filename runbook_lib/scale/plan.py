"""The key-range plan of a partitioned load: each source cut into ranges of about equal row counts.

The cut is taken from the source itself, not guessed: the rows a load would read (filters applied)
are numbered in key order inside the source database (``row_number() OVER (ORDER BY key)``) and
every ``size``-th key closes a range. The plan is recorded in the target (``runbook_partitions``)
before the first task starts, so a resumed load runs the very same ranges, and each partition's ids
come from it: the rows planned before a partition (over all sources of its target, in load order)
are its offset, key order inside it does the rest (see ``partitioned.compact_ids``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import BOOKKEEPING, partitions
from runbook_lib.load.checkpoints import CheckpointKey
from runbook_lib.mapping.compiled import CompiledSource


@dataclass(frozen=True)
class Partition:
    """One key range of one source: (after_key, until_key], its planned rows and first id."""

    target_table: str
    source_system: str
    source_table: str
    number: int
    after_key: tuple | None
    until_key: tuple | None
    planned_rows: int
    first_id: int

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.target_table, self.source_system, self.source_table)

    @property
    def label(self) -> str:
        """How evidence and errors name the partition: source, number and key range."""
        low = "start" if self.after_key is None else f"after {_shown(self.after_key)}"
        high = "end" if self.until_key is None else f"up to {_shown(self.until_key)}"
        return (
            f"{self.source_system}.{self.source_table} → {self.target_table} "
            f"partition {self.number} ({low}, {high})"
        )

    def checkpoint_key(self, run_id: str, mode: str) -> CheckpointKey:
        """The partition's own checkpoint, beside its source's (``<table>#p<n>``)."""
        return CheckpointKey(
            run_id,
            mode,
            self.target_table,
            self.source_system,
            f"{self.source_table}#p{self.number}",
        )

    def to_dict(self) -> dict:
        return {
            "target_table": self.target_table,
            "source": f"{self.source_system}.{self.source_table}",
            "partition": self.number,
            "after_key": None if self.after_key is None else list(self.after_key),
            "until_key": None if self.until_key is None else list(self.until_key),
            "planned_rows": self.planned_rows,
            "first_id": self.first_id,
        }


def _shown(key: tuple) -> str:
    return ", ".join(str(v) for v in key)


def partition_count(rows: int, partition_rows: int, max_partitions: int) -> int:
    """How many ranges ``rows`` are cut into: one per ``partition_rows``, within the bounds."""
    return max(1, min(max_partitions, math.ceil(rows / partition_rows), rows))


def cut_source(
    pipeline: CompiledSource, source: sa.Engine, *, partition_rows: int, max_partitions: int
) -> list[tuple[tuple | None, tuple | None, int]]:
    """(after_key, until_key, rows) of each range of ``pipeline``'s rows, from the source."""
    table = sa.table(pipeline.table, *(sa.column(n) for n in pipeline.key_columns))
    keys = [table.c[n] for n in pipeline.key_columns]
    with source.connect() as connection:
        rows = connection.execute(
            sa.select(sa.func.count()).select_from(table).where(*pipeline.filter_clauses())
        ).scalar_one()
        count = partition_count(rows, partition_rows, max_partitions)
        size = math.ceil(rows / count) if rows else 0
        bounds: list[tuple] = []
        if count > 1:
            numbered = (
                sa.select(*keys, sa.func.row_number().over(order_by=keys).label("rn"))
                .select_from(table)
                .where(*pipeline.filter_clauses())
                .subquery()
            )
            bounds = [
                tuple(row)
                for row in connection.execute(
                    sa.select(*(numbered.c[n] for n in pipeline.key_columns))
                    .where(numbered.c.rn % size == 0, numbered.c.rn < rows)
                    .order_by(numbered.c.rn)
                )
            ]
    ranges = []
    after: tuple | None = None
    for number, until in enumerate([*bounds, None]):
        planned = size if until is not None else rows - size * number
        ranges.append((after, until, planned))
        after = until
    return ranges


def plan_target(
    own: list[CompiledSource],
    sources: dict[str, sa.Engine],
    *,
    first_id: int,
    partition_rows: int,
    max_partitions: int,
) -> list[Partition]:
    """The partitions of every source of one target, ids offset in load order from ``first_id``."""
    planned: list[Partition] = []
    offset = first_id
    for pipeline in own:
        cut = cut_source(
            pipeline,
            sources[pipeline.system],
            partition_rows=partition_rows,
            max_partitions=max_partitions,
        )
        for number, (after, until, rows) in enumerate(cut):
            planned.append(Partition(*pipeline.identity, number, after, until, rows, offset))
            offset += rows
    return planned


def record(connection: sa.Connection, run_id: str, mode: str, planned: list[Partition]) -> None:
    """Write the plan into the target (inside the caller's transaction)."""
    for p in planned:
        connection.execute(
            partitions.insert().values(
                run_id=run_id,
                mode=mode,
                target_table=p.target_table,
                source_system=p.source_system,
                source_table=p.source_table,
                partition_no=p.number,
                after_key=_json(p.after_key),
                until_key=_json(p.until_key),
                planned_rows=p.planned_rows,
                first_id=p.first_id,
                attempts=0,
            )
        )


def recorded(
    connection: sa.Connection, run_id: str, mode: str, target_table: str
) -> list[Partition]:
    """The plan this run recorded for ``target_table`` (empty if none yet), in load order."""
    c = partitions.c
    rows = connection.execute(
        sa.select(partitions)
        .where(c.run_id == run_id, c.mode == mode, c.target_table == target_table)
        .order_by(c.first_id, c.partition_no)
    ).mappings()
    return [recorded_row(r) for r in rows]


def recorded_row(r) -> Partition:
    """The partition one ``runbook_partitions`` row describes."""
    return Partition(
        r["target_table"],
        r["source_system"],
        r["source_table"],
        r["partition_no"],
        _tuple(r["after_key"]),
        _tuple(r["until_key"]),
        r["planned_rows"],
        r["first_id"],
    )


def ensure_table(engine: sa.Engine) -> None:
    """Create the plan table in the target if it is not there yet."""
    BOOKKEEPING.create_all(engine, tables=[partitions])


def _json(key: tuple | None) -> str | None:
    return None if key is None else json.dumps(list(key), default=str)


def _tuple(text: str | None) -> tuple | None:
    return None if text is None else tuple(json.loads(text))
