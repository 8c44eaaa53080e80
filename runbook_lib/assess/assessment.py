"""The assessment stage: profiles, classification and quality findings of every source.

``assess_sources`` runs, in order: the column profiles of every table of every source
(``profiling``), the rules the mapping spec implies (``quality``), orphans and their cascades
(``references``) and duplicate people across systems (``duplicates``). Everything is computed in
the databases or streamed; the report holds aggregates and a few masked examples only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.assess.duplicate_people import duplicate_findings
from runbook_lib.assess.findings import (
    SEVERITIES,
    Finding,
    check_findings,
    checked_columns,
    duplicate_key_finding,
    failing_predicate,
    format_findings,
    name_findings,
    run_column_check,
    sort_key,
    transform_findings,
    zero_date_findings,
)
from runbook_lib.assess.orphans import build_nodes, reference_findings
from runbook_lib.assess.profiling import ColumnProfile, profile_table
from runbook_lib.assess.units_and_zones import amount_units, mixed_findings, time_zones
from runbook_lib.mapping.compiled import CompiledSource, compile_spec
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.privacy.masking import EvidenceMasker

Say = Callable[[str], None]  # what the assessment is doing now, as a sentence


@dataclass(frozen=True)
class AssessmentReport:
    """Profiles of every source column, their classification, and the quality findings."""

    row_counts: dict[str, int]
    columns: tuple[ColumnProfile, ...]
    findings: tuple[Finding, ...]
    amount_units: dict[str, dict]
    time_zones: dict[str, str]

    @property
    def found(self) -> list[Finding]:
        """Findings that counted at least one row."""
        return [f for f in self.findings if f.count]

    def classification(self) -> list[dict]:
        """Every source column with its classification and category (what masking applies)."""
        return [
            {
                "system": c.system,
                "table": c.table,
                "column": c.column,
                "classification": c.classification,
                "category": c.category,
            }
            for c in self.columns
        ]

    def to_dict(self) -> dict:
        by_severity = {s: sum(f.severity == s for f in self.found) for s in SEVERITIES}
        return {
            "row_counts": dict(self.row_counts),
            "columns": [c.to_dict() for c in self.columns],
            "classification": self.classification(),
            "findings": [f.to_dict() for f in self.findings],
            "findings_by_severity": by_severity,
            "amount_units": self.amount_units,
            "time_zones": dict(self.time_zones),
        }

    def render(self) -> str:
        total = sum(self.row_counts.values())
        lines = [
            f"{len(self.row_counts)} source tables, {total:,} rows, {len(self.columns)} columns"
        ]
        found = self.found
        lines.append(
            f"{len(found)} findings ({len(self.findings) - len(found)} checks found nothing):"
        )
        for f in found:
            lines.append(f"  {f.severity:<8} {f.rule:<32} {f.where:<44} {f.count:>9,}")
        return "\n".join(lines)


def assess_sources(
    sources: dict[str, sa.Engine],
    spec: LoadedSpec,
    progress: Say | None = None,
    masker: EvidenceMasker | None = None,
) -> AssessmentReport:
    """Profile every table of every source system and apply every rule the spec implies.

    Every value the report shows is masked by ``masker`` (by default: each column classified by
    its name), and the classification the report glues is the masker's.
    """
    say = progress or (lambda _message: None)
    masker = masker or EvidenceMasker()
    profiles: list[ColumnProfile] = []
    row_counts: dict[str, int] = {}
    columns: dict[tuple[str, str], list[str]] = {}
    formats = _spec_date_formats(spec)
    for system, engine in sources.items():
        inspector = sa.inspect(engine)
        with engine.connect() as connection:
            for table in sorted(inspector.get_table_names()):
                say(f"profiling {system}.{table}")
                described = inspector.get_columns(table)
                columns[(system, table)] = [c["name"] for c in described]
                found = profile_table(
                    connection, system, table, described, formats.get((system, table)), masker
                )
                profiles += found
                # what the values showed masks every later view of this table, findings first
                masker = masker.with_columns(
                    f"{system}.{table}", {p.column: p.classification for p in found}
                )
                row_counts[f"{system}.{table}"] = found[0].rows if found else 0
    findings = format_findings(profiles)
    pipelines = compile_spec(spec, columns).in_spec_order
    nodes = build_nodes(spec, pipelines, columns)
    sizes = {(p.system, p.table, p.column): (p.distinct, p.rows) for p in profiles}
    for pipeline in pipelines:
        say(f"checking {pipeline.label}")
        node = nodes[(pipeline.system, pipeline.table)]
        with sources[pipeline.system].connect() as connection:
            findings += _guarded(pipeline, _check_source, connection, pipeline, node, sizes, masker)
    for node in nodes.values():
        say(f"following references of {node.pipeline.system}.{node.pipeline.table}")
        with sources[node.pipeline.system].connect() as connection:
            findings += _guarded(node.pipeline, reference_findings, connection, node)
    say("matching people across systems")
    findings += duplicate_findings(spec, sources, pipelines)
    say("running the spec's cross-table checks")
    findings += check_findings(spec, sources)
    units, zones = amount_units(spec, profiles), time_zones(spec)
    findings += mixed_findings(spec, units, zones, row_counts)
    return AssessmentReport(
        row_counts=row_counts,
        columns=tuple(profiles),
        findings=tuple(sorted(findings, key=sort_key)),
        amount_units=units,
        time_zones=zones,
    )


def _check_source(
    connection, pipeline: CompiledSource, node, sizes: dict, masker: EvidenceMasker
) -> list[Finding]:
    """Key uniqueness, every fallible transform over the data, and the names to split."""
    findings = [duplicate_key_finding(connection, pipeline)]
    for column in checked_columns(pipeline):
        distinct, rows = sizes.get((pipeline.system, pipeline.table, column.inputs[0]), (0, 0))
        stream = len(column.inputs) == 1 and distinct * 2 > rows
        check = run_column_check(connection, pipeline, column, stream=stream)
        findings += transform_findings(connection, check, masker)
        findings += zero_date_findings(connection, check, masker)
        if check.quarantines:  # rows of children go down with these: see references
            where = f"{pipeline.system}.{pipeline.table}.{', '.join(column.inputs)}"
            for rule, failing in check.failing.items():
                condition = failing_predicate(node.source, column.inputs, failing)
                node.failures.append((f"{rule} in {where}", condition))
    return findings + name_findings(connection, pipeline)


def _guarded(pipeline: CompiledSource, run: Callable[..., list[Finding]], *args) -> list[Finding]:
    """A rule the spec makes impossible (bad filter SQL, bad option) is a finding, not a crash."""
    try:
        return run(*args)
    except (sa.exc.SQLAlchemyError, ValueError, TypeError) as exc:
        message = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        return [
            Finding(
                "check_failed",
                "warning",
                pipeline.system,
                pipeline.table,
                "",
                0,
                f"a check could not run ({type(exc).__name__}: {message}); the mapping stage "
                "names the spec problem",
            )
        ]


def _spec_date_formats(spec: LoadedSpec) -> dict[tuple[str, str], dict[str, tuple[str, ...]]]:
    """The formats the spec parses each source column with (they name the shapes found)."""
    found: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    for _target_name, _target, system, table, source in spec.sources():
        for column in source.columns.values():
            for name, options in column.steps():
                if name == "parse_datetime" and len(column.inputs) == 1:
                    formats = options.get("formats") or ()
                    formats = (formats,) if isinstance(formats, str) else tuple(formats)
                    found.setdefault((system, table), {})[column.inputs[0]] = formats
    return found
