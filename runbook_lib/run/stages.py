"""One function per runbook stage, shared by the notebooks and the CLI.

Each takes a ``StageContext`` and returns a result with ``render()`` (for people), ``to_dict()``
(to glue) and ``raise_if_failed()`` (the gate). Gates between stages read what the earlier stage
glued in the same run folder, never hidden state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa

from runbook_lib.assess.assessment import AssessmentReport, assess_sources
from runbook_lib.cutover import notices
from runbook_lib.cutover.freeze import freeze_check
from runbook_lib.cutover.notices import NoticesFile
from runbook_lib.cutover.plan import CutoverPlan, PlanVsActual, compare, plan_from_trial
from runbook_lib.cutover.record import CutoverRecord, Measure
from runbook_lib.cutover.rehearsal import Rehearsal, rehearse
from runbook_lib.db.bookkeeping import BOOKKEEPING, REJECTS_TABLE
from runbook_lib.db.schema_copy import copy_tables
from runbook_lib.errors import ApprovalRequiredError, GateFailedError, RunbookError
from runbook_lib.evidence.approvals import Approval, check_approval
from runbook_lib.evidence.provenance import operator_name
from runbook_lib.evidence.run_folder import list_runs, sha256_file
from runbook_lib.evidence.scraps import read_scraps
from runbook_lib.load import backup, history, loader, sync
from runbook_lib.mapping.check import SpecCheck, check_spec
from runbook_lib.mapping.compiled import ordered_sources
from runbook_lib.run.context import StageContext
from runbook_lib.scale import dask_engine
from runbook_lib.stage_table import STAGES
from runbook_lib.ui.preview import TargetPreview, preview_mapping
from runbook_lib.ui.progress import progress_callback
from runbook_lib.validate.validation import ValidationReport
from runbook_lib.validate.validation import validate as run_validation


def assessment(ctx: StageContext) -> AssessmentReport:
    """Profile and classify every source column; apply every quality rule the spec implies."""
    return assess_sources(ctx.source_engines(), ctx.spec)


def preview(ctx: StageContext, check: SpecCheck) -> list[TargetPreview]:
    """A few source rows through the mapping per target table, masked for evidence."""
    return preview_mapping(ctx.spec, ctx.source_engines(), check, masker=ctx.masker)


def mapping(ctx: StageContext) -> SpecCheck:
    """Check the mapping spec against the live source and target schemas."""
    sources = {system: sa.inspect(engine) for system, engine in ctx.source_engines().items()}
    return check_spec(
        ctx.spec, sources, sa.inspect(ctx.target_engine()), classify=ctx.masker.classification
    )


def require_approval(ctx: StageContext, stage: str) -> Approval | None:
    """The approval gate of ``stage`` (full load, rollback): a no-op unless params require one."""
    action = STAGES[stage].approval
    if action is None or not ctx.params.model.requires_approval:
        return None
    if ctx.run_dir is None:
        raise ApprovalRequiredError(
            f"env {ctx.env} requires an approval before the {action}, and there is no run folder"
        )
    return check_approval(
        ctx.run_dir,
        ctx.env,
        ctx.spec.sha256,
        action,
        operator=operator_name(ctx.params.model.operator),
        params_sha256=sha256_file(ctx.params.path),
        anchored=ctx.anchor().facts_of(ctx.run_id),
    )


def _require_approved_spec(ctx: StageContext) -> None:
    checked = ctx.read("mapping", "mapping_check")
    if not checked["passed"]:
        raise GateFailedError(
            "the mapping stage of this run did not pass", hint="fix the spec and re-run mapping"
        )
    if checked["spec_sha256"] != ctx.spec.sha256:
        raise GateFailedError(
            f"the mapping spec changed since the mapping stage checked it "
            f"({checked['spec_sha256'][:12]} → {ctx.spec.sha256[:12]})",
            hint=f"re-run: runbook run --env {ctx.env} --run-id {ctx.run_id} --stages mapping,trial",
        )


@dataclass(frozen=True)
class TrialResult:
    """The trial load and its reconciliation, on the scratch target."""

    load: loader.LoadReport
    validation: ValidationReport
    # what the scratch target could not take over from the target (another dialect's CHECKs)
    scratch_notes: tuple[str, ...] = ()
    plan: CutoverPlan | None = None  # the full load and downtime projected from this trial
    rehearsal: Rehearsal | None = None  # the scratch target rolled back: timed, proven

    @property
    def passed(self) -> bool:
        rehearsed = self.rehearsal is None or self.rehearsal.passed
        return self.load.passed and self.validation.passed and rehearsed

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "load": self.load.to_dict(),
            "validation": self.validation.to_dict(),
            "scratch_target_notes": list(self.scratch_notes),
            "cutover_plan": self.plan.to_dict() if self.plan else None,
            "rollback_rehearsal": self.rehearsal.to_dict() if self.rehearsal else None,
        }

    def render(self) -> str:
        notes = "".join(f"\nnot on the trial target: {note}" for note in self.scratch_notes)
        return f"{self.load.render()}\n\n{self.validation.render()}{notes}"

    def render_cutover(self) -> str:
        """The rehearsal and the plan (timings: they differ from one run to the next)."""
        return "\n\n".join(x.render() for x in (self.rehearsal, self.plan) if x is not None)

    def raise_if_failed(self) -> None:
        self.load.raise_if_failed()
        self.validation.raise_if_failed()
        if self.rehearsal is not None and not self.rehearsal.passed:
            raise GateFailedError(
                "the rollback rehearsal did not restore the trial target exactly",
                hint="a rollback of the full load would not either: read the trial notebook "
                "before loading",
            )


def reset_scratch_target(ctx: StageContext) -> list[str]:
    """Give the trial target empty copies of the tables a load touches (the target's own DDL).

    Returns what the copy could not carry over (another dialect's CHECK text, for one).
    """
    scratch = ctx.trial_engine()
    present = set(sa.inspect(scratch).get_table_names())
    quote = scratch.dialect.identifier_preparer.quote
    with scratch.begin() as connection:
        for name in BOOKKEEPING.tables:
            if name in present:
                connection.execute(sa.text(f"DROP TABLE {quote(name)}"))
    return copy_tables(ctx.target_engine(), ctx.spec.touched_tables(), scratch)


def trial(ctx: StageContext) -> TrialResult:
    """Load a deterministic, referentially whole sample into the scratch target and validate it."""
    _require_approved_spec(ctx)
    notes = reset_scratch_target(ctx)
    # the empty scratch tables, as a full load's snapshot of an empty target: what the rehearsal
    # restores
    before = backup.snapshot(ctx.trial_engine(), ctx.spec.touched_tables(), ctx.run_id)
    settings = ctx.params.model
    percent = settings.trial.sample_percent
    report = loader.load(
        ctx.spec,
        ctx.source_engines(),
        ctx.trial_engine(),
        run_id=ctx.run_id,
        mode="trial",
        chunk_size=settings.load.chunk_size,
        max_reject_rate=settings.gates.max_reject_rate,
        target_label=ctx.label("trial_target"),
        sample_percent=percent,
        progress=progress_callback(ctx.interactive),
        suspend_foreign_keys=settings.load.suspend_foreign_keys,
    )
    validation = run_validation(
        ctx.spec,
        ctx.source_engines(),
        ctx.trial_engine(),
        run_id=ctx.run_id,
        target_label=ctx.label("trial_target"),
        chunk_size=settings.load.chunk_size,
        max_unexplained_differences=settings.gates.max_unexplained_differences,
        sample_percent=percent,
        max_reject_rate=settings.gates.max_reject_rate,
        progress=progress_callback(ctx.interactive),
        masker=ctx.masker,
        max_new_check_violations=settings.gates.max_new_check_violations,
    )
    full_rows = _full_rows(ctx)
    rehearsal = rehearse(ctx.trial_engine(), before, full_rows=sum(full_rows.values()))
    cutover = settings.cutover
    plan = plan_from_trial(
        report.to_dict(),
        validation.to_dict(),
        full_rows,
        trial_target=ctx.label("trial_target"),
        target=ctx.label("target"),
        expected_changes=cutover.expected_changes,
        freeze_check_seconds=cutover.freeze_window,
        calibration=_calibration(ctx),
        rto_seconds=rehearsal.projected_rto_seconds,
    )
    return TrialResult(report, validation, tuple(notes), plan, rehearsal)


def _full_rows(ctx: StageContext) -> dict[str, int]:
    """Rows each source holds in full (after its named filters): what the full load reads."""
    engines = ctx.source_engines()
    found = {}
    for pipeline in ordered_sources(ctx.spec):
        counts = pipeline.count(engines[pipeline.system])
        filtered = sum(v for k, v in counts.items() if k.startswith("filtered:"))
        found[f"{pipeline.system}.{pipeline.table}"] = counts["source_rows"] - filtered
    return found


def _calibration(ctx: StageContext) -> float | None:
    """Actual ÷ projected of this environment's last full load that recorded one."""
    for folder in reversed(list_runs(ctx.params.project_root, ctx.env)):
        if ctx.run_dir is not None and folder.name == ctx.run_id:
            continue
        found = read_scraps(folder / STAGES["full_load"].notebook).get("plan_vs_actual")
        if found and found.get("next_calibration"):
            return float(found["next_calibration"])
    return None


def plan_vs_actual(ctx: StageContext, load: loader.LoadReport) -> PlanVsActual | None:
    """The trial's projection beside this full load (None for a sync or without a plan)."""
    if not isinstance(load, loader.LoadReport):
        return None
    plan = ctx.read("trial", "trial", default={}).get("cutover_plan")
    return compare(plan, load.to_dict()) if plan else None


def backup_target(ctx: StageContext) -> backup.Snapshot:
    """Snapshot the target tables the load will touch; refuses without a passed trial.

    The trial must have passed by the target's anchored record of this run, with the very
    notebook whose scraps are read here.
    """
    require_approval(ctx, "full_load")
    _require_approved_spec(ctx)
    taken = backup.find_snapshot(ctx.target_engine(), ctx.run_id)
    if taken is not None:  # a resumed load: the target already holds this run's partial output
        return taken
    tables = ctx.spec.touched_tables()
    if ctx.load_mode == "incremental":  # a sync adds to a loaded target: snapshot it as it is
        return backup.snapshot(ctx.target_engine(), sync_snapshot_tables(ctx.spec), ctx.run_id)
    # the target's record first: a trial notebook edited and re-sealed in outputs/ is refused
    ctx.anchor().vouch_for_stage(ctx.run_dir, "trial", STAGES["trial"].notebook)
    trial_result = ctx.read("trial", "trial")
    if not trial_result["passed"]:
        raise GateFailedError(
            f"the trial of run {ctx.run_id} did not pass: the full load will not start",
            hint="fix what the trial notebook shows, then re-run the trial",
        )
    loader.refuse_non_empty_target(ctx.target_engine(), tables)
    return backup.snapshot(ctx.target_engine(), tables, ctx.run_id)


def sync_snapshot_tables(spec) -> list[str]:
    """What a sync's snapshot holds: the touched tables, and maybe the reject table.

    Where a sync deletes rows gone from the source, their rejects go with them and must come back.
    """
    tables = spec.touched_tables()
    applies = any(source.deletes == "apply" for *_rest, source in spec.sources())
    return [*tables, REJECTS_TABLE] if applies else tables


def full_load(ctx: StageContext) -> loader.LoadReport | sync.SyncReport:
    """Load everything into the target (after ``backup_target``), or, in incremental mode, sync.

    With ``engine: dask`` in params the full load runs as key-range partitions on a Dask cluster
    (``runbook_lib.scale``); a sync and the trial stay in this process.
    """
    settings = ctx.params.model
    if ctx.load_mode == "incremental":
        return incremental_sync(ctx)
    common = _load_options(ctx)
    if settings.engine is not None:  # engine: dask — key-range partitions as cluster tasks
        del common["progress"]
        return dask_engine.load(
            ctx.spec,
            ctx.source_engines(),
            ctx.target_engine(),
            params=ctx.params,
            mode="full",
            suspend_foreign_keys=settings.load.suspend_foreign_keys,
            **common,
        )
    return loader.load(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        mode="full",
        suspend_foreign_keys=settings.load.suspend_foreign_keys,
        **common,
    )


def _load_options(ctx: StageContext) -> dict:
    """What every load and sync of a stage runs with, from params."""
    settings = ctx.params.model
    return {
        "run_id": ctx.run_id,
        "chunk_size": settings.load.chunk_size,
        "max_reject_rate": settings.gates.max_reject_rate,
        "target_label": ctx.label("target"),
        "progress": progress_callback(ctx.interactive),
    }


def incremental_sync(ctx: StageContext) -> sync.SyncReport:
    """Apply what changed at the sources since the last load or sync (``runbook sync``, cut-over)."""
    return sync.sync(ctx.spec, ctx.source_engines(), ctx.target_engine(), **_load_options(ctx))


def validation(ctx: StageContext) -> ValidationReport:
    """Reconcile the whole target with the sources through the mapping."""
    settings = ctx.params.model
    validate = run_validation
    if settings.engine is not None:  # engine: dask — each source group's check a cluster task
        validate = partial(dask_engine.validate, params=ctx.params)
    return validate(
        ctx.spec,
        ctx.source_engines(),
        ctx.target_engine(),
        run_id=ctx.run_id,
        target_label=ctx.label("target"),
        chunk_size=settings.load.chunk_size,
        max_unexplained_differences=settings.gates.max_unexplained_differences,
        max_reject_rate=settings.gates.max_reject_rate,
        progress=progress_callback(ctx.interactive),
        masker=ctx.masker,
        max_new_check_violations=settings.gates.max_new_check_violations,
    )


def rollback(ctx: StageContext) -> backup.RestoreReport:
    """Restore the target to its state before this run's full load, proven by table hashes.

    Refused while a later run's load or sync is in the target (roll back the newest first).
    """
    require_approval(ctx, "rollback")
    # the target's own record, not the notebook: a killed load may never have saved its notebook
    taken = backup.find_snapshot(ctx.target_engine(), ctx.run_id)
    if taken is None:
        raise RunbookError(
            f"run {ctx.run_id} took no snapshot before its load: nothing to roll back to",
            hint=f"runbook status --env {ctx.env} lists the runs; roll back the one that loaded",
        )
    history.refuse_out_of_order(ctx.target_engine(), ctx.run_id, env=ctx.env)
    return backup.restore(ctx.target_engine(), taken)


def cutover(ctx: StageContext) -> CutoverRecord:
    """The switch: freeze check, final sync, id counters, final validation, notices, the record.

    Starts only after this run's validation passed (and, where params require approval, with a
    cut-over approval bound to that validation's evidence); every measure is gated by the
    ``cutover:`` limits in params.
    """
    approval = require_approval(ctx, "cutover")
    validated = ctx.read("validation", "validation")
    if not validated.get("passed"):
        raise GateFailedError(
            f"the validation of run {ctx.run_id} did not pass: no cut-over",
            hint="fix what 04_validation shows and validate again",
        )
    trial = ctx.read("trial", "trial", default={})
    settings = ctx.params.model
    limits = settings.cutover
    sources, target = ctx.source_engines(), ctx.target_engine()
    frozen_at = time.time()
    freeze = freeze_check(ctx.spec, sources, target, window_seconds=limits.freeze_window)
    # the final sync can delete rows (deletes: apply): its own snapshot makes it reversible
    backup.snapshot(target, sync_snapshot_tables(ctx.spec), f"{ctx.run_id}-cutover")
    captured_at = time.time()
    synced = incremental_sync(ctx)
    final = validation(ctx)  # the validation stage's own check, on its engine (local or dask)
    validated_at = time.time()
    rehearsal = trial.get("rollback_rehearsal") or {}
    measures = (
        Measure("downtime", validated_at - frozen_at, limits.max_downtime),
        Measure("rpo", validated_at - captured_at, limits.rpo),
        Measure("rto", rehearsal.get("projected_rto_seconds"), limits.rto),
    )
    return CutoverRecord(
        run_id=ctx.run_id,
        freeze=freeze.to_dict(),
        sync=synced.to_dict(),
        validation=final.to_dict(),
        measures=measures,
        counters=synced.counters,
        notices=_notices(ctx).to_dict() if limits.notices.path else None,
        approval=approval.to_dict() if approval else None,
    )


def _notices(ctx: StageContext) -> NoticesFile:
    """The per-person notices, written where params say (never under outputs/)."""
    settings = ctx.params.model.cutover.notices
    path = ctx.params.resolve(settings.path.format(env=ctx.env, run_id=ctx.run_id))
    return notices.write(
        notices.collect(ctx.spec, ctx.source_engines(), ctx.target_engine(), ctx.masker),
        path,
        outputs=ctx.params.project_root / "outputs",
        templates=settings.templates,
        masker=ctx.masker,
    )
