"""Pending authorization requests (issue 12): one row each, bound to the browser by a
per-request cookie, expiring, completed once, removed by ``oidc-provider cleanup``; a session
ended while a request runs stays ended; ``prompt=login`` (OIDC Core §3.1.2.1) is satisfied
only by a sign-in done for that request."""

from __future__ import annotations

import json
from datetime import timedelta

import pyotp
import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select, update

from oidc_provider.cli import main
from oidc_provider.clock import utcnow
from oidc_provider.digests import digest
from oidc_provider.extensions import db
from oidc_provider.models import BrowserSession, Consent, PendingRequest

from ..conftest import DATABASE_URL
from ..helpers import WHEN_ASKED, Browser, csrf_token, make_client, make_user, query_of
from ..spec._support import SESSION_COOKIE, at_login, redirected_to_client, start, urlpath
from .test_step_up import enroll_totp

PENDING_PREFIX = "oidc_pending_"  # the issuer is http://localhost: no __Host- prefix


@pytest.fixture
def alice(app):
    make_user(app)


@pytest.fixture
def client_id(app):
    return make_client(app, trusted=True)[0]


def pid_of(response) -> str:
    return query_of(response.headers["Location"])["p"]


def rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(PendingRequest))


def pending_cookies(browser) -> list[str]:
    return [c.key for c in browser.http._cookies.values() if c.key.startswith(PENDING_PREFIX)]


def test_requests_started_in_two_tabs_each_keep_their_own_row_and_complete(app, browser, alice, client_id):
    """Two requests waiting in one browser do not share (or overwrite) a session entry: each is
    a row with its own cookie, and each completes with its own ``state``."""
    first, first_params = start(browser, client_id)
    second, second_params = start(browser, client_id)
    assert at_login(first) and at_login(second)
    assert rows(app) == 2 and len(pending_cookies(browser)) == 2
    done = redirected_to_client(browser.follow(browser.login(second)))
    assert done["state"] == second_params["state"] and "code" in done
    assert rows(app) == 1  # deleted when used
    done = redirected_to_client(browser.follow(browser.http.get(f"/authorize/continue/{pid_of(first)}")))
    assert done["state"] == first_params["state"] and "code" in done
    assert rows(app) == 0 and pending_cookies(browser) == []
    with app.app_context():
        data = db.session.scalar(select(BrowserSession.data))
    assert "pending" not in data


def test_a_completed_request_cannot_be_resumed_again(app, browser, alice, client_id):
    response, _ = start(browser, client_id)
    pid = pid_of(response)
    redirected_to_client(browser.follow(browser.login(response)))
    again = browser.http.get(f"/authorize/continue/{pid}")
    assert again.status_code == 400 and "expired" in again.text


def test_a_request_is_bound_to_the_browser_that_started_it(app, browser, alice, client_id):
    """A ``pid`` seen in a URL (history, Referer) is useless without the request's cookie, even
    to a browser signed in as the same person."""
    response, _ = start(browser, client_id)
    pid = pid_of(response)
    other = Browser(app)
    other.sign_in_and_authorize(client_id)  # signed in, as alice too
    stolen = other.http.get(f"/authorize/continue/{pid}")
    assert stolen.status_code == 400 and "expired" in stolen.text
    other.http.set_cookie(PENDING_PREFIX + pid, "x" * 43)  # a guessed binding value
    forged = other.http.get(f"/authorize/continue/{pid}")
    assert forged.status_code == 400 and "expired" in forged.text
    login = other.http.get(f"/login?p={pid}")
    assert login.status_code == 302 and urlpath(login.headers["Location"]) == f"/authorize/continue/{pid}"
    # The browser that started it still completes it.
    assert "code" in redirected_to_client(browser.follow(browser.login(response)))


def test_an_expired_request_is_refused(app, browser, alice, client_id):
    response, _ = start(browser, client_id)
    with app.app_context():
        db.session.execute(update(PendingRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    page = browser.http.get(response.headers["Location"])
    assert page.status_code == 302 and urlpath(page.headers["Location"]).startswith("/authorize/continue/")
    expired = browser.http.get(page.headers["Location"])
    assert expired.status_code == 400 and "expired" in expired.text


def test_the_login_form_of_a_pending_request_is_csrf_checked_against_that_request(app, browser, alice, client_id):
    """Login CSRF (RFC 6749 §10.12): a form without the request's token, or with another
    request's, signs nobody in."""
    first, _ = start(browser, client_id)
    second, _ = start(browser, client_id)
    page = browser.http.get(first.headers["Location"])
    token = csrf_token(page.text)
    for sent in (None, "", token + "x"):
        data = {"p": pid_of(second), "username": "alice", "password": "correct horse battery staple"}
        if sent is not None:
            data["csrf_token"] = sent
        refused = browser.http.post("/login", data=data)
        assert refused.status_code == 400 and "Form expired" in refused.text, sent
    wrong_request = browser.http.post("/login", data={"p": pid_of(second), "csrf_token": token, "username": "alice",
                                                      "password": "correct horse battery staple"})
    assert wrong_request.status_code == 400
    assert browser.http.get_cookie(SESSION_COOKIE) is None
    assert "code" in redirected_to_client(browser.follow(browser.login(second)))


def test_first_sign_ins_in_two_tabs_with_no_session_both_succeed(app, alice, client_id):
    """Each tab's login page was rendered before any session existed; the second sign-in
    still passes its CSRF check (the token is bound to its request, not to a session the
    first tab's sign-in replaced)."""
    browser = Browser(app)
    first, first_params = start(browser, client_id)
    second, second_params = start(browser, client_id)
    pages = [browser.http.get(r.headers["Location"]) for r in (first, second)]
    assert browser.http.get_cookie(SESSION_COOKIE) is None
    for response, page, params in ((first, pages[0], first_params), (second, pages[1], second_params)):
        signed_in = browser.http.post("/login", data={"csrf_token": csrf_token(page.text), "p": pid_of(response),
                                                      "username": "alice",
                                                      "password": "correct horse battery staple"})
        assert redirected_to_client(browser.follow(signed_in))["state"] == params["state"]


def consent_page(browser, response) -> tuple[str, str]:
    """Sign in on the login page ``response`` sent to; the consent page's path and its token."""
    at = browser.follow(browser.login(response))
    assert urlpath(at.headers["Location"]).startswith("/consent/"), at.headers.get("Location")
    page = browser.http.get(at.headers["Location"])
    assert page.status_code == 200 and 'name="decision"' in page.text
    return urlpath(at.headers["Location"]), csrf_token(page.text)


def consents_stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Consent))


def test_the_consent_form_is_csrf_checked_against_its_pending_request(app, browser, alice):
    """CSRF on the consent decision (RFC 6749 §10.12): no token, a wrong one, the session's own
    token or another pending request's token allows nothing; the request's own token does."""
    client_id = make_client(app)[0]
    first, _ = start(browser, client_id)
    second, second_params = start(browser, client_id)
    _, first_token = consent_page(browser, first)
    second_path, second_token = consent_page(browser, second)
    session_token = csrf_token(browser.http.get("/account/confirm").text)  # a form with no pending request
    for sent in (None, "", second_token + "x", session_token, first_token):
        data = {"decision": "allow"} if sent is None else {"decision": "allow", "csrf_token": sent}
        refused = browser.http.post(second_path, data=data)
        assert refused.status_code == 400 and "Form expired" in refused.text, sent
    assert consents_stored(app) == 0
    allowed = browser.http.post(second_path, data={"decision": "allow", "csrf_token": second_token})
    done = redirected_to_client(browser.follow(allowed))
    assert done["state"] == second_params["state"] and "code" in done and consents_stored(app) == 1


def test_consent_pages_of_two_first_sign_ins_in_one_browser_both_allow(app, alice):
    """Two tabs, no session: each signs in (each sign-in replaces the session, and with it a
    session-bound token), then each consent page is submitted. Each token is bound to its own
    request, so both end with a code and their own ``state``."""
    browser = Browser(app)
    client_id = make_client(app)[0]
    first, first_params = start(browser, client_id)
    second, second_params = start(browser, client_id)
    first_path, first_token = consent_page(browser, first)
    second_path, second_token = consent_page(browser, second)
    for path, token, params in ((first_path, first_token, first_params), (second_path, second_token, second_params)):
        allowed = browser.http.post(path, data={"decision": "allow", "csrf_token": token})
        assert redirected_to_client(browser.follow(allowed))["state"] == params["state"]


def test_3_1_2_1_prompt_login_is_not_satisfied_by_a_sign_in_for_another_request(app, browser, alice, client_id):
    """OIDC Core §3.1.2.1 prompt=login: "The Authorization Server SHOULD prompt the End-User
    for reauthentication": per request. Signing in on another tab's login page, after this
    request started, is not a re-authentication for this one."""
    browser.sign_in_and_authorize(client_id)
    first, first_params = start(browser, client_id, prompt="login")
    second, _ = start(browser, client_id, prompt="login")
    assert at_login(first) and at_login(second)
    redirected_to_client(browser.follow(browser.login(second)))
    resumed = browser.follow(browser.http.get(f"/authorize/continue/{pid_of(first)}"))
    assert at_login(resumed), resumed.headers.get("Location")
    done = redirected_to_client(browser.follow(browser.login(resumed)))
    assert done["state"] == first_params["state"]


@WHEN_ASKED  # a password sign-in first, a step-up asked by the other request's acr_values
def test_3_1_2_1_prompt_login_is_not_satisfied_by_a_step_up_for_another_request(app, browser, alice, client_id):
    secret, _ = enroll_totp(app)
    browser.sign_in_and_authorize(client_id)
    waiting, _ = start(browser, client_id, prompt="login")
    assert at_login(waiting)
    stepping, _ = start(browser, client_id, acr_values="mfa")
    assert urlpath(stepping.headers["Location"]).startswith("/step-up/")
    page = browser.http.get(stepping.headers["Location"])
    stepped = browser.http.post(urlpath(stepping.headers["Location"]),
                                data={"csrf_token": csrf_token(page.text), "code": pyotp.TOTP(secret).now()})
    assert "code" in redirected_to_client(browser.follow(stepped))
    resumed = browser.follow(browser.http.get(f"/authorize/continue/{pid_of(waiting)}"))
    assert at_login(resumed), resumed.headers.get("Location")


def test_a_consent_decision_counts_only_for_the_account_that_made_it(app, browser, alice):
    """Someone else signing in on this browser mid-request does not inherit the consent the
    first person gave to this request."""
    make_user(app, username="bob")
    client_id = make_client(app)[0]
    response, _ = start(browser, client_id)
    response = browser.follow(browser.login(response))
    pid = urlpath(response.headers["Location"]).rsplit("/", 1)[1]
    with app.app_context():
        db.session.execute(update(PendingRequest).values(progress={"consent": "granted", "consent_by": -1}))
        db.session.commit()
    resumed = browser.follow(browser.http.get(f"/authorize/continue/{pid}"))
    assert urlpath(resumed.headers["Location"]) == f"/consent/{pid}"


@pytest.fixture
def ending_app(app_factory):
    """An app on which a request carrying ``X-End-Session-Meanwhile`` finds its session row
    deleted after loading it: a sign-out in another tab, committed while this request ran. In
    the levels-of-authentication mode, so a password sign-in of an enrolled person can be
    stepped up later, by an app's request."""
    app = app_factory(enrolled_factors="when-asked")

    @app.before_request
    def end_meanwhile():
        from flask import request
        if request.headers.get("X-End-Session-Meanwhile"):
            # Through the request's own database session: on SQLite another connection would
            # wait for the write lock this request holds.
            db.session.execute(delete(BrowserSession))
            db.session.commit()
    return app


def test_a_session_ended_while_a_request_runs_stays_ended_without_a_500(ending_app):
    """Issue 12: the tab still loading when the person signed out elsewhere gets its page, not a
    StaleDataError; the session is not brought back."""
    make_user(ending_app)
    client_id = make_client(ending_app, trusted=True)[0]
    browser = Browser(ending_app)
    browser.sign_in_and_authorize(client_id)
    # /logout without a hint asks for confirmation and remembers the request in the session:
    # a session write.
    page = browser.http.get("/logout", headers={"X-End-Session-Meanwhile": "1"})
    assert page.status_code == 200
    with ending_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BrowserSession)) == 0
    account = browser.http.get("/account")
    assert account.status_code == 302 and "/login" in account.headers["Location"]


def test_a_step_up_racing_a_sign_out_does_not_bring_the_session_back(ending_app):
    make_user(ending_app)
    secret, _ = enroll_totp(ending_app)
    client_id = make_client(ending_app, trusted=True)[0]
    browser = Browser(ending_app)
    browser.sign_in_and_authorize(client_id)
    stepping, _ = start(browser, client_id, acr_values="mfa")
    page = browser.http.get(stepping.headers["Location"])
    stepped = browser.http.post(urlpath(stepping.headers["Location"]), headers={"X-End-Session-Meanwhile": "1"},
                                data={"csrf_token": csrf_token(page.text), "code": pyotp.TOTP(secret).now()})
    assert stepped.status_code == 302
    with ending_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BrowserSession)) == 0


def test_a_new_session_carries_its_csrf_token_from_the_start(app, browser, alice, client_id):
    """Issue 12: pages loading at once in several tabs never each write a CSRF token of their
    own (the last overwriting the others'): the session gets one when it is created."""
    browser.sign_in_and_authorize(client_id)
    raw = browser.http.get_cookie(SESSION_COOKIE).value
    with app.app_context():
        data = db.session.scalar(select(BrowserSession.data).where(BrowserSession.id_digest == digest(raw)))
    assert len(data["csrf_token"]) >= 40


def test_cleanup_removes_expired_pending_requests(app, browser, alice, client_id, monkeypatch):
    """``oidc-provider cleanup`` deletes expired pending requests and keeps live ones."""
    start(browser, client_id)
    start(browser, client_id)
    with app.app_context():
        oldest = db.session.scalar(select(PendingRequest.id).order_by(PendingRequest.id))
        db.session.execute(update(PendingRequest).where(PendingRequest.id == oldest)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    settings = app.extensions["oidc_settings"]
    monkeypatch.setenv("OIDC_DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("OIDC_ISSUER", settings.issuer)
    monkeypatch.setenv("OIDC_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("OIDC_CONFIG_FILE", "")
    result = CliRunner().invoke(main, ["cleanup", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["pending_requests"] == 1
    assert rows(app) == 1
