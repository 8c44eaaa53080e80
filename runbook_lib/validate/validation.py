"""Validation: prove the target holds exactly what the sources say through the mapping.

For every source of every target table, from independent counts and a rebuild of the rows:

* **Accounting**: source rows (counted in the source) = rows in the target from that source +
  rows merged as duplicates (crosswalk) + rows quarantined (reject table) + rows excluded by each
  named filter; the quarantine, by rule, is what the mapping rejects when re-run; and each target
  table holds no row that no source accounts for. Nothing comes from the loader's own counters.
* **Rows**: the expected target rows are rebuilt from the source through the mapping in chunks,
  hashed, summed per key range and compared with the target's sums, computed inside the database
  where the dialect allows it (``rowhash``); differing ranges are bisected down to the keys
  (``rowdiff``), each reported as missing, extra, duplicate or changed with its columns (masked).
  A merge target is checked record by record against its survivors (``survivors``).
* **Aggregates** per mapped numeric column and currency (``aggregates``), and **referential
  integrity** of every reference the spec creates (``integrity``).

The target side of each source runs in a background thread while the source is mapped, so the
database hashes while Python transforms; large sources are mapped in one worker process per core
(``sourcecheck``). What validation found is a ``ValidationReport`` (``validation_report``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

import sqlalchemy as sa

from runbook_lib.db.bookkeeping import REJECTS_TABLE
from runbook_lib.errors import GateFailedError, RunbookError
from runbook_lib.load.quarantine import ensure_rejects_table
from runbook_lib.mapping.compiled import CompiledSource, ordered_sources
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.privacy.masking import EvidenceMasker
from runbook_lib.stage_table import RowProgress
from runbook_lib.validate import integrity, key_ranges, source_check
from runbook_lib.validate.invariants import check_invariants
from runbook_lib.validate.report import (
    KINDS,
    MAX_LISTED_DIFFERENCES,
    Difference,
    TableCheck,
    TableTotal,
    ValidationReport,
)

__all__ = [
    "Difference",
    "GateFailedError",
    "RunbookError",
    "TableCheck",
    "TableTotal",
    "ValidationReport",
    "validate",
]


def validate(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    *,
    run_id: str,
    target_label: str,
    chunk_size: int,
    max_unexplained_differences: int,
    sample_percent: int | None = None,
    max_reject_rate: float | None = None,
    tables: Iterable[str] | None = None,
    progress: RowProgress | None = None,
    workers: int | None = None,
    masker: EvidenceMasker | None = None,
    max_new_check_violations: int = 0,
    run_groups=None,
) -> ValidationReport:
    """Check every source of every target table (trial: pass the trial's ``sample_percent``).

    ``tables`` limits validation to some target tables; ``max_reject_rate`` adds the reject-rate
    gate, computed from the reject table and the source counts; ``workers`` processes map the
    sources in parallel (default: one per core when the sources are large, see ``source_check``);
    ``masker`` shows the values of differing rows (default: classified by column name); the
    spec's ``checks:`` run on the whole target (not when ``tables`` limits it), their new
    violations gated by ``max_new_check_violations``; ``run_groups`` runs the source checks
    elsewhere (``scale.validation``, on a Dask cluster), ``source_check.run_groups`` by default.
    """
    started = time.perf_counter()
    chosen = _chosen_tables(spec, tables)
    ensure_rejects_table(target)
    metadata = sa.MetaData()
    pipelines = [p for p in ordered_sources(spec) if p.target_name in chosen]
    references = integrity.references(spec, chosen)
    reflected = set(chosen) | {r.parent for r in references}
    reflected |= {c.references for p in pipelines for c in p.reference_columns}
    for name in list(reflected):
        merge = spec.spec.targets[name].merge
        if merge:
            reflected.add(merge.crosswalk)
    metadata.reflect(target, only=[*sorted(reflected), REJECTS_TABLE])
    sizes = {
        p.identity: p.count(sources[p.system], sample_percent=sample_percent)["source_rows"]
        for p in pipelines
    }
    groups = source_check.groups_of(pipelines)
    results, problems = (run_groups or source_check.run_groups)(
        spec,
        groups,
        sources,
        target,
        metadata,
        run_id=run_id,
        chunk_size=chunk_size,
        sample_percent=sample_percent,
        workers=(workers := source_check.workers_for(sum(sizes.values()), len(groups), workers)),
        sizes=sizes,
        progress=progress,
    )
    by_identity = {p.identity: p for p in pipelines}
    masker = masker or EvidenceMasker.from_classification(None, spec)
    checks = _table_checks(results, by_identity, problems, masker)
    return ValidationReport(
        run_id=run_id,
        target=target_label,
        max_unexplained_differences=max_unexplained_differences,
        tables=tuple(checks),
        totals=tuple(_totals(spec, target, metadata, chosen, checks)),
        aggregates=tuple(a for r in results for a in r.aggregates),
        integrity=tuple(integrity.check_integrity(target, metadata, references)),
        max_reject_rate=max_reject_rate,
        seconds=time.perf_counter() - started,
        workers=workers,
        checks=tuple(check_invariants(spec, sources, target)) if tables is None else (),
        max_new_check_violations=max_new_check_violations,
    )


def _chosen_tables(spec: LoadedSpec, tables: Iterable[str] | None) -> list[str]:
    names = list(spec.spec.targets)
    if tables is None:
        return names
    wanted = list(tables)
    unknown = [t for t in wanted if t not in names]
    if unknown:
        raise RunbookError(
            f"no target table {', '.join(map(repr, unknown))} in the mapping spec",
            hint=f"target tables: {', '.join(names)}",
        )
    return [n for n in names if n in wanted]


def _differences(
    result, p: CompiledSource, problems: dict, masker: EvidenceMasker
) -> list[Difference]:
    table = p.target.merge.crosswalk if p.target.merge else p.target_name
    found: dict[str, Difference] = {}
    for d in result.comparison.differences:
        values = ()
        if d.kind == "changed" and d.actual:
            position = {name: i for i, name in enumerate(result.columns)}
            values = tuple(
                (
                    c,
                    masker.text(p.target_name, c, d.expected[position[c]]),
                    masker.text(p.target_name, c, d.actual[0][position[c]]),
                )
                for c in d.columns
            )
        note = f"{len(d.actual)} rows with this key" if d.kind == "duplicate" else ""
        found[d.key] = Difference(table, p.system, d.key, d.kind, d.columns, values, note)
    for key in result.extra_rows:
        found.setdefault(
            key,
            Difference(p.target_name, p.system, key, "extra", note="a row no crosswalk entry owns"),
        )
    if problems:
        for (system, key), problem in problems.items():
            if system != p.system:
                continue
            previous = found.get(key)
            if previous is not None and previous.kind != "changed":
                continue
            values = tuple(
                (c, masker.text(p.target_name, c, want), masker.text(p.target_name, c, have))
                for c, (want, have) in problem.values.items()
            )
            found[key] = Difference(
                p.target_name,
                system,
                key,
                "changed",
                tuple(problem.columns),
                values,
                note="; ".join(problem.notes),
            )
    return [found[k] for k in sorted(found, key=key_ranges.natural_key)]


def _table_checks(
    results, pipelines: dict, problems: dict, masker: EvidenceMasker
) -> list[TableCheck]:
    checks = []
    for r in results:
        p = pipelines[r.identity]
        differences = _differences(r, p, problems.get(p.target_name, {}), masker)
        undrilled = r.comparison.undrilled_ranges
        kinds = Counter(d.kind for d in differences)
        changed = Counter(c for d in differences for c in d.columns)
        checks.append(
            TableCheck(
                target_table=p.target_name,
                source_system=p.system,
                source_table=p.table,
                source_rows=r.counts["source_rows"],
                loaded=r.loaded,
                merged=r.merged,
                quarantined=sum(r.quarantined_by_rule.values()),
                filtered=sum(v for k, v in r.counts.items() if k.startswith("filtered:")),
                compared_rows=r.comparison.expected_rows,
                differences=tuple(differences[:MAX_LISTED_DIFFERENCES]),
                difference_count=len(differences) + undrilled,
                quarantined_by_rule=tuple(sorted(r.quarantined_by_rule.items())),
                expected_quarantined_by_rule=tuple(sorted(r.expected_rejects.items())),
                target_rows=r.comparison.target_rows,
                distinct_target_keys=r.distinct_target_keys,
                by_kind=tuple((k, kinds[k]) for k in KINDS if kinds[k]),
                changed_columns=tuple(sorted(changed.items())),
                comparison=r.comparison.to_dict(),
                nulled=tuple(sorted(r.nulled.items())),
            )
        )
    return checks


def _totals(spec, target, metadata, chosen, checks) -> list[TableTotal]:
    """Each target table's rows by system against the loaded (and merged) rows of its sources."""
    totals = []
    with target.connect() as connection:
        for name in chosen:
            mine = [c for c in checks if c.target_table == name]
            merge = spec.spec.targets[name].merge
            tables = [(name, lambda c: c.loaded)]
            if merge:
                tables.append((merge.crosswalk, lambda c: c.loaded + c.merged))
            for table_name, accounted_of in tables:
                table = metadata.tables[table_name]
                by_system = dict(
                    connection.execute(
                        sa.select(table.c.source_system, sa.func.count()).group_by(
                            table.c.source_system
                        )
                    ).all()
                )
                rows = sum(by_system.values())
                totals.append(
                    TableTotal(
                        table=table_name,
                        rows=rows,
                        accounted=sum(accounted_of(c) for c in mine),
                        by_system=tuple(sorted((str(s), n) for s, n in by_system.items())),
                    )
                )
    return totals
