"""Interactive views for JupyterLab: try a transform chain on sample rows of a source column.

Widgets only mean something with a person at the keyboard. Under papermill (the runbook always
passes ``run_dir``) or without ipywidgets the functions return ``None``, so a notebook cell shows
nothing and the executed evidence stays free of widget state.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import yaml

from runbook_lib.classification import classify_column
from runbook_lib.errors import RunbookError, TransformError
from runbook_lib.hashing import canonical
from runbook_lib.mapped import MappedColumn, mapped_sources
from runbook_lib.mapping import ColumnMapping, LoadedSpec
from runbook_lib.masking import mask_value


def sample_values(engine: sa.Engine, table: str, column: str, rows: int) -> list[Any]:
    """The first ``rows`` distinct values of a source column (NULL included), in value order."""
    source = sa.table(table, sa.column(column))
    query = sa.select(source.c[column]).distinct().order_by(source.c[column]).limit(rows)
    with engine.connect() as connection:
        return [value for (value,) in connection.execute(query)]


def try_chain(values: list[Any], chain_yaml: str, classification: str) -> list[dict]:
    """Apply a transform chain (spec YAML, e.g. ``[strip, normalize_email]``) to ``values``.

    Each row shows the masked input and output, or the rule that would quarantine it.
    """
    try:
        steps = yaml.safe_load(chain_yaml) if chain_yaml.strip() else None
        column = MappedColumn.of("value", ColumnMapping(**{"from": "value", "transform": steps}))
    except (yaml.YAMLError, ValueError, TypeError, RunbookError) as exc:
        return [{"input": "", "output": "", "rule": f"not a transform chain: {exc}"}]
    shown = []
    for value in values:
        try:
            result = column.apply(value)
            output = ", ".join(canonical(mask_value(classification, v)) for v in result)
            rule = ""
        except TransformError as exc:
            output, rule = "", exc.rule
        except (ValueError, TypeError) as exc:  # a bad option: the chain's fault, not the value's
            output, rule = "", f"bad option: {exc}"
        shown.append(
            {"input": canonical(mask_value(classification, value)), "output": output, "rule": rule}
        )
    return shown


def transform_playground(spec: LoadedSpec, sources: dict[str, sa.Engine], *, headless: bool):
    """A column picker, an editable chain, and the result on sample rows; None when headless."""
    if headless:
        return None
    try:
        import ipywidgets as w
        import pandas as pd
        from IPython.display import display
    except ImportError:
        return None
    choices = {}
    for source in mapped_sources(spec):
        for text, mapping in source.source.columns.items():
            if len(mapping.inputs) == 1 and source.system in sources:
                label = f"{source.system}.{source.table}.{mapping.inputs[0]} → {source.target_name}.{text}"
                choices[label] = (source, mapping)
    if not choices:
        return None
    picker = w.Dropdown(options=list(choices), description="column", layout={"width": "90%"})
    chain = w.Textarea(description="transform", layout={"width": "90%"})
    rows = w.IntSlider(value=10, min=1, max=100, description="rows")
    run = w.Button(description="try", button_style="primary")
    out = w.Output()

    def chain_of(label: str) -> str:
        transform = choices[label][1].transform
        return (
            "" if transform is None else yaml.safe_dump(transform, default_flow_style=True).strip()
        )

    def on_pick(change) -> None:
        chain.value = chain_of(change["new"])

    def on_run(_button) -> None:
        source, mapping = choices[picker.value]
        column = mapping.inputs[0]
        values = sample_values(sources[source.system], source.table, column, rows.value)
        classification = classify_column(source.table, column)[0]
        out.clear_output()
        with out:
            display(pd.DataFrame(try_chain(values, chain.value, classification)))

    picker.observe(on_pick, names="value")
    run.on_click(on_run)
    chain.value = chain_of(picker.value)
    return w.VBox([picker, chain, w.HBox([rows, run]), out])
