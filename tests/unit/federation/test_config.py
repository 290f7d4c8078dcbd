"""Connector configuration (issue 4): every problem named at once, secrets from the
environment, defaults per kind (email matching on for Google only)."""

from __future__ import annotations

import json

import pytest

from oidc_provider.federation.config import parse, secret_variable
from oidc_provider.settings import Settings, SettingsError

ENV = {"OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": "s" * 40}


def test_defaults_per_kind_and_the_secret_from_the_environment():
    table = {"github": {"kind": "github", "client_id": "gh"},
             "google": {"kind": "google", "client_id": "go", "client_secret": "in-file"},
             "corp": {"kind": "oidc", "client_id": "c", "issuer": "https://id.example.com"}}
    found, errors = parse(json.dumps(table), {secret_variable("github"): "from-env", secret_variable("corp"): "c2"})
    assert errors == []
    assert (found["github"].client_secret, found["github"].match_email, found["github"].display_name) == (
        "from-env", False, "GitHub")
    assert (found["google"].issuer, found["google"].match_email, found["google"].scopes) == (
        "https://accounts.google.com", True, "openid email profile")
    assert (found["corp"].match_email, found["corp"].signup, found["corp"].trust_mfa) == (False, False, False)
    assert "from-env" not in repr(found["github"]), "secrets stay out of reprs and logs"


def test_every_problem_is_named():
    table = {"Bad Name": {"kind": "github"}, "x": {"kind": "saml"},
             "y": {"kind": "oidc", "client_id": "c", "client_secret": "s", "scopes": "email", "color": 1},
             "z": {"kind": "github", "client_id": "c", "client_secret": "s", "match_email": "yes"},
             "w": {"kind": "google", "client_id": "c", "client_secret": "s", "issuer": "http://evil.example"}}
    _, errors = parse(json.dumps(table))
    text = "\n".join(errors)
    for needle in ("'Bad Name'", "kind must be one of", "issuer is required", "scopes must include 'openid'",
                   "unknown key(s) color", "match_email must be true or false", "https URL"):
        assert needle in text, needle


def test_settings_validation_reports_connector_errors_and_reads_the_toml_table(tmp_path):
    with pytest.raises(SettingsError, match="client secret is required"):
        Settings.from_env({**ENV, "OIDC_CONNECTORS": json.dumps({"gh": {"kind": "github", "client_id": "c"}})}
                          ).validate()
    config = tmp_path / "oidc.toml"
    config.write_text('[connectors.github]\nkind = "github"\nclient_id = "abc"\n')
    settings = Settings.from_env({**ENV, "OIDC_CONFIG_FILE": str(config),
                                  "OIDC_CONNECTOR_GITHUB_CLIENT_SECRET": "shh"}).validate()
    assert settings.connector_configs["github"].client_secret == "shh"
    assert "shh" not in repr(settings) and "s" * 40 not in repr(settings)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"a": 5}'])
def test_malformed_connector_settings_are_refused(text):
    _, errors = parse(text)
    assert errors
