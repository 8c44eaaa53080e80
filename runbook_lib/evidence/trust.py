"""What makes a seal trustworthy beyond the files themselves: the environment's signing key.

``trust_for(params)`` reads it once per command (the private key from the environment variable
the params name, never from a file of the project); ``record`` passes it to every seal, and the
manifest says which key signs it (``signing``: the variable's name and the key's fingerprint,
or plainly that nothing is signed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook_lib.evidence import signing

if TYPE_CHECKING:
    from runbook_lib.config.params import LoadedParams


@dataclass(frozen=True)
class Trust:
    """How this command's seals are signed."""

    signer: signing.Signer | None = None

    def secrets(self) -> frozenset[str]:
        """The private key's text, for the scrubbers (whatever the variable is called)."""
        import os

        if self.signer is None:
            return frozenset()
        return frozenset({os.environ.get(self.signer.key_env, "").strip()} - {""})

    def manifest_fields(self) -> dict:
        """What a manifest records about it (no secret: a variable's name, a fingerprint)."""
        return {"signing": self.signer.record() if self.signer else signing.unsigned_record()}


def trust_for(params: LoadedParams) -> Trust:
    """The signing key params name, read from its environment variable (an error if unset)."""
    key_env = params.model.evidence.signing_key_env
    return Trust(signer=signing.signer_from_env(key_env) if key_env else None)
