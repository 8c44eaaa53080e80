"""What makes a seal trustworthy beyond the files themselves: a signing key and an anchor.

``trust_for(params)`` reads both once per command: the private key from the environment variable
the params name (never from a file of the project) and the target database, where every ledger
line is anchored (``evidence.anchor``). ``record`` passes them to every seal, and the manifest
says which key signs it (``signing``: the variable's name and the key's fingerprint, or plainly
that nothing is signed) and where it is anchored (``anchor``: the connection's name and dialect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook_lib.evidence import signing
from runbook_lib.evidence.anchor import Anchor

if TYPE_CHECKING:
    from runbook_lib.config.params import LoadedParams


@dataclass(frozen=True)
class Trust:
    """How this command's seals are signed and anchored."""

    signer: signing.Signer | None = None
    anchor: Anchor | None = None

    def secrets(self) -> frozenset[str]:
        """The private key's text, for the scrubbers (whatever the variable is called)."""
        import os

        if self.signer is None:
            return frozenset()
        return frozenset({os.environ.get(self.signer.key_env, "").strip()} - {""})

    def manifest_fields(self) -> dict:
        """What a manifest records about it (no secret: a variable's name, a fingerprint)."""
        fields = {"signing": self.signer.record() if self.signer else signing.unsigned_record()}
        if self.anchor is not None:
            fields["anchor"] = self.anchor.record()
        return fields


def anchor_for(params: LoadedParams) -> Anchor:
    """The ledger's anchor in ``params``' target database (no pooled connection is kept)."""
    import sqlalchemy as sa

    from runbook_lib.config.connections import Connections, make_engine

    url = Connections(params).url("target")
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    return Anchor(engine, params.env, f"target ({url.get_backend_name()})")


def trust_for(params: LoadedParams) -> Trust:
    """The signing key params name (read from its variable; an error if unset) and the anchor."""
    key_env = params.model.evidence.signing_key_env
    return Trust(
        signer=signing.signer_from_env(key_env) if key_env else None, anchor=anchor_for(params)
    )
