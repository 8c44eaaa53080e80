"""What a stage notebook's kernel is set up with before its first call into the library.

Two things, both on the running IPython shell (no-ops outside one): tracebacks are scrubbed of
secrets before the kernel sends them (``scrub.protect_kernel``), and an exception that ends a
cell is glued as data (``stage_table.FAILURE``: type, message, hint, exit code) before its
traceback is shown, so the runner reads why a stage failed instead of parsing the traceback.
"""

from __future__ import annotations

from runbook_lib.errors import failure_data
from runbook_lib.evidence.scraps import glue
from runbook_lib.privacy import scrub
from runbook_lib.stage_table import FAILURE


def prepare_kernel() -> bool:
    """Scrub tracebacks and record failures as data in the running kernel; False outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    scrub.protect_kernel()
    if getattr(shell, "_runbook_records_failures", False):
        return True
    shell.set_custom_exc((Exception,), _record_failure)
    shell._runbook_records_failures = True
    return True


def _record_failure(shell, etype, value, tb, tb_offset=None):
    """Glue the failure, then show the traceback as IPython would (scrubbed on its way out)."""
    data = failure_data(value)
    data["message"] = scrub.scrub_error(data["message"])
    if data.get("hint"):
        data["hint"] = scrub.scrub_error(data["hint"])
    glue(FAILURE, data)
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return []
