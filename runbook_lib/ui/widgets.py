"""Interactive views for JupyterLab: run picker, transform playground, reject triage, approval.

Widgets only mean something with a person at the keyboard. One rule, ``interactive(run_dir)``,
decides everywhere: a notebook is interactive when ``run_dir`` is empty (the runbook always passes
it to papermill; papermill itself sets no marker in the kernel) and it runs in a Jupyter kernel
with ipywidgets installed. Otherwise the view functions return ``None``, so a notebook cell shows
nothing and the executed evidence stays free of widget state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from runbook_lib.db.canonical import canonical
from runbook_lib.errors import RunbookError, TransformError
from runbook_lib.evidence.run_folder import MANIFEST, list_runs
from runbook_lib.mapping.compiled import CompiledColumn, compile_spec
from runbook_lib.mapping.model import ColumnMapping, LoadedSpec
from runbook_lib.privacy.masking import EvidenceMasker
from runbook_lib.strict_yaml import parse_yaml


def interactive(run_dir: str) -> bool:
    """True when a person runs the notebook in Jupyter: no ``run_dir`` given, a kernel, ipywidgets."""
    if run_dir:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def environments(project_root: Path) -> list[str]:
    """The environments with a params file, in name order."""
    return sorted(path.stem for path in (project_root / "params").glob("*.yaml"))


def run_choices(project_root: Path, env: str) -> dict[str, str]:
    """Label → run folder (relative to the project) of ``env``'s runs, newest first.

    A label reads ``RUN_ID · status`` (``failed at STAGE`` when a stage failed).
    """
    choices = {}
    for folder in reversed(list_runs(project_root, env)):
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        status = str(manifest.get("status", "unreadable manifest"))
        if manifest.get("failed_stage"):
            status += f" at {manifest['failed_stage']}"
        choices[f"{folder.name} · {status}"] = folder.relative_to(project_root).as_posix()
    return choices


def run_summary(project_root: Path, run_dir: str) -> list[dict]:
    """One row per stage of a run's manifest: name, status, started and finished (UTC)."""
    try:
        manifest = json.loads((project_root / run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [
        {
            "stage": stage.get("name", ""),
            "status": stage.get("status", ""),
            "started_at": stage.get("started_at", ""),
            "finished_at": stage.get("finished_at", ""),
        }
        for stage in manifest.get("stages", [])
    ]


def parameters_line(env: str, run_dir: str) -> str:
    """The parameters cell that opens ``run_dir`` of ``env`` (to paste, then run all)."""
    return f'env = "{env}"\nrun_dir = "{run_dir}"'


def run_picker(project_root: Path, env: str, *, active: bool):
    """Pick an environment and one of its runs; shows its stages and the parameters to paste.

    None when not ``active`` (see ``interactive``).
    """
    if not active:
        return None
    import ipywidgets as w
    import pandas as pd
    from IPython.display import display

    env_box = w.Dropdown(options=environments(project_root), value=env, description="env")
    run_box = w.Dropdown(description="run", layout={"width": "60%"})
    out = w.Output()

    def on_env(_change=None) -> None:
        options = list(run_choices(project_root, env_box.value).items())
        run_box.options = options
        run_box.value = options[0][1] if options else None

    def on_run(_change=None) -> None:
        out.clear_output()
        with out:
            if run_box.value is None:
                print(f"no runs of {env_box.value} yet: runbook run --env {env_box.value}")
                return
            display(pd.DataFrame(run_summary(project_root, run_box.value)))
            print("to open it here, set the parameters cell to:")
            print(parameters_line(env_box.value, run_box.value))

    env_box.observe(on_env, names="value")
    run_box.observe(on_run, names="value")
    on_env()
    on_run()
    return w.VBox([w.HBox([env_box, run_box]), out], layout={"border": "1px solid #ccc"})


def sample_values(engine: sa.Engine, table: str, column: str, rows: int) -> list[Any]:
    """The first ``rows`` distinct values of a source column (NULL included), in value order."""
    source = sa.table(table, sa.column(column))
    query = sa.select(source.c[column]).distinct().order_by(source.c[column]).limit(rows)
    with engine.connect() as connection:
        return [value for (value,) in connection.execute(query)]


def try_chain(values: list[Any], chain_yaml: str, mask: Callable[[object], object]) -> list[dict]:
    """Apply a transform chain (spec YAML, e.g. ``[strip, normalize_email]``) to ``values``.

    Each row shows the input and output masked by ``mask`` (``EvidenceMasker.for_column`` of the
    column tried), or the rule that would quarantine it.
    """
    try:
        steps = parse_yaml(chain_yaml.encode("utf-8")) if chain_yaml.strip() else None
        column = CompiledColumn.of("value", ColumnMapping(**{"from": "value", "transform": steps}))
    except (ValueError, TypeError, RunbookError) as exc:
        return [{"input": "", "output": "", "rule": f"not a transform chain: {exc}"}]
    shown = []
    for value in values:
        try:
            result = column.apply(value)
            output = ", ".join(canonical(mask(v)) for v in result)
            rule = ""
        except TransformError as exc:
            output, rule = "", exc.rule
        except (ValueError, TypeError) as exc:  # a bad option: the chain's fault, not the value's
            output, rule = "", f"bad option: {exc}"
        shown.append({"input": canonical(mask(value)), "output": output, "rule": rule})
    return shown


def transform_playground(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    *,
    headless: bool,
    masker: EvidenceMasker | None = None,
):
    """A column picker, an editable chain, and the result on sample rows; None when headless."""
    if headless:
        return None
    masker = masker or EvidenceMasker()
    try:
        import ipywidgets as w
        import pandas as pd
        from IPython.display import display
    except ImportError:
        return None
    choices = {}
    for source in compile_spec(spec).in_spec_order:
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
        mask = masker.for_column(f"{source.system}.{source.table}", column)
        out.clear_output()
        with out:
            display(pd.DataFrame(try_chain(values, chain.value, mask)))

    picker.observe(on_pick, names="value")
    run.on_click(on_run)
    chain.value = chain_of(picker.value)
    return w.VBox([picker, chain, w.HBox([rows, run]), out])


def triage_rows(
    engine: sa.Engine, run_id: str, masker, rule: str = "", table: str = "", limit: int = 50
) -> list[dict]:
    """Up to ``limit`` quarantined rows of ``run_id``, by ``rule`` and target ``table`` if given.

    Raw rows and messages are masked by ``masker`` (a ``masking.EvidenceMasker``); the raw JSON is flattened
    into ``raw.<column>`` fields so the table reads column by column.
    """
    from runbook_lib.db.bookkeeping import rejects

    query = sa.select(rejects).where(rejects.c.run_id == run_id).order_by(rejects.c.reject_id)
    if rule:
        query = query.where(rejects.c.rule == rule)
    if table:
        query = query.where(rejects.c.target_table == table)
    with engine.connect() as connection:
        found = [dict(row._mapping) for row in connection.execute(query.limit(limit))]
    shown = []
    for reject in found:
        masked = masker.mask_reject(reject)
        raw = masked.pop("raw_row")
        masked.pop("run_id", None)
        masked.pop("reject_id", None)
        if isinstance(raw, dict):
            masked.update({f"raw.{column}": value for column, value in raw.items()})
        else:
            masked["raw"] = raw
        shown.append(masked)
    return shown


def reject_triage(ctx, *, active: bool):
    """Filter this run's quarantined rows by rule and target table, masked; None unless ``active``."""
    if not active or ctx.run_dir is None:
        return None
    import ipywidgets as w
    import pandas as pd
    from IPython.display import display

    from runbook_lib.load.quarantine import count_rejects

    engine = ctx.target_engine()
    try:
        counts = count_rejects(engine, ctx.run_id)
        masker = ctx.masker
    except (sa.exc.SQLAlchemyError, RunbookError) as exc:
        print(f"no reject triage: {exc}")
        return None
    rules = sorted({c["rule"] for c in counts})
    tables = sorted({c["target_table"] for c in counts})
    rule_box = w.Dropdown(options=[("any rule", ""), *[(r, r) for r in rules]], description="rule")
    table_box = w.Dropdown(
        options=[("any table", ""), *[(t, t) for t in tables]], description="table"
    )
    limit_box = w.IntSlider(value=20, min=1, max=200, description="rows")
    out = w.Output()

    def refresh(_change=None) -> None:
        rows = triage_rows(
            engine, ctx.run_id, masker, rule_box.value, table_box.value, limit_box.value
        )
        out.clear_output()
        with out:
            print(f"{sum(c['rows'] for c in counts):,} quarantined rows in run {ctx.run_id}")
            display(pd.DataFrame(rows) if rows else "no quarantined rows match")

    for box in (rule_box, table_box, limit_box):
        box.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([rule_box, table_box, limit_box]), out])


def approval_button(ctx, *, active: bool):
    """For an env that ``requires_approval``: approve this run's trial by name; None otherwise."""
    if not active or ctx.run_dir is None or not ctx.params.model.requires_approval:
        return None
    import ipywidgets as w

    from runbook_lib.evidence.approvals import approve
    from runbook_lib.evidence.provenance import os_user

    name = w.Text(value=os_user(), description="approver")
    button = w.Button(
        description=f"approve trial of {ctx.run_id}",
        button_style="warning",
        layout={"width": "auto"},
    )
    out = w.Output()

    def on_click(_button) -> None:
        out.clear_output()
        with out:
            try:
                print(approve(ctx.env, ctx.run_id, name.value, ctx.params.project_root).render())
                button.disabled = True
            except RunbookError as exc:
                print(f"not approved: {exc}")  # the message carries its hint

    button.on_click(on_click)
    hint = w.HTML(
        f"Read <code>{ctx.run_id}/02_trial.html</code> first; the approval is bound to it."
    )
    return w.VBox([hint, w.HBox([name, button]), out])
