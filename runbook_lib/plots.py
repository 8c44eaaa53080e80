"""What the notebooks show: plotly figures (rendered to work offline) and tables as DataFrames."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio


def use_offline_renderer() -> None:
    """plotly.js embedded once per notebook: shows in JupyterLab and in nbconvert HTML, no CDN."""
    pio.renderers.default = "plotly_mimetype+notebook"


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        template="plotly_white",
        height=420,
        margin={"l": 60, "r": 20, "t": 60, "b": 120},
    )
    return fig


def source_rows(report: dict) -> go.Figure:
    """Rows per source table, one bar each."""
    names = list(report["row_counts"])
    fig = go.Figure(
        go.Bar(x=names, y=[report["row_counts"][n] for n in names], marker_color="#4C78A8")
    )
    fig.update_yaxes(title="rows")
    return _layout(fig, "Rows per source table")


def null_rates(report: dict) -> go.Figure:
    """Share of NULLs per column, as a heat map of table × column."""
    tables = sorted({f"{c['system']}.{c['table']}" for c in report["columns"]})
    columns = sorted({c["column"] for c in report["columns"]})
    grid = {(f"{c['system']}.{c['table']}", c["column"]): c["null_rate"] for c in report["columns"]}
    z = [[grid.get((t, col)) for col in columns] for t in tables]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=tables,
            colorscale="Reds",
            zmin=0,
            zmax=1,
            colorbar={"title": "null rate"},
            hoverongaps=False,
        )
    )
    return _layout(fig, "Null rate per column")


def load_outcome(load: dict) -> go.Figure:
    """Per source: loaded, merged, quarantined and filtered rows, stacked."""
    labels = [f"{t['source_system']}.{t['source_table']}" for t in load["tables"]]
    fig = go.Figure()
    for field, color in (
        ("loaded", "#54A24B"),
        ("merged", "#4C78A8"),
        ("quarantined", "#E45756"),
        ("filtered", "#BAB0AC"),
    ):
        fig.add_bar(name=field, x=labels, y=[t[field] for t in load["tables"]], marker_color=color)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="source rows")
    return _layout(fig, f"{load['mode'].capitalize()} load: what became of every source row")


def reconciliation(validation: dict) -> go.Figure:
    """Source rows against what the target accounts for, and differences per table."""
    labels = [f"{t['source_system']}.{t['source_table']}" for t in validation["tables"]]
    fig = go.Figure()
    fig.add_bar(
        name="source rows",
        x=labels,
        y=[t["source_rows"] for t in validation["tables"]],
        marker_color="#72B7B2",
    )
    fig.add_bar(
        name="accounted (loaded+merged+quarantined+filtered)",
        x=labels,
        y=[
            t["loaded"] + t["merged"] + t["quarantined"] + t["filtered"]
            for t in validation["tables"]
        ],
        marker_color="#4C78A8",
    )
    fig.add_bar(
        name="differences",
        x=labels,
        y=[t["differences"] for t in validation["tables"]],
        marker_color="#E45756",
    )
    fig.update_layout(barmode="group")
    return _layout(fig, "Reconciliation per source table")


def profile_table(report: dict) -> pd.DataFrame:
    """One row per source column, personal values already masked."""
    frame = pd.DataFrame(report["columns"])
    columns = [
        "system",
        "table",
        "column",
        "type",
        "classification",
        "rows",
        "nulls",
        "null_rate",
        "distinct",
        "min",
        "max",
    ]
    return frame[columns] if not frame.empty else frame


def coverage_table(mapping_check: dict) -> pd.DataFrame:
    """Every source column: mapped to which target column through what, or ignored and why."""
    frame = pd.DataFrame(mapping_check["coverage"])
    if frame.empty:
        return frame
    return frame[["system", "table", "column", "status", "target", "detail"]]


def load_stage_outcome(load: dict) -> go.Figure:
    """The full-load stage's figure: per source outcome of a full load, or of an incremental sync."""
    if load.get("mode") != "incremental":
        return load_outcome(load)
    labels = [f"{t['source_system']}.{t['source_table']}" for t in load["tables"]]
    fig = go.Figure()
    for field, color in (
        ("inserted", "#54A24B"),
        ("updated", "#F58518"),
        ("merged", "#4C78A8"),
        ("quarantined", "#E45756"),
        ("deleted_at_source", "#BAB0AC"),
    ):
        fig.add_bar(name=field, x=labels, y=[t[field] for t in load["tables"]], marker_color=color)
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="rows")
    return _layout(fig, "Incremental sync: what changed at the sources since the last load")
