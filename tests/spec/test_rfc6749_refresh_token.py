"""Refresh tokens: RFC 6749 §1.5, §6; RFC 9700 §4.14.2 (rotation and reuse detection);
OIDC Core §12.2 (the ID token in a refresh response) and §11 (offline_access)."""

from __future__ import annotations

from datetime import timedelta

from oidc_provider.clock import utcnow
from oidc_provider.digests import digest
from oidc_provider.extensions import db
from oidc_provider.models import Account, RefreshToken

from ..helpers import Browser, make_client, make_user
from ._clients import claims_of, issue_tokens, refresh, set_columns, userinfo_status


def _start(app, browser, *, grants=("refresh_token",), **authorize_extra):
    make_user(app)
    client_id, secret = make_client(app, grants=list(grants))
    return client_id, secret, issue_tokens(browser, client_id, secret, **authorize_extra)


def test_1_5_refresh_token_issued_when_client_has_the_grant(app, browser):
    """RFC 6749 §1.5: the authorization server issues a refresh token to a client allowed to
    use it, "at the discretion of the authorization server"."""
    _, _, body = _start(app, browser)
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 43


def test_11_offline_access_scope_issues_a_refresh_token(app, browser):
    """OIDC Core §11: "offline_access ... requests that an OAuth 2.0 Refresh Token be issued
    that can be used to obtain an Access Token that grants access to the End-User's UserInfo
    Endpoint even when the End-User is not present"."""
    client_id, secret, body = _start(app, browser, grants=(), scope="openid offline_access",
                                     prompt="consent")
    assert "offline_access" in body["scope"].split()
    assert "refresh_token" in body
    again = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert again.status_code == 200, again.json
    assert again.json["refresh_token"] != body["refresh_token"]


def test_1_5_no_refresh_token_without_the_grant_or_offline_access(app, browser):
    """RFC 6749 §1.5: issuing a refresh token is optional; this provider issues none to a client
    that neither holds the refresh_token grant nor asked for offline_access."""
    _, _, body = _start(app, browser, grants=(), scope="openid profile")
    assert "refresh_token" not in body
    assert {"access_token", "id_token"} <= set(body)


def test_6_refresh_rotates_and_the_old_token_stops_working(app, browser):
    """RFC 6749 §6: "The authorization server MAY issue a new refresh token, in which case the
    client MUST discard the old refresh token"; RFC 9700 §4.14.2: with rotation "the
    authorization server ... invalidates the old refresh token"."""
    client_id, secret, body = _start(app, browser)
    first = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert first.status_code == 200, first.json
    assert first.json["refresh_token"] != body["refresh_token"]
    assert first.json["access_token"] != body["access_token"]
    assert userinfo_status(browser.http, first.json["access_token"]) == 200
    second = refresh(browser.http, client_id, secret, first.json["refresh_token"])
    assert second.status_code == 200, second.json
    assert second.json["refresh_token"] not in (body["refresh_token"], first.json["refresh_token"])


def test_rfc9700_4_14_2_reuse_of_rotated_token_revokes_the_family(app_factory):
    """RFC 9700 §4.14.2: "If a refresh token is compromised and subsequently used by both the
    attacker and the legitimate client, one of them will present an invalidated refresh token,
    which will inform the authorization server of the breach. The authorization server cannot
    determine which party submitted the invalid refresh token, but it will revoke the active
    refresh token." (Without the retry grace, any reuse is such a breach.)"""
    app = app_factory(refresh_reuse_grace_seconds=0)
    browser = Browser(app)
    client_id, secret, body = _start(app, browser)
    rotated = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert rotated.status_code == 200
    replay = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert replay.status_code == 400
    assert replay.json["error"] == "invalid_grant"
    newest = refresh(browser.http, client_id, secret, rotated.json["refresh_token"])
    assert newest.status_code == 400
    assert newest.json["error"] == "invalid_grant"
    for access_token in (body["access_token"], rotated.json["access_token"]):
        assert userinfo_status(browser.http, access_token) == 401
    introspect = browser.http.post("/introspect", data={"token": rotated.json["access_token"]},
                                   auth=(client_id, secret))
    assert introspect.status_code == 200
    assert introspect.json == {"active": False}


def test_12_2_refresh_returns_new_id_token_with_same_sub_and_auth_time(app, browser):
    """OIDC Core §12.2: the refreshed ID Token's "iss Claim Value MUST be the same as in the ID
    Token issued when the original authentication occurred", "sub ... MUST be the same",
    "iat Claim MUST represent the time that the new ID Token is issued", "aud ... MUST be the
    same", "if the ID Token contains an auth_time Claim, its value MUST represent the time of
    the original authentication - not the time that the new ID token is issued", and "it
    SHOULD NOT have a nonce Claim"."""
    client_id, secret, body = _start(app, browser)
    original = claims_of(body["id_token"])
    assert original["nonce"]
    response = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert response.status_code == 200
    renewed = claims_of(response.json["id_token"])
    for claim in ("iss", "sub", "aud", "auth_time", "acr"):
        assert renewed[claim] == original[claim], claim
    assert "nonce" not in renewed
    assert renewed["iat"] >= original["iat"]


def test_6_narrower_scope_is_granted(app, browser):
    """RFC 6749 §6: scope "MUST NOT include any scope not originally granted by the resource
    owner, and if omitted is treated as equal to the scope originally granted"."""
    client_id, secret, body = _start(app, browser, scope="openid profile email")
    narrowed = refresh(browser.http, client_id, secret, body["refresh_token"], scope="openid email")
    assert narrowed.status_code == 200, narrowed.json
    assert set(narrowed.json["scope"].split()) == {"openid", "email"}
    assert set(claims_of(narrowed.json["access_token"])["scope"].split()) == {"openid", "email"}
    # Omitted scope: the originally granted scope, not the narrowed one.
    again = refresh(browser.http, client_id, secret, narrowed.json["refresh_token"])
    assert again.status_code == 200
    assert set(again.json["scope"].split()) == {"openid", "profile", "email"}


def test_6_wider_scope_is_invalid_scope(app, browser):
    """RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by
    the resource owner"; §5.2 ``invalid_scope``."""
    client_id, secret, body = _start(app, browser, scope="openid email")
    wider = refresh(browser.http, client_id, secret, body["refresh_token"], scope="openid email profile")
    assert wider.status_code == 400
    assert wider.json["error"] == "invalid_scope"
    # A refused request does not consume the refresh token.
    still = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert still.status_code == 200, still.json


def test_6_refresh_token_is_bound_to_its_client(app, browser):
    """RFC 6749 §6: the authorization server MUST "validate the refresh token" and "ensure that
    the refresh token was issued to the authenticated client"."""
    client_id, secret, body = _start(app, browser)
    other_id, other_secret = make_client(app, name="Other RP", grants=["refresh_token"])
    stolen = refresh(browser.http, other_id, other_secret, body["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json["error"] == "invalid_grant"
    mine = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert mine.status_code == 200, mine.json


def test_rfc9700_4_14_2_sliding_lifetime_is_enforced(app_factory):
    """RFC 9700 §4.14.2: refresh tokens "SHOULD expire if the client has been inactive for some
    time"; each rotation starts the sliding lifetime again, capped by the family's end."""
    app = app_factory(refresh_token_ttl=600, refresh_token_absolute_ttl=3600)
    browser = Browser(app)
    client_id, secret, body = _start(app, browser)
    with app.app_context():
        row = db.session.query(RefreshToken).filter_by(token_digest=digest(body["refresh_token"])).one()
        assert timedelta(seconds=590) < row.expires_at - row.issued_at <= timedelta(seconds=600)
        assert timedelta(seconds=3590) < row.family_expires_at - row.issued_at <= timedelta(seconds=3600)
        db.session.remove()
    set_columns(app, RefreshToken, RefreshToken.token_digest == digest(body["refresh_token"]),
                expires_at=utcnow() - timedelta(seconds=1))
    expired = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert expired.status_code == 400
    assert expired.json["error"] == "invalid_grant"


def test_rfc9700_4_14_2_absolute_lifetime_caps_rotation(app_factory):
    """RFC 9700 §4.14.2: a refresh token's lifetime is bounded; rotation never extends a family
    past its absolute cap (``refresh_token_absolute_ttl``)."""
    app = app_factory(refresh_token_ttl=600, refresh_token_absolute_ttl=3600)
    browser = Browser(app)
    client_id, secret, body = _start(app, browser)
    # The family is nearly over: the next rotation may live only until its end.
    cap = utcnow() + timedelta(seconds=30)
    set_columns(app, RefreshToken, RefreshToken.token_digest == digest(body["refresh_token"]),
                family_expires_at=cap)
    rotated = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert rotated.status_code == 200, rotated.json
    with app.app_context():
        row = db.session.query(RefreshToken).filter_by(
            token_digest=digest(rotated.json["refresh_token"])).one()
        assert row.expires_at <= cap
        assert row.family_expires_at == cap
        db.session.remove()
    # Past the cap, the token is refused even if its sliding lifetime has not run out.
    set_columns(app, RefreshToken, RefreshToken.token_digest == digest(rotated.json["refresh_token"]),
                family_expires_at=utcnow() - timedelta(seconds=1))
    refused = refresh(browser.http, client_id, secret, rotated.json["refresh_token"])
    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_grant"


def test_6_disabled_account_cannot_refresh(app, browser):
    """RFC 6749 §6: the server MUST "validate the refresh token"; a grant whose resource owner
    was disabled is no longer valid (``invalid_grant``)."""
    client_id, secret, body = _start(app, browser)
    set_columns(app, Account, Account.username == "alice", disabled=True)
    response = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"
    assert userinfo_status(browser.http, body["access_token"]) == 401


def test_6_unknown_refresh_token_is_invalid_grant(app, browser):
    """RFC 6749 §5.2: ``invalid_grant``: "The provided authorization grant ... or refresh token
    is invalid, expired, revoked"."""
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    response = refresh(browser.http, client_id, secret, "not-a-refresh-token")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_6_missing_refresh_token_is_invalid_request(app, browser):
    """RFC 6749 §6: ``refresh_token`` is REQUIRED; §5.2 ``invalid_request``: "The request is
    missing a required parameter"."""
    client_id, secret = make_client(app, grants=["refresh_token"])
    response = browser.http.post("/token", data={"grant_type": "refresh_token"}, auth=(client_id, secret))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_rfc9700_4_14_2_reuse_with_a_wider_scope_still_revokes_the_family(app, browser):
    """A replayed rotated token is reuse whatever else the request says: asking for a wider
    scope must not turn the breach signal into a harmless invalid_scope."""
    client_id, secret, body = _start(app, browser)
    rotated = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert rotated.status_code == 200
    # Within the retry grace too: a retry repeats its request, this one asks for more.
    replay = refresh(browser.http, client_id, secret, body["refresh_token"], scope="openid profile email admin")
    assert replay.status_code == 400
    assert replay.json["error"] == "invalid_grant"
    newest = refresh(browser.http, client_id, secret, rotated.json["refresh_token"])
    assert newest.json["error"] == "invalid_grant"


def test_rfc9700_4_14_2_reuse_racing_the_rotation_still_revokes_the_new_tokens(app, browser):
    """The replay of a refresh token can arrive after the legitimate rotation claimed it but
    before the new tokens are stored; those tokens must not escape the family's revocation."""
    client_id, secret, body = _start(app, browser)
    server = app.extensions["oidc_server"]
    save = server._save_token
    attacker = Browser(app)
    replays = []

    def save_after_a_replay(token, request):
        if not replays:
            # The rotation is normally committed with its successor, and a replay waits for
            # both (the lock): commit it alone here, so the replay sees a claimed token that
            # has no successor yet (it cannot be a retry of a lost answer).
            db.session.commit()
            replays.append(refresh(attacker.http, client_id, secret, body["refresh_token"]))
        return save(token, request)

    server._save_token = save_after_a_replay
    try:
        rotated = refresh(browser.http, client_id, secret, body["refresh_token"])
    finally:
        server._save_token = save
    assert rotated.status_code == 200
    assert replays[0].json["error"] == "invalid_grant"
    assert refresh(browser.http, client_id, secret, rotated.json["refresh_token"]).json["error"] == "invalid_grant"
    assert userinfo_status(browser.http, rotated.json["access_token"]) == 401


def _row(app, value: str) -> RefreshToken:
    with app.app_context():
        row = db.session.query(RefreshToken).filter_by(token_digest=digest(value)).one()
        db.session.expunge(row)
        db.session.remove()
        return row


def test_rfc9700_4_14_2_a_retry_within_the_grace_window_gets_the_same_successor(app, browser):
    """RFC 9700 §4.14.2 allows a bounded grace for a client whose answer was lost: the rotated
    token presented again, while its successor was never used and within
    OIDC_REFRESH_REUSE_GRACE_SECONDS, returns the same successor and a working access token
    (and ID token, OIDC Core §12.2) instead of revoking the family."""
    client_id, secret, body = _start(app, browser)
    lost = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert lost.status_code == 200
    retry = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert retry.status_code == 200, retry.json
    assert retry.json["refresh_token"] == lost.json["refresh_token"]
    assert retry.json["access_token"] != lost.json["access_token"]
    assert userinfo_status(browser.http, retry.json["access_token"]) == 200
    assert claims_of(retry.json["id_token"])["sub"] == claims_of(body["id_token"])["sub"]
    # The successor goes on rotating as usual.
    onward = refresh(browser.http, client_id, secret, retry.json["refresh_token"])
    assert onward.status_code == 200, onward.json
    assert onward.json["refresh_token"] != retry.json["refresh_token"]


def test_rfc9700_4_14_2_reuse_after_the_successor_was_used_revokes_the_family(app, browser):
    """RFC 9700 §4.14.2: once the successor was used, the old token presented again is reuse
    (within the window too): the family is revoked."""
    client_id, secret, body = _start(app, browser)
    rotated = refresh(browser.http, client_id, secret, body["refresh_token"])
    onward = refresh(browser.http, client_id, secret, rotated.json["refresh_token"])
    assert onward.status_code == 200
    replay = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert (replay.status_code, replay.json["error"]) == (400, "invalid_grant")
    newest = refresh(browser.http, client_id, secret, onward.json["refresh_token"])
    assert (newest.status_code, newest.json["error"]) == (400, "invalid_grant")
    assert userinfo_status(browser.http, onward.json["access_token"]) == 401


def test_rfc9700_4_14_2_reuse_outside_the_grace_window_revokes_the_family(app, browser):
    """RFC 9700 §4.14.2: after OIDC_REFRESH_REUSE_GRACE_SECONDS the old token presented again
    is reuse, even though its successor was never used."""
    client_id, secret, body = _start(app, browser)
    rotated = refresh(browser.http, client_id, secret, body["refresh_token"])
    set_columns(app, RefreshToken, RefreshToken.token_digest == digest(body["refresh_token"]),
                rotated_at=utcnow() - timedelta(seconds=31))
    replay = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert (replay.status_code, replay.json["error"]) == (400, "invalid_grant")
    newest = refresh(browser.http, client_id, secret, rotated.json["refresh_token"])
    assert (newest.status_code, newest.json["error"]) == (400, "invalid_grant")


def test_rfc9700_4_14_2_the_successor_is_kept_sealed_only_until_it_is_used(app, browser):
    """Refresh tokens are stored as digests; what a retry needs is the successor's value, kept
    sealed (AES-GCM, not the value itself) on its row and erased when the successor is used."""
    client_id, secret, body = _start(app, browser)
    assert _row(app, body["refresh_token"]).sealed_value is None  # from a code: no predecessor
    rotated = refresh(browser.http, client_id, secret, body["refresh_token"]).json["refresh_token"]
    kept = _row(app, rotated)
    assert kept.sealed_value is not None and rotated.encode() not in kept.sealed_value
    assert kept.predecessor_id == _row(app, body["refresh_token"]).id
    refresh(browser.http, client_id, secret, rotated)
    assert _row(app, rotated).sealed_value is None


def test_rfc9700_4_14_2_without_a_grace_window_nothing_is_kept(app_factory):
    """OIDC_REFRESH_REUSE_GRACE_SECONDS=0: no successor value is stored at all."""
    app = app_factory(refresh_reuse_grace_seconds=0)
    browser = Browser(app)
    client_id, secret, body = _start(app, browser)
    rotated = refresh(browser.http, client_id, secret, body["refresh_token"]).json["refresh_token"]
    assert _row(app, rotated).sealed_value is None


def test_rfc9700_4_14_2_a_refresh_that_fails_before_its_successor_is_stored_leaves_the_token_usable(app, browser):
    """RFC 9700 §4.14.2: a client retrying is not an attacker. The rotation is committed only
    with its successor: a request that dies in between (here: storing fails) consumes nothing,
    and the client's retry is an ordinary refresh, not reuse."""
    client_id, secret, body = _start(app, browser)
    server = app.extensions["oidc_server"]
    save = server._save_token

    def crash(token, request):
        raise RuntimeError("the process died here")

    server._save_token = crash
    try:
        assert refresh(browser.http, client_id, secret, body["refresh_token"]).status_code == 500
    finally:
        server._save_token = save
    assert _row(app, body["refresh_token"]).rotated_at is None
    retry = refresh(browser.http, client_id, secret, body["refresh_token"])
    assert retry.status_code == 200, retry.json
    assert refresh(browser.http, client_id, secret, retry.json["refresh_token"]).status_code == 200
