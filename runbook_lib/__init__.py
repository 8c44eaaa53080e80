"""Migration runbook toolkit: turn a relational data migration into an auditable runbook.

The rooms, each a subpackage by concern (the README's Architecture section draws the data flow):
``config`` params and connections; ``mapping`` the mapping spec, its check and its compiled form;
``transforms`` the named value transforms; ``db`` per-dialect knowledge; ``assess``, ``load`` and
``validate`` the three kinds of work on the data; ``evidence`` everything an auditor reads;
``privacy`` classification, masking and scrubbing; ``run`` the stages and the runner; ``ui`` what
only a person in JupyterLab sees. ``errors``, ``stage_table`` and ``cli`` sit at the top.
"""
