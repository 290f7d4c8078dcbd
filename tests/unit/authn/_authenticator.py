"""A software WebAuthn authenticator for tests: it builds what a browser hands the page after
``navigator.credentials.create()`` / ``get()`` (the JSON of W3C WebAuthn Level 3 §5.1
``toJSON()``), byte for byte, with an EC P-256 key generated at test time.

Layouts: §6.1 authenticator data, §6.5.1 attested credential data, §6.5.4 attestation object
(fmt "none", §8.7), §5.8.1 client data, and §6.3.3 assertion signature over
``authenticatorData || SHA-256(clientDataJSON)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# §6.1 flags
UP, UV, BE, BS, AT, ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80
AAGUID = bytes.fromhex("adce000235bcc60a648b0b25f1f05503")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_data(*, type: str, challenge: bytes, origin: str) -> bytes:
    return json.dumps({"type": type, "challenge": b64url(challenge), "origin": origin,
                       "crossOrigin": False}).encode()


@dataclass
class SoftwareAuthenticator:
    """One credential on one authenticator. ``backup_eligible`` makes it a synced passkey."""

    rp_id: str = "localhost"
    origin: str = "http://localhost:5000"
    backup_eligible: bool = False
    backed_up: bool = False
    sign_count: int = 0
    user_handle: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def cose_public_key(self) -> bytes:
        """§6.5.1.1 COSE_Key: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y."""
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def flags(self, *, up: bool = True, uv: bool = True, be: bool | None = None, bs: bool | None = None) -> int:
        be = self.backup_eligible if be is None else be
        bs = self.backed_up if bs is None else bs
        return (UP if up else 0) | (UV if uv else 0) | (BE if be else 0) | (BS if bs else 0)

    def authenticator_data(self, *, flags: int, sign_count: int, rp_id: str | None = None,
                           attested: bytes = b"") -> bytes:
        rp_id_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        return rp_id_hash + bytes([flags | (AT if attested else 0)]) + struct.pack(">I", sign_count) + attested

    def attested_credential_data(self) -> bytes:
        return AAGUID + struct.pack(">H", len(self.credential_id)) + self.credential_id + self.cose_public_key

    def create(self, challenge: bytes, *, rp_id: str | None = None, origin: str | None = None,
               type: str = "webauthn.create", transports: tuple[str, ...] = ("hybrid", "internal"),
               **flag_overrides) -> dict:
        """A RegistrationResponseJSON with a "none" attestation."""
        auth_data = self.authenticator_data(flags=self.flags(**flag_overrides), sign_count=self.sign_count,
                                            rp_id=rp_id, attested=self.attested_credential_data())
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        cdata = client_data(type=type, challenge=challenge, origin=origin or self.origin)
        return {
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(cdata), "attestationObject": b64url(attestation_object),
                         "transports": list(transports)},
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
        }

    def get(self, challenge: bytes, *, rp_id: str | None = None, origin: str | None = None,
            type: str = "webauthn.get", sign_count: int | None = None, signing_key=None,
            **flag_overrides) -> dict:
        """An AuthenticationResponseJSON. The counter goes up by one per assertion unless
        ``sign_count`` is given (synced passkeys send 0)."""
        if sign_count is None:
            self.sign_count += 1
            sign_count = self.sign_count
        auth_data = self.authenticator_data(flags=self.flags(**flag_overrides), sign_count=sign_count, rp_id=rp_id)
        cdata = client_data(type=type, challenge=challenge, origin=origin or self.origin)
        signature = (signing_key or self.key).sign(auth_data + hashlib.sha256(cdata).digest(),
                                                   ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(cdata), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": b64url(self.user_handle)},
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
        }
