"""``oidc-provider config check`` (issue 11, "Configuration"): the effective settings with where
each came from, secrets masked, every problem at once, exit status 1 when there is one."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from oidc_provider.cli import main

SECRET_KEY = "config-check-secret-" + "s" * 32
DB_PASSWORD = "db-password-not-to-print"
CONNECTOR_SECRET = "connector-secret-not-to-print"


def run(env: dict, *args: str):
    # Only the variables given: unset every OIDC_* setting of the surrounding shell.
    clean = {k: None for k in os.environ if k.startswith("OIDC_") and not k.startswith("OIDC_TEST_")}
    result = CliRunner().invoke(main, ["config", "check", *args], env={**clean, **env}, catch_exceptions=False)
    return result.exit_code, result.stdout


def good_env(**extra) -> dict:
    return {"OIDC_ISSUER": "https://id.example.com", "OIDC_SECRET_KEY": SECRET_KEY,
            "OIDC_DATABASE_URL": f"postgresql+psycopg://oidc:{DB_PASSWORD}@db.example/oidc", **extra}


def test_good_settings_are_shown_with_their_source_and_exit_0():
    status, out = run(good_env(OIDC_ACCESS_TOKEN_TTL="300"), "--json")
    assert status == 0
    report = json.loads(out)
    rows = {row["variable"]: row for row in report["settings"]}
    assert report["problems"] == [] and report["config_file"] is None
    assert (rows["OIDC_ACCESS_TOKEN_TTL"]["value"], rows["OIDC_ACCESS_TOKEN_TTL"]["source"]) == (300, "environment")
    assert (rows["OIDC_SESSION_TTL"]["value"], rows["OIDC_SESSION_TTL"]["source"]) == (43200, "default")
    assert rows["OIDC_LOG_FORMAT"]["key"] == "log_format"


def test_secrets_are_masked_in_text_and_json():
    connectors = json.dumps({"corp": {"kind": "oidc", "client_id": "c", "issuer": "https://sso.example",
                                      "client_secret": CONNECTOR_SECRET}})
    env = good_env(OIDC_CONNECTORS=connectors, OIDC_CONNECTOR_GH_CLIENT_SECRET=CONNECTOR_SECRET + "2",
                   OIDC_METRICS_TOKEN=CONNECTOR_SECRET + "-metrics-token",  # a field with repr=False
                   OIDC_SECRET_KEY_PREVIOUS=CONNECTOR_SECRET + "-previous-secret-key")
    for args in ((), ("--json",)):
        _, out = run(env, *args)
        for secret in (SECRET_KEY, DB_PASSWORD, CONNECTOR_SECRET):
            assert secret not in out
        assert "postgresql+psycopg://oidc:***@db.example/oidc" in out
        assert "OIDC_CONNECTOR_GH_CLIENT_SECRET" in out and "sso.example" in out


def test_a_typo_in_a_variable_is_named_with_the_closest_setting_and_exit_1():
    env = good_env(OIDC_SESION_TTL="60")
    status, out = run(env)
    assert status == 1
    assert "unknown setting OIDC_SESION_TTL (did you mean OIDC_SESSION_TTL?)" in out
    status, out = run(env, "--json")
    assert status == 1 and json.loads(out)["problems"] == [
        "unknown setting OIDC_SESION_TTL (did you mean OIDC_SESSION_TTL?)"]


def test_other_commands_refuse_to_start_with_the_same_one_line_message(tmp_path):
    env = good_env(OIDC_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", OIDC_ISSUR="https://id.example.com")
    clean = {k: None for k in os.environ if k.startswith("OIDC_") and not k.startswith("OIDC_TEST_")}
    result = CliRunner().invoke(main, ["user", "list"], env={**clean, **env})
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: invalid configuration: unknown setting OIDC_ISSUR "
                                     "(did you mean OIDC_ISSUER?)")


def test_an_unknown_toml_key_and_bad_values_are_all_listed_with_sources(tmp_path):
    config = tmp_path / "oidc.toml"
    config.write_text('issuer = "https://id.example.com"\nacess_token_ttl = 60\nsite_name = "From file"\n'
                      'session_ttl = -1\n')
    status, out = run({"OIDC_CONFIG_FILE": str(config), "OIDC_SECRET_KEY": SECRET_KEY,
                       "OIDC_SITE_NAME": "From env"}, "--json")
    assert status == 1
    report = json.loads(out)
    assert report["config_file"] == str(config)
    assert report["problems"] == ["unknown setting 'acess_token_ttl' in OIDC_CONFIG_FILE "
                                  "(did you mean 'access_token_ttl'?)", "OIDC_SESSION_TTL must be positive"]
    rows = {row["key"]: row for row in report["settings"]}
    assert (rows["issuer"]["source"], rows["site_name"]["source"], rows["site_name"]["value"],
            rows["database_url"]["source"]) == ("file", "environment", "From env", "default")


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_config_check_is_local_only(args):
    result = CliRunner().invoke(main, ["--server", "https://id.example.com", "--token", "t", "config", "check",
                                       *args])
    assert result.exit_code == 2 and "run it without --server" in result.stderr
