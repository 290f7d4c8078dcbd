"""Issue 12, "Sign-in policy": ``OIDC_ENROLLED_FACTORS=always`` (the default) asks a person's
enrolled second factor at every sign-in, and the ID token's ``acr``/``amr`` say so (OIDC Core §2,
RFC 8176 §2); ``OIDC_MIN_ACR`` is a floor for every client; the account page's changes to what
signs the person in need a recent sign-in at the account's strongest level
(``OIDC_ACCOUNT_REAUTH_SECONDS``)."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from oidc_provider.extensions import db
from oidc_provider.models import Account

from ..helpers import PASSWORD, configured, csrf_token, make_client, make_user
from ..spec._support import age_login, at_login, redirected_to_client, start, tokens_for, verified_claims
from .test_account_page import NEW_PASSWORD, sign_in, sign_in_with_code
from .test_step_up import at, claims_after, decline, enroll_totp, submit_code


@pytest.fixture
def alice(app):
    return make_user(app)


@pytest.fixture
def client(app):
    return make_client(app, trusted=True)


def password_hash(app) -> str:
    with app.app_context():
        return db.session.scalar(select(Account.password_hash).where(Account.username == "alice"))


# ---- an application's sign-in ----

def test_rfc8176_an_enrolled_person_is_asked_for_the_code_and_the_id_token_says_so(app, browser, alice, client):
    """OIDC Core §2 ``acr``/``amr``; RFC 8176 §2 ``pwd``, ``otp``, ``mfa``: the application asked
    for no level, the person has an authenticator app: password, then the code."""
    secret, _ = enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id)
    assert at_login(response)
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/"), "the password alone does not sign an enrolled person in"
    page = browser.http.get(response.headers["Location"])
    assert "Your account has a second factor" in page.text
    claims = claims_after(browser, client_id, client_secret, submit_code(browser, response, pyotp.TOTP(secret).now()))
    assert (claims["acr"], set(claims["amr"])) == ("mfa", {"pwd", "otp", "mfa"})


def test_a_recovery_code_is_the_fallback_at_that_step(app, browser, alice, client):
    _, codes = enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id)
    response = submit_code(browser, browser.follow(browser.login(response)), codes[0], kind="recovery")
    assert claims_after(browser, client_id, client_secret, response)["acr"] == "mfa"


def test_5_5_1_1_cancelling_the_enrolled_factor_is_access_denied(app, browser, alice, client):
    """The enrolled factor is binding: "Cancel" ends the request (OIDC Core §5.5.1.1 / RFC 6749
    §4.1.2.1 access_denied), never a password-only sign-in."""
    enroll_totp(app)
    client_id, _ = client
    response, params = start(browser, client_id)
    response = decline(browser, browser.follow(browser.login(response)))
    result = redirected_to_client(response)
    assert (result["error"], result["state"], "code" in result) == ("access_denied", params["state"], False)


def test_a_person_without_a_second_factor_still_signs_in_with_a_password(app, browser, alice, client):
    client_id, client_secret = client
    claims = verified_claims(browser.http, tokens_for(browser, client_id, client_secret)["id_token"])
    assert (claims["acr"], claims["amr"]) == ("pwd", ["pwd"])


def test_3_1_2_6_a_session_from_before_enrolment_is_not_enough_even_silently(app, browser, alice, client):
    """A password session opened before the person enrolled: prompt=none answers
    interaction_required (never a silent password-only sign-in); interactively, only the code."""
    client_id, client_secret = client
    tokens_for(browser, client_id, client_secret)
    secret, _ = enroll_totp(app)
    response, params = start(browser, client_id, prompt="none")
    assert redirected_to_client(response)["error"] == "interaction_required"
    response, _ = start(browser, client_id)
    assert at(response, "/step-up/")
    response = submit_code(browser, response, pyotp.TOTP(secret).now())
    assert claims_after(browser, client_id, client_secret, response)["acr"] == "mfa"


@configured(enrolled_factors="when-asked")
def test_when_asked_a_password_signs_an_enrolled_person_in_where_no_level_is_asked(app, browser, alice, client):
    """The documented trade-off of ``when-asked``: only the application's request decides."""
    enroll_totp(app)
    client_id, client_secret = client
    claims = verified_claims(browser.http, tokens_for(browser, client_id, client_secret)["id_token"])
    assert claims["acr"] == "pwd"


@configured(enrolled_factors="when-asked", min_acr="mfa")
def test_min_acr_is_a_floor_for_every_client(app, browser, alice, client):
    """OIDC_MIN_ACR: a client asking for nothing still gets ``mfa``, in either mode."""
    secret, _ = enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id, acr_values="pwd")
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/")
    response = submit_code(browser, response, pyotp.TOTP(secret).now())
    assert claims_after(browser, client_id, client_secret, response)["acr"] == "mfa"


@configured(min_acr="mfa")
def test_min_acr_leads_a_person_without_a_factor_to_enrol(app, browser, alice, client):
    client_id, _ = client
    response, _ = start(browser, client_id)
    assert at(browser.follow(browser.login(response)), "/enroll/")


# ---- a sign-in no application started (the account page) ----

def test_the_account_sign_in_asks_the_code_too(app, browser, alice):
    secret, _ = enroll_totp(app)
    step = sign_in(browser)
    assert step.headers["Location"] == "/sign-in/second-factor"
    assert browser.http.get("/account").headers["Location"] == "/sign-in/second-factor?next=/account"
    page = browser.http.get("/sign-in/second-factor")
    wrong = browser.http.post("/sign-in/second-factor", data={"csrf_token": csrf_token(page.text), "code": "000000"})
    assert wrong.status_code == 401 and "did not work" in wrong.text
    done = browser.http.post("/sign-in/second-factor", data={"csrf_token": csrf_token(page.text),
                                                            "code": pyotp.TOTP(secret).now()})
    assert (done.status_code, done.headers["Location"]) == (302, "/account")
    assert 'id="session-acr">mfa<' in browser.http.get("/account").text


def test_the_second_factor_step_goes_back_only_to_a_local_next(app, browser, alice):
    """RFC 9700 §4.11.1: no open redirect from the step's ``next``."""
    secret, _ = enroll_totp(app)
    sign_in(browser)
    page = browser.http.get("/sign-in/second-factor?next=https://evil.example/")
    done = browser.http.post("/sign-in/second-factor?next=https://evil.example/",
                             data={"csrf_token": csrf_token(page.text), "code": pyotp.TOTP(secret).now()})
    assert done.headers["Location"] == "/account"


def test_cancelling_the_account_sign_in_signs_out(app, browser, alice):
    enroll_totp(app)
    sign_in(browser)
    page = browser.http.get("/sign-in/second-factor")
    assert "Cancel and sign out" in page.text
    browser.http.post("/account/logout", data={"csrf_token": csrf_token(page.text)})
    assert browser.http.get("/account").headers["Location"] == "/login?next=/account"


# ---- the account page's changes ----

def test_a_password_only_session_of_an_enrolled_person_cannot_change_the_password(app, browser, alice):
    """Issue 12 item 2: "that session can change the password" no more."""
    enroll_totp(app)
    sign_in(browser)  # and stops at the second-factor step
    before = password_hash(app)
    page = browser.http.get("/account/password")
    assert page.status_code == 302 and page.headers["Location"].startswith("/account/confirm?level=mfa&why=password")
    changed = browser.http.post("/account/password", data={
        "csrf_token": csrf_token(browser.http.get("/login").text), "current_password": PASSWORD,
        "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert changed.status_code == 302 and changed.headers["Location"].startswith("/account/confirm?level=mfa")
    assert password_hash(app) == before


def test_after_the_code_the_password_changes_and_confirming_returns_to_the_page(app, browser, alice):
    secret, _ = enroll_totp(app)
    sign_in_with_code(browser, secret)
    page = browser.http.get("/account/password")
    assert page.status_code == 200
    changed = browser.http.post("/account/password", data={
        "csrf_token": csrf_token(page.text), "current_password": PASSWORD,
        "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert changed.headers["Location"] == "/account?done=password"


@configured(account_reauth_seconds=120)
def test_account_reauth_seconds_sets_how_recent_is_recent(app, browser, alice):
    secret, codes = enroll_totp(app)
    sign_in_with_code(browser, secret)
    age_login(app, browser, 100)
    assert browser.http.get("/account/password").status_code == 200
    age_login(app, browser, 121)
    stale = browser.http.get("/account/password")
    assert stale.headers["Location"] == "/account/confirm?level=mfa&why=password&next=/account/password"
    page = browser.http.get(stale.headers["Location"])
    done = browser.http.post("/account/confirm", data={
        "csrf_token": csrf_token(page.text), "level": "mfa", "why": "password", "next": "/account/password",
        "password": PASSWORD, "kind": "recovery", "code": codes[0]})  # this time-step's code is spent
    assert done.headers["Location"] == "/account/password?done=confirmed"
    assert browser.http.get("/account/password").status_code == 200


def test_confirm_never_returns_to_another_host(app, browser, alice):
    """RFC 9700 §4.11.1."""
    sign_in(browser)
    page = browser.http.get("/account/confirm?level=pwd&next=//evil.example/")
    done = browser.http.post("/account/confirm", data={
        "csrf_token": csrf_token(page.text), "level": "pwd", "next": "https://evil.example/", "password": PASSWORD})
    assert done.headers["Location"] == "/account?done=confirmed"


@pytest.mark.parametrize(("app", "promise"), [
    ({"enrolled_factors": "always"}, "you sign in with your password and a 6-digit code from the app"),
    ({"enrolled_factors": "when-asked"}, "applications that ask for a second factor ask for a 6-digit code"),
], indirect=["app"])
def test_the_enrolment_page_promises_what_the_mode_does(app, browser, alice, promise):
    sign_in(browser)
    page = browser.http.get("/account/totp")
    assert page.status_code == 200
    assert promise in " ".join(page.text.split())
