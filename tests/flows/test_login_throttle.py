"""Brute-force protection on the login form, through the Flask test client (NIST SP 800-63B
§5.2.2 "Rate Limiting (Throttling)"; issue 3: throttling per account and per client address, a
lockout an admin can lift, and "the same answer for 'no such user' and 'wrong password'")."""

from __future__ import annotations

import re

from sqlalchemy import select

from oidc_provider.authn import throttle
from oidc_provider.clock import utcnow
from oidc_provider.digests import unknown_username
from oidc_provider.extensions import db
from oidc_provider.models import AuditEvent

from ..helpers import PASSWORD, csrf_token, make_client, make_user

MESSAGE = "Incorrect username or password."
FREE = throttle.FREE_FAILURES["account"]


def _post_login(http, username, password, address="127.0.0.1"):
    page = http.get("/login", environ_base={"REMOTE_ADDR": address})
    assert page.status_code == 200
    return http.post("/login", environ_base={"REMOTE_ADDR": address}, data={
        "csrf_token": csrf_token(page.text), "username": username, "password": password})


def _refused(response):
    """The wrong-password answer: 401 and the one generic message; the page minus its CSRF
    token, to compare answers."""
    assert response.status_code == 401, response.status_code
    assert re.findall(r'id="login-error">([^<]*)<', response.text) == [MESSAGE]
    return re.sub(r'name="csrf_token" value="[^"]+"', "", response.text)


def _signed_in(response):
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].endswith("/account")
    return True


def _events(app, event):
    with app.app_context():
        return [(e.outcome, e.reason, e.account, e.ip) for e in
                db.session.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))]


def _unlock(app, username):
    with app.app_context():
        assert throttle.unlock(username) is True
        db.session.commit()


def test_5_2_2_locked_account_refuses_the_right_password_with_the_wrong_password_answer(app, client):
    """§5.2.2: "the verifier SHALL limit consecutive failed authentication attempts on a single
    subscriber account"; issue 3: the same answer whatever the reason."""
    make_user(app)
    wrong = [_refused(_post_login(client, "alice", "wrong password")) for _ in range(FREE + 1)]
    locked = _refused(_post_login(client, "alice", PASSWORD))
    assert locked == wrong[0]
    assert client.get("/account").status_code == 302  # not signed in
    assert _events(app, "account:login:throttled") == [("failure", "account", "alice", "127.0.0.1")]
    assert len(_events(app, "account:login:failure")) == FREE + 1  # the refused try is not one

    _unlock(app, "alice")
    assert _signed_in(_post_login(client, "alice", PASSWORD))


def test_5_2_2_no_such_user_is_answered_and_throttled_like_a_wrong_password(app, client):
    """Issue 3: "the same answer for 'no such user' and 'wrong password'"; the typed name is
    throttled even when no account has it, so probing names gains nothing."""
    make_user(app)
    make_user(app, "nobod")
    known = _refused(_post_login(client, "nobod", "wrong password"))
    unknown = [_refused(_post_login(client, "nobody", "wrong password")) for _ in range(FREE + 1)]
    # Same page, but for the echoed username.
    assert unknown[0] == known.replace('value="nobod"', 'value="nobody"')
    throttled = _refused(_post_login(client, "Nobody", "anything"))
    assert throttled == unknown[0].replace('value="nobody"', 'value="Nobody"')
    # Recorded as the name's keyed digest, not the name (it may be a password; issue 12).
    nobody = unknown_username(app.extensions["oidc_settings"].secret_key, "nobody")
    assert _events(app, "account:login:throttled") == [("failure", "account", nobody, "127.0.0.1")]
    # Another name is not affected.
    assert _signed_in(_post_login(client, "alice", PASSWORD))


def test_5_2_2_address_is_throttled_across_usernames(app):
    """§5.2.2 names "use of the IP address" among the techniques against online guessing: one
    address trying many names (password spraying) is throttled although no name failed twice."""
    make_user(app)
    sprayer, elsewhere = app.test_client(), app.test_client()
    for i in range(throttle.FREE_FAILURES["ip"] + 1):
        _refused(_post_login(sprayer, f"user{i}", "Winter2026!", address="203.0.113.9"))
    _refused(_post_login(sprayer, "alice", PASSWORD, address="203.0.113.9"))
    assert _events(app, "account:login:throttled") == [("failure", "ip", "alice", "203.0.113.9")]
    assert _signed_in(_post_login(elsewhere, "alice", PASSWORD, address="198.51.100.7"))


def test_5_2_2_a_correct_password_clears_the_account_count(app, client):
    """A person who mistypes now and then is never locked out by failures long since followed
    by a success."""
    make_user(app)
    for _ in range(3):
        for _ in range(FREE):
            _refused(_post_login(client, "alice", "typo"))
        assert _signed_in(_post_login(client, "alice", PASSWORD))
    assert _events(app, "account:login:throttled") == []


def test_5_2_2_the_authorization_journey_resumes_after_unlock(app, browser):
    """The lockout page keeps the pending authorization request; once an admin lifts the lock,
    the person signs in and the client gets its code."""
    make_user(app)
    client_id, _ = make_client(app)
    start = browser.follow(browser.http.get("/authorize", query_string=browser.authorize_params(client_id)))
    for _ in range(FREE + 1):
        _refused(browser.login(start, password="wrong"))
    locked = browser.login(start)
    _refused(locked)
    assert 'name="p"' in locked.text
    _unlock(app, "alice")
    result = browser.sign_in_and_authorize(client_id)
    assert result["code"] and result["state"] == result["_sent_state"]


def test_5_2_2_odd_input_is_throttled_without_errors(app, client):
    """Never a 500: empty, oversized and non-ASCII usernames, and names that look like keys,
    are counted and refused like any other (an empty name is throttled by address only)."""
    names = ["", "x" * 5000, "ÄLICE", "a:b", "ip:127.0.0.1"]
    for n, name in enumerate(names):
        for _ in range(FREE + 2):
            assert _post_login(client, name, "wrong", address=f"192.0.2.{n + 1}").status_code == 401
    with app.app_context():
        assert throttle.status("äliCE", now=utcnow()).failures == FREE + 1
        assert throttle.status("x" * 150, now=utcnow()).failures == FREE + 1
    # The empty name counted against its address only, still within the address's allowance.
    assert [(reason, ip) for _, reason, _, ip in _events(app, "account:login:throttled")] == [
        ("account", f"192.0.2.{n}") for n in range(2, 6)]
