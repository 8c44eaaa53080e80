"""The declarative mapping spec: YAML into typed objects, then checked against the live schemas.

Shape of the YAML (``params/mapping/demo.yaml`` is the full example)::

    targets:                      # load order: a target may reference only earlier ones
      customers:
        id_column: customer_id
        merge:                    # several records of one person become one row
          crosswalk: customer_xref
          match_on: [email, phone]
          survivorship: [legacy_a, legacy_b, crm]          # default: first with a value wins
          survivorship_by_field: {first_name: [legacy_b]}  # per field: legacy_b first
        sources: {...}
      orders:
        id_column: order_id       # surrogate key the loader assigns
        sources:
          legacy_a.orders:        # <system>.<table>
            key: id
            sample: {column: user_id}
            filters: [{name: ..., exclude_where: "...", reason: "..."}]
            columns:
              order_no: {from: id, transform: {prefix: {prefix: "A-", width: 8}}}
              customer_id: {from: user_id, references: customers}
              "first_name, last_name": {from: full_name, transform: split_name}
              currency: {value: CNY}
            ignore: {pay_channel: "why it is not migrated"}

Every problem is reported with its YAML path (``targets.orders.sources.legacy_a.orders.columns.
amount``) and what was expected, all at once, before any data moves: unknown tables, columns and
transforms (with the closest names), bad option values (each step is probed once on nulls),
required target columns left unmapped, types that reach a column without a cast (through the
transform chain), source columns neither mapped nor ignored, and survivorship naming what
cannot merge.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from runbook_lib.errors import MappingSpecError, TransformError, UnknownTransformError
from runbook_lib.transforms import get_transform

AUTO_COLUMNS = ("source_system", "source_key")
# The crosswalk column recording which target fields a source record supplied to its survivor.
SUPPLIED_FIELDS = "supplied_fields"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


TransformStep = str | dict[str, dict[str, Any]]


class ColumnMapping(_Strict):
    """How one target column (or several, for a split) gets its value."""

    from_: str | list[str] | None = Field(default=None, alias="from")
    value: Any = None
    transform: TransformStep | list[TransformStep] | None = None
    references: str | None = None
    on_error: Literal["quarantine", "null"] = "quarantine"

    @property
    def inputs(self) -> list[str]:
        if self.from_ is None:
            return []
        return [self.from_] if isinstance(self.from_, str) else list(self.from_)

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        """The transform chain as (name, options) pairs."""
        raw = self.transform
        if raw is None:
            return []
        items = raw if isinstance(raw, list) else [raw]
        steps = []
        for item in items:
            if isinstance(item, str):
                steps.append((item, {}))
            else:
                (name, options), *_ = item.items()
                steps.append((name, dict(options or {})))
        return steps


class NamedFilter(_Strict):
    """Rows excluded on purpose, by a named rule with a reason; counted in the accounting."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    exclude_where: str
    reason: str


class SampleSpec(_Strict):
    """How the trial picks rows: by a hash of a root key, or by membership of a sampled parent."""

    column: str
    parent: str | None = None
    parent_key: str | None = None


class WatermarkSpec(_Strict):
    """What an incremental sync continues from: the key (append-only) or a change column."""

    column: str


class SourceMapping(_Strict):
    """One source table feeding a target table."""

    key: str | list[str]
    columns: dict[str, ColumnMapping]
    ignore: dict[str, str] = {}
    filters: list[NamedFilter] = []
    sample: SampleSpec | None = None
    watermark: WatermarkSpec | None = None

    @property
    def key_columns(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)


class MergeSpec(_Strict):
    """Several source records of one real entity become one target row.

    ``survivorship`` is the default order of systems (the first with a value wins a field, and
    sources load in this order); ``survivorship_by_field`` overrides that order for single
    fields, e.g. ``{first_name: [legacy_b, legacy_a, crm]}``. Systems an order leaves out rank
    after those it lists, in the default order.
    """

    crosswalk: str
    match_on: list[str]
    survivorship: list[str]
    survivorship_by_field: dict[str, list[str]] = {}

    def order_for(self, field: str) -> list[str]:
        """Systems in the order they win ``field``."""
        first = self.survivorship_by_field.get(field, self.survivorship)
        return [*first, *(s for s in self.survivorship if s not in first)]

    def rank(self, field: str, system: str) -> int:
        """Position of ``system`` for ``field``: lower wins (unlisted systems rank last)."""
        order = self.order_for(field)
        return order.index(system) if system in order else len(order)


class TargetMapping(_Strict):
    """One target table and every source that feeds it."""

    id_column: str | None = None
    merge: MergeSpec | None = None
    sources: dict[str, SourceMapping]

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: dict[str, SourceMapping]) -> dict[str, SourceMapping]:
        for name in sources:
            if name.count(".") != 1:
                raise ValueError(f"source {name!r}: expected '<system>.<table>'")
        return sources


class IgnoredTable(_Strict):
    """A whole source table deliberately not migrated."""

    reason: str


class MappingSpec(_Strict):
    """The whole spec; top-level keys starting with ``x-`` hold YAML anchors and are skipped."""

    version: Literal[1]
    name: str
    description: str = ""
    systems: dict[str, str] = Field(description="system name → connection name in params")
    targets: dict[str, TargetMapping]
    ignore_tables: dict[str, IgnoredTable] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data


@dataclass(frozen=True)
class LoadedSpec:
    """A parsed spec, where it came from, and the hash that later stages and approvals cite."""

    spec: MappingSpec
    path: Path
    sha256: str

    def sources(self):
        """(target name, target mapping, system, table, source mapping) in load order."""
        for target_name, target in self.spec.targets.items():
            for source_name, source in target.sources.items():
                system, table = source_name.split(".")
                yield target_name, target, system, table, source

    def to_dict(self) -> dict:
        return {
            "path": self.path.name,
            "sha256": self.sha256,
            "spec": self.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        }


def _shown(path: Path) -> str:
    """The spec's path as a user typed it: relative to the working folder where possible."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_spec(path: Path) -> LoadedSpec:
    """Parse the YAML into typed objects; structural errors carry their YAML path."""
    raw_bytes = Path(path).read_bytes()
    try:
        raw = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise MappingSpecError(_shown(path), [("(file)", f"not valid YAML: {exc}")]) from None
    try:
        spec = MappingSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in error["loc"]), _pydantic_message(error))
            for error in exc.errors()
        ]
        raise MappingSpecError(_shown(path), problems) from None
    return LoadedSpec(spec=spec, path=Path(path), sha256=hashlib.sha256(raw_bytes).hexdigest())


def _pydantic_message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return error["msg"]


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
            raise MappingSpecError(_shown(self.spec.path), self.problems)


_TYPE_FAMILIES = (
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Numeric, "decimal"),
    (sa.Float, "decimal"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.String, "text"),
)


def _with_type_text(inspector: sa.Inspector, columns: list[dict]) -> dict[str, dict]:
    """Columns by name, each with its type as the database's own dialect writes it."""
    found = {}
    for column in columns:
        try:
            text = column["type"].compile(dialect=inspector.dialect)
        except Exception:  # noqa: BLE001 - a type this dialect cannot render is shown by its class
            text = type(column["type"]).__name__
        found[column["name"]] = {**column, "type_text": text}
    return found


def type_family(column_type: sa.types.TypeEngine) -> str:
    """A coarse family of a reflected type, to spot a mapping that needs a cast."""
    for cls, family in _TYPE_FAMILIES:
        if isinstance(column_type, cls):
            return family
    return "other"


def check_spec(
    loaded: LoadedSpec,
    source_inspectors: dict[str, sa.Inspector],
    target_inspector: sa.Inspector,
) -> SpecCheck:
    """Check the spec against live schemas; ``source_inspectors`` is keyed by system name."""
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
            _check_source(
                check,
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
        loaded_targets.append(target_name)

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
        if column.references is not None and column.references in loaded_targets:
            if spec_targets[column.references].id_column is None:
                problem(
                    (
                        f"{column_path}.references",
                        f"{column.references!r} has no id_column to reference",
                    )
                )
        elif column.references is not None:
            problem(
                (
                    f"{column_path}.references",
                    f"{column.references!r} is not a target loaded before {target_name}; "
                    f"loaded before: {loaded_targets or 'none'}",
                )
            )
        steps = column.steps()
        chain_ok = _check_transforms(check, column_path, column, outputs, steps)
        if chain_ok and column.references is None:
            _check_types(check, column_path, column, outputs, steps, source_columns, target_columns)
        detail = (
            " → ".join([*column.inputs, *(name for name, _ in steps)]) or f"value {column.value!r}"
        )
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
    for filter_ in source.filters:
        if not filter_.reason.strip():
            problem((f"{path}.filters.{filter_.name}", "a filter needs a reason"))
    if source.sample is not None and source.sample.column not in source_columns:
        problem(
            (f"{path}.sample.column", f"no column {source.sample.column!r} in {system}.{table}")
        )
    watermark = getattr(source, "watermark", None)
    if watermark is not None and watermark.column not in source_columns:
        problem((f"{path}.watermark.column", f"no column {watermark.column!r} in {system}.{table}"))
    generated = {target.id_column, *AUTO_COLUMNS} if target.id_column else set(AUTO_COLUMNS)
    for name, info in target_columns.items():
        required = not info.get("nullable", True) and info.get("default") is None
        if required and name not in assigned and name not in generated:
            problem(
                (f"{path}.columns", f"required target column {target_name}.{name} is not mapped")
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


def spec_digest(data: Any) -> str:
    """A stable sha256 of JSON-safe data (used to bind evidence to the exact approved spec)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
