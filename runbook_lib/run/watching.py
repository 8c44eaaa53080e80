"""``runbook watch`` and its lab view: the read-only watch of ``ui.watch`` joined to the run lock.

``ui.watch`` reads the manifest and the checkpoints; whether a process still holds the run is the
run lock's to say (``run.lock``), which lives here in ``run/`` — so the terminal command and the
JupyterLab view are put together in this module, and ``ui`` never imports ``run``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.config.params import find_project_root
from runbook_lib.run.lock import holder
from runbook_lib.ui.watch import FINAL, follow, full_load_totals, watch_run


def holder_of(project_root: Path, env: str) -> str | None:
    """The run that holds ``env``'s lock now (None: nobody)."""
    return (holder(project_root / "outputs" / env) or {}).get("run_id")


def watch_in_terminal(
    project_root: Path, env: str, run_id: str | None, *, once: bool, interval: float
) -> int:
    """``runbook watch``: one view (``--once``) or a rich live view until the run ends."""
    return follow(
        project_root,
        env,
        run_id,
        holder_of=lambda: holder_of(project_root, env),
        once=once,
        interval=interval,
    )


def lab_view(env: str, run_id: str | None = None, *, interval: float = 2.0):
    """The same view in JupyterLab: a panel refreshed every ``interval`` s until the run ends.

    Call it in any notebook cell (``from runbook_lib.run.watching import lab_view``) while a run
    goes on in a terminal, in CI or on another machine sharing the outputs and the target.
    """
    import html

    import ipywidgets

    from runbook_lib.config.connections import Connections
    from runbook_lib.config.params import load_params

    root = find_project_root()
    params = load_params(env, project_root=root)
    panel = ipywidgets.HTML()
    stop = threading.Event()
    connections = Connections(params)
    engines = {name: connections.engine(name) for name in ("target", "trial_target")}

    def refresh() -> None:
        try:
            try:
                totals = full_load_totals(connections, params.mapping_path)
            except (sa.exc.SQLAlchemyError, OSError):  # sources unreachable: no ETA, still a view
                totals = {}
            while not stop.is_set():
                newest = run_id or _newest(root, env)
                view = watch_run(
                    root,
                    env,
                    newest,
                    engines=engines,
                    totals=totals,
                    holder_alive=None if newest is None else holder_of(root, env) == newest,
                )
                panel.value = f"<pre>{html.escape(view.render())}</pre>"
                if view.status in FINAL or view.note:
                    break
                stop.wait(interval)
        finally:
            connections.dispose()

    thread = threading.Thread(target=refresh, name=f"watch-{env}", daemon=True)
    thread.start()
    panel.stop = stop.set  # lets a user stop the refresh: view.stop()
    panel.refresher = thread
    return panel


def _newest(project_root: Path, env: str) -> str | None:
    from runbook_lib.evidence.run_folder import latest_run

    newest = latest_run(project_root, env)
    return newest.name if newest else None
