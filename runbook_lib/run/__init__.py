"""Running the runbook.

A stage's context, the stage functions the notebooks and the CLI share, the kernel set-up, and
the runner that executes the notebooks with papermill.
"""
