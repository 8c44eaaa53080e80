"""Ed25519 signatures of the ledger: not only *whether* evidence changed, but *who* could add it.

Without a key the ledger is self-consistent by construction: anyone able to write ``outputs/``
can change an artifact, rewrite its hash in the manifest and append a matching line. With
``evidence: {signing_key_env: NAME}`` in params, every ledger line carries the public key
(``key``) and an Ed25519 signature (``sig``) of its ``entry_sha256``, made with the private key
read from the environment variable ``NAME`` (never from a file of the project): a line appended
without that key is unsigned or signed by another key, and ``verify`` says so.

``runbook keygen`` prints a new private key (for the operator's secret store) and its public
fingerprint. A private key is the base64 of its 32 raw bytes; a PKCS#8 PEM (``openssl genpkey
-algorithm ed25519``) is read too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runbook_lib.errors import SigningKeyError

ALGORITHM = "ed25519"
# what a ledger line's signature covers: its entry_sha256, under a name no other use shares
_CONTEXT = b"runbook-ledger-line-v1:"
UNSIGNED_NOTE = (
    "the ledger is not signed: this evidence is tamper-evident only against accidents, not "
    "against an insider who can write outputs/ (anyone able to write it can rewrite an artifact, "
    "its manifest and a matching ledger line); configure params evidence.signing_key_env"
)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as a ledger line holds it: base64 of its 32 raw bytes."""
    return base64.b64encode(_raw_public(key)).decode("ascii")


def fingerprint(public_key: str) -> str:
    """``ed25519:`` and the first 32 hex digits of the sha256 of the raw public key."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        raw = public_key.encode("utf-8")  # not a key: a fingerprint that matches no real one
    return f"{ALGORITHM}:{hashlib.sha256(raw).hexdigest()[:32]}"


def _message(entry_sha256: str) -> bytes:
    return _CONTEXT + entry_sha256.encode("ascii")


@dataclass(frozen=True)
class Signer:
    """The environment's private key, read from the variable the params name."""

    key_env: str
    private: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        return public_key_text(self.private.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, entry_sha256: str) -> str:
        """The base64 signature of a ledger line's ``entry_sha256``."""
        return base64.b64encode(self.private.sign(_message(entry_sha256))).decode("ascii")

    def record(self) -> dict:
        """What a manifest says about its signing: the variable's name and the key's fingerprint."""
        return {"algorithm": ALGORITHM, "key_env": self.key_env, "fingerprint": self.fingerprint}


def unsigned_record() -> dict:
    """What a manifest says when no key is configured (shown plainly by the report)."""
    return {"algorithm": None, "key_env": None, "fingerprint": None, "note": UNSIGNED_NOTE}


def parse_private_key(text: str, where: str) -> Ed25519PrivateKey:
    """A private key from its base64 (32 raw bytes) or PKCS#8 PEM text; ``where`` names its source."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return key
        raw = base64.b64decode(text, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, binascii.Error):
        raise SigningKeyError(
            f"{where} does not hold an Ed25519 private key (base64 of 32 bytes, or a PEM)",
            hint="runbook keygen prints a new one; store it in your secret store",
        ) from None


def signer_from_env(key_env: str, environ: Mapping[str, str] | None = None) -> Signer:
    """The signer whose private key is in the environment variable ``key_env``."""
    environ = os.environ if environ is None else environ
    value = environ.get(key_env, "")
    if not value.strip():
        raise SigningKeyError(
            f"params evidence.signing_key_env names {key_env}, which is not set: the evidence "
            "of this environment is signed, so nothing can be recorded without the key",
            hint=f"export {key_env} from your secret store (runbook keygen makes a key pair)",
        )
    return Signer(key_env, parse_private_key(value, f"environment variable {key_env}"))


def signature_valid(public_key: str, entry_sha256: str, signature: str) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of a line's ``entry_sha256``."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), _message(entry_sha256))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True


@dataclass(frozen=True)
class KeyPair:
    """A new key pair from ``runbook keygen``: the private key is shown once, then stored away."""

    private_key: str
    public_key: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def generate() -> KeyPair:
    """A new Ed25519 key pair (the private key as base64 of its 32 raw bytes)."""
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return KeyPair(base64.b64encode(raw).decode("ascii"), public_key_text(private.public_key()))
