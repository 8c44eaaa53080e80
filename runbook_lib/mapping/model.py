"""The declarative mapping spec: its YAML parsed into typed, frozen objects (``load_spec``).

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

Structural problems (an unknown key, a missing one, a wrong type) are reported here with their
YAML path; ``mapping.check`` checks the parsed spec against the live schemas, ``mapping.compiled``
turns it into what every stage executes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from runbook_lib.errors import MappingSpecError, YamlInputError
from runbook_lib.strict_yaml import parse_yaml

AUTO_COLUMNS = ("source_system", "source_key")
# The crosswalk column recording which target fields a source record supplied to its survivor.
SUPPLIED_FIELDS = "supplied_fields"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


TransformStep = str | dict[str, dict[str, Any]]


class ReferenceSpec(_Strict):
    """The rows a reference points at: a target table, and the source whose keys the value holds.

    ``source`` (``<system>.<table>``) is needed where the target has several sources of the
    referencing row's system (customers and employees both in ``people``); by default the value
    is a key of the target's one source of the same system.
    """

    target: str
    source: str | None = None


class ColumnMapping(_Strict):
    """How one target column (or several, for a split) gets its value."""

    from_: str | list[str] | None = Field(default=None, alias="from")
    value: Any = None
    transform: TransformStep | list[TransformStep] | None = None
    references: str | ReferenceSpec | None = None
    on_error: Literal["quarantine", "null"] = "quarantine"
    # why a source column classified credential may reach the target (none: it may not)
    allow_credential: str | None = None

    @property
    def parent_target(self) -> str | None:
        """The target table a reference points at (None: not a reference)."""
        if isinstance(self.references, ReferenceSpec):
            return self.references.target
        return self.references

    @property
    def parent_source(self) -> str | None:
        """The source (``<system>.<table>``) whose keys a reference holds, if the spec names it."""
        return self.references.source if isinstance(self.references, ReferenceSpec) else None

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
    """One source table feeding a target table.

    ``key_prefix`` starts every ``source_key`` of this source (``employee:`` makes key 3
    ``employee:3``), so two tables of one system can feed one target without their keys colliding.
    """

    key: str | list[str]
    key_prefix: str = ""
    columns: dict[str, ColumnMapping]
    ignore: dict[str, str] = {}
    filters: list[NamedFilter] = []
    sample: SampleSpec | None = None
    watermark: WatermarkSpec | None = None
    # rows gone from the source: a sync reports them (default) or deletes them from the target
    deletes: Literal["report", "apply"] = "report"

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


class CheckTable(_Strict):
    """One side of a cross-table check: the parent (key, column) or the child (parent key, expression)."""

    table: str
    key: str | None = None
    column: str | None = None
    parent_key: str | None = None
    expression: str | None = None


class CheckSide(_Strict):
    """Where a check runs: on a source system's tables, or (without ``system``) on the target's."""

    system: str | None = None
    parent: CheckTable
    child: CheckTable


class InvariantCheck(_Strict):
    """A cross-table invariant, run on the sources (assessment) and on the target (validation).

    ``sum_equals``: the parent's ``column`` equals the sum of its children's ``expression`` (a
    parent without children sums to 0), compared at ``scale`` decimals; ``has_children``: every
    parent has at least one child.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    reason: str
    kind: Literal["sum_equals", "has_children"]
    source: CheckSide
    target: CheckSide
    scale: int = Field(default=2, ge=0, le=12)


class MappingSpec(_Strict):
    """The whole spec; top-level keys starting with ``x-`` hold YAML anchors and are skipped."""

    version: Literal[1]
    name: str
    description: str = ""
    systems: dict[str, str] = Field(description="system name → connection name in params")
    targets: dict[str, TargetMapping]
    ignore_tables: dict[str, IgnoredTable] = {}
    checks: list[InvariantCheck] = []

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

    def source(self, system: str, table: str) -> SourceMapping | None:
        """The mapping of source ``system.table`` (the first, if it feeds several targets)."""
        for _target_name, _target, source_system, source_table, source in self.sources():
            if (source_system, source_table) == (system, table):
                return source
        return None

    def tables_of(self, target_name: str) -> list[str]:
        """The target tables a load of ``target_name`` writes: it, then its crosswalk."""
        merge = self.spec.targets[target_name].merge
        return [target_name, *([merge.crosswalk] if merge else [])]

    def touched_tables(self) -> list[str]:
        """Every target table a load writes, in load order (crosswalks after their merge target)."""
        return [table for name in self.spec.targets for table in self.tables_of(name)]

    def to_dict(self) -> dict:
        return {
            "path": self.path.name,
            "sha256": self.sha256,
            "spec": self.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        }


def shown_path(path: Path) -> str:
    """The spec's path as a user typed it: relative to the working folder where possible."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_spec(path: Path) -> LoadedSpec:
    """Parse the YAML into typed objects; structural errors carry their YAML path."""
    raw_bytes = Path(path).read_bytes()
    try:
        raw = parse_yaml(raw_bytes)
    except YamlInputError as exc:
        raise MappingSpecError(shown_path(path), [(exc.where, exc.detail)]) from None
    try:
        spec = MappingSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in error["loc"]), _pydantic_message(error))
            for error in exc.errors()
        ]
        raise MappingSpecError(shown_path(path), problems) from None
    return LoadedSpec(spec=spec, path=Path(path), sha256=hashlib.sha256(raw_bytes).hexdigest())


def _pydantic_message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "literal_error":
        found = error.get("input")
        expected = error.get("ctx", {}).get("expected", "")
        if found is None and "'null'" in expected:
            return f'expected {expected}; found YAML null: write "null" in quotes'
        return f"expected {expected}; found {found!r}"
    return error["msg"]
