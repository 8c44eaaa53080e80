"""The mapping spec compiled for reading: each source's column mappings with their transforms.

What the assessment, the preview and the transform playground run. The loader compiles the
same spec in ``pipeline``; both apply the same registered transforms with the same options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from runbook_lib.errors import UnknownTransformError
from runbook_lib.spec.model import ColumnMapping, LoadedSpec, SourceMapping, TargetMapping
from runbook_lib.transforms import Transform, get_transform


@dataclass(frozen=True)
class MappedColumn:
    """One column mapping of the spec with its transforms looked up: what the rules run."""

    outputs: tuple[str, ...]
    inputs: tuple[str, ...]
    steps: tuple[tuple[Transform, dict], ...]
    references: str | None
    on_error: str
    constant: Any = None

    @classmethod
    def of(cls, targets_text: str, column: ColumnMapping) -> MappedColumn:
        return cls(
            outputs=tuple(name.strip() for name in targets_text.split(",")),
            inputs=tuple(column.inputs),
            steps=tuple((get_transform(name), options) for name, options in column.steps()),
            references=column.references,
            on_error=column.on_error,
            constant=column.value,
        )

    def apply_row(self, row: Any) -> tuple:
        """The column's output values for a source row (a mapping by column name)."""
        if not self.inputs:
            return self.apply(self.constant)
        return self.apply(*(row[name] for name in self.inputs))

    def apply(self, *values: Any) -> tuple:
        """The column's output values for its input values (raises ``TransformError``)."""
        for transform, options in self.steps:
            result = transform(*values, **options)
            values = tuple(result) if transform.outputs else (result,)
        return values


@dataclass(frozen=True)
class MappedSource:
    """One source table of one target table, as the spec maps it."""

    target_name: str
    target: TargetMapping
    system: str
    table: str
    source: SourceMapping
    columns: tuple[MappedColumn, ...]

    @property
    def key_columns(self) -> list[str]:
        return self.source.key_columns

    @property
    def label(self) -> str:
        return f"{self.system}.{self.table} → {self.target_name}"

    @property
    def reference_columns(self) -> list[MappedColumn]:
        return [c for c in self.columns if c.references is not None]


def mapped_sources(
    spec: LoadedSpec, columns: dict[tuple[str, str], list[str]] | None = None
) -> list[MappedSource]:
    """Every source of every target, in spec order.

    With ``columns`` (the live source columns by ``(system, table)``), what cannot run is left
    out quietly: a missing table or key, a column reading a missing input or naming an unknown
    transform. The mapping stage reports each of those with its YAML path.
    """
    found = []
    for target_name, target, system, table, source in spec.sources():
        present = None if columns is None else columns.get((system, table))
        if columns is not None and (present is None or set(source.key_columns) - set(present)):
            continue
        mapped = []
        for text, column in source.columns.items():
            if present is not None and set(column.inputs) - set(present):
                continue
            try:
                mapped.append(MappedColumn.of(text, column))
            except UnknownTransformError:
                if columns is None:
                    raise
        found.append(MappedSource(target_name, target, system, table, source, tuple(mapped)))
    return found


def filter_clauses(source: SourceMapping) -> list[sa.ColumnElement]:
    """Rows the spec's named filters keep (as the loader selects them)."""
    return [
        sa.text(f"(CASE WHEN ({f.exclude_where}) THEN 1 ELSE 0 END) = 0") for f in source.filters
    ]
