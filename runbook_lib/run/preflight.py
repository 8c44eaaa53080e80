"""The pre-flight of ``runbook run``, ``sync`` and ``rollback``: bad input exits 2, nothing written.

All that can be checked before a run folder exists: params (strict) and the signing key they
name, the mapping spec's structure and its transform options (the assessment runs the transforms
before the mapping stage would report them), every spec system naming a connection in params,
then every connection opened once (``Connections.preflight``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runbook_lib.config.connections import Connections
from runbook_lib.config.params import LoadedParams, load_params
from runbook_lib.errors import ConnectionConfigError, RunbookError
from runbook_lib.evidence.trust import trust_for
from runbook_lib.mapping.check import check_transforms
from runbook_lib.mapping.model import load_spec, shown_path
from runbook_lib.stage_table import RUNBOOK_STAGES


def prepare(env: str, project_root: Path, stages: Sequence[str] = RUNBOOK_STAGES) -> LoadedParams:
    """The pre-flight: params, the spec's structure and every connection, before anything is written.

    Each connection is opened once (a wrong password, an unreachable host, a missing SQLite
    source are named here, exit 2); every system of the spec must name a connection in params.
    Checks against the live schemas are the mapping stage's, with evidence. A rollback alone
    needs only its target: a source being down must not keep a target from being restored.
    """
    params = load_params(env, project_root=project_root)
    connections = Connections(params)
    connections.check_resolvable()
    trust_for(params)  # the signing key is a params matter: refused before any connection opens
    if not params.mapping_path.is_file():
        raise RunbookError(f"{params.path.name}: field 'mapping': no file {params.model.mapping}")
    spec = load_spec(params.mapping_path)
    check_transforms(spec).raise_if_failed()
    unknown = [
        (f"systems.{system}", connection)
        for system, connection in spec.spec.systems.items()
        if connection not in params.sources
    ]
    if unknown:
        lines = "\n".join(
            f"  {path}: no connection {connection!r} in {params.path.name} sources"
            for path, connection in unknown
        )
        raise ConnectionConfigError(
            f"{shown_path(params.mapping_path)}: a system names a connection params lack:\n{lines}",
            hint=f"connections in {params.path.name} sources: {', '.join(params.sources)}",
        )
    connections.preflight(["target"] if list(stages) == ["rollback"] else None)
    return params
