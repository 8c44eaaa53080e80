"""One source of one target table checked against the target, in this process or a worker.

A ``SourceJob`` starts its target side at once in a background thread (the row-hash sums per
key range and the column aggregates, computed by the database) and meanwhile maps the source:
every expected row is hashed into its key range, fed to the aggregates, and, for a merge target,
to the survivorship check; then the ranges are compared and bisected (``rowdiff``).

Sources are grouped (a merge target's sources stay together, in survivorship order, because the
survivorship check follows them in load order) and the groups run in parallel worker processes
when the sources are large: mapping rows is Python, one core per process. Workers get connection
URLs, never engines; results come back as plain data.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import REJECTS_TABLE
from runbook_lib.db.canonical import row_hash
from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.stage_table import RowProgress
from runbook_lib.validate import aggregates, key_ranges
from runbook_lib.validate.expected import compared_columns, expected_chunks
from runbook_lib.validate.survivors import SurvivorCheck, SurvivorProblem
from runbook_lib.validate.target_hashes import KeyRangeSet, target_rows

PARALLEL_MIN_ROWS = 200_000  # below this, worker start-up costs more than it saves
MAX_WORKERS = 4
Identity = tuple[str, str, str]  # (target table, source system, source table)
Problems = dict[
    str, dict[tuple[str, str], SurvivorProblem]
]  # merge target → (system, key) → problem


@dataclass
class SourceResult:
    """What one source's check found (plain data: it crosses process boundaries)."""

    identity: Identity
    counts: dict[str, int]
    loaded: int
    merged: int
    quarantined_by_rule: dict[str, int]
    expected_rejects: Counter
    comparison: key_ranges.Comparison
    columns: list[str]
    distinct_target_keys: int
    aggregates: list[aggregates.AggregateCheck]
    extra_rows: list[str] = field(default_factory=list)
    nulled: Counter = field(default_factory=Counter)


class SourceJob:
    """One source of one target table: its target side starts in the background at once."""

    def __init__(
        self, pipeline, source, target, metadata, run_id, chunk_size, sample_percent, pool
    ):
        self.pipeline = pipeline
        self.run_id = run_id
        self.source = source
        self.target = target
        self.metadata = metadata
        self.chunk_size = chunk_size
        self.sample_percent = sample_percent
        self.counts = pipeline.count(source, sample_percent=sample_percent)
        merge = pipeline.target.merge
        self.table = metadata.tables[pipeline.target_name]
        self.compared_table = metadata.tables[merge.crosswalk] if merge else self.table
        self.columns = ["source_system"] if merge else compared_columns(pipeline)
        self.width = key_ranges.first_width(self.counts["source_rows"])
        self.rows = target_rows(
            target,
            self.compared_table,
            pipeline.system,
            self.columns,
            chunk_size,
            pipeline.key_prefix,
        )
        self.expected_aggregates = (
            None if merge else aggregates.ExpectedAggregates(pipeline, self.table)
        )
        self.target_ranges: Future = pool.submit(self.rows.bucket_sums, self.width)
        self.target_aggregates: Future | None = None
        if self.expected_aggregates is not None:
            self.target_aggregates = pool.submit(
                aggregates.target_aggregates,
                target,
                self.table,
                pipeline.system,
                self.expected_aggregates.declared,
                self.expected_aggregates.group,
                chunk_size,
                pipeline.key_prefix,
            )

    def _chunks(self, only=None):
        return expected_chunks(
            self.pipeline,
            self.source,
            self.target,
            self.metadata,
            chunk_size=self.chunk_size,
            sample_percent=self.sample_percent,
            only=only,
        )

    def _rebuild(self, ranges: Sequence[str]) -> key_ranges.Expected:
        wanted = KeyRangeSet(ranges)
        rows: key_ranges.Expected = {}
        for chunk in self._chunks(only=wanted.holds):
            for key, out in chunk.rows:
                values = tuple(out[name] for name in self.columns)
                rows[key] = (row_hash(key, values), values)
        return rows

    def run(self, survivors: SurvivorCheck | None, progress: RowProgress | None) -> SourceResult:
        p = self.pipeline
        expected = key_ranges.KeyRanges(self.width)
        rejects: Counter = Counter()
        nulled: Counter = Counter()
        read = 0
        total = self.counts["source_rows"] - sum(
            v for k, v in self.counts.items() if k.startswith("filtered:")
        )
        if progress:  # starts the clock for the rate of this source
            progress(f"validate {p.label}", 0, total)
        with self.target.connect() as connection:
            for chunk in self._chunks():
                for key, out in chunk.rows:
                    expected.add(key, row_hash(key, tuple(out[name] for name in self.columns)))
                    if self.expected_aggregates is not None:
                        self.expected_aggregates.add(out)
                nulled.update(chunk.nulled)
                for reject in chunk.rejects:
                    rejects[reject.rule] += 1
                    if self.expected_aggregates is not None:
                        self.expected_aggregates.add_rejected(reject.raw_row, reject.out)
                if survivors is not None:
                    survivors.check(connection, p.system, chunk.rows)
                read += chunk.read
                if progress:
                    progress(f"validate {p.label}", read, total)
            loaded, merged, quarantined, distinct = self._target_counts(connection)
            extra = survivors.extra_rows(connection, p.system) if survivors else []
        actual = key_ranges.KeyRanges.from_sums(self.width, self.target_ranges.result())
        comparison = key_ranges.compare(expected, actual, self.rows, self._rebuild)
        checks = []
        if self.target_aggregates is not None:
            numeric = self.expected_aggregates.columns
            theirs = self.target_aggregates.result()
            if numeric != self.expected_aggregates.declared:  # numbers the target stores as text
                theirs = aggregates.target_aggregates(
                    self.target,
                    self.table,
                    p.system,
                    numeric,
                    self.expected_aggregates.group,
                    self.chunk_size,
                    p.key_prefix,
                )
            checks = aggregates.compare(
                p.target_name,
                p.system,
                self.expected_aggregates,
                theirs,
                comparison.differences,
                self.columns,
                comparison.complete,
            )
        return SourceResult(
            identity=p.identity,
            counts=self.counts,
            loaded=loaded,
            merged=merged,
            quarantined_by_rule=quarantined,
            expected_rejects=rejects,
            comparison=comparison,
            columns=self.columns,
            distinct_target_keys=distinct,
            aggregates=checks,
            extra_rows=extra,
            nulled=nulled,
        )

    def _target_counts(self, connection: sa.Connection) -> tuple[int, int, dict[str, int], int]:
        """(loaded, merged, quarantined by rule, distinct keys) counted in the target."""
        p = self.pipeline
        rejects = self.metadata.tables[REJECTS_TABLE]
        # every live run's rejects (a rollback deletes its run's): a sync run's validation must
        # account for the rows the full load quarantined too
        quarantined = dict(
            connection.execute(
                sa.select(rejects.c.rule, sa.func.count(sa.distinct(rejects.c.source_key)))
                .where(
                    rejects.c.target_table == p.target_name,
                    rejects.c.source_system == p.system,
                    rejects.c.source_table == p.table,
                )
                .group_by(rejects.c.rule)
            ).all()
        )
        compared = self.compared_table
        mine = p.owns(compared)
        distinct = connection.execute(
            sa.select(sa.func.count(sa.distinct(compared.c.source_key))).where(mine)
        ).scalar_one()
        if p.target.merge:
            is_new = sa.case((compared.c.match_rule == "new", 1), else_=0)
            loaded, total = connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(is_new), 0), sa.func.count()).where(mine)
            ).one()
            return int(loaded), int(total) - int(loaded), quarantined, distinct
        loaded = connection.execute(
            sa.select(sa.func.count()).select_from(compared).where(mine)
        ).scalar_one()
        return loaded, 0, quarantined, distinct


def groups_of(pipelines: list[CompiledSource]) -> list[list[CompiledSource]]:
    """Sources that must run together, in load order: a merge target's sources are one group."""
    groups: dict[str, list[CompiledSource]] = {}
    alone = []
    for p in pipelines:
        if p.target.merge:
            groups.setdefault(p.target_name, []).append(p)
        else:
            alone.append([p])
    return [*groups.values(), *alone]


def run_group(
    spec: LoadedSpec,
    group: list[CompiledSource],
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    metadata: sa.MetaData,
    *,
    run_id: str,
    chunk_size: int,
    sample_percent: int | None,
    progress: RowProgress | None = None,
) -> tuple[list[SourceResult], Problems]:
    """Check a group's sources in order; returns their results and the survivorship problems."""
    first = group[0]
    survivors = None
    if first.target.merge:
        survivors = SurvivorCheck(
            first.target_name,
            first.target,
            metadata.tables[first.target_name],
            metadata.tables[first.target.merge.crosswalk],
        )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="target-side") as pool:
        jobs = [
            SourceJob(
                p, sources[p.system], target, metadata, run_id, chunk_size, sample_percent, pool
            )
            for p in group
        ]
        results = [job.run(survivors, progress) for job in jobs]
    return results, ({first.target_name: survivors.problems} if survivors else {})


def workers_for(rows: int, groups: int, workers: int | None) -> int:
    """Worker processes to use: one per core for large sources, none for small ones."""
    if workers is not None:
        return max(1, min(workers, groups))
    if rows < PARALLEL_MIN_ROWS:
        return 1
    return max(1, min(os.cpu_count() or 1, groups, MAX_WORKERS))


def run_groups(
    spec: LoadedSpec,
    groups: list[list[CompiledSource]],
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    metadata: sa.MetaData,
    *,
    run_id: str,
    chunk_size: int,
    sample_percent: int | None,
    workers: int,
    sizes: dict[Identity, int] | None = None,
    progress: RowProgress | None = None,
) -> tuple[list[SourceResult], Problems]:
    """Every group, here or in ``workers`` processes; results in the groups' order.

    ``sizes`` (source rows per source) balance the groups across the workers, largest first.
    """
    options = {"run_id": run_id, "chunk_size": chunk_size, "sample_percent": sample_percent}
    if workers <= 1:
        outcomes = [
            run_group(spec, g, sources, target, metadata, progress=progress, **options)
            for g in groups
        ]
    else:
        urls = {s: e.url.render_as_string(hide_password=False) for s, e in sources.items()}
        target_url = target.url.render_as_string(hide_password=False)
        tables = sorted(metadata.tables)
        bins = _pack(groups, sizes or {}, workers)
        payloads = [
            (spec, [[p.identity for p in g] for g in b], urls, target_url, tables, options)
            for b in bins
        ]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="worker") as pool:
            done = dict(zip(map(id, bins), pool.map(_in_subprocess, payloads), strict=True))
        by_group = {}
        for b in bins:
            for group, outcome in zip(b, done[id(b)], strict=True):
                by_group[id(group)] = outcome
        outcomes = [by_group[id(g)] for g in groups]
        if progress:
            for group, (found, _problems) in zip(groups, outcomes, strict=True):
                rows = sum(r.comparison.expected_rows for r in found)
                progress(f"validated {', '.join(p.label for p in group)}", rows, rows)
    results = [r for group_results, _problems in outcomes for r in group_results]
    problems: Problems = {}
    for _results, found in outcomes:
        problems.update(found)
    return results, problems


def _pack(groups: list[list[CompiledSource]], sizes: dict[Identity, int], workers: int) -> list:
    """Groups into ``workers`` bins of about equal rows (largest group first into the lightest)."""
    bins: list[list] = [[] for _ in range(workers)]
    loads = [0] * workers
    weight = {id(g): sum(sizes.get(p.identity, 1) for p in g) for g in groups}
    for group in sorted(groups, key=lambda g: -weight[id(g)]):
        lightest = loads.index(min(loads))
        bins[lightest].append(group)
        loads[lightest] += weight[id(group)]
    return [b for b in bins if b]


def _in_subprocess(payload: tuple) -> list[tuple[list[SourceResult], Problems]]:
    """Run ``_worker`` in ``python -m runbook_lib.sourcecheck``; payload and result as pickles.

    A fresh interpreter rather than multiprocessing: it never re-imports the caller's main
    module (a notebook kernel or an unguarded script), and URLs go through a pipe, not argv.
    """
    completed = subprocess.run(
        [sys.executable, "-m", "runbook_lib.validate.source_check"],
        input=pickle.dumps(payload),
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace")[-3000:]
        raise RuntimeError(f"a validation worker failed (exit {completed.returncode}):\n{tail}")
    return pickle.loads(completed.stdout)


def _worker(spec, groups, urls, target_url, tables, options):
    """In a worker process: engines from URLs, each group's pipelines, then ``run_group``."""
    from runbook_lib.config.connections import make_engine

    sources = {s: make_engine(sa.engine.make_url(u)) for s, u in urls.items()}
    target = make_engine(sa.engine.make_url(target_url))
    try:
        metadata = sa.MetaData()
        metadata.reflect(target, only=tables)
        pipelines = {p.identity: p for p in ordered_sources(spec)}
        return [
            run_group(spec, [pipelines[i] for i in group], sources, target, metadata, **options)
            for group in groups
        ]
    finally:
        for engine in (*sources.values(), target):
            engine.dispose()


if __name__ == "__main__":  # a worker: a pickled payload in, a pickled result out
    # through the module's real name, so that results unpickle as runbook_lib.sourcecheck classes
    from runbook_lib.validate import source_check

    result = source_check._worker(*pickle.loads(sys.stdin.buffer.read()))
    sys.stdout.buffer.write(pickle.dumps(result))
