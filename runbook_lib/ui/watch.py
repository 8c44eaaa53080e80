"""``runbook watch``: a run's progress seen from outside its kernel, live or after it died.

Everything is read, nothing is written: the run folder's manifest (which stages ended, how, and
which one is under way) and the checkpoints the loader commits with every chunk in the target and
the trial target (rows read, loaded, quarantined, time spent, per source table). Rates and ETAs
come from those checkpoints, so the view is right whether the load runs in another process, on
another machine, or was killed an hour ago (then the manifest still says ``running`` while no
process holds the run: the view says so and how to resume).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.config.connections import Connections
from runbook_lib.config.params import load_params
from runbook_lib.db.bookkeeping import CHECKPOINTS_TABLE, checkpoints
from runbook_lib.evidence.run_folder import MANIFEST, latest_run, runs_root
from runbook_lib.mapping.compiled import ordered_sources
from runbook_lib.mapping.model import load_spec
from runbook_lib.stage_table import STAGES


@dataclass(frozen=True)
class TableProgress:
    """One source table of one load (trial, full or sync) as its checkpoint says."""

    mode: str
    target_table: str
    source: str
    rows_read: int
    loaded: int
    merged: int
    quarantined: int
    seconds: float
    done: bool
    updated_at: str
    total: int | None = None

    @property
    def rate(self) -> float | None:
        """Rows per second of the work done so far (None before the first chunk)."""
        return self.rows_read / self.seconds if self.seconds > 0 and self.rows_read else None

    @property
    def eta_seconds(self) -> float | None:
        if self.done:
            return 0.0
        if self.total is None or self.rate is None:
            return None
        return max(self.total - self.rows_read, 0) / self.rate

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "target_table": self.target_table,
            "source": self.source,
            "rows_read": self.rows_read,
            "total": self.total,
            "loaded": self.loaded,
            "merged": self.merged,
            "quarantined": self.quarantined,
            "rate": None if self.rate is None else round(self.rate, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "done": self.done,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class RunView:
    """What a watcher sees of one run."""

    env: str
    run_id: str | None
    status: str
    stages: tuple[tuple[str, str], ...] = ()  # (stage, status) as recorded
    current: str | None = None  # the stage under way, if the run is running
    tables: tuple[TableProgress, ...] = ()
    note: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables)

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "run_id": self.run_id,
            "status": self.status,
            "stages": [{"stage": s, "status": st} for s, st in self.stages],
            "current": self.current,
            "quarantined": self.quarantined,
            "tables": [t.to_dict() for t in self.tables],
            "note": self.note,
            "problems": list(self.problems),
        }

    def render(self) -> str:
        """The view as plain text (what ``--once`` prints, and the live view's content)."""
        lines = [
            f"run {self.run_id or '(none)'} ({self.env}): {self.status}"
            + (f", now {self.current}" if self.current else "")
        ]
        if self.stages:
            lines.append("stages: " + ", ".join(f"{s} {st}" for s, st in self.stages))
        if self.tables:
            header = (
                f"{'load':<6} {'source':<30} {'read':>10} {'of':>10} {'loaded':>10} "
                f"{'quar.':>7} {'rows/s':>9} {'eta':>8}"
            )
            lines += [header, "-" * len(header)]
            for t in self.tables:
                lines.append(
                    f"{t.mode:<6} {t.source:<30} {t.rows_read:>10,} "
                    f"{'' if t.total is None else f'{t.total:,}':>10} {t.loaded:>10,} "
                    f"{t.quarantined:>7,} {'' if t.rate is None else f'{t.rate:,.0f}':>9} "
                    f"{_eta(t):>8}"
                )
            lines.append(f"quarantined so far: {self.quarantined:,}")
        if self.note:
            lines.append(self.note)
        lines += [f"cannot read: {p}" for p in self.problems]
        return "\n".join(lines)


def _eta(table: TableProgress) -> str:
    if table.done:
        return "done"
    eta = table.eta_seconds
    if eta is None:
        return "?"
    minutes, seconds = divmod(int(eta), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def watch_run(
    project_root: Path,
    env: str,
    run_id: str | None = None,
    *,
    engines: dict[str, sa.Engine] | None = None,
    totals: dict[tuple[str, str, str], int] | None = None,
    holder_alive: bool | None = None,
) -> RunView:
    """Read run ``run_id`` of ``env`` (default: its newest run) once.

    ``engines`` holds the ``target`` and ``trial_target`` engines (built from params when not
    given); ``totals`` the source rows per (mode, system, table) for the ETA; ``holder_alive``
    whether a process holds the run (None: unknown — then a ``running`` manifest is believed).
    """
    folder = runs_root(project_root, env) / run_id if run_id else latest_run(project_root, env)
    if folder is None or not (folder / MANIFEST).is_file():
        return RunView(
            env, run_id, "no such run", note=f"runbook status --env {env} lists the runs"
        )
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return RunView(env, folder.name, "unreadable", problems=(f"{folder / MANIFEST}: {exc}",))
    recorded = tuple((s.get("name", "?"), s.get("status", "?")) for s in manifest.get("stages", []))
    status = str(manifest.get("status", "unknown"))
    current = None
    if status == "running":
        asked = (manifest.get("invocations") or [{}])[-1].get("stages", [])
        started = (manifest.get("invocations") or [{}])[-1].get("started_at", "")
        done_now = {
            s.get("name")
            for s in manifest.get("stages", [])
            if str(s.get("finished_at", "")) >= str(started)
        }
        current = next((s for s in asked if s in STAGES and s not in done_now), None)
    tables, problems = [], []
    for name, engine in (engines or {}).items():
        try:
            tables += _checkpoints(engine, folder.name, totals or {})
        except sa.exc.SQLAlchemyError as exc:
            problems.append(f"{name}: {type(exc).__name__}")
    note = ""
    if status == "running" and holder_alive is False:
        note = (
            "no process holds this run (killed?): what is committed is above; continue it with "
            f"runbook run --env {env} --resume {folder.name}"
        )
    return RunView(
        env=env,
        run_id=folder.name,
        status=status,
        stages=recorded,
        current=current,
        tables=tuple(tables),
        note=note,
        problems=tuple(problems),
    )


def _checkpoints(
    engine: sa.Engine, run_id: str, totals: dict[tuple[str, str, str], int]
) -> list[TableProgress]:
    if CHECKPOINTS_TABLE not in sa.inspect(engine).get_table_names():
        return []
    c = checkpoints.c
    query = (
        sa.select(checkpoints)
        .where(c.run_id == run_id, c.source_table != "(references)")
        .order_by(c.mode, c.updated_at)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        TableProgress(
            mode=row["mode"],
            target_table=row["target_table"],
            source=f"{row['source_system']}.{row['source_table']}",
            rows_read=row["rows_read"],
            loaded=row["loaded"],
            merged=row["merged"],
            quarantined=sum(json.loads(row["quarantined"] or "{}").values()),
            seconds=row["seconds"],
            done=bool(row["done"]),
            updated_at=row["updated_at"],
            total=totals.get((row["mode"], row["source_system"], row["source_table"])),
        )
        for row in rows
    ]


# A view is done changing once its run is no longer running (or there is no such run).
FINAL = ("passed", "failed", "rolled_back", "awaiting_approval", "no such run", "unreadable")


def full_load_totals(connections: Connections, spec_path: Path) -> dict[tuple[str, str, str], int]:
    """Rows a full load reads per source (after its named filters): the ETA's denominator.

    A trial reads a sample and a sync what changed, neither known ahead: their ETA stays "?".
    """
    spec = load_spec(spec_path)
    totals = {}
    for source in ordered_sources(spec):
        counts = source.count(connections.engine(source.system))
        filtered = sum(v for k, v in counts.items() if k.startswith("filtered:"))
        totals[("full", source.system, source.table)] = counts["source_rows"] - filtered
    return totals


def follow(
    project_root: Path,
    env: str,
    run_id: str | None,
    *,
    holder_of: Callable[[], str | None],
    once: bool = False,
    interval: float = 2.0,
    out: Callable[[str], None] = print,
) -> int:
    """``runbook watch``: print the view once, or refresh it until the run is no longer running.

    ``holder_of`` says which run holds the env's lock now (None: nobody), so a manifest still
    ``running`` with no holder is shown as a killed run. Returns 0; nothing is written anywhere.
    """
    params = load_params(env, project_root=project_root)
    with Connections(params) as connections:
        engines = {name: connections.engine(name) for name in ("target", "trial_target")}
        try:
            totals = full_load_totals(connections, params.mapping_path)
        except (sa.exc.SQLAlchemyError, OSError):  # sources unreachable: no ETA, still a view
            totals = {}

        def look() -> RunView:
            newest = latest_run(project_root, env)
            watched = run_id or (newest.name if newest else None)
            return watch_run(
                project_root,
                env,
                watched,
                engines=engines,
                totals=totals,
                holder_alive=None if watched is None else holder_of() == watched,
            )

        view = look()
        if once or view.status in FINAL:
            out(view.render())
            return 0
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        with Live(Text(view.render()), console=Console(), auto_refresh=False) as live:
            while view.status not in FINAL and not view.note:
                time.sleep(interval)
                view = look()
                live.update(Text(view.render()), refresh=True)
    return 0
