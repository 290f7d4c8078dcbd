"""Settings: ``Settings.from_env`` reads ``OIDC_*`` variables and the optional TOML file;
``validate()`` names every bad setting in one message (DESIGN, "Operator experience")."""

from __future__ import annotations

import pytest

from oidc_provider.settings import Settings, SettingsError

GOOD = {"OIDC_ISSUER": "https://id.example.com", "OIDC_SECRET_KEY": "k" * 32,
        "OIDC_DATABASE_URL": "sqlite:///tmp/x.db"}


def _load(**env) -> Settings:
    return Settings.from_env({**GOOD, **env}).validate()


def _error(**env) -> str:
    with pytest.raises(SettingsError) as caught:
        _load(**env)
    return str(caught.value)


def test_good_environment_loads_typed_values():
    settings = _load(OIDC_ACCESS_TOKEN_TTL="300", OIDC_REQUIRE_PKCE="false", OIDC_SITE_NAME="My IdP")
    assert settings.issuer == "https://id.example.com"
    assert settings.access_token_ttl == 300
    assert settings.require_pkce is False
    assert settings.site_name == "My IdP"
    assert settings.refresh_token_ttl == 30 * 86400  # untouched default


def test_every_bad_setting_is_named_in_one_message():
    message = _error(OIDC_ISSUER="ftp://id.example.com", OIDC_SECRET_KEY="short",
                     OIDC_DATABASE_URL="mysql://x", OIDC_ACCESS_TOKEN_TTL="0", OIDC_LOG_LEVEL="LOUD",
                     OIDC_AUTHORIZATION_CODE_TTL="601")
    assert message.count("\n") == 0
    for name in ("OIDC_ISSUER", "OIDC_SECRET_KEY", "OIDC_DATABASE_URL", "OIDC_ACCESS_TOKEN_TTL",
                 "OIDC_LOG_LEVEL", "OIDC_AUTHORIZATION_CODE_TTL"):
        assert name in message, name


def test_bad_types_and_bad_values_are_named_in_the_same_message():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, "OIDC_SESSION_TTL": "forever", "OIDC_SECRET_KEY": "short",
                           "OIDC_ISSUER": "http://id.example.com"})
    message = str(caught.value)
    assert message.startswith("invalid configuration: ")
    assert "OIDC_SESSION_TTL: 'forever' is not a valid int" in message
    assert "OIDC_SECRET_KEY must be at least 32 bytes" in message
    assert "OIDC_ISSUER must use https unless the host is loopback" in message


def test_missing_issuer_and_secret_are_both_named():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({}).validate()
    assert "OIDC_ISSUER" in str(caught.value)
    assert "OIDC_SECRET_KEY" in str(caught.value)


@pytest.mark.parametrize("secret", ["", "x" * 31, "é" * 15])
def test_secret_shorter_than_32_bytes_is_refused(secret):
    assert "OIDC_SECRET_KEY must be at least 32 bytes" in _error(OIDC_SECRET_KEY=secret)


def test_secret_of_32_bytes_is_accepted():
    assert _load(OIDC_SECRET_KEY="é" * 16).secret_key == "é" * 16  # 32 bytes in UTF-8


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:5000", "http://[::1]:8080", "http://localhost",
                                    "http://localhost:9000", "https://id.example.com"])
def test_http_issuer_allowed_only_on_loopback(issuer):
    assert _load(OIDC_ISSUER=issuer).issuer == issuer


@pytest.mark.parametrize("issuer", ["http://localhost:9000/idp", "https://id.example.com/tenant"])
def test_issuer_with_a_path_is_refused_because_endpoints_live_at_the_root(issuer):
    """OIDC Discovery §4.1 puts metadata at ``<issuer>/.well-known/openid-configuration``; the
    provider serves its endpoints at the host's root, so an issuer with a path would advertise
    URLs that do not exist."""
    assert "OIDC_ISSUER must not have a path" in _error(OIDC_ISSUER=issuer)


@pytest.mark.parametrize("issuer", ["http://id.example.com", "http://10.0.0.1", "http://127.0.0.1.nip.io",
                                    "http://localhost.example.com"])
def test_http_issuer_refused_elsewhere(issuer):
    """OIDC Discovery §3: the issuer "is a case sensitive URL using the https scheme"; plain
    http only on loopback, for development."""
    assert "OIDC_ISSUER must use https unless the host is loopback" in _error(OIDC_ISSUER=issuer)


@pytest.mark.parametrize("issuer", ["https://id.example.com?tenant=1", "https://id.example.com#frag"])
def test_issuer_with_query_or_fragment_is_refused(issuer):
    """OIDC Discovery §3: the issuer URL has "no query or fragment components"."""
    assert "OIDC_ISSUER must not have a query or fragment" in _error(OIDC_ISSUER=issuer)


@pytest.mark.parametrize("issuer", ["https://id.example.com/", "http://127.0.0.1:5000/"])
def test_issuer_with_trailing_slash_is_refused(issuer):
    """OIDC Discovery §4.3: the issuer must be identical to the one RPs were configured with;
    a trailing slash makes ``<issuer>/.well-known/...`` ambiguous."""
    assert "OIDC_ISSUER must not end with '/'" in _error(OIDC_ISSUER=issuer)


@pytest.mark.parametrize("issuer", ["id.example.com", "https://", "javascript:alert(1)"])
def test_issuer_must_be_an_absolute_url(issuer):
    assert "OIDC_ISSUER must be an absolute http(s) URL" in _error(OIDC_ISSUER=issuer)


def test_toml_file_is_read_and_environment_overrides_it(tmp_path):
    config = tmp_path / "oidc.toml"
    config.write_text('issuer = "https://from-file.example"\nsecret_key = "' + "f" * 40 + '"\n'
                      'access_token_ttl = 120\nrequire_pkce = false\nsite_name = "File"\n')
    env = {"OIDC_CONFIG_FILE": str(config), "OIDC_SITE_NAME": "Env", "OIDC_ACCESS_TOKEN_TTL": "60"}
    settings = Settings.from_env(env).validate()
    assert settings.issuer == "https://from-file.example"
    assert settings.secret_key == "f" * 40
    assert settings.require_pkce is False
    assert settings.site_name == "Env"
    assert settings.access_token_ttl == 60


def test_unreadable_or_malformed_toml_file_is_named(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("issuer = \n")
    for path in (str(broken), str(tmp_path / "missing.toml")):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({**GOOD, "OIDC_CONFIG_FILE": path})
        assert "OIDC_CONFIG_FILE" in str(caught.value)


def test_unknown_keys_in_the_toml_file_are_refused(tmp_path):
    config = tmp_path / "oidc.toml"
    config.write_text('issuer = "https://id.example.com"\nacess_token_ttl = 5\nsecret = "x"\n')
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"OIDC_CONFIG_FILE": str(config), "OIDC_SECRET_KEY": "k" * 32})
    assert "unknown setting 'acess_token_ttl'" in str(caught.value)
    assert "unknown setting 'secret'" in str(caught.value)


def test_bad_integers_and_booleans_are_named_together():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, "OIDC_ACCESS_TOKEN_TTL": "15m", "OIDC_SESSION_TTL": "1.5",
                           "OIDC_REQUIRE_PKCE": "maybe"})
    message = str(caught.value)
    assert "OIDC_ACCESS_TOKEN_TTL: '15m' is not a valid int" in message
    assert "OIDC_SESSION_TTL: '1.5' is not a valid int" in message
    assert "OIDC_REQUIRE_PKCE: 'maybe' is not a valid bool" in message


def test_wrong_types_in_toml_are_named(tmp_path):
    config = tmp_path / "oidc.toml"
    config.write_text('access_token_ttl = "soon"\nrequire_pkce = "perhaps"\n')
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, "OIDC_CONFIG_FILE": str(config)})
    assert "OIDC_ACCESS_TOKEN_TTL" in str(caught.value)
    assert "OIDC_REQUIRE_PKCE" in str(caught.value)


@pytest.mark.parametrize("name", ["OIDC_ACCESS_TOKEN_TTL", "OIDC_ID_TOKEN_TTL", "OIDC_REFRESH_TOKEN_TTL",
                                  "OIDC_SESSION_TTL", "OIDC_ARGON2_TIME_COST", "OIDC_ARGON2_MEMORY_COST",
                                  "OIDC_ARGON2_PARALLELISM"])
def test_lifetimes_and_costs_must_be_positive(name):
    assert f"{name} must be positive" in _error(**{name: "-1"})


def test_refresh_token_absolute_ttl_must_cover_the_sliding_ttl():
    message = _error(OIDC_REFRESH_TOKEN_TTL="7200", OIDC_REFRESH_TOKEN_ABSOLUTE_TTL="3600")
    assert "OIDC_REFRESH_TOKEN_ABSOLUTE_TTL must be >= OIDC_REFRESH_TOKEN_TTL" in message


def test_negative_proxy_hops_is_refused():
    assert "OIDC_PROXY_HOPS must be 0 or more" in _error(OIDC_PROXY_HOPS="-1")


def test_create_app_refuses_to_boot_with_a_short_secret():
    from oidc_provider import create_app

    with pytest.raises(SettingsError) as caught:
        create_app(Settings(issuer="https://id.example.com", secret_key="too-short"))
    assert "OIDC_SECRET_KEY" in str(caught.value)


def test_acr_ladder_is_validated_and_named():
    assert _load(OIDC_ACR_LEVELS="pwd mfa").ladder.levels == ("pwd", "mfa")
    assert "OIDC_ACR_LEVELS: levels must be distinct and in the order pwd < mfa < phr" in \
        _error(OIDC_ACR_LEVELS="pwd phr mfa")


def test_sign_in_policy_settings_default_to_always_and_name_bad_values():
    """Issue 12, sign-in policy: OIDC_ENROLLED_FACTORS, OIDC_MIN_ACR (a level of the configured
    ladder), OIDC_ACCOUNT_REAUTH_SECONDS; every bad one named in the one message."""
    settings = _load()
    assert (settings.enrolled_factors, settings.min_acr, settings.account_reauth_seconds) == ("always", "", 600)
    assert _load(OIDC_ENROLLED_FACTORS="when-asked", OIDC_MIN_ACR="mfa").min_acr == "mfa"
    message = _error(OIDC_ENROLLED_FACTORS="sometimes", OIDC_MIN_ACR="gold", OIDC_ACCOUNT_REAUTH_SECONDS="5")
    assert "OIDC_ENROLLED_FACTORS: 'sometimes' is not one of always, when-asked" in message
    assert "OIDC_MIN_ACR: 'gold' is not a level of OIDC_ACR_LEVELS (pwd mfa phr)" in message
    assert "OIDC_ACCOUNT_REAUTH_SECONDS must be between 60 and 86400" in message
    assert "OIDC_MIN_ACR: 'phr' is not a level of OIDC_ACR_LEVELS (pwd mfa)" in \
        _error(OIDC_ACR_LEVELS="pwd mfa", OIDC_MIN_ACR="phr")


def test_unknown_oidc_variable_is_refused_with_the_closest_name():
    """Issue 11: "unknown OIDC_* names ... are refused at start with the closest valid name"."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, "OIDC_ISSUR": "https://id.example.com", "OIDC_ACCESS_TOKEN_TL": "60"})
    message = str(caught.value)
    assert "unknown setting OIDC_ISSUR (did you mean OIDC_ISSUER?)" in message
    assert "unknown setting OIDC_ACCESS_TOKEN_TL (did you mean OIDC_ACCESS_TOKEN_TTL?)" in message


def test_unknown_variable_far_from_every_name_gets_no_suggestion_and_bad_values_are_named_with_it():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, "OIDC_ZZZZZZZZZZZZ": "1", "OIDC_SECRET_KEY": "short"})
    message = str(caught.value)
    assert "unknown setting OIDC_ZZZZZZZZZZZZ;" in message + ";"
    assert "OIDC_SECRET_KEY must be at least 32 bytes" in message  # validate()'s too, in one message


@pytest.mark.parametrize("name", ["OIDC_CONFIG_FILE", "OIDC_TEST_DATABASE_URL", "OIDC_TEST_ANYTHING",
                                  "OIDC_CONNECTOR_GITHUB_CLIENT_SECRET", "OIDC_CONNECTOR_MY_CORP_CLIENT_SECRET"])
def test_variables_that_are_not_settings_but_are_documented_are_allowed(name):
    env = {**GOOD, name: "" if name == "OIDC_CONFIG_FILE" else "x"}
    assert Settings.from_env(env).issuer == GOOD["OIDC_ISSUER"]


def test_variables_of_other_programs_are_not_ours():
    assert Settings.from_env({**GOOD, "OIDCX": "1", "MY_OIDC_ISSUER": "1", "oidc_issuer": "1"}).issuer


def test_unknown_toml_key_names_the_closest_key(tmp_path):
    config = tmp_path / "oidc.toml"
    config.write_text('issuer = "https://id.example.com"\nsesion_ttl = 60\n')
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"OIDC_CONFIG_FILE": str(config), "OIDC_SECRET_KEY": "k" * 32})
    assert "unknown setting 'sesion_ttl' in OIDC_CONFIG_FILE (did you mean 'session_ttl'?)" in str(caught.value)


def test_load_notes_where_each_value_came_from(tmp_path):
    config = tmp_path / "oidc.toml"
    config.write_text('issuer = "https://from-file.example"\nsite_name = "File"\n')
    loaded = Settings.load({"OIDC_CONFIG_FILE": str(config), "OIDC_SITE_NAME": "Env", "OIDC_SECRET_KEY": "k" * 32})
    assert loaded.errors == [] and loaded.problems() == []
    assert loaded.config_file == str(config)
    assert (loaded.sources["issuer"], loaded.sources["site_name"], loaded.sources["secret_key"],
            loaded.sources["session_ttl"]) == ("file", "environment", "environment", "default")
    assert loaded.settings.site_name == "Env"


def test_load_does_not_raise_and_problems_lists_every_one():
    loaded = Settings.load({"OIDC_ISSUR": "x", "OIDC_SESSION_TTL": "soon"})
    problems = loaded.problems()
    assert problems[:2] == ["unknown setting OIDC_ISSUR (did you mean OIDC_ISSUER?)",
                            "OIDC_SESSION_TTL: 'soon' is not a valid int"]
    assert "OIDC_ISSUER is required" in problems and "OIDC_SECRET_KEY must be at least 32 bytes" in problems
    # The unreadable value is not in effect: the default is, and says so.
    assert (loaded.settings.session_ttl, loaded.sources["session_ttl"]) == (43200, "default")


@pytest.mark.parametrize("value", ["xml", "JSON", ""])
def test_log_format_is_text_or_json(value):
    assert _load().log_format == "text"
    assert _load(OIDC_LOG_FORMAT="json").log_format == "json"
    assert "OIDC_LOG_FORMAT must be text or json" in _error(OIDC_LOG_FORMAT=value)


@pytest.mark.parametrize("value", ["-1", "301"])
def test_refresh_reuse_grace_is_bounded(value):
    """OIDC_REFRESH_REUSE_GRACE_SECONDS: a short window (RFC 9700 §4.14.2), 0 to 300."""
    assert "OIDC_REFRESH_REUSE_GRACE_SECONDS must be 0 to 300" in _error(OIDC_REFRESH_REUSE_GRACE_SECONDS=value)


def test_refresh_reuse_grace_defaults_to_30_seconds_and_0_turns_it_off():
    assert _load().refresh_reuse_grace_seconds == 30
    assert _load(OIDC_REFRESH_REUSE_GRACE_SECONDS="0").refresh_reuse_grace_seconds == 0
