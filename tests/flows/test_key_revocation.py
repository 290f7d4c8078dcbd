"""``oidc-provider keys revoke KID`` (issue 11): a compromised signing key is withdrawn at once.
It leaves /jwks.json, tokens it signed are refused by userinfo (RFC 6750 §3.1 ``invalid_token``)
and introspection (RFC 7662 §2.2 ``active: false``), an ID token it signed is no
``id_token_hint`` any more, and its algorithm goes on signing with another key.

The command runs as the operator runs it; this test app's key cache is then reloaded, as every
provider process does by itself within ``KeyStore.CACHE_SECONDS`` (tests/e2e/test_secret_key_live.py
checks that bound against a running server).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from oidc_provider.extensions import db
from oidc_provider.models import AuditEvent, SigningKey

from ..spec._clients import header_of, issue_tokens, refresh
from ..spec._tokens import introspect, setup_rp
from .test_secret_key_lifecycle import cli, one_line_error


@pytest.fixture
def rp(app):
    return setup_rp(app, grants=["refresh_token"])


def reload_keys(app) -> None:
    """What each process does by itself at most KeyStore.CACHE_SECONDS later."""
    app.extensions["oidc_server"].policy.keys.invalidate()


def userinfo(http, token):
    return http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})


def test_revoking_the_active_key_withdraws_it_and_another_key_signs_at_once(app, browser, rp):
    tokens = issue_tokens(browser, *rp)
    kid = header_of(tokens["access_token"])["kid"]
    assert header_of(tokens["id_token"])["kid"] == kid
    assert userinfo(browser.http, tokens["access_token"]).status_code == 200
    with app.app_context():
        next_kid = db.session.scalar(select(SigningKey.kid).where(SigningKey.alg == "RS256",
                                                                  SigningKey.state == "next"))

    done = cli("keys", "revoke", kid, "--json")
    assert done.exit_code == 0, done.stderr
    assert [k["kid"] for k in json.loads(done.stdout)["now_active"]] == [next_kid]
    reload_keys(app)

    # RFC 6750 §3.1: "invalid_token: The access token provided is expired, revoked, malformed,
    # or invalid for other reasons." -> 401.
    refused = userinfo(browser.http, tokens["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    # RFC 7662 §2.2: a token that is not valid is {"active": false}.
    assert introspect(browser.http, *rp, tokens["access_token"]).json == {"active": False}
    assert kid not in [k["kid"] for k in browser.http.get("/jwks.json").json["keys"]]
    # The hint it signed could be forged: refused, no redirect (RP-Initiated Logout §2).
    hint = browser.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert hint.status_code == 400

    # The refresh token is not signed by the key: it still works, and the new tokens are
    # signed by the key that took over.
    renewed = refresh(browser.http, *rp, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.json
    assert header_of(renewed.json["access_token"])["kid"] == next_kid
    assert userinfo(browser.http, renewed.json["access_token"]).status_code == 200
    assert introspect(browser.http, *rp, renewed.json["access_token"]).json["active"] is True
    assert header_of(issue_tokens(browser, *rp)["id_token"])["kid"] == next_kid

    with app.app_context():
        states = {row.kid: row.state for row in db.session.scalars(select(SigningKey).where(SigningKey.alg == "RS256"))}
        assert states[kid] == "revoked" and states[next_kid] == "active"
        assert sorted(states.values()).count("next") == 1, "a fresh next key follows"
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "admin:keys:revoked"))
        assert event.detail == {"revoked": [kid], "active": [next_kid]}


def test_revoking_a_next_key_replaces_it_and_signing_goes_on(app, browser, rp):
    with app.app_context():
        active, upcoming = (db.session.scalar(select(SigningKey.kid).where(SigningKey.alg == "RS256",
                                                                            SigningKey.state == state))
                            for state in ("active", "next"))
    assert cli("keys", "revoke", upcoming).exit_code == 0
    reload_keys(app)
    published = [k["kid"] for k in browser.http.get("/jwks.json").json["keys"]]
    assert upcoming not in published and active in published
    assert header_of(issue_tokens(browser, *rp)["access_token"])["kid"] == active
    with app.app_context():
        assert db.session.scalar(select(SigningKey.kid).where(SigningKey.alg == "RS256",
                                                              SigningKey.state == "next")) not in (None, upcoming)


def test_revoking_both_keys_of_an_algorithm_creates_a_new_active_key(app, browser, rp):
    with app.app_context():
        kids = list(db.session.scalars(select(SigningKey.kid).where(SigningKey.alg == "RS256")))
    assert cli("keys", "revoke", *kids).exit_code == 0
    reload_keys(app)
    tokens = issue_tokens(browser, *rp)
    assert header_of(tokens["access_token"])["kid"] not in kids
    assert userinfo(browser.http, tokens["access_token"]).status_code == 200


def test_revoking_an_unknown_kid_is_one_line_and_changes_nothing(app):
    one_line_error(cli("keys", "revoke", "no-such-kid"), "no signing key with kid 'no-such-kid'")



def test_a_kid_that_begins_with_a_dash_is_a_kid_not_an_option(app):
    """RFC 7638 thumbprints are base64url and begin with "-" one time in 64."""
    one_line_error(cli("keys", "revoke", "-7Qx_no-such-kid"), "no signing key with kid '-7Qx_no-such-kid'")
