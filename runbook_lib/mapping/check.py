"""The mapping spec checked against the live source and target schemas, before any data moves.

Every problem is reported with its YAML path (``targets.orders.sources.legacy_a.orders.columns.
amount``) and what was expected, all at once: unknown tables, columns and transforms (with the
closest names), bad option values (each step is probed once on nulls), required target columns
left unmapped, types that reach a column without a cast (through the transform chain), source
columns neither mapped nor ignored, survivorship naming what cannot merge, and samples and
filters the source cannot run (``source_checks``). The same check
gives the coverage of every source column: what it becomes, or why it is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from runbook_lib.db.type_rules import type_family
from runbook_lib.errors import (
    ExpressionError,
    MappingSpecError,
    TransformError,
    UnknownTransformError,
)
from runbook_lib.mapping.invariants import expression_columns
from runbook_lib.mapping.model import (
    AUTO_COLUMNS,
    SUPPLIED_FIELDS,
    ColumnMapping,
    IgnoredTable,
    LoadedSpec,
    MergeSpec,
    SourceMapping,
    TargetMapping,
    shown_path,
)
from runbook_lib.mapping.predicates import predicate_problems
from runbook_lib.mapping.source_checks import filter_problems, sample_problems
from runbook_lib.privacy.classification import classify_column
from runbook_lib.transforms import get_transform


@dataclass(frozen=True)
class CoverageRow:
    """What became of one source column."""

    system: str
    table: str
    column: str
    target: str
    status: Literal["mapped", "ignored", "key"]
    detail: str
    types: str = ""  # the source column's type → the target column's, as each database declares it


@dataclass
class SpecCheck:
    """The outcome of checking a spec against live schemas."""

    spec: LoadedSpec
    problems: list[tuple[str, str]] = field(default_factory=list)
    coverage: list[CoverageRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "spec_sha256": self.spec.sha256,
            "passed": self.passed,
            "problems": [{"path": p, "message": m} for p, m in self.problems],
            "coverage": [row.__dict__ for row in self.coverage],
        }

    def render(self) -> str:
        if self.passed:
            mapped = sum(row.status == "mapped" for row in self.coverage)
            ignored = sum(row.status == "ignored" for row in self.coverage)
            return (
                f"mapping spec {self.spec.path.name} ({self.spec.sha256[:12]}) is valid: "
                f"{mapped} source columns mapped, {ignored} ignored with a reason"
            )
        lines = [f"  {path}: {message}" for path, message in self.problems]
        return (
            f"mapping spec {self.spec.path.name} has {len(self.problems)} problem(s):\n"
            + "\n".join(lines)
        )

    def raise_if_failed(self) -> None:
        if self.problems:
            raise MappingSpecError(shown_path(self.spec.path), self.problems)


def _with_type_text(inspector: sa.Inspector, columns: list[dict]) -> dict[str, dict]:
    """Columns by name, each with its type as the database's own dialect writes it."""
    found = {}
    for column in columns:
        try:
            text = column["type"].compile(dialect=inspector.dialect)
        except Exception:  # noqa: BLE001 - a type this dialect cannot render is shown by its class
            text = type(column["type"]).__name__
        found[column["name"]] = {**column, "type_text": text, "dialect": inspector.dialect.name}
    return found


def classify_by_name(table: str, column: str) -> str:
    """The classification of ``system.table``'s ``column`` from its name alone."""
    return classify_column(table.rpartition(".")[2], column)[0]


def check_spec(
    loaded: LoadedSpec,
    source_inspectors: dict[str, sa.Inspector],
    target_inspector: sa.Inspector,
    *,
    classify: Callable[[str, str], str] = classify_by_name,
) -> SpecCheck:
    """Check the spec against live schemas; ``source_inspectors`` is keyed by system name.

    ``classify`` gives the classification of a source column (``system.table``, column): the
    assessment's, by name and values (``EvidenceMasker.classification``); by default, by name.
    A credential column may feed the target only with ``allow_credential: <reason>``, and no
    filter may read one.
    """
    check = SpecCheck(loaded)
    problem = check.problems.append
    spec = loaded.spec
    target_tables = set(target_inspector.get_table_names())
    source_tables = {
        system: set(inspector.get_table_names()) for system, inspector in source_inspectors.items()
    }
    for system in spec.systems:
        if system not in source_inspectors:
            problem((f"systems.{system}", "no connection for this system in params"))

    loaded_targets: list[str] = []
    mapped_source_tables: set[tuple[str, str]] = set()
    mapped_sources = {(system, table) for _, _, system, table, _ in loaded.sources()}
    for target_name, target in spec.targets.items():
        base = f"targets.{target_name}"
        if target_name not in target_tables:
            problem(
                (base, f"no table {target_name!r} in the target; tables: {sorted(target_tables)}")
            )
            loaded_targets.append(target_name)
            mapped_source_tables.update(tuple(name.split(".")) for name in target.sources)
            continue
        target_columns = _with_type_text(
            target_inspector, target_inspector.get_columns(target_name)
        )
        if target.id_column and target.id_column not in target_columns:
            problem((f"{base}.id_column", f"no column {target.id_column!r} in {target_name}"))
        if target.merge:
            if target.merge.crosswalk not in target_tables:
                problem(
                    (
                        f"{base}.merge.crosswalk",
                        f"no table {target.merge.crosswalk!r} in the target",
                    )
                )
            for match in target.merge.match_on:
                if match not in target_columns:
                    problem(
                        (f"{base}.merge.match_on", f"{match!r} is not a column of {target_name}")
                    )
            _check_merge(check, base, target.merge, target, target_columns, spec.systems)
            crosswalk = target.merge.crosswalk
            if target.merge.survivorship_by_field and crosswalk in target_tables:
                xref_columns = {c["name"] for c in target_inspector.get_columns(crosswalk)}
                if SUPPLIED_FIELDS not in xref_columns:
                    problem(
                        (
                            f"{base}.merge.survivorship_by_field",
                            f"needs a {SUPPLIED_FIELDS!r} column in {crosswalk} to record "
                            "which record supplied each field",
                        )
                    )
        _check_key_prefixes(check, base, target)
        for source_name, source in target.sources.items():
            system, table = source_name.split(".")
            path = f"{base}.sources.{source_name}"
            mapped_source_tables.add((system, table))
            if system not in spec.systems:
                problem(
                    (path, f"unknown system {system!r}; declared systems: {sorted(spec.systems)}")
                )
                continue
            if system not in source_inspectors:
                continue
            if table not in source_tables[system]:
                problem(
                    (
                        path,
                        f"no table {table!r} in {system}; tables: {sorted(source_tables[system])}",
                    )
                )
                continue
            inspector = source_inspectors[system]
            source_columns = _with_type_text(inspector, inspector.get_columns(table))
            check.problems += sample_problems(
                path, system, source, mapped_sources, inspector, source_tables[system]
            )
            credentials = {
                name for name in source_columns if classify(source_name, name) == "credential"
            }
            _check_source(
                check,
                credentials,
                spec.targets,
                path,
                system,
                table,
                source,
                source_columns,
                target_name,
                target,
                target_columns,
                loaded_targets,
            )
            # only a filter that parsed as a predicate on its own table is shown to the database
            flagged = {where for where, _ in check.problems}
            check.problems += filter_problems(path, table, source, inspector, skip=flagged)
        loaded_targets.append(target_name)

    _check_invariants(check, spec, source_inspectors, target_inspector)
    for name, ignored in spec.ignore_tables.items():
        _check_ignored_table(check, name, ignored, source_inspectors, source_tables)
    for system, tables in source_tables.items():
        for table in sorted(tables):
            mapped = (system, table) in mapped_source_tables
            if not mapped and f"{system}.{table}" not in spec.ignore_tables:
                problem(
                    (
                        f"ignore_tables.{system}.{table}",
                        "source table is neither mapped nor ignored; map it or ignore it with a reason",
                    )
                )
    return check


def check_transforms(loaded: LoadedSpec) -> SpecCheck:
    """The part of ``check_spec`` that needs no database: every column's transform chain.

    Unknown transforms, unknown or missing options and bad option values (``phone_e164``
    region ``ZZ``), by YAML path: the pre-flight runs it, since the assessment runs the
    transforms before the mapping stage would report them.
    """
    check = SpecCheck(loaded)
    for target_name, _target, system, table, source in loaded.sources():
        path = f"targets.{target_name}.sources.{system}.{table}"
        for targets_text, column in source.columns.items():
            outputs = [name.strip() for name in targets_text.split(",")]
            _check_transforms(
                check, f"{path}.columns.{targets_text}", column, outputs, column.steps()
            )
    return check


def _check_merge(
    check: SpecCheck,
    base: str,
    merge: MergeSpec,
    target: TargetMapping,
    target_columns: dict[str, dict],
    systems: dict[str, str],
) -> None:
    """Survivorship names known systems, and per-field orders name mergeable fields."""
    problem = check.problems.append
    for system in merge.survivorship:
        if system not in systems:
            problem((f"{base}.merge.survivorship", f"unknown system {system!r}"))
    protected = {target.id_column, *AUTO_COLUMNS}
    for name, order in merge.survivorship_by_field.items():
        path = f"{base}.merge.survivorship_by_field.{name}"
        if name not in target_columns or name in protected:
            mergeable = sorted(set(target_columns) - protected)
            problem(
                (path, f"{name!r} is not a mergeable column of the target; columns: {mergeable}")
            )
        elif name in merge.match_on:
            problem(
                (
                    path,
                    f"{name!r} is a match column: it keeps the default order, since later "
                    "records find their survivor by it",
                )
            )
        for system in order:
            if system not in systems:
                problem((path, f"unknown system {system!r}; declared systems: {sorted(systems)}"))
        if len(set(order)) != len(order):
            problem((path, "a system is listed twice"))


def _check_ignored_table(
    check: SpecCheck,
    name: str,
    ignored: IgnoredTable,
    source_inspectors: dict[str, sa.Inspector],
    source_tables: dict[str, set[str]],
) -> None:
    """An ignored table must exist and have a reason; its columns show in the coverage."""
    path = f"ignore_tables.{name}"
    if name.count(".") != 1:
        check.problems.append((path, "expected '<system>.<table>'"))
        return
    system, table = name.split(".")
    if system not in source_tables:
        return
    if table not in source_tables[system]:
        check.problems.append((path, f"no table {table!r} in {system}: remove the stale entry"))
        return
    if not ignored.reason.strip():
        check.problems.append((path, "an ignored table needs a reason"))
    for column in source_inspectors[system].get_columns(table):
        check.coverage.append(
            CoverageRow(system, table, column["name"], "", "ignored", ignored.reason)
        )


def _check_source(
    check: SpecCheck,
    credentials: set[str],
    spec_targets: dict[str, TargetMapping],
    path: str,
    system: str,
    table: str,
    source: SourceMapping,
    source_columns: dict[str, dict],
    target_name: str,
    target: TargetMapping,
    target_columns: dict[str, dict],
    loaded_targets: list[str],
) -> None:
    problem = check.problems.append
    for key in source.key_columns:
        if key not in source_columns:
            problem((f"{path}.key", f"no column {key!r} in {system}.{table}"))
        else:
            key_type = target_columns.get("source_key", {}).get("type_text", "")
            check.coverage.append(
                CoverageRow(
                    system,
                    table,
                    key,
                    f"{target_name}.source_key",
                    "key",
                    "source key",
                    f"{source_columns[key]['type_text']} → {key_type} (as text)",
                )
            )
    used: set[str] = set(source.key_columns)
    assigned: set[str] = set()
    feeds: dict[str, list[tuple[str, str]]] = {}
    for targets_text, column in source.columns.items():
        column_path = f"{path}.columns.{targets_text}"
        outputs = [name.strip() for name in targets_text.split(",")]
        for output in outputs:
            if output not in target_columns:
                problem((column_path, f"no column {output!r} in target table {target_name}"))
            if output in assigned:
                problem((column_path, f"target column {output!r} is mapped twice"))
            assigned.add(output)
        if column.from_ is None and column.value is None:
            problem((column_path, "give 'from' (source column) or 'value' (constant)"))
        for name in column.inputs:
            if name not in source_columns:
                problem(
                    (
                        f"{column_path}.from",
                        f"no column {name!r} in {system}.{table}; columns: {sorted(source_columns)}",
                    )
                )
            used.add(name)
        _check_credentials(check, column_path, column, credentials, f"{system}.{table}")
        if column.references is not None:
            _check_reference(
                check,
                f"{column_path}.references",
                column,
                outputs,
                system,
                spec_targets,
                target_name,
                target,
                target_columns,
                loaded_targets,
            )
        steps = column.steps()
        chain_ok = _check_transforms(check, column_path, column, outputs, steps)
        if chain_ok and column.references is None:
            _check_types(check, column_path, column, outputs, steps, source_columns, target_columns)
        detail = (
            " → ".join([*column.inputs, *(name for name, _ in steps)]) or f"value {column.value!r}"
        )
        if column.allow_credential:
            detail += f" (credential allowed: {column.allow_credential.strip()})"
        target_types = ", ".join(target_columns.get(o, {}).get("type_text", "?") for o in outputs)
        for name in column.inputs:
            source_type = source_columns.get(name, {}).get("type_text", "?")
            feeds.setdefault(name, []).append(
                (f"{target_name}.{', '.join(outputs)}", detail, f"{source_type} → {target_types}")
            )
    for name, uses in feeds.items():  # one coverage row per source column, however many uses
        targets = "; ".join(target for target, _, _ in uses)
        check.coverage.append(
            CoverageRow(
                system,
                table,
                name,
                targets,
                "mapped",
                "; ".join(d for _, d, _ in uses),
                "; ".join(t for _, _, t in uses),
            )
        )
    mapped_inputs = set(feeds)
    for name, reason in source.ignore.items():
        if name in mapped_inputs:
            problem((f"{path}.ignore.{name}", "column is both mapped and ignored; keep one"))
        elif name not in source_columns:
            problem((f"{path}.ignore.{name}", f"no column {name!r} in {system}.{table}"))
        elif not reason.strip():
            problem((f"{path}.ignore.{name}", "an ignored column needs a reason"))
        else:
            check.coverage.append(
                CoverageRow(
                    system, table, name, "", "ignored", reason, source_columns[name]["type_text"]
                )
            )
        used.add(name)
    for name in source_columns:
        if name not in used:
            problem((f"{path}.columns", f"source column {name!r} is neither mapped nor ignored"))
    dialect = next((info.get("dialect") for info in source_columns.values()), None)
    for filter_ in source.filters:
        if not filter_.reason.strip():
            problem((f"{path}.filters.{filter_.name}", "a filter needs a reason"))
        for message in predicate_problems(
            filter_.exclude_where,
            table,
            list(source_columns),
            dialect=dialect,
            credentials=credentials,
        ):
            problem((f"{path}.filters.{filter_.name}.exclude_where", message))
    if source.sample is not None and source.sample.column not in source_columns:
        problem(
            (f"{path}.sample.column", f"no column {source.sample.column!r} in {system}.{table}")
        )
    watermark = getattr(source, "watermark", None)
    if watermark is not None and watermark.column not in source_columns:
        problem((f"{path}.watermark.column", f"no column {watermark.column!r} in {system}.{table}"))
    if source.deletes == "apply":
        if watermark is None:
            problem(
                (f"{path}.deletes", "deletes: apply needs a watermark: only a sync applies them")
            )
        if target.merge is not None:
            problem(
                (
                    f"{path}.deletes",
                    f"{target_name} merges records of several sources into one row: a record "
                    "gone from one source does not delete the person; use deletes: report",
                )
            )
        if len(source.key_columns) != 1:
            problem((f"{path}.deletes", "deletes: apply needs a one-column key"))
    generated = {target.id_column, *AUTO_COLUMNS} if target.id_column else set(AUTO_COLUMNS)
    for name, info in target_columns.items():
        required = not info.get("nullable", True) and info.get("default") is None
        if required and name not in assigned and name not in generated:
            problem(
                (f"{path}.columns", f"required target column {target_name}.{name} is not mapped")
            )


def _check_credentials(
    check: SpecCheck, path: str, column: ColumnMapping, credentials: set[str], source: str
) -> None:
    """A credential reaches the target only where the spec says why (``allow_credential``)."""
    found = [name for name in column.inputs if name in credentials]
    reason = (column.allow_credential or "").strip()
    if found and not reason:
        check.problems.append(
            (
                f"{path}.from",
                f"source column(s) {', '.join(map(repr, found))} of {source} are classified "
                "credential: a credential stays out of the target; ignore it with a reason, or "
                "say why the target needs it (allow_credential: <reason>)",
            )
        )
    elif reason and not found:
        check.problems.append(
            (f"{path}.allow_credential", "no credential column feeds this column; remove it")
        )
    elif column.allow_credential is not None and not reason:
        check.problems.append((f"{path}.allow_credential", "allow_credential needs a reason"))


def _check_reference(
    check: SpecCheck,
    path: str,
    column: ColumnMapping,
    outputs: list[str],
    system: str,
    spec_targets: dict[str, TargetMapping],
    target_name: str,
    target: TargetMapping,
    target_columns: dict[str, dict],
    loaded_targets: list[str],
) -> None:
    """A reference points at an earlier target or this one, at one source's keys, with an id."""
    problem = check.problems.append
    parent_name = column.parent_target
    if parent_name not in loaded_targets and parent_name != target_name:
        problem(
            (
                path,
                f"{parent_name!r} is not a target loaded before {target_name}; loaded before: "
                f"{loaded_targets or 'none'} (or {target_name} itself, for a self-reference)",
            )
        )
        return
    parent = spec_targets[parent_name]
    if parent.id_column is None:
        problem((path, f"{parent_name!r} has no id_column to reference"))
    if column.parent_source is not None:
        if column.parent_source not in parent.sources:
            problem(
                (
                    f"{path}.source",
                    f"{column.parent_source!r} is not a source of {parent_name}; its sources: "
                    f"{sorted(parent.sources)}",
                )
            )
    else:
        same = sorted(name for name in parent.sources if name.partition(".")[0] == system)
        if len(same) > 1:
            problem(
                (
                    path,
                    f"{parent_name} has several sources of system {system} ({', '.join(same)}): "
                    f"name the one whose keys this column holds, e.g. references: {{target: "
                    f"{parent_name}, source: {same[0]}}}",
                )
            )
        elif not same:
            problem(
                (
                    path,
                    f"{parent_name} has no source of system {system}: name the source whose keys "
                    f"this column holds (references: {{target: {parent_name}, source: "
                    "<system>.<table>}})",
                )
            )
    if parent_name == target_name:  # resolved once the target's rows exist: written NULL first
        if target.merge is not None:
            problem((path, f"a merge target ({target_name}) cannot reference itself"))
        for output in outputs:
            if output in target_columns and not target_columns[output].get("nullable", True):
                problem(
                    (
                        path,
                        f"{target_name}.{output} references {target_name} itself: its rows are "
                        "written before their parents exist, so the column must be nullable",
                    )
                )


def _check_key_prefixes(check: SpecCheck, base: str, target: TargetMapping) -> None:
    """Several sources of one system in one target need prefixes that keep their keys apart."""
    by_system: dict[str, list[tuple[str, str]]] = {}
    for name, source in target.sources.items():
        by_system.setdefault(name.partition(".")[0], []).append((name, source.key_prefix))
    for system, sources in by_system.items():
        if len(sources) < 2:
            continue
        for name, prefix in sources:
            others = [(n, p) for n, p in sources if n != name]
            clash = next(
                (
                    n
                    for n, p in others
                    if not prefix or not p or p.startswith(prefix) or prefix.startswith(p)
                ),
                None,
            )
            if clash is not None:
                suggestion = name.partition(".")[2] + ":"
                check.problems.append(
                    (
                        f"{base}.sources.{name}.key_prefix",
                        f"{name} and {clash} both feed this target from system {system}, and "
                        f"their keys can collide (key 3 of each is source_key 3): give each a "
                        f"key_prefix that is not the start of the other's, e.g. {suggestion!r}",
                    )
                )


def _check_invariants(
    check: SpecCheck,
    spec,
    source_inspectors: dict[str, sa.Inspector],
    target_inspector: sa.Inspector,
) -> None:
    """Each ``checks:`` entry names real tables and columns on both sides, and valid arithmetic."""
    for index, invariant in enumerate(spec.checks):
        base = f"checks[{index}]({invariant.name})"
        if not invariant.reason.strip():
            check.problems.append((base, "a check needs a reason"))
        system = invariant.source.system
        if system is None or system not in spec.systems:
            check.problems.append(
                (
                    f"{base}.source.system",
                    f"give the source system; declared: {sorted(spec.systems)}",
                )
            )
        elif system in source_inspectors:
            _check_invariant_side(check, f"{base}.source", invariant, source_inspectors[system])
        if invariant.target.system is not None:
            check.problems.append((f"{base}.target.system", "the target side names no system"))
        _check_invariant_side(check, f"{base}.target", invariant, target_inspector)


def _check_invariant_side(check: SpecCheck, base: str, invariant, inspector: sa.Inspector) -> None:
    side = invariant.source if base.endswith(".source") else invariant.target
    tables = set(inspector.get_table_names())
    wanted = {
        "parent": [("key", side.parent.key)],
        "child": [("parent_key", side.child.parent_key)],
    }
    if invariant.kind == "sum_equals":
        wanted["parent"].append(("column", side.parent.column))
        if not side.child.expression:
            check.problems.append((f"{base}.child.expression", "sum_equals needs an expression"))
    for role in ("parent", "child"):
        spec_table = getattr(side, role)
        path = f"{base}.{role}"
        if spec_table.table not in tables:
            check.problems.append((f"{path}.table", f"no table {spec_table.table!r}"))
            continue
        columns = {c["name"] for c in inspector.get_columns(spec_table.table)}
        for field_name, value in wanted[role]:
            if not value:
                check.problems.append((f"{path}.{field_name}", "required"))
            elif value not in columns:
                check.problems.append(
                    (f"{path}.{field_name}", f"no column {value!r} in {spec_table.table}")
                )
        if role == "child" and spec_table.expression:
            try:
                used = expression_columns(spec_table.expression)
            except ExpressionError as exc:
                check.problems.append((f"{path}.expression", str(exc)))
                continue
            for name in used:
                if name not in columns:
                    check.problems.append(
                        (f"{path}.expression", f"no column {name!r} in {spec_table.table}")
                    )


def _check_transforms(
    check: SpecCheck,
    column_path: str,
    column: ColumnMapping,
    outputs: list[str],
    steps: list[tuple[str, dict]],
) -> bool:
    """Each step is known, gets the options and inputs it takes; True when nothing was wrong."""
    problem = check.problems.append
    before = len(check.problems)
    width = len(column.inputs) or 1
    for index, (name, options) in enumerate(steps):
        step_path = (
            f"{column_path}.transform[{index}]" if len(steps) > 1 else f"{column_path}.transform"
        )
        try:
            transform = get_transform(name)
        except UnknownTransformError as exc:
            hint = f"; did you mean {', '.join(exc.suggestions)}?" if exc.suggestions else ""
            problem((step_path, f"unknown transform {name!r}{hint}"))
            return False
        unknown = sorted(set(options) - set(transform.options))
        if unknown:
            problem(
                (
                    step_path,
                    f"{name}: unknown option(s) {unknown}; accepted: {list(transform.options)}",
                )
            )
        missing = sorted(set(transform.required_options) - set(options))
        if missing:
            problem((step_path, f"{name}: missing required option(s) {missing}"))
        if not unknown and not missing:
            _probe_options(check, step_path, transform, options)
        if transform.inputs != width:
            problem((step_path, f"{name} takes {transform.inputs} input(s), gets {width}"))
        width = len(transform.outputs) if transform.outputs else 1
    if width != len(outputs):
        problem(
            (
                column_path,
                f"the mapping produces {width} value(s) for {len(outputs)} target column(s)",
            )
        )
    return len(check.problems) == before


def _probe_options(check: SpecCheck, step_path: str, transform, options: dict) -> None:
    """Call the step once on nulls: a bad option value (a time zone, a unit) is a spec error now.

    Transforms check their options before their value, and a null value is never the row's
    fault here, so only ``ValueError``/``TypeError`` count.
    """
    try:
        transform(*([None] * transform.inputs), **options)
    except TransformError:
        pass
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if not message.startswith(f"{transform.name}:"):
            message = f"{transform.name}: {message}"
        check.problems.append((step_path, message))


# Widening that needs no cast. Decimals may land in text: ExactDecimal is canonical text on SQLite.
_WIDENING = {
    ("integer", "decimal"),
    ("integer", "text"),
    ("decimal", "text"),
    ("boolean", "integer"),
}


_CASTS = {
    "boolean": "to_bool",
    "datetime": "parse_datetime or epoch_to_utc",
    "decimal": "money or to_decimal",
    "integer": "to_int",
    "text": "a text transform such as prefix",
}


def value_family(value: Any) -> str | None:
    """The type family of a constant from the spec (None for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | Decimal):
        return "decimal"
    return "text" if isinstance(value, str) else "other"


def chain_family(steps: list[tuple[str, dict]], family: str | None) -> str | None:
    """The type family a transform chain gives for an input of ``family`` (None: unknown)."""
    for name, options in steps:
        transform = get_transform(name)
        if transform.returns is not None:
            family = transform.returns
        elif name == "map_values":
            values = [*dict(options.get("values") or {}).values()]
            values += [options["default"]] if "default" in options else []
            families = {value_family(v) for v in values} - {None}
            family = families.pop() if len(families) == 1 else None
    return family


def _inexact_decimal(target_column: dict) -> str | None:
    """Why a decimal would not keep its digits in this target column, if it would not."""
    kind = target_column["type"]
    declared = target_column.get("type_text", "")
    if isinstance(kind, sa.Float):
        return (
            f"is {declared}, a binary floating-point type: 2328.60 would come back as "
            "2328.600000000004; declare it NUMERIC(p, s)"
        )
    if target_column.get("dialect") == "sqlite":
        return (
            f"is {declared} on SQLite, which stores NUMERIC and DECIMAL columns as binary "
            "floating point (2328.60 comes back as 2328.600000000004): declare it TEXT, or use "
            "runbook_lib.db.types.ExactDecimal, which keeps the exact digits as text"
        )
    return None


def _check_types(
    check: SpecCheck,
    column_path: str,
    column: ColumnMapping,
    outputs: list[str],
    steps: list[tuple[str, dict]],
    source_columns: dict[str, dict],
    target_columns: dict[str, dict],
) -> None:
    """What reaches each target column must be its type family, or widen to it without loss."""
    if column.inputs:
        if any(name not in source_columns for name in column.inputs):
            return
        families = [type_family(source_columns[name]["type"]) for name in column.inputs]
        family = families[0] if len(families) == 1 else None
        origin = f"source {', '.join(column.inputs)} is {'/'.join(families)}"
    else:
        family = value_family(column.value)
        origin = f"value {column.value!r} is {family}"
    family = chain_family(steps, family)
    if family in (None, "other"):
        return
    via = f" and {' → '.join(name for name, _ in steps)} gives {family}" if steps else ""
    for output in outputs:
        if output not in target_columns:
            continue
        target_family = type_family(target_columns[output]["type"])
        if family == "decimal" and target_family == "decimal":
            inexact = _inexact_decimal(target_columns[output])
            if inexact:
                check.problems.append(
                    (column_path, f"{origin}{via}, but target {output} {inexact}")
                )
            continue
        if family == target_family or target_family == "other":
            continue
        if (family, target_family) in _WIDENING:
            continue
        check.problems.append(
            (
                column_path,
                f"{origin}{via}, target {output} is {target_family}: add a transform that "
                f"casts it ({_CASTS.get(target_family, 'a cast')})",
            )
        )
