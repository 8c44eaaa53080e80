"""The ``runbook`` command: run, sync, cutover, watch, status, rollback, approve, verify and more.

Every command is a thin wrapper around a library function. A ``RunbookError`` becomes its message,
its next step and its exit code (``errors`` lists them); anything else is a bug, printed scrubbed
with exit code 70 (``--debug`` shows its traceback); Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from runbook_lib.config.params import check_env_name, find_project_root
from runbook_lib.errors import (
    EXIT_EVIDENCE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_PASSED,
    ApprovalRequiredError,
    EvidenceError,
    RunbookError,
    StageFailedError,
)
from runbook_lib.evidence.run_folder import check_run_id, runs_root
from runbook_lib.stage_table import STAGES


def _run(args: argparse.Namespace) -> int:
    from runbook_lib.run import runner

    runner.quiet_papermill_logs()
    root = find_project_root()
    run_id = args.run_id
    if args.resume:
        if args.run_id or args.stages:
            raise RunbookError(
                "--resume continues a run on its own: give neither --run-id nor --stages"
            )
        run_id = args.resume
        stages = runner.stages_to_resume(runs_root(root, args.env) / run_id)
        print(f"resuming run {run_id} at {stages[0]}")
    else:
        stages = runner.parse_stages(args.stages)
    outcome = runner.run(args.env, root, stages=stages, run_id=run_id)
    _raise_unless_passed(outcome, root, f"run {outcome.run_id}")
    print(f"run {outcome.run_id} passed: evidence in {outcome.run_dir.relative_to(root)}")
    return 0


def _raise_unless_passed(outcome, root: Path, what: str) -> None:
    """A run that did not pass becomes the error its failure record describes (no text parsed)."""
    failure = outcome.failure or {}
    message = str(failure.get("message") or "").strip().splitlines()
    first = message[0] if message else ""
    if outcome.status == "awaiting_approval":
        raise ApprovalRequiredError(
            f"{what}: stage {outcome.failed_stage} refused: {first}", hint=failure.get("hint")
        )
    if outcome.status != "passed":
        evidence = f"read {outcome.run_dir.relative_to(root)}/{STAGES[outcome.failed_stage].html}"
        hint = failure.get("hint")
        raise StageFailedError(
            f"{what}: stage {outcome.failed_stage} failed" + (f": {first}" if first else ""),
            hint=f"{hint}; {evidence}" if hint else evidence,
        )


def _sync(args: argparse.Namespace) -> int:
    from runbook_lib.run import runner

    runner.quiet_papermill_logs()
    root = find_project_root()
    stages = ["mapping", "full_load", "validation"]
    outcome = runner.run(args.env, root, stages=stages, command="sync", mode="incremental")
    _raise_unless_passed(outcome, root, f"sync {outcome.run_id}")
    print(f"sync {outcome.run_id} passed: evidence in {outcome.run_dir.relative_to(root)}")
    return 0


def _cutover(args: argparse.Namespace) -> int:
    from runbook_lib.run import runner

    runner.quiet_papermill_logs()
    root = find_project_root()
    outcome = runner.run(args.env, root, stages=["cutover"], run_id=args.run_id, command="cutover")
    _raise_unless_passed(outcome, root, f"cut-over of run {args.run_id}")
    print(
        f"run {args.run_id} cut over; record in {outcome.run_dir.relative_to(root)}/06_cutover.html"
    )
    return 0


def _watch(args: argparse.Namespace) -> int:
    from runbook_lib.run.watching import watch_in_terminal

    root = find_project_root()
    return watch_in_terminal(root, args.env, args.run_id, once=args.once, interval=args.interval)


def _rollback(args: argparse.Namespace) -> int:
    from runbook_lib.run import runner

    runner.quiet_papermill_logs()
    root = find_project_root()
    outcome = runner.run(
        args.env, root, stages=["rollback"], run_id=args.run_id, command="rollback"
    )
    if outcome.status != "rolled_back":
        _raise_unless_passed(outcome, root, f"rollback of run {args.run_id}")
    print(
        f"run {args.run_id} rolled back; proof in {outcome.run_dir.relative_to(root)}/05_rollback.html"
    )
    return 0


def _approve(args: argparse.Namespace) -> int:
    from runbook_lib.evidence.approvals import approve

    approval = approve(
        args.env, args.run_id, args.operator, find_project_root(), approves=args.approves
    )
    print(approval.render())
    return 0


def _verify(args: argparse.Namespace) -> int:
    import json

    from runbook_lib.evidence.verify import verify_run

    if args.against_target and not args.env:
        raise RunbookError(
            "--against-target needs --env: its params name the target",
            hint="runbook verify --env ENV --against-target",
        )
    run_dir = _run_to_verify(args)
    require_signed, anchored = False, None
    if args.env:
        from runbook_lib.config.params import load_params

        params = load_params(args.env, project_root=find_project_root())
        require_signed = params.model.evidence.signing_key_env is not None
        if run_dir.resolve().parent != runs_root(params.project_root, args.env).resolve():
            raise RunbookError(f"{run_dir} is not a run folder of env {args.env}")
        if args.against_target:
            from runbook_lib.evidence.trust import anchor_for

            anchored = anchor_for(params).lines()
    result = verify_run(
        run_dir, trusted_key=args.fingerprint, require_signed=require_signed, anchored=anchored
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.render())
    return EXIT_PASSED if result.passed else EXIT_EVIDENCE


def _run_to_verify(args: argparse.Namespace) -> Path:
    """RUN_DIR, or with ``--env`` alone the environment's newest run."""
    from runbook_lib.evidence.run_folder import latest_run

    if args.run_dir:
        run_dir = Path(args.run_dir)
        if not run_dir.is_dir():
            raise RunbookError(
                f"no run folder {run_dir}", hint="runbook verify outputs/<env>/<run_id>"
            )
        return run_dir
    if not args.env:
        raise RunbookError(
            "give a run folder or --env", hint="runbook verify outputs/<env>/<run_id>"
        )
    found = latest_run(find_project_root(), args.env)
    if found is None:
        raise RunbookError(f"env {args.env} has no run to verify", hint="runbook status")
    return found


def _keygen(args: argparse.Namespace) -> int:
    from runbook_lib.evidence.signing import generate

    pair = generate()
    print(pair.private_key)
    print(
        "runbook: above, on stdout: a new Ed25519 PRIVATE key. Store it in your secret store "
        "(never in a file of the project), export it as the variable params name in "
        "evidence.signing_key_env (e.g. RUNBOOK_SIGNING_KEY), and clear this terminal.\n"
        f"public key:  {pair.public_key}\n"
        f"fingerprint: {pair.fingerprint}   (keep it in the change record: "
        "runbook verify --fingerprint checks every ledger line against it)",
        file=sys.stderr,
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from runbook_lib.evidence.record import rewrite_report

    run_dir = Path(args.run_dir)
    path, entry = rewrite_report(run_dir, _trust_of_run(run_dir))
    print(f"report {path}" + (f" (ledger line {entry.seq})" if entry else " (unchanged)"))
    return 0


def _trust_of_run(run_dir: Path):
    """The signing key of the run's environment, from its params (none outside a project)."""
    from runbook_lib.config.params import load_params
    from runbook_lib.errors import ParamsError
    from runbook_lib.evidence.run_folder import MANIFEST, Manifest
    from runbook_lib.evidence.trust import Trust, trust_for

    if not (run_dir / MANIFEST).is_file():
        return Trust()
    try:
        env = Manifest.load(run_dir).data.get("env")
        params = load_params(env, project_root=find_project_root(run_dir))
    except (ParamsError, ValueError, TypeError):
        return Trust()  # a copy outside its project: a signed ledger refuses the seal
    return trust_for(params)


def _status(args: argparse.Namespace) -> int:
    from runbook_lib.evidence.run_folder import Manifest, list_runs
    from runbook_lib.run.lock import busy_message, holder

    root = find_project_root()
    outputs = root / "outputs"
    envs = [args.env] if args.env else sorted(p.name for p in outputs.glob("*/") if p.is_dir())
    for env in envs:
        held = holder(outputs / env)
        if held is not None:
            print(busy_message(env, held))
    runs = list_runs(root, args.env)
    if not runs:
        print("no runs yet" + (f" for env {args.env}" if args.env else ""))
        return 0
    print(f"{'env':<8} {'run id':<26} {'status':<17} {'operator':<12} stages")
    unreadable = []
    for run_dir in runs:
        try:
            data = Manifest.load(run_dir).data
        except EvidenceError as exc:  # one damaged manifest does not hide the other runs
            unreadable.append(exc.message)
            print(f"{run_dir.parent.name:<8} {run_dir.name:<26} {'unreadable':<17}")
            continue
        stages = " ".join(
            f"{s.get('name')}:{s.get('status')}"
            for s in data.get("stages", [])
            if isinstance(s, dict)
        )
        print(
            f"{data.get('env', run_dir.parent.name):<8} {data.get('run_id', run_dir.name):<26} "
            f"{data.get('status', '?'):<17} {data.get('operator', ''):<12} {stages}"
        )
    for message in unreadable:
        print(f"runbook: {message}", file=sys.stderr)
    if unreadable:
        print("  -> runbook verify <that run folder> says what changed", file=sys.stderr)
        return EXIT_EVIDENCE
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from runbook_demo.build import build_demo

    root = find_project_root()
    started = time.perf_counter()
    summary = build_demo(args.env, root, orders=args.orders)
    print(summary.render())
    print(f"demo sources for {args.env} built in {time.perf_counter() - started:.1f} s")
    return 0


def _env_name(text: str) -> str:
    """``--env``: any name with a params file, ``params/<env>.yaml`` (checked when it is read)."""
    try:
        return check_env_name(text)
    except RunbookError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_id(text: str) -> str:
    """``--run-id`` / ``--resume``: a folder name in outputs/<env>/, never a path."""
    try:
        return check_run_id(text)
    except RunbookError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per verb."""
    parser = argparse.ArgumentParser(prog="runbook", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error (scrubbed)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="execute runbook stages with papermill into outputs/<env>/<run_id>/"
    )
    run.add_argument("--env", required=True, type=_env_name)
    run.add_argument(
        "--stages", help="comma-separated subset, e.g. trial,full_load (default: all but rollback)"
    )
    run.add_argument(
        "--run-id", type=_run_id, help="re-run the named stages into this existing run folder"
    )
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        type=_run_id,
        help="continue a failed or killed run at its unfinished stage (and chunk)",
    )
    run.set_defaults(handler=_run)

    sync = commands.add_parser(
        "sync",
        help="apply what changed at the sources since the last load (incremental full-load stage)",
    )
    sync.add_argument("--env", required=True, type=_env_name)
    sync.set_defaults(handler=_sync)

    cutover = commands.add_parser(
        "cutover",
        help="freeze check, final sync, final validation and notices of a validated run",
    )
    cutover.add_argument("--env", required=True, type=_env_name)
    cutover.add_argument("--run-id", required=True, help="the run whose validation passed")
    cutover.set_defaults(handler=_cutover)

    watch = commands.add_parser(
        "watch", help="a run's progress from its manifest and checkpoints (read-only, any process)"
    )
    watch.add_argument("--env", required=True, type=_env_name)
    watch.add_argument("--run-id", help="default: the env's newest run")
    watch.add_argument("--once", action="store_true", help="print the view once and exit")
    watch.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes (default 2)"
    )
    watch.set_defaults(handler=_watch)

    status = commands.add_parser("status", help="list runs and their outcome")
    status.add_argument("--env", type=_env_name)
    status.set_defaults(handler=_status)

    rollback = commands.add_parser(
        "rollback", help="restore the target to its state before a run's load"
    )
    rollback.add_argument("--env", required=True, type=_env_name)
    rollback.add_argument("--run-id", required=True, type=_run_id)
    rollback.set_defaults(handler=_rollback)

    approve = commands.add_parser(
        "approve",
        help="approve a run's trial evidence and mapping spec (needed where requires_approval)",
    )
    approve.add_argument("--env", required=True, type=_env_name)
    approve.add_argument("--run-id", required=True, type=_run_id)
    approve.add_argument("--operator", required=True, help="who approves (recorded by name)")
    approve.add_argument(
        "--for",
        dest="approves",
        choices=("trial", "cut-over"),
        default="trial",
        help="trial (opens the full load and rollback; default) or cut-over (bound to validation)",
    )
    approve.set_defaults(handler=_approve)

    verify = commands.add_parser(
        "verify",
        help="re-hash a run's evidence, check the ledger chain and its signatures (exit 3 if changed)",
    )
    verify.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        nargs="?",
        help="outputs/<env>/<run_id> (default with --env: the newest)",
    )
    verify.add_argument(
        "--env", type=_env_name, help="the environment: its params say whether a key signs it"
    )
    verify.add_argument(
        "--fingerprint", help="the signing key's fingerprint from the change record (ed25519:...)"
    )
    verify.add_argument(
        "--against-target",
        action="store_true",
        help="also compare the ledger with its anchor in the target database (needs --env)",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=_verify)

    keygen = commands.add_parser(
        "keygen",
        help="print a new Ed25519 signing key pair (private key on stdout, for your secret store)",
    )
    keygen.set_defaults(handler=_keygen)

    report = commands.add_parser("report", help="(re)write a run's index.html")
    report.add_argument("run_dir", metavar="RUN_DIR", help="outputs/<env>/<run_id>")
    report.set_defaults(handler=_report)

    demo = commands.add_parser(
        "demo-data", help="build the demo legacy sources and an empty target"
    )
    demo.add_argument("--env", required=True, type=_env_name)
    demo.add_argument("--orders", type=int, help="override params demo.orders")
    demo.set_defaults(handler=_demo_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``runbook``; returns the exit code."""
    from runbook_lib.privacy.scrub import scrub_error, scrub_text

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except RunbookError as exc:
        print(f"runbook: {scrub_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("runbook: interrupted; a load resumes with runbook run --resume RUN", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: say so, scrubbed, and keep the exit code apart
        if args.debug:
            import traceback

            print(scrub_error(traceback.format_exc()), file=sys.stderr)
        print(
            f"runbook: unexpected error (a bug): {scrub_error(f'{type(exc).__name__}: {exc}')}\n"
            "  -> run again with --debug for the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
