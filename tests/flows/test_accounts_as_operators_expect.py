"""Accounts as operators expect (issue 11), through the pages and the admin API: a username
is matched regardless of case at sign-in ("ALICE" is alice, with her ``sub``) and taken
regardless of case; the password policy (NIST SP 800-63B rev 4 §3.1.1.2) refuses a weak
password wherever one is set, with the reason and nothing changed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from oidc_provider.access import system_accounts
from oidc_provider.extensions import db
from oidc_provider.models import Account

from ..conftest import ISSUER
from ..helpers import PASSWORD, csrf_token, make_client, make_user
from ._admin import API, admin_token, bearer, define_role, grant, personal_token, snapshot


def _sub_after_sign_in(browser, client, username):
    client_id, secret = client
    result = browser.sign_in_and_authorize(client_id, username=username)
    tokens = browser.redeem(client_id, secret, result["code"]).json
    return browser.http.get("/userinfo", headers=bearer(tokens["access_token"])).json


def _password_hash(app, username):
    with app.app_context():
        return db.session.scalar(select(Account.password_hash).where(Account.username == username))


# ---- usernames regardless of case

@pytest.mark.parametrize("typed", ["ALICE", "Alice", " alice "])
def test_sign_in_ignores_the_case_of_the_username(app, browser, typed):
    sub = make_user(app, "alice")
    info = _sub_after_sign_in(browser, make_client(app), typed)
    assert (info["sub"], info["preferred_username"]) == (sub, "alice")


def test_a_username_with_a_character_that_lowercases_to_ascii_matches_nothing(app, browser):
    """The Kelvin sign (U+212A) lowercases to "k": "\u212aim" must not sign in as kim."""
    make_user(app, "kim")
    page = browser.http.get("/login")
    refused = browser.http.post("/login", data={"csrf_token": csrf_token(page.text), "username": "\u212aim",
                                                "password": PASSWORD})
    assert refused.status_code == 401 and "Incorrect username or password." in refused.text


def test_the_admin_api_takes_and_finds_usernames_regardless_of_case(app, client):
    token = admin_token(app, "ops")
    sub = make_user(app, "alice")
    shown = client.get(API + "/accounts/ALICE", headers=bearer(token))
    assert (shown.status_code, shown.json["sub"], shown.json["username"]) == (200, sub, "alice")
    before = snapshot(app)
    taken = client.post(API + "/accounts", headers=bearer(token), json={"username": "Alice"})
    assert (taken.status_code, taken.json["error"]) == (409, "conflict")
    assert taken.json["error_description"] == ("an account named 'alice' already exists (usernames are unique "
                                               "regardless of case)")
    assert snapshot(app) == before


# ---- the password policy at every place a password is set

WEAK = [
    ("short", "password must be at least 15 characters"),
    ("password12345678", "password is too easy to guess (this is similar to a commonly used password)"),
    ("my name is Carol, hi", "password must not contain your username"),
]


@pytest.mark.parametrize("password,reason", WEAK)
def test_admin_api_create_refuses_a_weak_password_with_a_400(app, client, password, reason):
    token = admin_token(app, "ops")
    before = snapshot(app)
    refused = client.post(API + "/accounts", headers=bearer(token), json={"username": "carol", "password": password})
    assert (refused.status_code, refused.json["error"]) == (400, "invalid_request")
    assert refused.json["error_description"].startswith(reason)
    assert password not in refused.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize("password,reason", WEAK)
def test_admin_api_set_password_refuses_a_weak_password_with_a_400(app, client, password, reason):
    token = admin_token(app, "ops")
    make_user(app, "carol")
    stored = _password_hash(app, "carol")
    refused = client.put(API + "/accounts/carol/password", headers=bearer(token), json={"password": password})
    assert (refused.status_code, refused.json["error"]) == (400, "invalid_request")
    assert refused.json["error_description"].startswith(reason)
    assert _password_hash(app, "carol") == stored
    done = client.put(API + "/accounts/CAROL/password", headers=bearer(token), json={"password": "amber orchard tide"})
    assert done.status_code == 200 and _password_hash(app, "carol") != stored


def test_the_openapi_description_names_the_policy(client):
    description = client.get(API + "/openapi.json").json
    body = description["paths"][API + "/accounts/{username}/password"]["put"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]["properties"]["password"]
    assert "password policy" in schema["description"] and "OIDC_PASSWORD_MIN_LENGTH" in schema["description"]


@pytest.mark.parametrize("password,reason", [
    ("short but sweet", None),  # 15: the policy's length is met; shown only when it is not
    ("fourteen chars", "The new password must be at least 15 characters."),
    ("iloveyouiloveyou", "The new password is too easy to guess ("),
    ("alice@wonderland.example", "The new password must not contain your username."),
])
def test_the_account_page_shows_why_a_new_password_is_refused(app, browser, password, reason):
    make_user(app, "alice")
    page = browser.http.get("/login")
    browser.http.post("/login", data={"csrf_token": csrf_token(page.text), "username": "alice", "password": PASSWORD})
    form = browser.http.get("/account/password")
    assert 'minlength="15"' in form.text
    stored = _password_hash(app, "alice")
    answer = browser.http.post("/account/password", data={
        "csrf_token": csrf_token(form.text), "current_password": PASSWORD, "new_password": password,
        "confirm_password": password})
    if reason is None:
        assert answer.status_code == 302
        return
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text and reason in answer.text.replace("&#39;", "'").replace("&#34;", '"')
    assert '<form method="post"' in answer.text, "the form is shown again"
    assert _password_hash(app, "alice") == stored


def test_audit_by_user_finds_sign_ins_typed_in_any_case(app, client, browser):
    token = admin_token(app, "ops")
    make_user(app, "alice")
    page = browser.http.get("/login")
    browser.http.post("/login", data={"csrf_token": csrf_token(page.text), "username": "ALICE", "password": "nope"})
    events = client.get(API + "/audit", headers=bearer(token), query_string={"user": "alice"}).json
    assert ("account:login:failure", "ALICE") in [(e["event"], e["account"]) for e in events]


def test_admin_permissions_are_checked_on_the_path_as_written(app, client):
    """Checked before the lookup, so a statement on ``account:alice`` does not reach
    ``/accounts/ALICE`` (refused, never more than granted)."""
    define_role(app, "alice-reader", {"audience": ISSUER, "actions": ["admin:accounts:read"],
                                      "resources": ["account:alice"]})
    make_user(app, "alice")
    make_user(app, "helen")
    grant(app, "helen", "alice-reader")
    _, token = personal_token(app, "helen")
    assert client.get(API + "/accounts/alice", headers=bearer(token)).status_code == 200
    refused = client.get(API + "/accounts/ALICE", headers=bearer(token))
    assert (refused.status_code, refused.json["error"]) == (403, "insufficient_scope")


def test_a_role_named_like_a_system_account_in_other_case_delegates_nothing(app, client):
    """DESIGN: users holding "a role named after the system account" may issue its credential.
    Role names are exact, so a role "BACKUP" is not backup's, although the system account is
    found as "BACKUP" by its name regardless of case."""
    with app.app_context():
        system_accounts.create("backup")
        db.session.commit()
    make_user(app, "mallory")
    define_role(app, "BACKUP", {"audience": "https://app.example", "actions": ["read"], "resources": ["*"]})
    grant(app, "mallory", "BACKUP")
    _, token = personal_token(app, "mallory")
    for path in ("/services/BACKUP/credential", "/services/backup/credential"):
        refused = client.post(API + path, headers=bearer(token))
        assert (refused.status_code, refused.json["error"]) == (403, "insufficient_scope"), path
