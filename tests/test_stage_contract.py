"""The stage contract: a stage glues and reads only what the stage table declares, and a failing
cell reaches the runner as data (type, message, hint, exit code), scrubbed."""

from __future__ import annotations

import pytest
from helpers import ci_context

from runbook_lib.errors import GateFailedError, RunbookError, failure_data, failure_text
from runbook_lib.stage_table import RUNBOOK_STAGES, STAGES, stage


def test_the_runbook_runs_every_stage_but_rollback_and_cutover_in_order():
    assert RUNBOOK_STAGES == ("assessment", "mapping", "trial", "full_load", "validation")
    assert [s.notebook for s in STAGES.values()] == sorted(s.notebook for s in STAGES.values())
    assert {s.name for s in STAGES.values() if s.approval} == {"full_load", "rollback", "cutover"}


def test_every_read_names_a_scrap_an_earlier_stage_glues():
    order = list(STAGES)
    for current in STAGES.values():
        for earlier, scrap in current.reads:
            assert order.index(earlier) < order.index(current.name), (current.name, earlier)
            assert scrap in STAGES[earlier].glues, (current.name, earlier, scrap)


def test_an_unknown_stage_is_a_user_error_naming_the_stages():
    with pytest.raises(RunbookError, match="unknown stage 'trail'") as caught:
        stage("trail")
    assert "full_load" in caught.value.hint


def test_a_stage_may_glue_only_what_its_row_declares(project):
    ctx = ci_context(project, stage="trial")
    with pytest.raises(RunbookError, match="does not declare that it glues 'full_load'"):
        ctx.glue("full_load", {})


def test_a_stage_may_read_only_what_its_row_declares(project):
    ctx = ci_context(project, project / "outputs" / "ci" / "RUN", stage="validation")
    with pytest.raises(RunbookError, match="does not declare that it reads trial.trial"):
        ctx.read("trial", "trial")
    # an optional read with no run folder behind it gives its default
    assert ctx.read("assessment", "classification", default=None) is None


def test_a_failure_travels_as_data_with_its_next_step():
    data = failure_data(GateFailedError("trial load: 3 rows unaccounted", hint="re-run the trial"))
    assert data == {
        "type": "GateFailedError",
        "message": "trial load: 3 rows unaccounted",
        "hint": "re-run the trial",
        "exit_code": 1,
        "expected": True,
    }
    assert failure_text(data) == "GateFailedError: trial load: 3 rows unaccounted"
    bug = failure_data(KeyError("x"))
    assert bug["exit_code"] == 70 and bug["expected"] is False


def test_the_kernel_glues_a_cells_failure_scrubbed_before_showing_its_traceback(monkeypatch):
    from runbook_lib.run import kernel

    glued, shown = {}, []

    class Shell:
        kernel = object()

        def set_custom_exc(self, types, handler):
            self.handler = handler

        def _showtraceback(self, etype, evalue, stb):  # what scrub.protect_kernel wraps
            shown.append(str(evalue))

        def showtraceback(self, exc_tuple, tb_offset=None):
            shown.append(str(exc_tuple[1]))

    shell = Shell()
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    monkeypatch.setattr(kernel, "glue", lambda name, value: glued.__setitem__(name, value))
    assert kernel.prepare_kernel() is True
    error = RunbookError("cannot open postgresql://u:Pw123456@h/db", hint="check the URL")
    shell.handler(shell, RunbookError, error, None)
    assert glued["failure"]["type"] == "RunbookError"
    assert (
        "Pw123456" not in glued["failure"]["message"] and "u:***@h" in glued["failure"]["message"]
    )
    assert glued["failure"]["hint"] == "check the URL" and shown
