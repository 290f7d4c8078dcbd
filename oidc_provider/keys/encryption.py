"""Encryption at rest: AES-256-GCM under a key derived from ``OIDC_SECRET_KEY`` with
HKDF-SHA256, one derived key per purpose (signing keys, TOTP secrets, database credentials, refresh-token
successors kept for a retry).
The caller binds each ciphertext to its row with associated data (a ``kid``, an account's
``sub``), so a ciphertext moved to another row does not open.

While ``OIDC_SECRET_KEY`` is being changed, ``OIDC_SECRET_KEY_PREVIOUS`` also opens what was
sealed under the old key (the current key is tried first); new values are always sealed under
the current key. ``keys/rekey.py`` re-seals what is stored."""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
SIGNING_KEYS = b"oidc-provider signing keys v1"
TOTP_SECRETS = b"oidc-provider totp secrets v1"
DATABASE_CREDENTIALS = b"oidc-provider database credentials v1"
# A rotated refresh token's successor, kept for OIDC_REFRESH_REUSE_GRACE_SECONDS (oauth/tokens.py).
REFRESH_SUCCESSORS = b"oidc-provider refresh successors v1"
MIN_SECRET_BYTES = 32


def _aead(secret_key: str, purpose: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return AESGCM(hkdf.derive(secret_key.encode()))


class Sealer:
    def __init__(self, secret_key: str, purpose: bytes = SIGNING_KEYS, previous: str = ""):
        self._aeads = [_aead(key, purpose) for key in (secret_key, previous) if key]

    @classmethod
    def for_settings(cls, settings, purpose: bytes) -> "Sealer":
        """Seals under ``OIDC_SECRET_KEY``; opens with it, then with ``OIDC_SECRET_KEY_PREVIOUS``."""
        return cls(settings.secret_key, purpose, settings.secret_key_previous)

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aeads[0].encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        """The plaintext; InvalidTag when no key opens it (another key, or another row's
        ciphertext), ValueError when it is not a ciphertext of ours at all."""
        if not isinstance(sealed, bytes | bytearray | memoryview) or bytes(sealed[:1]) != _VERSION:
            raise ValueError("unknown ciphertext version")
        sealed = bytes(sealed)
        for aead in self._aeads:
            try:
                return aead.decrypt(sealed[1:13], sealed[13:], associated)
            except InvalidTag:
                continue
        raise InvalidTag()

    def opens(self, sealed: bytes, associated: bytes) -> bool:
        try:
            self.open(sealed, associated)
        except (InvalidTag, ValueError):
            return False
        return True
