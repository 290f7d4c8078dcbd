"""What the admin API must never allow, whatever the permission model says (issue 5 review):

- an app's access token for a person never opens the provider's administrative APIs, and the
  provider's own statements (the issuer's audience) never appear in tokens given to apps;
- nobody hands out, or takes over, more provider power than they hold (``admin/bounds.py``);
- a system account's credential replaced while a token request is in flight yields no token;
- a new email is not verified; disabling a person revokes their tokens;
- malformed URLs in ``next`` and forwarded requests are 400s, never 500s."""

from __future__ import annotations

import json

from oidc_provider.access import system_accounts
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.extensions import db

from ..conftest import ISSUER
from ..helpers import Browser, make_client, make_user
from ..spec._support import verified_claims
from ._admin import ADMIN, API, admin_token, bearer, define_role, grant, personal_token, snapshot

SCOPE = "openid profile email roles"


def _app_tokens(app, username="ops", **client_kw) -> dict:
    """A person signs in to an ordinary app (default audience: the issuer); its token response."""
    rp = make_client(app, scope=SCOPE, **client_kw)
    browser = Browser(app)
    result = browser.sign_in_and_authorize(rp[0], scope=SCOPE, username=username)
    response = browser.redeem(*rp, result["code"])
    assert response.status_code == 200, response.json
    return response.json


def test_rfc9068_4_an_apps_token_for_an_admin_is_refused_at_the_admin_api(app, client):
    admin_token(app, "ops")
    tokens = _app_tokens(app)
    claims = verified_claims(client, tokens["access_token"])
    assert claims["aud"] == ISSUER  # the app's default audience is the issuer...
    answer = client.get(API + "/accounts", headers=bearer(tokens["access_token"]))
    assert (answer.status_code, answer.json["error"]) == (401, "invalid_token")  # ...and still no way in
    fetch = client.get("/api/service-accounts/anything/database-credentials", headers=bearer(tokens["access_token"]))
    assert (fetch.status_code, fetch.json["error"]) == (401, "invalid_token")


def test_the_providers_own_statements_are_never_in_tokens_given_to_apps(app, client):
    admin_token(app, "ops")
    tokens = _app_tokens(app)
    for token in (tokens["access_token"], tokens["id_token"]):
        assert "resource_access" not in verified_claims(client, token)
    info = client.get("/userinfo", headers=bearer(tokens["access_token"])).json
    assert "resource_access" not in info and "roles" not in info


def test_a_personal_token_for_the_provider_is_nobody_elses_to_introspect(app, client):
    admin_token(app, "ops")
    _, token = personal_token(app, "ops")
    rp = make_client(app)  # default audience: the issuer, like the token's
    answer = client.post("/introspect", data={"token": token}, auth=rp)
    assert answer.json == {"active": False}


def test_roles_write_on_ones_own_role_cannot_become_admin(app, client):
    admin_token(app, "ops")
    make_user(app, "bob")
    define_role(app, "editors", {"audience": ISSUER, "actions": ["admin:roles:*"], "resources": ["role:editors"]})
    grant(app, "bob", "editors")
    _, token = personal_token(app, "bob")
    before = snapshot(app)
    answer = client.put(API + "/roles/editors", headers=bearer(token), json={"statements": [ADMIN]})
    assert (answer.status_code, answer.json["error"]) == (403, "insufficient_scope")
    assert "admin:* on *" in answer.json["error_description"]
    assert snapshot(app) == before
    # Within what bob holds, redefining is fine; other audiences are not the provider's.
    narrower = {"audience": ISSUER, "actions": ["admin:roles:read"], "resources": ["role:editors"]}
    assert client.put(API + "/roles/editors", headers=bearer(token),
                      json={"statements": [narrower, {"audience": "https://app.example", "actions": ["*"],
                                                      "resources": ["*"]}]}).status_code == 200


def test_granting_a_role_needs_its_provider_statements(app, client):
    admin_token(app, "ops")
    make_user(app, "carol")
    define_role(app, "granter", {"audience": ISSUER, "actions": ["admin:grants:write"], "resources": ["role:*"]})
    define_role(app, "app-user", {"audience": "https://app.example", "actions": ["read"], "resources": ["*"]})
    grant(app, "carol", "granter")
    _, token = personal_token(app, "carol")
    refused = client.put(API + "/accounts/carol/roles/admin", headers=bearer(token))
    assert (refused.status_code, refused.json["error"]) == (403, "insufficient_scope")
    assert client.put(API + "/accounts/carol/roles/app-user", headers=bearer(token)).status_code == 200


def test_no_takeover_of_an_account_holding_more_provider_power(app, client):
    admin_token(app, "ops")
    make_user(app, "dave")
    make_user(app, "erin")
    define_role(app, "helpdesk", {"audience": ISSUER, "actions": ["admin:accounts:*", "admin:tokens:*"],
                                  "resources": ["account:*"]})
    grant(app, "dave", "helpdesk")
    _, token = personal_token(app, "dave")
    before = snapshot(app)
    for method, path, body in (("PUT", "/accounts/ops/password", {"password": "a brand new passphrase"}),
                               ("PATCH", "/accounts/ops", {"email": "dave@example.org"}),
                               ("DELETE", "/accounts/ops", None),
                               ("POST", "/tokens", {"user": "ops", "audience": ISSUER})):
        answer = client.open(API + path, method=method, headers=bearer(token), json=body)
        assert (answer.status_code, answer.json["error"]) == (403, "insufficient_scope"), (method, path)
    assert snapshot(app) == before
    # A person without provider power is the helpdesk's to help.
    assert client.put(API + "/accounts/erin/password", headers=bearer(token),
                      json={"password": "a brand new passphrase"}).status_code == 200
    assert client.post(API + "/tokens", headers=bearer(token),
                       json={"user": "erin", "audience": "https://app.example"}).status_code == 201


def test_a_new_email_is_not_verified_unless_said_so(app, client):
    token = admin_token(app, "ops")
    make_user(app, "frank")  # email verified
    changed = client.patch(API + "/accounts/frank", headers=bearer(token), json={"email": "frank@example.org"})
    assert (changed.json["email"], changed.json["email_verified"]) == ("frank@example.org", False)
    both = client.patch(API + "/accounts/frank", headers=bearer(token),
                        json={"email": "frank@example.net", "email_verified": True})
    assert both.json["email_verified"] is True


def test_disabling_a_person_revokes_their_tokens_for_good(app, client):
    token = admin_token(app, "ops")
    make_user(app, "gina")
    tokens = _app_tokens(app, username="gina")
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    client.patch(API + "/accounts/gina", headers=bearer(token), json={"disabled": True})
    client.patch(API + "/accounts/gina", headers=bearer(token), json={"disabled": False})
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_rfc6749_10_a_token_minted_with_a_credential_replaced_mid_request_is_refused(app, client):
    """One live credential (DESIGN) without a row lock: a token request authenticated with a
    secret that a rotation replaced before its token was issued gets a token bound to the old
    credential generation, which introspection (RFC 7662 §2.2) and userinfo refuse."""
    with app.app_context():
        service, secret = system_accounts.create("nightly")
        db.session.commit()
        client_id = service.client_id
    server = app.extensions["oidc_server"]
    real_save = server._save_token
    rotated = {}

    def rotate_first(token, request):
        db.session.commit()  # end this request's transaction (SQLite: release the write lock)
        with app.app_context():
            rotated["secret"] = system_accounts.rotate("nightly", actor="test")
            db.session.commit()
        return real_save(token, request)

    server._save_token = rotate_first
    try:
        answer = client.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    finally:
        server._save_token = real_save
    assert answer.status_code == 200
    stale = answer.json["access_token"]
    seen = client.post("/introspect", data={"token": stale}, auth=(client_id, rotated["secret"]))
    assert seen.json == {"active": False}
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {stale}"}).status_code == 401
    fresh = client.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, rotated["secret"]))
    live = client.post("/introspect", data={"token": fresh.json["access_token"]}, auth=(client_id, rotated["secret"]))
    assert live.json["active"] is True


def test_a_malformed_next_is_ignored_not_500(client):
    """RFC 9700 §4.11: only allow-listed places; an unparsable URL is simply not one."""
    assert client.get("/login?next=https://[::1/x").status_code == 200  # the form, next dropped


def test_rfc7517_only_signing_okp_keys_and_no_link_local_jwks_uri(app):
    with app.app_context():
        system_accounts.create("keyed")
        db.session.commit()
        x25519 = {"keys": [{"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}]}
        for bad in ({"jwks": x25519}, {"jwks_uri": "https://169.254.169.254/latest/meta-data"},
                    {"jwks_uri": "https://10.0.0.1/jwks.json"}, {"jwks_uri": "https://[fe80::1]/jwks"}):
            try:
                system_accounts.set_key("keyed", **bad)
            except ValueError as exc:
                assert "Ed25519" in str(exc) or "link-local" in str(exc), exc
            else:
                raise AssertionError(f"accepted {json.dumps(bad)}")
        db.session.rollback()
        assert admin_accounts.find_account("keyed") is not None
