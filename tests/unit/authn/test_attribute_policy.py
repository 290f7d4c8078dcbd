"""The account attribute policy (DESIGN "Account attributes"; RFC 6750 §3.1, RFC 9470 §3):
table tests over scopes × levels × actions × freshness, the value checks, and the
OIDC_ATTRIBUTE_LEVELS syntax with every error named."""

from __future__ import annotations

import ast
from pathlib import Path

import jsonschema
import pytest

from oidc_provider.authn import attribute_policy
from oidc_provider.authn.attribute_policy import (
    ATTRIBUTES,
    Action,
    Allow,
    AttributeLevelsError,
    AttributePolicy,
    InsufficientScope,
    InsufficientUserAuthentication,
    Rule,
    UnknownAttribute,
    check_value,
    configuration_errors,
    overrides_text,
    parse_overrides,
)
from oidc_provider.authn.levels import Ladder
from oidc_provider.settings import Settings, SettingsError

NOW = 1_700_000_000
POLICY = AttributePolicy.build(Ladder())
ALL_SCOPES = frozenset({"openid", "profile", "phone", "address"})
P, R, U = Action.PRESENCE, Action.READ, Action.UPDATE


def decide(name, action, *, acr="pwd", scopes=ALL_SCOPES, age=0, policy=POLICY):
    return policy.decide(name, action, scopes=scopes, acr=acr, auth_time=None if age is None else NOW - age, now=NOW)


def test_the_policy_module_is_pure():
    """STYLE "Layout": policy modules import no Flask, SQLAlchemy or Authlib, and from the package
    only the other pure module, levels."""
    tree = ast.parse(Path(attribute_policy.__file__).read_text())
    imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
                for a in (n.names if isinstance(n, ast.Import) else [n])}
    assert imported <= {"__future__", "re", "zoneinfo", "collections.abc", "dataclasses", "enum", "functools",
                        "levels"}


# ---- defaults ----

def test_defaults_are_the_designed_table():
    assert dict(POLICY.rules) == {
        "phone_number": Rule("phone", presence="pwd", read="pwd", update="mfa"),
        "address": Rule("address", presence="pwd", read="mfa", update="mfa", max_age=900),
        "locale": Rule("profile", presence="pwd", read="pwd", update="pwd"),
        "zoneinfo": Rule("profile", presence="pwd", read="pwd", update="pwd"),
    }


@pytest.mark.parametrize("name, action, acr, age, decision", [
    ("phone_number", P, "pwd", 0, Allow()),
    ("phone_number", R, "pwd", 0, Allow()),
    ("phone_number", U, "pwd", 0, InsufficientUserAuthentication("mfa", None, "acr", "")),
    ("phone_number", U, "mfa", 0, Allow()),
    ("phone_number", U, "phr", 10**6, Allow()),           # no max_age: any age
    ("address", P, "pwd", 0, Allow()),
    ("address", R, "pwd", 0, InsufficientUserAuthentication("mfa", None, "acr", "")),
    ("address", R, "mfa", 10**6, Allow()),                 # max_age is for updates only
    ("address", U, "pwd", 0, InsufficientUserAuthentication("mfa", 900, "acr", "")),
    ("address", U, "mfa", 900, Allow()),
    ("address", U, "mfa", 901, InsufficientUserAuthentication("mfa", 900, "max_age", "")),
    ("address", U, "phr", 901, InsufficientUserAuthentication("mfa", 900, "max_age", "")),
    ("address", U, "mfa", None, InsufficientUserAuthentication("mfa", 900, "max_age", "")),  # no auth_time
    ("locale", U, "pwd", 0, Allow()),
    ("zoneinfo", R, "pwd", 0, Allow()),
    ("locale", P, None, 0, InsufficientUserAuthentication("pwd", None, "acr", "")),
    ("locale", P, "bogus", 0, InsufficientUserAuthentication("pwd", None, "acr", "")),
    ("nickname", R, "phr", 0, UnknownAttribute("nickname")),
])
def test_rfc9470_3_levels_per_action(name, action, acr, age, decision):
    got = decide(name, action, acr=acr, age=age)
    if isinstance(got, InsufficientUserAuthentication):
        assert got.description, "an error_description for the challenge"
        got = InsufficientUserAuthentication(got.acr_values, got.max_age, got.reason, "")
    assert got == decision


@pytest.mark.parametrize("name, scopes, acr, decision", [
    ("phone_number", {"openid", "profile"}, None, InsufficientScope("phone")),
    ("address", {"phone"}, "pwd", InsufficientScope("address")),
    ("locale", {"phone", "address"}, "phr", InsufficientScope("profile")),
    ("locale", {"profile"}, "pwd", Allow()),
    ("nickname", set(), None, UnknownAttribute("nickname")),
])
def test_rfc6750_3_1_scope_comes_before_the_level(name, scopes, acr, decision):
    """RFC 6750 §3.1 insufficient_scope: a token lacking the scope is refused whatever its acr
    (a step-up would not help)."""
    assert decide(name, R, acr=acr, scopes=frozenset(scopes)) == decision


def test_a_step_up_description_names_the_action_attribute_and_level():
    assert decide("phone_number", U).description == "Changing phone_number needs a sign-in at level mfa or higher."
    assert decide("address", U, acr="mfa", age=1000).description == \
        "Changing address needs a sign-in within the last 900 seconds."


# ---- values ----

VALID = [
    ("phone_number", "+441632960000"), ("phone_number", "+1234"), ("phone_number", "+" + "9" * 19),
    ("address", {"formatted": "1 Main St\nSpringfield", "country": "US"}),
    ("address", {"street_address": "1 Main St\r\nFlat 2", "locality": "Springfield", "region": "IL",
                 "postal_code": "62701", "country": "United States"}),
    ("locale", "en"), ("locale", "en-GB"), ("locale", "fr-CA"), ("locale", "zh-Hant-TW"), ("locale", "es-419"),
    ("zoneinfo", "Europe/Paris"), ("zoneinfo", "America/Argentina/Buenos_Aires"), ("zoneinfo", "UTC"),
]
INVALID = [
    ("phone_number", "441632960000"), ("phone_number", "+0441632960000"), ("phone_number", "+44 1632 960000"),
    ("phone_number", "+" + "9" * 20), ("phone_number", "+12"), ("phone_number", 441632960000),
    ("phone_number", None), ("phone_number", "+441632960000\n"), ("phone_number", "+４４1632960000"),
    ("address", {}), ("address", "1 Main St"), ("address", ["1 Main St"]), ("address", {"street": "1 Main St"}),
    ("address", {"country": 1}), ("address", {"country": ""}), ("address", {"country": "x" * 101}),
    ("address", {"postal_code": "1" * 21}), ("address", {"locality": "Spring\nfield"}),
    ("address", {"formatted": "a\x00b"}), ("address", {"country": {"name": "US"}}),
    ("locale", "english"), ("locale", "en_GB"), ("locale", "en-"), ("locale", ""), ("locale", "e"),
    ("locale", "en-GB\n"), ("locale", "x" * 40), ("locale", 7),
    ("zoneinfo", "Mars/Olympus_Mons"), ("zoneinfo", "../../etc/passwd"), ("zoneinfo", "/etc/localtime"),
    ("zoneinfo", "Europe/Paris\n"), ("zoneinfo", ""), ("zoneinfo", 1), ("zoneinfo", "A" * 65),
]


@pytest.mark.parametrize("name, value", VALID)
def test_valid_values(name, value):
    assert check_value(name, value) is None


@pytest.mark.parametrize("name, value", INVALID)
def test_invalid_values_are_refused_with_a_reason(name, value):
    problem = check_value(name, value)
    assert isinstance(problem, str) and problem.startswith(name)


def test_the_published_schemas_accept_every_valid_value():
    """The OpenAPI description's value schemas are never stricter than the checks (so the
    description stays true): every value the check accepts, the schema accepts."""
    for name, value in VALID:
        jsonschema.Draft202012Validator(ATTRIBUTES[name].schema).validate(value)


# ---- OIDC_ATTRIBUTE_LEVELS ----

def test_overrides_change_only_what_they_name():
    policy = AttributePolicy.build(Ladder(), "phone_number=read:mfa,update:phr,max_age:300; address=max_age:none")
    assert policy.rules["phone_number"] == Rule("phone", presence="pwd", read="mfa", update="phr", max_age=300)
    assert policy.rules["address"] == Rule("address", presence="pwd", read="mfa", update="mfa", max_age=None)
    assert policy.rules["locale"] == POLICY.rules["locale"]
    assert isinstance(decide("phone_number", R, policy=policy), InsufficientUserAuthentication)


@pytest.mark.parametrize("text", ["", "  ", ";", " phone_number = read : mfa ; ", "locale=update:phr;"])
def test_override_syntax_tolerates_spaces_and_empty_entries(text):
    assert parse_overrides(text)[1] == []


@pytest.mark.parametrize("text, error", [
    ("phone_number", "'phone_number' is not of the form name=key:value,..."),
    ("phone_number=", "'phone_number=' is not of the form name=key:value,..."),
    ("nickname=read:pwd", "unknown attribute 'nickname' (known: phone_number, address, locale, zoneinfo)"),
    ("locale=read:pwd;locale=update:mfa", "locale is given twice"),
    ("locale=read:pwd,read:mfa", "locale: read is given twice"),
    ("locale=write:mfa", "locale: 'write:mfa' is not key:value with key one of presence, read, update, max_age"),
    ("locale=read", "locale: 'read' is not key:value with key one of presence, read, update, max_age"),
    ("locale=max_age:0", "locale: max_age must be a positive number of seconds or 'none', not '0'"),
    ("locale=max_age:-5", "locale: max_age must be a positive number of seconds or 'none', not '-5'"),
    ("locale=max_age:soon", "locale: max_age must be a positive number of seconds or 'none', not 'soon'"),
    ("locale=max_age:True", "locale: max_age must be a positive number of seconds or 'none', not 'True'"),
])
def test_override_syntax_errors_are_named(text, error):
    assert parse_overrides(text)[1] == [error]


@pytest.mark.parametrize("ladder, text, errors", [
    ("pwd mfa phr", "locale=read:gold", ["locale read: 'gold' is not a level of the ladder (pwd mfa phr)"]),
    ("pwd mfa", "phone_number=update:phr", ["phone_number update: 'phr' is not a level of the ladder (pwd mfa)"]),
    ("pwd mfa phr", "phone_number=presence:mfa",
     ["phone_number: read (pwd) must be at least presence (mfa)"]),
    ("pwd mfa phr", "address=presence:phr",
     ["address: read (mfa) must be at least presence (phr)", "address: update (mfa) must be at least presence (phr)"]),
    ("pwd", "", [
        "phone_number update: the default mfa is above the ladder (pwd); set phone_number=update:LEVEL",
        "address read: the default mfa is above the ladder (pwd); set address=read:LEVEL",
        "address update: the default mfa is above the ladder (pwd); set address=update:LEVEL",
    ]),
    ("pwd", "phone_number=update:pwd; address=read:pwd,update:pwd", []),
])
def test_levels_are_checked_against_the_configured_ladder(ladder, text, errors):
    assert configuration_errors(ladder, text) == [f"OIDC_ATTRIBUTE_LEVELS: {e}" for e in errors]
    if errors:
        with pytest.raises(AttributeLevelsError) as raised:
            AttributePolicy.build(Ladder.parse(ladder), text)
        assert raised.value.errors == errors


def test_a_default_the_ladder_lacks_becomes_the_next_stronger_level_never_weaker():
    policy = AttributePolicy.build(Ladder.parse("pwd phr"))
    assert (policy.rules["phone_number"].update, policy.rules["address"].read) == ("phr", "phr")
    assert policy.rules["locale"].update == "pwd"


def test_every_error_is_named_at_once():
    errors = configuration_errors("pwd mfa phr", "nickname=read:pwd; locale=read:gold,max_age:x")
    assert len(errors) == 3 and all(e.startswith("OIDC_ATTRIBUTE_LEVELS: ") for e in errors)


@pytest.mark.parametrize("table, text", [
    ({"phone_number": {"read": "mfa", "max_age": 300}}, "phone_number=read:mfa,max_age:300"),
    ({"phone_number": "read:mfa", "address": {"max_age": "none"}}, "phone_number=read:mfa; address=max_age:none"),
    ({}, ""),
])
def test_a_toml_table_becomes_the_variable_syntax(table, text):
    assert overrides_text(table) == text
    assert parse_overrides(text)[1] == []


# ---- read by Settings, checked at start ----

BASE_ENV = {"OIDC_ISSUER": "https://id.example.test", "OIDC_SECRET_KEY": "s" * 40}


def test_settings_read_the_variable_and_validate_it():
    settings = Settings.from_env({**BASE_ENV, "OIDC_ATTRIBUTE_LEVELS": "phone_number=read:mfa"}).validate()
    assert settings.attribute_levels == "phone_number=read:mfa"
    assert Settings.from_env(BASE_ENV).attribute_levels == ""


def test_settings_read_a_toml_table(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[attribute_levels]\nphone_number = { read = "mfa", max_age = 300 }\naddress = "max_age:none"\n')
    settings = Settings.from_env({**BASE_ENV, "OIDC_CONFIG_FILE": str(config)}).validate()
    policy = AttributePolicy.build(settings.ladder, settings.attribute_levels)
    assert (policy.rules["phone_number"].read, policy.rules["phone_number"].max_age) == ("mfa", 300)
    assert policy.rules["address"].max_age is None


def test_start_is_refused_naming_every_bad_entry_and_other_bad_settings():
    """DESIGN "Operator experience": validated at start "with a clear message naming the bad
    setting"; every problem at once."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**BASE_ENV, "OIDC_ACR_LEVELS": "pwd mfa", "OIDC_PROXY_HOPS": "-1",
                           "OIDC_ATTRIBUTE_LEVELS": "phone_number=update:phr; nickname=read:pwd"}).validate()
    message = str(refused.value)
    assert "OIDC_PROXY_HOPS must be 0 or more" in message
    assert "OIDC_ATTRIBUTE_LEVELS: phone_number update: 'phr' is not a level of the ladder (pwd mfa)" in message
    assert "OIDC_ATTRIBUTE_LEVELS: unknown attribute 'nickname'" in message
