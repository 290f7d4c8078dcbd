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


UNKNOWN_USERNAMES = b"oidc-provider unknown usernames v1"


def keyed(secret_key: str, purpose: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under a key derived from ``secret_key`` for ``purpose``: the same
    value gives the same digest (so records can be grouped), and without the secret key a
    low-entropy value (a password typed in the username field) cannot be guessed back from it."""
    key = hmac.new(secret_key.encode(), purpose, hashlib.sha256).digest()
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def unknown_username(secret_key: str, typed: str) -> str:
    """What the audit trail keeps of a typed username that matches no account (it may be a
    password typed in the wrong field): ``unknown:`` and 32 hex digits of its keyed digest."""
    return "unknown:" + keyed(secret_key, UNKNOWN_USERNAMES, typed.strip().lower())[:32]
