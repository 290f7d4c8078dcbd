"""The account attributes API through the Flask test client (issue 3, "Account attributes API";
DESIGN "Levels of authentication"): a person's application reads and changes the person's
attributes with a bearer access token; each action needs its scope and level; every write is
an audit row; bad input is a clear 400 and changes nothing; never a 500."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, func, select

from oidc_provider.extensions import db
from oidc_provider.models import Account, AccountAttribute

from ..helpers import Browser, make_user
from ..spec._attributes import (
    API,
    attribute_client,
    audit,
    call,
    challenge_of,
    enroll_totp,
    mfa_token,
    pwd_token,
    stored,
)

PHONE = "+441632960000"
ADDRESS = {"formatted": "1 Main St\nSpringfield", "country": "US"}


@pytest.fixture
def app(app_factory):
    """OIDC_ENROLLED_FACTORS=when-asked: these tests need access tokens at ``pwd`` for a person
    who has a second factor, which only that mode issues (under ``always`` every sign-in of an
    enrolled person reaches ``mfa``; tests/flows/test_signin_policy.py)."""
    return app_factory(enrolled_factors="when-asked")


@pytest.fixture
def alice(app):
    return make_user(app)


@pytest.fixture
def rp(app):
    return attribute_client(app)


@pytest.fixture
def mfa(app, browser, alice, rp):
    """An access token at acr=mfa for alice, from a sign-in just now."""
    return mfa_token(app, browser, *rp, enroll_totp(app))


def test_put_get_head_delete_round_trip(app, browser, mfa):
    """The browser's test client holds a session cookie and sends no CSRF token: the API is
    bearer-only, so the cookie is neither needed nor enough, and CSRF does not apply."""
    http = browser.http
    created = call(http, "PUT", "phone_number", mfa, {"value": PHONE})
    assert (created.status_code, created.json) == (200, {"name": "phone_number", "value": PHONE})
    assert created.headers["Cache-Control"] == "no-store"
    assert call(http, "HEAD", "phone_number", mfa).status_code == 204
    got = call(http, "GET", "phone_number", mfa)
    assert (got.status_code, got.json, got.headers["Cache-Control"]) == \
        (200, {"name": "phone_number", "value": PHONE}, "no-store")

    assert call(http, "PUT", "phone_number", mfa, {"value": "+15555550100"}).status_code == 200
    assert stored(app) == {"phone_number": "+15555550100"}

    gone = call(http, "DELETE", "phone_number", mfa)
    assert (gone.status_code, gone.data) == (204, b"")
    assert call(http, "HEAD", "phone_number", mfa).status_code == 404
    missing = call(http, "GET", "phone_number", mfa)
    assert (missing.status_code, missing.json["error"]) == (404, "not_found")
    assert call(http, "DELETE", "phone_number", mfa).status_code == 404
    assert stored(app) == {}


def test_every_write_is_an_audit_row_naming_the_attribute_never_its_value(app, browser, mfa, rp):
    call(browser.http, "PUT", "phone_number", mfa, {"value": PHONE})
    call(browser.http, "PUT", "phone_number", mfa, {"value": PHONE})
    call(browser.http, "DELETE", "phone_number", mfa)
    call(browser.http, "DELETE", "phone_number", mfa)  # nothing to delete: nothing recorded
    assert audit(app, "account:attribute:updated") == [
        ("success", None, {"name": "phone_number", "created": True}),
        ("success", None, {"name": "phone_number", "created": False}),
    ]
    assert audit(app, "account:attribute:deleted") == [("success", None, {"name": "phone_number"})]


def test_refused_writes_are_audited_and_change_nothing(app, browser, alice, rp):
    token = pwd_token(browser, *rp)
    assert call(browser.http, "PUT", "phone_number", token, {"value": PHONE}).status_code == 401
    assert call(browser.http, "DELETE", "address", token).status_code == 401
    narrow = pwd_token(browser, *rp, scope="openid profile")
    assert call(browser.http, "PUT", "phone_number", narrow, {"value": PHONE}).status_code == 403
    assert stored(app) == {}
    assert audit(app, "account:attribute:updated") == [
        ("failure", "insufficient_user_authentication:acr", {"name": "phone_number"}),
        ("failure", "insufficient_scope", {"name": "phone_number"}),
    ]
    assert audit(app, "account:attribute:deleted") == [
        ("failure", "insufficient_user_authentication:acr", {"name": "address"})]


def test_the_collection_holds_what_the_token_may_read(app, browser, mfa, rp):
    for name, value in (("phone_number", PHONE), ("address", ADDRESS), ("locale", "en-GB")):
        assert call(browser.http, "PUT", name, mfa, {"value": value}).status_code == 200
    everything = call(browser.http, "GET", None, mfa)
    assert (everything.status_code, everything.json, everything.headers["Cache-Control"]) == \
        (200, {"attributes": {"phone_number": PHONE, "address": ADDRESS, "locale": "en-GB"}}, "no-store")

    at_pwd = Browser(app)
    pwd = pwd_token(at_pwd, *rp)
    # Reading the address needs mfa: a pwd token does not see it (and learns nothing of it).
    assert call(at_pwd.http, "GET", None, pwd).json == {"attributes": {"phone_number": PHONE, "locale": "en-GB"}}
    profile_only = pwd_token(at_pwd, *rp, scope="openid profile")
    assert call(at_pwd.http, "GET", None, profile_only).json == {"attributes": {"locale": "en-GB"}}
    none = pwd_token(at_pwd, *rp, scope="openid")
    assert call(at_pwd.http, "GET", None, none).json == {"attributes": {}}


def test_a_token_reaches_only_its_own_persons_attributes(app, browser, mfa, rp):
    call(browser.http, "PUT", "locale", mfa, {"value": "fr-CA"})
    make_user(app, "bob")
    other = Browser(app)
    bob = pwd_token(other, *rp, username="bob")
    assert call(other.http, "GET", None, bob).json == {"attributes": {}}
    assert call(other.http, "PUT", "locale", bob, {"value": "de-DE"}).status_code == 200
    assert (stored(app), stored(app, "bob")) == ({"locale": "fr-CA"}, {"locale": "de-DE"})


def test_the_address_update_is_allowed_right_after_the_sign_in(app, browser, mfa):
    """The address needs mfa and a sign-in within 900 seconds: a fresh mfa token has both."""
    response = call(browser.http, "PUT", "address", mfa, {"value": ADDRESS})
    assert (response.status_code, response.json["value"]) == (200, ADDRESS)


def test_configured_levels_apply(app_factory, alice):
    """OIDC_ATTRIBUTE_LEVELS: the operator made the locale an mfa matter."""
    app = app_factory(attribute_levels="locale=update:mfa")
    browser = Browser(app)
    token = pwd_token(browser, *attribute_client(app))
    response = call(browser.http, "PUT", "locale", token, {"value": "en-GB"})
    assert (response.status_code, challenge_of(response)[1]["acr_values"]) == (401, "mfa")
    assert call(browser.http, "PUT", "zoneinfo", token, {"value": "Europe/Paris"}).status_code == 200


@pytest.mark.parametrize("method", ["HEAD", "GET", "PUT", "DELETE"])
def test_an_unknown_attribute_is_404_after_the_token_is_checked(app, browser, mfa, method):
    body = {"value": "x"} if method == "PUT" else None
    assert call(browser.http, method, "nickname", None, body).status_code == 401
    response = call(browser.http, method, "nickname", mfa, body)
    assert response.status_code == 404
    if method != "HEAD":
        assert response.json == {"error": "not_found", "error_description": "There is no attribute 'nickname'."}


# ---- bad input: a clear 400, nothing changed, never a 500 ----

BAD_BODIES = [
    ("text/plain", json.dumps({"value": PHONE}), 'Send the body as application/json: {"value": ...}.'),
    ("application/x-www-form-urlencoded", "value=%2B441632960000",
     'Send the body as application/json: {"value": ...}.'),
    ("application/json", "{", "The body is not valid JSON."),
    ("application/json", "", "The body is not valid JSON."),
    ("application/json", b"\xff\xfe", "The body is not valid JSON."),
    ("application/json", "[" * 30_000 + "]" * 30_000, "The body is not valid JSON."),  # RecursionError
    ("application/json", "NaN", 'The body must be a JSON object with exactly one member, "value".'),
    ("application/json", "[1]", 'The body must be a JSON object with exactly one member, "value".'),
    ("application/json", "{}", 'The body must be a JSON object with exactly one member, "value".'),
    ("application/json", json.dumps({"value": PHONE, "name": "x"}),
     'The body must be a JSON object with exactly one member, "value".'),
    ("application/json", json.dumps({"value": "0044 1632"}),
     "phone_number must be '+' and 4 to 19 digits (E.164), for example +441632960000."),
    ("application/json", json.dumps({"value": None}),
     "phone_number must be '+' and 4 to 19 digits (E.164), for example +441632960000."),
]


@pytest.mark.parametrize("content_type, data, description", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_bodies_are_400_invalid_request_and_change_nothing(app, browser, mfa, content_type, data, description):
    call(browser.http, "PUT", "phone_number", mfa, {"value": PHONE})
    response = browser.http.put(f"{API}/phone_number", data=data, content_type=content_type,
                                headers={"Authorization": f"Bearer {mfa}"})
    assert (response.status_code, response.json) == \
        (400, {"error": "invalid_request", "error_description": description})
    assert stored(app) == {"phone_number": PHONE}
    assert audit(app, "account:attribute:updated")[-1] == ("failure", "invalid_request", {"name": "phone_number"})


@pytest.mark.parametrize("name, value", [
    ("address", {"formatted": "x", "planet": "Mars"}), ("address", {"country": ["US"]}),
    ("locale", "English"), ("zoneinfo", "Mars/Olympus_Mons"), ("zoneinfo", "../../../etc/passwd"),
])
def test_invalid_values_are_400(app, browser, mfa, name, value):
    response = call(browser.http, "PUT", name, mfa, {"value": value})
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")
    assert response.json["error_description"].startswith(name)
    assert stored(app) == {}


def test_a_body_over_64_kib_is_413_json(app, browser, mfa):
    response = call(browser.http, "PUT", "address", mfa, {"value": {"formatted": "x" * 70_000}})
    assert (response.status_code, response.json["error"]) == (413, "invalid_request")
    assert stored(app) == {}


def test_attributes_go_with_their_account(app, browser, mfa):
    """ON DELETE CASCADE: deleting an account deletes its attributes (SQLite and PostgreSQL)."""
    call(browser.http, "PUT", "locale", mfa, {"value": "en-GB"})
    with app.app_context():
        db.session.execute(delete(Account).where(Account.username == "alice"))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(AccountAttribute)) == 0
    assert challenge_of(call(browser.http, "GET", None, mfa))[1]["error"] == "invalid_token"
