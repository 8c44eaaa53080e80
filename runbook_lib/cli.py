"""The ``runbook`` command: run, status, rollback, demo-data.

Every command is a thin wrapper around a library function; a ``RunbookError`` becomes its message
and exit code, anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
import time

from runbook_lib.connections import redact_text
from runbook_lib.errors import RunbookError, StageFailedError
from runbook_lib.params import ENVIRONMENTS, find_project_root


def _run(args: argparse.Namespace) -> int:
    from runbook_lib import runner

    runner.quiet_papermill_logs()
    root = find_project_root()
    stages = runner.parse_stages(args.stages)
    outcome = runner.run(args.env, root, stages=stages, run_id=args.run_id)
    if outcome.status != "passed":
        raise StageFailedError(
            f"run {outcome.run_id}: stage {outcome.failed_stage} failed",
            hint=f"read {outcome.run_dir.relative_to(root)}/{_notebook(outcome.failed_stage)}.html",
        )
    print(f"run {outcome.run_id} passed: evidence in {outcome.run_dir.relative_to(root)}")
    return 0


def _notebook(stage: str | None) -> str:
    from runbook_lib.context import STAGES

    return STAGES.get(stage or "", "").removesuffix(".ipynb")


def _rollback(args: argparse.Namespace) -> int:
    from runbook_lib import runner

    runner.quiet_papermill_logs()
    root = find_project_root()
    outcome = runner.run(args.env, root, stages=["rollback"], run_id=args.run_id)
    if outcome.status != "passed":
        raise StageFailedError(
            f"rollback of run {args.run_id} failed", hint="read 05_rollback.html in the run folder"
        )
    print(
        f"run {args.run_id} rolled back; proof in {outcome.run_dir.relative_to(root)}/05_rollback.html"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from runbook_lib.evidence import Manifest, list_runs

    root = find_project_root()
    runs = list_runs(root, args.env)
    if not runs:
        print("no runs yet" + (f" for env {args.env}" if args.env else ""))
        return 0
    print(f"{'env':<8} {'run id':<26} {'status':<8} {'operator':<12} stages")
    for run_dir in runs:
        data = Manifest.load(run_dir).data
        stages = " ".join(f"{s['name']}:{s['status']}" for s in data.get("stages", []))
        print(
            f"{data['env']:<8} {data['run_id']:<26} {data['status']:<8} {data.get('operator', ''):<12} {stages}"
        )
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from runbook_lib.demo import build_demo

    root = find_project_root()
    started = time.perf_counter()
    summary = build_demo(args.env, root, orders=args.orders)
    print(summary.render())
    print(f"demo sources for {args.env} built in {time.perf_counter() - started:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per verb."""
    parser = argparse.ArgumentParser(prog="runbook", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="execute runbook stages with papermill into outputs/<env>/<run_id>/"
    )
    run.add_argument("--env", required=True, choices=ENVIRONMENTS)
    run.add_argument(
        "--stages", help="comma-separated subset, e.g. trial,full_load (default: all but rollback)"
    )
    run.add_argument("--run-id", help="re-run the named stages into this existing run folder")
    run.set_defaults(handler=_run)

    status = commands.add_parser("status", help="list runs and their outcome")
    status.add_argument("--env", choices=ENVIRONMENTS)
    status.set_defaults(handler=_status)

    rollback = commands.add_parser(
        "rollback", help="restore the target to its state before a run's load"
    )
    rollback.add_argument("--env", required=True, choices=ENVIRONMENTS)
    rollback.add_argument("--run-id", required=True)
    rollback.set_defaults(handler=_rollback)

    demo = commands.add_parser(
        "demo-data", help="build the demo legacy sources and an empty target"
    )
    demo.add_argument("--env", required=True, choices=ENVIRONMENTS)
    demo.add_argument("--orders", type=int, help="override params demo.orders")
    demo.set_defaults(handler=_demo_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``runbook``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except RunbookError as exc:
        print(f"runbook: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
