"""Validation: prove the target holds exactly what the source says through the mapping.

Two independent checks per source of each target table:

* **Accounting**: source rows (counted in the source) = rows in the target from that source +
  rows merged as duplicates (crosswalk) + rows quarantined (reject table) + rows excluded by each
  named filter. Nothing comes from the loader's own counters.
* **Row hashes**: the expected target rows are rebuilt from the source through the same pipeline,
  hashed per key into buckets, and compared with the target's rows; buckets that differ are
  re-read to name the exact keys (missing, extra, or changed). Memory holds only the buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from runbook_lib.errors import GateFailedError
from runbook_lib.hashing import bucket_of, canonical, row_digest, row_text
from runbook_lib.loading import count_source, ordered_pipelines, reference_lookup, transform_chunk
from runbook_lib.mapping import LoadedSpec
from runbook_lib.pipeline import SourcePipeline
from runbook_lib.quarantine import REJECTS_TABLE, ensure_rejects_table

BUCKETS = 256
_MASK = (1 << 64) - 1
MAX_LISTED_DIFFERENCES = 50


@dataclass(frozen=True)
class Difference:
    """One key whose target row is not what the mapping says it should be."""

    table: str
    source_system: str
    source_key: str
    kind: str  # missing | extra | changed

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass(frozen=True)
class TableCheck:
    """Accounting and row comparison for one source of one target table."""

    target_table: str
    source_system: str
    source_table: str
    source_rows: int
    loaded: int
    merged: int
    quarantined: int
    filtered: int
    compared_rows: int
    differences: tuple[Difference, ...] = ()
    difference_count: int = 0

    @property
    def balanced(self) -> bool:
        return self.source_rows == self.loaded + self.merged + self.quarantined + self.filtered

    def to_dict(self) -> dict:
        return {
            "target_table": self.target_table,
            "source_system": self.source_system,
            "source_table": self.source_table,
            "source_rows": self.source_rows,
            "loaded": self.loaded,
            "merged": self.merged,
            "quarantined": self.quarantined,
            "filtered": self.filtered,
            "balanced": self.balanced,
            "compared_rows": self.compared_rows,
            "differences": self.difference_count,
            "difference_keys": [d.to_dict() for d in self.differences],
        }


@dataclass(frozen=True)
class ValidationReport:
    """Validation of a whole target."""

    run_id: str
    target: str
    max_unexplained_differences: int
    tables: tuple[TableCheck, ...] = field(default_factory=tuple)

    @property
    def differences(self) -> int:
        return sum(t.difference_count for t in self.tables)

    @property
    def passed(self) -> bool:
        balanced = all(t.balanced for t in self.tables)
        return balanced and self.differences <= self.max_unexplained_differences

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "target": self.target,
            "passed": self.passed,
            "differences": self.differences,
            "max_unexplained_differences": self.max_unexplained_differences,
            "unbalanced_tables": [
                f"{t.source_system}.{t.source_table}" for t in self.tables if not t.balanced
            ],
            "tables": [t.to_dict() for t in self.tables],
        }

    def render(self) -> str:
        header = (
            f"{'source':<28} {'target':<14} {'rows':>9} {'loaded':>9} {'merged':>7} "
            f"{'quar.':>6} {'filt.':>6} {'diff':>5}  balanced"
        )
        lines = [f"validation of {self.target}", header, "-" * len(header)]
        for t in self.tables:
            lines.append(
                f"{t.source_system + '.' + t.source_table:<28} {t.target_table:<14} {t.source_rows:>9,} "
                f"{t.loaded:>9,} {t.merged:>7,} {t.quarantined:>6,} {t.filtered:>6,} {t.difference_count:>5,}  "
                f"{'yes' if t.balanced else 'NO'}"
            )
            for d in t.differences[:10]:
                lines.append(f"    {d.kind:<8} {d.source_system}:{d.source_key}")
        lines.append(f"{'PASSED' if self.passed else 'FAILED'}: {self.differences} difference(s)")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if not self.passed:
            unbalanced = [
                f"{t.source_system}.{t.source_table}" for t in self.tables if not t.balanced
            ]
            raise GateFailedError(
                f"validation failed: {self.differences} row difference(s) "
                f"(gate {self.max_unexplained_differences}); unbalanced: {', '.join(unbalanced) or 'none'}",
                hint="see the difference keys in the validation notebook",
            )


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
) -> ValidationReport:
    """Check every source of every target table (trial: pass the trial's ``sample_percent``)."""
    ensure_rejects_table(target)
    metadata = sa.MetaData()
    tables = {name for name in spec.spec.targets}
    for target_mapping in spec.spec.targets.values():
        if target_mapping.merge:
            tables.add(target_mapping.merge.crosswalk)
    metadata.reflect(target, only=[*tables, REJECTS_TABLE])
    checks = [
        _check_source(
            p,
            sources[p.system],
            target,
            metadata,
            run_id=run_id,
            chunk_size=chunk_size,
            sample_percent=sample_percent,
        )
        for p in ordered_pipelines(spec)
    ]
    return ValidationReport(
        run_id=run_id,
        target=target_label,
        max_unexplained_differences=max_unexplained_differences,
        tables=tuple(checks),
    )


def _compared_columns(pipeline: SourcePipeline) -> list[str]:
    names = ["source_system"]
    for column in pipeline.columns:
        names.extend(column.outputs)
    return names


def _check_source(
    pipeline: SourcePipeline,
    source: sa.Engine,
    target: sa.Engine,
    metadata: sa.MetaData,
    *,
    run_id: str,
    chunk_size: int,
    sample_percent: int | None,
) -> TableCheck:
    counts = count_source(pipeline, source, sample_percent=sample_percent)
    filtered = sum(v for k, v in counts.items() if k.startswith("filtered:"))
    merge = pipeline.target.merge
    rejects = metadata.tables[REJECTS_TABLE]
    with target.connect() as connection:
        quarantined = connection.execute(
            sa.select(sa.func.count())
            .select_from(rejects)
            .where(
                rejects.c.run_id == run_id,
                rejects.c.target_table == pipeline.target_name,
                rejects.c.source_system == pipeline.system,
                rejects.c.source_table == pipeline.table,
            )
        ).scalar_one()
        if merge:
            xref = metadata.tables[merge.crosswalk]
            is_new = sa.case((xref.c.match_rule == "new", 1), else_=0)
            loaded, total = connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(is_new), 0), sa.func.count()).where(
                    xref.c.source_system == pipeline.system
                )
            ).one()
            merged = total - loaded
        else:
            table = metadata.tables[pipeline.target_name]
            loaded = connection.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.source_system == pipeline.system)
            ).scalar_one()
            merged = 0
    if merge:
        # a merged record's row is its survivor: compare the crosswalk's keys (values are the
        # survivor's, checked where the survivor is this system's own record)
        columns = ["source_system"]
        actual_table = metadata.tables[merge.crosswalk]
    else:
        columns = _compared_columns(pipeline)
        actual_table = metadata.tables[pipeline.target_name]
    expected = _Buckets()
    actual = _Buckets()
    compared = 0
    for key, values in _expected_rows(
        pipeline, source, target, metadata, chunk_size, sample_percent, columns
    ):
        expected.add(key, values)
        compared += 1
    for key, values in _actual_rows(target, actual_table, pipeline.system, columns, chunk_size):
        actual.add(key, values)
    differing = expected.differing(actual)
    differences: list[Difference] = []
    if differing:
        want = dict(
            _in_buckets(
                _expected_rows(
                    pipeline, source, target, metadata, chunk_size, sample_percent, columns
                ),
                differing,
            )
        )
        have = dict(
            _in_buckets(
                _actual_rows(target, actual_table, pipeline.system, columns, chunk_size), differing
            )
        )
        for key in sorted(set(want) | set(have)):
            if key not in have:
                kind = "missing"
            elif key not in want:
                kind = "extra"
            elif want[key] != have[key]:
                kind = "changed"
            else:
                continue
            differences.append(Difference(pipeline.target_name, pipeline.system, key, kind))
    if merge:
        differences += _survivor_differences(
            pipeline, source, target, metadata, chunk_size, sample_percent
        )
    return TableCheck(
        target_table=pipeline.target_name,
        source_system=pipeline.system,
        source_table=pipeline.table,
        source_rows=counts["source_rows"],
        loaded=loaded,
        merged=merged,
        quarantined=quarantined,
        filtered=filtered,
        compared_rows=compared,
        differences=tuple(differences[:MAX_LISTED_DIFFERENCES]),
        difference_count=len(differences),
    )


def _survivor_differences(
    pipeline, source, target, metadata, chunk_size, sample_percent
) -> list[Difference]:
    """A merged entity's row keeps every value its surviving record had (later systems only fill gaps)."""
    table = metadata.tables[pipeline.target_name]
    columns = [name for column in pipeline.columns for name in column.outputs]
    differences = []
    rows = _expected_rows(
        pipeline, source, target, metadata, chunk_size, sample_percent, ["source_system", *columns]
    )
    with target.connect() as connection:
        for chunk in _batched(rows, chunk_size):
            keys = [key for key, _values in chunk]
            query = sa.select(table.c.source_key, *(table.c[name] for name in columns)).where(
                table.c.source_system == pipeline.system, table.c.source_key.in_(keys)
            )
            actual = {row[0]: row[1:] for row in connection.execute(query)}
            for key, values in chunk:
                if key not in actual:
                    continue  # a merged record: its survivor is another system's row
                kept = [
                    canonical(want) == canonical(have)
                    for want, have in zip(values[1:], actual[key], strict=True)
                    if want is not None
                ]
                if not all(kept):
                    differences.append(
                        Difference(pipeline.target_name, pipeline.system, key, "changed")
                    )
    return differences


def _batched(rows, size: int):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Buckets:
    def __init__(self) -> None:
        self.sums = [0] * BUCKETS
        self.counts = [0] * BUCKETS

    def add(self, key: str, values: tuple) -> None:
        bucket = bucket_of(key, BUCKETS)
        self.sums[bucket] = (self.sums[bucket] + row_digest(key, values)) & _MASK
        self.counts[bucket] += 1

    def differing(self, other: _Buckets) -> set[int]:
        return {
            b
            for b in range(BUCKETS)
            if self.sums[b] != other.sums[b] or self.counts[b] != other.counts[b]
        }


def _in_buckets(rows, buckets: set[int]):
    """(key, canonical row text) of the rows in ``buckets``: dialect representations compare equal."""
    for key, values in rows:
        if bucket_of(key, BUCKETS) in buckets:
            yield key, row_text(values)


def _expected_rows(pipeline, source, target, metadata, chunk_size, sample_percent, columns):
    """(source key, values) of every row the mapping says the target holds for this source."""
    with source.connect() as source_connection, target.connect() as target_connection:
        result = source_connection.execution_options(
            stream_results=True, yield_per=chunk_size
        ).execute(pipeline.select(sample_percent=sample_percent))
        for partition in result.mappings().partitions(chunk_size):
            good, _rejects = transform_chunk(pipeline, partition)
            for column in pipeline.reference_columns:
                name = column.outputs[0]
                keys = {out[name] for _raw, out in good if out[name] is not None}
                lookup = reference_lookup(
                    target_connection, pipeline, metadata, column.references, keys
                )
                good = [(raw, out) for raw, out in good if out[name] in lookup]
                for _raw, out in good:
                    out[name] = lookup[out[name]]
            for _raw, out in good:
                yield out["source_key"], tuple(out[name] for name in columns)


def _actual_rows(target, table: sa.Table, system: str, columns: list[str], chunk_size: int):
    query = sa.select(table.c.source_key, *(table.c[name] for name in columns)).where(
        table.c.source_system == system
    )
    with target.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
            query
        )
        for row in result:
            yield row[0], tuple(row[1:])
