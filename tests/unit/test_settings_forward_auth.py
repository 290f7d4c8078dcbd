"""The forward-auth settings (issue 5): ``OIDC_FORWARD_AUTH`` (a table per host in the TOML file,
JSON in the variable) and ``OIDC_SESSION_COOKIE_DOMAIN``, each problem named at start."""

from __future__ import annotations

import json

import pytest

from oidc_provider.access.forward_auth_rules import Rule, resource_of, return_url, rule_for
from oidc_provider.settings import Settings

from .test_settings import GOOD, _error, _load

APP = {"audience": "https://app.example.com", "action": "app:use"}


def test_the_table_is_read_from_json_in_the_variable():
    settings = _load(OIDC_FORWARD_AUTH=json.dumps({"app.example.com": APP, "127.0.0.1:8080": APP}))
    assert settings.forward_auth_rules == {
        "app.example.com": Rule("app.example.com", "https://app.example.com", "app:use"),
        "127.0.0.1:8080": Rule("127.0.0.1:8080", "https://app.example.com", "app:use")}


def test_the_table_is_read_from_the_toml_file(tmp_path):
    config = tmp_path / "oidc.toml"
    config.write_text('session_cookie_domain = "example.com"\n'
                      '[forward_auth."app.example.com"]\naudience = "https://app.example.com"\naction = "app:use"\n'
                      '[forward_auth."grafana.example.com:8443"]\naudience = "grafana"\naction = "http:access"\n')
    settings = Settings.from_env({**GOOD, "OIDC_CONFIG_FILE": str(config)}).validate()
    assert sorted(settings.forward_auth_rules) == ["app.example.com", "grafana.example.com:8443"]
    assert settings.forward_auth_rules["grafana.example.com:8443"].action == "http:access"
    assert settings.session_cookie_domain == "example.com"


def test_empty_means_no_forward_auth_hosts():
    assert _load().forward_auth_rules == {}


@pytest.mark.parametrize("table, message", [
    ("{not json", 'OIDC_FORWARD_AUTH: not valid JSON (or use a [forward_auth."HOST"] table in the config file)'),
    ("[]", "OIDC_FORWARD_AUTH: must map host names to tables"),
    ({"App.Example.com": APP}, "OIDC_FORWARD_AUTH: host 'App.Example.com': a key is a lowercase host name, "
                               "optionally with :port"),
    ({"https://app.example.com": APP}, "OIDC_FORWARD_AUTH: host 'https://app.example.com': a key is a lowercase "
                                       "host name, optionally with :port"),
    ({"app.example.com:99999": APP}, "OIDC_FORWARD_AUTH: host 'app.example.com:99999': a key is a lowercase host "
                                     "name, optionally with :port"),
    ({"app.example.com": "x"}, "OIDC_FORWARD_AUTH: host 'app.example.com': must be a table with audience and action"),
    ({"app.example.com": {"audience": "a"}}, "OIDC_FORWARD_AUTH: host 'app.example.com': action is required"),
    ({"app.example.com": {**APP, "actions": ["x"]}}, "OIDC_FORWARD_AUTH: host 'app.example.com': unknown key(s) "
                                                     "actions"),
    ({"app.example.com": {**APP, "action": "app:*"}}, "OIDC_FORWARD_AUTH: host 'app.example.com': action must not "
                                                      "contain spaces, control characters or '*'"),
    ({"app.example.com": {**APP, "audience": 7}}, "OIDC_FORWARD_AUTH: host 'app.example.com': audience must be a "
                                                  "string of 1-200 characters"),
])
def test_each_problem_in_the_table_is_named(table, message):
    text = table if isinstance(table, str) else json.dumps(table)
    assert message in _error(OIDC_FORWARD_AUTH=text)


def test_every_bad_host_is_named_in_one_message():
    message = _error(OIDC_FORWARD_AUTH=json.dumps({"A": APP, "b.example.com": {}, "ok.example.com": APP}),
                     OIDC_SECRET_KEY="short")
    assert "host 'A'" in message and "host 'b.example.com': action is required" in message
    assert "host 'b.example.com': audience is required" in message and "OIDC_SECRET_KEY" in message


def test_a_cookie_domain_must_contain_the_issuer_and_every_forward_auth_host():
    """RFC 6265 §5.3 step 6: a browser ignores a cookie whose Domain does not domain-match the
    host that set it, and sends it only to hosts within that Domain."""
    table = json.dumps({"app.example.com": APP, "wiki.example.org": APP, "127.0.0.1:8080": APP})
    message = _error(OIDC_SESSION_COOKIE_DOMAIN="example.com", OIDC_FORWARD_AUTH=table)
    assert "OIDC_FORWARD_AUTH: host 'wiki.example.org' is not within OIDC_SESSION_COOKIE_DOMAIN 'example.com'" \
        in message
    assert "host '127.0.0.1:8080' is not within" in message
    assert "app.example.com" not in message
    assert "OIDC_SESSION_COOKIE_DOMAIN: the issuer's host 'id.example.com' is not within 'example.org'" in \
        _error(OIDC_SESSION_COOKIE_DOMAIN="example.org")


@pytest.mark.parametrize("domain", [".example.com", "Example.com", "com", "127.0.0.1", "example.com/x"])
def test_a_cookie_domain_is_a_lowercase_domain_name(domain):
    assert f"OIDC_SESSION_COOKIE_DOMAIN: {domain!r} is not a lowercase domain name" in \
        _error(OIDC_SESSION_COOKIE_DOMAIN=domain)


@pytest.mark.parametrize("domain", ["example.com", "id.example.com"])
def test_a_cookie_domain_equal_to_or_above_the_issuer_is_accepted(domain):
    table = json.dumps({"id.example.com:8443": APP})
    assert _load(OIDC_SESSION_COOKIE_DOMAIN=domain, OIDC_FORWARD_AUTH=table).session_cookie_domain == domain


# ---- the pure helpers the endpoint and the login page use ----

RULES = {"app.example.com": Rule("app.example.com", "aud", "act"),
         "127.0.0.1:8080": Rule("127.0.0.1:8080", "aud", "act")}


@pytest.mark.parametrize("host, scheme, found", [
    ("app.example.com", "https", "app.example.com"), ("APP.example.com", "https", "app.example.com"),
    ("app.example.com:443", "https", "app.example.com"), ("app.example.com:80", "http", "app.example.com"),
    ("app.example.com:80", "https", None), ("app.example.com:8443", "https", None),
    ("127.0.0.1:8080", "http", "127.0.0.1:8080"), ("127.0.0.1", "http", None), ("", "https", None),
    ("x.app.example.com", "https", None), (None, "https", None),
])
def test_a_host_matches_exactly_apart_from_case_and_the_default_port(host, scheme, found):
    rule = rule_for(RULES, host, scheme)
    assert (rule.host if rule else None) == found


@pytest.mark.parametrize("uri, resource", [
    ("/", "/"), ("/a/b?c=d#e", "/a/b"), ("/caf%C3%A9", "/café"), ("/a%20b", "/a b"),
    ("https://app.example.com/x?y", "/x"), ("/a/..", None), ("/a/./b", None), ("/%2e%2e/x", None),
    ("/a%2Fb", None), ("/a%5cb", None), ("/a\\b", None), ("/%00", None), ("/%c3", None), ("x", None),
    ("", None), ("/" + "a" * 5000, None),
])
def test_the_resource_is_the_decoded_path_and_ambiguous_paths_have_none(uri, resource):
    assert resource_of(uri) == resource


def test_return_url_allows_local_paths_and_table_hosts_only():
    assert return_url("/account", RULES) == "/account"
    assert return_url("https://app.example.com/x", RULES) == "https://app.example.com/x"
    assert return_url("http://127.0.0.1:8080/x", RULES) == "http://127.0.0.1:8080/x"
    for bad in ("//evil.example", "https://evil.example", "javascript:alert(1)", "http://app.example.com/",
                "https://user@app.example.com/", "https://app.example.com:bad/", None, 7, "/\\evil"):
        assert return_url(bad, RULES) is None, bad
