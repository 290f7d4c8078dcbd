"""Issue 12, "Sign-in policy", against a real HTTP server (what an attacker holding only the
password, or a password-only session, would reach): with ``OIDC_ENROLLED_FACTORS=always`` such a
session of a person who has an authenticator app cannot change the password, and the account
page sends it to the second-factor step; with the code it can."""

from __future__ import annotations

import time

import pyotp
import pytest
import requests

from ..flows.test_step_up import enroll_totp
from ..helpers import PASSWORD, csrf_token
from . import test_browser_pages as pages

relying_party = pages.relying_party
setup = pages.setup

pytestmark = pytest.mark.e2e

TIMEOUT = 10
NEW_PASSWORD = "a new and long password"


def password_sign_in(issuer: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{issuer}/login", timeout=TIMEOUT)
    signed = browser.post(f"{issuer}/login", allow_redirects=False, timeout=TIMEOUT, data={
        "csrf_token": csrf_token(page.text), "username": "alice", "password": PASSWORD})
    assert (signed.status_code, signed.headers["Location"]) == (302, "/sign-in/second-factor")
    return browser


def change_password(browser: requests.Session, issuer: str, token: str) -> requests.Response:
    return browser.post(f"{issuer}/account/password", allow_redirects=False, timeout=TIMEOUT, data={
        "csrf_token": token, "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD})


def password_works(issuer: str, password: str) -> bool:
    browser = requests.Session()
    page = browser.get(f"{issuer}/login", timeout=TIMEOUT)
    return browser.post(f"{issuer}/login", allow_redirects=False, timeout=TIMEOUT, data={
        "csrf_token": csrf_token(page.text), "username": "alice", "password": password}).status_code == 302


def test_a_password_only_session_of_an_enrolled_person_cannot_change_the_password(setup):
    secret, _ = enroll_totp(setup.app)
    issuer = setup.issuer
    browser = password_sign_in(issuer)
    token = csrf_token(browser.get(f"{issuer}/login", timeout=TIMEOUT).text)

    home = browser.get(f"{issuer}/account", allow_redirects=False, timeout=TIMEOUT)
    assert (home.status_code, home.headers["Location"]) == (302, "/sign-in/second-factor?next=/account")
    refused = change_password(browser, issuer, token)
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/account/confirm?level=mfa")
    assert password_works(issuer, PASSWORD) and not password_works(issuer, NEW_PASSWORD)

    # The second factor, then the same change goes through.
    step = browser.get(f"{issuer}/sign-in/second-factor", timeout=TIMEOUT)
    done = browser.post(f"{issuer}/sign-in/second-factor", allow_redirects=False, timeout=TIMEOUT, data={
        "csrf_token": csrf_token(step.text), "kind": "totp", "code": pyotp.TOTP(secret).at(time.time() + 30)})
    assert (done.status_code, done.headers["Location"]) == (302, "/account")
    page = browser.get(f"{issuer}/account/password", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    changed = change_password(browser, issuer, csrf_token(page.text))
    assert (changed.status_code, changed.headers["Location"]) == (302, "/account?done=password")
    assert password_works(issuer, NEW_PASSWORD)
