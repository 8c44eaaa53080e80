"""The figures and tables of evidence: plotly figures (rendered to work offline) and DataFrames.

What the stage notebooks show and the report embeds; built only from glued results.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio


def use_offline_renderer() -> None:
    """plotly.js embedded once per notebook: shows in JupyterLab and in nbconvert HTML, no CDN."""
    pio.renderers.default = "plotly_mimetype+notebook"


def show_whole_tables() -> None:
    """Show every row of a table (profiles, findings) instead of pandas' first and last five."""
    pd.set_option("display.max_rows", 2_000)
    pd.set_option("display.max_colwidth", 300)


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


SEVERITY_COLORS = {"error": "#E45756", "warning": "#F58518", "info": "#BAB0AC"}


def findings_by_severity(report: dict) -> go.Figure:
    """Number of findings per source table, stacked by severity; hover lists rules and rows."""
    found = [f for f in report["findings"] if f["count"]]
    places = sorted({f"{f['system']}.{f['table']}" for f in found})
    fig = go.Figure()
    for severity, color in SEVERITY_COLORS.items():
        mine = {
            p: [
                f for f in found if f"{f['system']}.{f['table']}" == p and f["severity"] == severity
            ]
            for p in places
        }
        fig.add_bar(
            name=severity,
            x=places,
            y=[len(mine[p]) for p in places],
            marker_color=color,
            hovertext=[
                "<br>".join(f"{f['rule']} {f['column']}: {f['count']:,} rows" for f in mine[p])
                for p in places
            ],
            hoverinfo="text+name",
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="findings")
    return _layout(fig, "Quality findings by table and severity")


def profile_overview(report: dict) -> go.Figure:
    """Null rate per column (heat map, top) and the date formats and phone shapes found (bottom).

    Each bar of the bottom panel is one column, split by the share of its rows in each format;
    hovering names the format and its rows.
    """
    from plotly.subplots import make_subplots

    heat = null_rates(report).data[0]
    heat.update(colorbar={"title": "null rate", "len": 0.4, "y": 0.8, "yanchor": "middle"})
    shown = [
        c
        for c in report["columns"]
        if c["formats"] and (c["inferred_type"] == "datetime" or c["classification"] == "phone")
    ]
    labels = [f"{c['system']}.{c['table']}.{c['column']}" for c in shown]
    fig = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.22,
        row_heights=[0.55, 0.45],
        subplot_titles=("Null rate per column", "Date formats and phone shapes: share of rows"),
    )
    fig.add_trace(heat, row=1, col=1)
    for fmt in dict.fromkeys(f for c in shown for f in c["formats"]):
        rows = [c["formats"].get(fmt, 0) for c in shown]
        totals = [sum(c["formats"].values()) or 1 for c in shown]
        fig.add_bar(
            name=fmt,
            y=labels,
            x=[n / t for n, t in zip(rows, totals, strict=True)],
            orientation="h",
            text=[fmt if n / t >= 0.15 else "" for n, t in zip(rows, totals, strict=True)],
            textposition="inside",
            customdata=rows,
            hovertemplate=f"{fmt}: %{{customdata:,}} rows (%{{x:.1%}})<extra>%{{y}}</extra>",
            showlegend=False,
            row=2,
            col=1,
        )
    fig.update_xaxes(tickformat=".0%", range=[0, 1], row=2, col=1)
    fig.update_layout(barmode="stack")
    _layout(fig, "Source profile: nulls and formats")
    fig.update_layout(height=420 + 28 * len(shown) + 300, margin={"l": 260})
    return fig


def findings_table(report: dict) -> pd.DataFrame:
    """Every finding that counted rows: rule, severity, where, rows, what it means, examples."""
    rows = [
        {
            "severity": f["severity"],
            "rule": f["rule"],
            "where": ".".join(p for p in (f["system"], f["table"], f["column"]) if p),
            "rows": f["count"],
            "detail": f["detail"],
            "examples": "; ".join(f["examples"]),
        }
        for f in report["findings"]
        if f["count"]
    ]
    return pd.DataFrame(rows, columns=["severity", "rule", "where", "rows", "detail", "examples"])


def classification_table(report: dict) -> pd.DataFrame:
    """One row per source table: its columns grouped by category (what masking applies)."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for c in report["classification"]:
        place = grouped.setdefault(f"{c['system']}.{c['table']}", {})
        plain = c["classification"] in ("other", c["category"], c["column"])
        shown = c["column"] if plain else f"{c['column']} ({c['classification']})"
        place.setdefault(c["category"], []).append(shown)
    categories = ["personal", "credential", "financial", "other"]
    return pd.DataFrame(
        [
            {"table": t, **{k: ", ".join(v.get(k, [])) for k in categories}}
            for t, v in grouped.items()
        ],
        columns=["table", *categories],
    )


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
    """One row per source column, personal values already masked; formats with their rows."""
    frame = pd.DataFrame(report["columns"])
    if frame.empty:
        return frame
    frame["formats"] = [
        "; ".join(f"{fmt} ({rows:,})" for fmt, rows in c.get("formats", {}).items())
        or (f"free text ({c['shapes']:,} shapes)" if c.get("shapes") else "")
        for c in report["columns"]
    ]
    frame["top_values"] = [
        ", ".join(f"{value} ({rows:,})" for value, rows in c.get("top_values", []))
        for c in report["columns"]
    ]
    columns = [
        "system",
        "table",
        "column",
        "type",
        "inferred_type",
        "classification",
        "rows",
        "nulls",
        "null_rate",
        "distinct",
        "min",
        "max",
        "formats",
        "top_values",
    ]
    return frame[[c for c in columns if c in frame]]


def coverage_table(mapping_check: dict) -> pd.DataFrame:
    """Every source column: mapped to which target column through what, or ignored and why."""
    frame = pd.DataFrame(mapping_check["coverage"])
    if frame.empty:
        return frame
    return frame[["system", "table", "column", "status", "target", "detail", "types"]]


# --- validation (04): the reconciliation dashboard and its tables -----------------------------

_DIFFERENCE_COLORS = {
    "missing": "#E45756",
    "extra": "#F58518",
    "changed": "#B279A2",
    "duplicate": "#9D755D",
}


def reconciliation_dashboard(validation: dict) -> go.Figure:
    """Per source: source rows against loaded, merged, quarantined, filtered; differences by kind."""
    from plotly.subplots import make_subplots

    tables = validation["tables"]
    labels = [f"{t['source_system']}.{t['source_table']} → {t['target_table']}" for t in tables]
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.62, 0.38],
        subplot_titles=("What became of every source row", "Differences found, by kind"),
    )
    fig.add_bar(
        name="source rows",
        x=labels,
        y=[t["source_rows"] for t in tables],
        marker_color="#72B7B2",
        offsetgroup="source",
        row=1,
        col=1,
    )
    for field, color in (
        ("loaded", "#54A24B"),
        ("merged", "#4C78A8"),
        ("quarantined", "#E45756"),
        ("filtered", "#BAB0AC"),
    ):
        fig.add_bar(
            name=field,
            x=labels,
            y=[t[field] for t in tables],
            marker_color=color,
            offsetgroup="target",
            row=1,
            col=1,
        )
    for kind, color in _DIFFERENCE_COLORS.items():
        fig.add_bar(
            name=kind,
            x=labels,
            y=[t.get("differences_by_kind", {}).get(kind, 0) for t in tables],
            marker_color=color,
            offsetgroup="differences",
            legendgroup="differences",
            row=2,
            col=1,
        )
    fig.update_layout(barmode="stack", height=720, template="plotly_white")
    fig.update_layout(margin={"l": 60, "r": 20, "t": 80, "b": 160})
    fig.update_layout(title=f"Reconciliation: {'PASSED' if validation['passed'] else 'FAILED'}")
    fig.update_yaxes(title="rows", row=1, col=1)
    fig.update_yaxes(title="keys", rangemode="tozero", row=2, col=1)
    return fig


def differences_table(validation: dict) -> pd.DataFrame:
    """Every listed differing key with its kind and columns (values already masked)."""
    rows = [
        {
            "table": d["table"],
            "key": f"{d['source_system']}:{d['source_key']}",
            "kind": d["kind"],
            "columns": ", ".join(d["columns"]),
            "expected → actual": "; ".join(
                f"{c}: {v['expected']} → {v['actual']}" for c, v in d["values"].items()
            ),
            "note": d["note"],
        }
        for t in validation["tables"]
        for d in t["difference_keys"]
    ]
    columns = ["table", "key", "kind", "columns", "expected → actual", "note"]
    return pd.DataFrame(rows, columns=columns)


def aggregates_table(validation: dict) -> pd.DataFrame:
    """Per numeric column and currency: source through the mapping, quarantined, target."""
    rows = [
        {
            "column": f"{a['target_table']}.{a['column']}",
            "source": a["source_system"],
            "currency": a["currency"] or "",
            "status": a["status"],
            "source sum": a["source_sum_through_mapping"],
            "quarantined sum": a["quarantined_sum"],
            "expected sum": a["expected"]["sum"],
            "target sum": a["target"]["sum"],
            "rows (exp/target)": f"{a['expected']['rows']:,} / {a['target']['rows']:,}",
            "nulls (exp/target)": f"{a['expected']['nulls']:,} / {a['target']['nulls']:,}",
            "min (exp/target)": f"{a['expected']['min']} / {a['target']['min']}",
            "max (exp/target)": f"{a['expected']['max']} / {a['target']['max']}",
        }
        for a in validation["aggregates"]
    ]
    return pd.DataFrame(rows)


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


def cutover_measures(cutover: dict) -> go.Figure:
    """Downtime, RPO and RTO of a cut-over, each beside its limit."""
    measures = cutover["measures"]
    names = [m["name"] for m in measures]
    fig = go.Figure()
    fig.add_bar(
        name="measured",
        x=names,
        y=[m["seconds"] for m in measures],
        marker_color=["#54A24B" if m["within"] else "#E45756" for m in measures],
    )
    fig.add_bar(
        name="limit", x=names, y=[m["limit_seconds"] for m in measures], marker_color="#BAB0AC"
    )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="seconds")
    return _layout(fig, "Cut-over: downtime, RPO and RTO against their limits")


def plan_vs_actual(plan: dict) -> pd.DataFrame:
    """The trial's projection beside the full load, per source table."""
    return pd.DataFrame(plan["tables"], columns=["source", "projected_seconds", "actual_seconds"])
