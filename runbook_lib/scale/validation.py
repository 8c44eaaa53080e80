"""Validation on the cluster (``engine: dask``): each source group's check is one Dask task.

A task maps its sources' rows through the spec, sums their row hashes per key range, has the
target sum its own per range in the database, and bisects differing ranges down to the keys —
``validate.source_check.run_group``, the very code of a local validation. What travels back is
that check's result: counts, per-range comparison, the few differing keys; no source or target
rows. As for the load, a task carries the params' connection entries, never a URL, and the worker
resolves them from its own environment. A merge target's sources stay one group (survivorship is
checked in load order).
"""

from __future__ import annotations

import sqlalchemy as sa

from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.scale.task import Connection
from runbook_lib.validate import source_check


def check_group(
    spec: LoadedSpec,
    identities: list[tuple[str, str, str]],
    connections: dict[str, Connection],
    target_connection: Connection,
    tables: list[str],
    options: dict,
):
    """On a worker: one group's check, its engines opened from the worker's environment."""
    sources = {system: c.engine() for system, c in connections.items()}
    target = target_connection.engine()
    try:
        metadata = sa.MetaData()
        metadata.reflect(target, only=tables)
        pipelines = {p.identity: p for p in ordered_sources(spec)}
        group = [pipelines[i] for i in identities]
        return source_check.run_group(spec, group, sources, target, metadata, **options)
    finally:
        for engine in (*sources.values(), target):
            engine.dispose()


def group_runner(client, connections: dict[str, Connection], target_connection: Connection):
    """A ``run_groups`` for ``validate``: every group a task on ``client``'s cluster."""

    def run_groups(
        spec: LoadedSpec,
        groups: list[list[CompiledSource]],
        sources,
        target,
        metadata: sa.MetaData,
        *,
        run_id: str,
        chunk_size: int,
        sample_percent: int | None,
        **_local_only,  # workers, sizes, progress: the cluster schedules, nobody watches a bar
    ):
        options = {"run_id": run_id, "chunk_size": chunk_size, "sample_percent": sample_percent}
        tables = sorted(metadata.tables)
        futures = [
            client.submit(
                check_group,
                spec,
                [p.identity for p in group],
                {p.system: connections[p.system] for p in group},
                target_connection,
                tables,
                options,
                key=f"runbook-validate-{group[0].target_name}-"
                + "-".join(f"{p.system}-{p.table}" for p in group)
                + f"-{run_id}",
                pure=False,
            )
            for group in groups
        ]
        outcomes = client.gather(futures)
        results = [r for found, _problems in outcomes for r in found]
        problems: dict = {}
        for _found, found in outcomes:
            problems.update(found)
        return results, problems

    return run_groups
