"""Random secrets and their digests (DESIGN: codes, refresh tokens, client secrets and session
ids are >= 256-bit random values stored only as SHA-256 digests)."""

import hashlib
import hmac
import secrets


def new_secret() -> str:
    """43 URL-safe characters carrying 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def new_client_id() -> str:
    """A public identifier: 128 random bits in hex, so it never starts with '-' (which command
    lines would read as an option) and needs no escaping anywhere."""
    return secrets.token_hex(16)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def matches(value: str, expected_digest: str | None) -> bool:
    if not expected_digest or value is None:
        return False
    return hmac.compare_digest(digest(value), expected_digest)
