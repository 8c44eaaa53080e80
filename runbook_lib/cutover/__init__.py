"""The cut-over: the runbook's last mile.

The plan projected from the trial and the rollback rehearsal that measures the RTO (``plan``,
``rehearsal``); the freeze check, the final sync with its RPO and the cut-over record gated by
``cutover:`` limits (``freeze``, ``record``); the per-person notices of what the migration changed
(``notices``).
"""
