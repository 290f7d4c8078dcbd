"""OIDC_WEBAUTHN_RP_ID and OIDC_WEBAUTHN_ORIGINS: defaults from the issuer and the checks
``validate()`` makes at start (W3C WebAuthn L3 §5.1.4.1 RP ID, §7.1/§7.2 origin checks)."""

from __future__ import annotations

import pytest

from oidc_provider.settings import Settings

from .test_settings import GOOD, _error, _load


def test_defaults_are_the_issuers_host_and_origin():
    settings = _load()
    assert (settings.rp_id, settings.passkey_origins, settings.passkeys_available) == (
        "id.example.com", ["https://id.example.com"], True)


def test_a_parent_domain_and_several_origins():
    """§5.1.4.1: an RP ID may be "a registrable domain suffix of" the origin's effective domain,
    so one passkey serves every allowed origin under it."""
    settings = _load(OIDC_WEBAUTHN_RP_ID="example.com",
                     OIDC_WEBAUTHN_ORIGINS="https://id.example.com https://login.example.com:8443")
    assert settings.rp_id == "example.com"
    assert settings.passkey_origins == ["https://id.example.com", "https://login.example.com:8443"]


@pytest.mark.parametrize("written, origin", [
    ("https://ID.Example.com/", "https://id.example.com"),
    ("https://id.example.com:443", "https://id.example.com"),
    ("http://localhost:80", "http://localhost"),
])
def test_origins_are_compared_as_browsers_serialize_them(written, origin):
    """HTML §7.5 origin serialization: lowercase, no default port, no trailing slash (what
    clientDataJSON.origin holds)."""
    assert Settings(issuer="https://id.example.com", webauthn_origins=written).passkey_origins == [origin]


@pytest.mark.parametrize("env, message", [
    ({"OIDC_WEBAUTHN_RP_ID": "other.com"},
     "OIDC_WEBAUTHN_RP_ID: 'other.com' is neither the host of 'https://id.example.com' nor a domain suffix of it"),
    ({"OIDC_WEBAUTHN_RP_ID": "ample.com"}, "OIDC_WEBAUTHN_RP_ID: 'ample.com' is neither the host"),
    ({"OIDC_WEBAUTHN_RP_ID": "com"}, "OIDC_WEBAUTHN_RP_ID: 'com' is not a domain name"),
    ({"OIDC_WEBAUTHN_RP_ID": "192.0.2.1"}, "OIDC_WEBAUTHN_RP_ID: '192.0.2.1' is not a domain name"),
    ({"OIDC_WEBAUTHN_RP_ID": "exa mple.com"}, "is not a domain name"),
    ({"OIDC_WEBAUTHN_ORIGINS": "http://id.example.com"},
     "OIDC_WEBAUTHN_ORIGINS: 'http://id.example.com' must use https unless the host is loopback"),
    ({"OIDC_WEBAUTHN_ORIGINS": "https://id.example.com/login"}, "is not an origin (scheme://host[:port])"),
    ({"OIDC_WEBAUTHN_ORIGINS": "https://id.example.com?x=1"}, "is not an origin"),
    ({"OIDC_WEBAUTHN_ORIGINS": "https://user@id.example.com"}, "is not an origin"),
    ({"OIDC_WEBAUTHN_ORIGINS": "https://id.example.com:99999"}, "is not an origin"),
    ({"OIDC_WEBAUTHN_ORIGINS": "id.example.com"}, "is not an origin"),
    ({"OIDC_WEBAUTHN_ORIGINS": "https://evil.example"},
     "'id.example.com' is neither the host of 'https://evil.example' nor a domain suffix of it"),
])
def test_bad_rp_id_or_origins_refuse_to_start(env, message):
    assert message in _error(**env)


def test_every_bad_origin_is_named_at_once():
    message = _error(OIDC_WEBAUTHN_RP_ID="example.com",
                     OIDC_WEBAUTHN_ORIGINS="http://a.example.com https://b.example.com/x https://c.other.com")
    for origin in ("http://a.example.com", "https://b.example.com/x", "https://c.other.com"):
        assert origin in message


def test_loopback_origins_may_use_http():
    settings = Settings.from_env({**GOOD, "OIDC_ISSUER": "http://localhost:5000",
                                  "OIDC_WEBAUTHN_ORIGINS": "http://localhost:5000 http://localhost:8080",
                                  "OIDC_WEBAUTHN_RP_ID": "localhost"}).validate()
    assert settings.passkey_origins == ["http://localhost:5000", "http://localhost:8080"]


def test_an_ip_address_issuer_turns_passkeys_off_without_refusing_to_start():
    """Browsers refuse WebAuthn on an IP address; the development issuer
    ``http://127.0.0.1:5000`` still starts, with passkeys off."""
    settings = _load(OIDC_ISSUER="http://127.0.0.1:5000")
    assert (settings.rp_id, settings.passkeys_available) == ("127.0.0.1", False)
    assert "OIDC_WEBAUTHN_RP_ID" in _error(OIDC_ISSUER="http://127.0.0.1:5000",
                                           OIDC_WEBAUTHN_ORIGINS="http://127.0.0.1:5000")
