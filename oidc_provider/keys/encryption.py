"""Encryption at rest for private keys: AES-256-GCM under a key derived from
``OIDC_SECRET_KEY`` with HKDF-SHA256. The ``kid`` is bound as associated data, so a ciphertext
moved to another row does not decrypt."""

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


class Sealer:
    def __init__(self, secret_key: str, purpose: bytes = b"oidc-provider signing keys v1"):
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
        self._aead = AESGCM(hkdf.derive(secret_key.encode()))

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        if sealed[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(sealed[1:13], sealed[13:], associated)
