"""A masked preview of what the mapping makes of a few source rows, per target table.

The first rows of each source (in key order, after the named filters) go through the spec's
transforms exactly as the loader applies them; a row a transform rejects shows its quarantine
rule instead. References still hold the parent's source key (the loader resolves them through
the target). Personal values are masked by the target column's classification before anything
is shown or glued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

import pandas as pd
import sqlalchemy as sa

from runbook_lib.db.canonical import canonical
from runbook_lib.errors import TransformError
from runbook_lib.mapping.check import SpecCheck
from runbook_lib.mapping.compiled import CompiledSource, compile_spec
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.privacy.masking import EvidenceMasker


@dataclass(frozen=True)
class TargetPreview:
    """Transformed, masked sample rows of one target table, from each of its sources."""

    target: str
    columns: tuple[str, ...]
    rows: tuple[dict, ...]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows), columns=list(self.columns))

    def to_dict(self) -> dict:
        return {"target": self.target, "columns": list(self.columns), "rows": list(self.rows)}


def transform_row(source: CompiledSource, values: dict) -> dict:
    """The target row of one source row, references as parent keys; rejection as ``_rejected``."""
    out = {
        "source_system": source.system,
        "source_key": "|".join(str(values[k]) for k in source.key_columns),
    }
    for column in source.columns:
        try:
            result = column.apply_row(values)
        except TransformError as exc:
            result = (None,) * len(column.outputs)
            if column.on_error != "null":
                # the loader stops at the first failing column: that rule is the row's
                out.setdefault("_rejected", f"{exc.rule}: {', '.join(column.outputs)}")
        out.update(zip(column.outputs, result, strict=True))
    return out


def preview_mapping(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    check: SpecCheck,
    *,
    rows: int = 3,
    masker: EvidenceMasker | None = None,
) -> list[TargetPreview]:
    """Up to ``rows`` transformed rows of every source, grouped by target table.

    Nothing when ``check`` (the spec checked against the live schemas) did not pass: a preview
    of a spec that cannot run would only fail on the problems the check already names. Values are
    shown through ``masker`` (default: classified by column name).
    """
    if not check.passed:
        return []
    masker = masker or EvidenceMasker.from_classification(None, spec)
    grouped: dict[str, list[dict]] = {}
    for source in compile_spec(spec).in_spec_order:
        if source.system not in sources:
            continue
        with sources[source.system].connect() as connection:
            found = [
                source.raw_dict(row) for row in connection.execute(source.select().limit(rows))
            ]
        grouped.setdefault(source.target_name, []).extend(
            _masked(masker, source.target_name, transform_row(source, row)) for row in found
        )
    previews = []
    for target, shown in grouped.items():
        columns = list(dict.fromkeys(name for row in shown for name in row))
        columns = [c for c in columns if c != "_rejected"] + (
            ["_rejected"] if any("_rejected" in r for r in shown) else []
        )
        previews.append(TargetPreview(target, tuple(columns), tuple(shown)))
    return previews


def _masked(masker: EvidenceMasker, target: str, row: dict) -> dict:
    """Masked by the target column's classification, as JSON-safe text (times in UTC ISO)."""
    shown = {}
    for name, value in row.items():
        masked = masker.mask(target, name, value)
        if masked is None:
            shown[name] = None
        elif isinstance(masked, datetime):
            shown[name] = masked.isoformat()
        else:
            shown[name] = canonical(masked)
    return shown


def previews_data(previews: list[TargetPreview]) -> list[dict]:
    """The previews as JSON-safe data, to glue."""
    return [preview.to_dict() for preview in previews]


def previews_html(previews: list[TargetPreview]) -> str:
    """One heading and table per target, as HTML (a notebook shows it as one output)."""
    if not previews:
        return "<p>No preview: the mapping spec did not pass its check.</p>"
    parts = []
    for preview in previews:
        parts.append(f"<h4>{escape(preview.target)}</h4>")
        parts.append(preview.frame().to_html(index=False, na_rep="", escape=True))
    return "\n".join(parts)


def show_previews(previews: list[TargetPreview]):
    """An IPython HTML object with every preview table (plain text outside a notebook)."""
    from IPython.display import HTML

    return HTML(previews_html(previews))
