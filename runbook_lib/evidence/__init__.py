"""Evidence: everything an auditor reads.

Run folders and manifests, scraps, HTML, figures, the ledger and its verification, approvals
and the index page; ``record`` is the one writer of a run's evidence.
"""
