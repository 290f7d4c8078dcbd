"""Sealing at rest (keys/encryption.py) and the previous key accepted during a change of
OIDC_SECRET_KEY: values open with the current key, then the previous one; new values are
always sealed under the current key."""

import pytest
from cryptography.exceptions import InvalidTag

from oidc_provider.keys.encryption import DATABASE_CREDENTIALS, SIGNING_KEYS, TOTP_SECRETS, Sealer
from oidc_provider.settings import Settings, SettingsError

OLD, NEW, OTHER = "old-secret-key-" + "o" * 32, "new-secret-key-" + "n" * 32, "other-secret-key-" + "x" * 32


@pytest.mark.parametrize(("sealed_under", "current", "previous", "opens"), [
    (OLD, OLD, "", True),
    (OLD, NEW, "", False),
    (OLD, NEW, OLD, True),     # during a change: the previous key opens what it sealed
    (NEW, NEW, OLD, True),
    (OTHER, NEW, OLD, False),
    (NEW, OLD, NEW, True),
])
def test_open_tries_the_current_key_then_the_previous(sealed_under, current, previous, opens):
    sealed = Sealer(sealed_under, TOTP_SECRETS).seal(b"secret", b"sub-1")
    assert Sealer(current, TOTP_SECRETS, previous).opens(sealed, b"sub-1") is opens


def test_new_values_are_sealed_under_the_current_key_only():
    sealed = Sealer(NEW, SIGNING_KEYS, OLD).seal(b"private", b"kid")
    assert Sealer(NEW, SIGNING_KEYS).open(sealed, b"kid") == b"private"
    with pytest.raises(InvalidTag):
        Sealer(OLD, SIGNING_KEYS).open(sealed, b"kid")


@pytest.mark.parametrize(("purpose", "associated"), [(DATABASE_CREDENTIALS, b"kid"), (SIGNING_KEYS, b"other-kid")])
def test_another_purpose_or_row_does_not_open(purpose, associated):
    sealed = Sealer(OLD, SIGNING_KEYS).seal(b"private", b"kid")
    assert not Sealer(OLD, purpose, NEW).opens(sealed, associated)


@pytest.mark.parametrize("garbage", [b"", b"\x02" + b"x" * 40, "not bytes", None])
def test_what_is_not_a_ciphertext_of_ours_does_not_open(garbage):
    assert not Sealer(OLD).opens(garbage, b"kid")


@pytest.mark.parametrize(("previous", "error"), [
    ("short", "OIDC_SECRET_KEY_PREVIOUS must be at least 32 bytes"),
    (OLD, "OIDC_SECRET_KEY_PREVIOUS must differ from OIDC_SECRET_KEY"),
])
def test_a_previous_key_is_long_and_different(previous, error):
    with pytest.raises(SettingsError, match=error):
        Settings(issuer="http://127.0.0.1:5000", secret_key=OLD, secret_key_previous=previous).validate()


def test_the_previous_key_is_never_shown():
    assert OLD not in repr(Settings(issuer="http://127.0.0.1:5000", secret_key=NEW, secret_key_previous=OLD))
