"""RFC 7662 (OAuth 2.0 Token Introspection) §2.1 (the request) and §2.2 (the response)."""

import re
from pathlib import Path

import pytest
from sqlalchemy import update

from oidc_provider.access import personal_tokens
from oidc_provider.access import roles as role_service
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.admin import services as admin_services
from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.models import Account, RefreshToken

from ..helpers import make_client
from ._tokens import claims_of, introspect, issue_tokens, now, random_token, refresh, resign, revoke, setup_rp

INACTIVE = {"active": False}


@pytest.fixture
def rp(app):
    return setup_rp(app, grants=["refresh_token"])


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp, scope="openid profile")


def test_2_2_active_access_token(app, browser, rp, tokens):
    """§2.2: ``active`` REQUIRED; ``scope``, ``client_id``, ``token_type``, ``exp``, ``iat``,
    ``sub`` describe the token."""
    response = introspect(browser.http, *rp, tokens["access_token"])
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.json
    claims = claims_of(tokens["access_token"])
    assert body["active"] is True
    assert body["client_id"] == rp[0]
    assert body["scope"] == claims["scope"] == "openid profile"
    assert body["sub"] == claims["sub"] == claims_of(tokens["id_token"])["sub"]
    assert body["exp"] == claims["exp"]
    assert body["iat"] == claims["iat"]
    assert body["token_type"] == "Bearer"
    assert body["iss"] == app.extensions["oidc_settings"].issuer
    assert body["jti"] == claims["jti"]
    assert body["username"] == "alice"


def test_2_2_active_refresh_token(browser, rp, tokens):
    """§2.1 ``token``: "For refresh tokens, this is the refresh_token value returned from the
    token endpoint"; it introspects as active for its client."""
    body = introspect(browser.http, *rp, tokens["refresh_token"], token_type_hint="refresh_token").json
    assert body["active"] is True
    assert body["client_id"] == rp[0]
    assert body["sub"] == claims_of(tokens["id_token"])["sub"]
    assert body["exp"] > now()
    assert "openid" in body["scope"].split()


def test_2_1_wrong_hint_still_finds_the_token(browser, rp, tokens):
    """§2.1 ``token_type_hint``: "If the server is unable to locate the token using the given
    hint, it MUST extend its search across all of its supported token types"."""
    assert introspect(browser.http, *rp, tokens["access_token"], token_type_hint="refresh_token").json["active"]
    assert introspect(browser.http, *rp, tokens["refresh_token"], token_type_hint="access_token").json["active"]


def test_2_2_revoked_token_is_only_active_false(browser, rp, tokens):
    """§2.2: "If the introspection call is properly authorized but the token is not active, does
    not exist on this server, or the protected resource is not allowed to introspect this
    particular token, then the authorization server MUST return an introspection response with
    the active field set to false"; "the authorization server SHOULD NOT include any additional
    information about an inactive token"."""
    assert revoke(browser.http, *rp, tokens["access_token"]).status_code == 200
    response = introspect(browser.http, *rp, tokens["access_token"])
    assert response.status_code == 200
    assert response.json == INACTIVE


def test_2_2_expired_access_token_is_only_active_false(app, browser, rp, tokens):
    """§2.2: an expired token "is not active"; the response is exactly ``{"active": false}``."""
    expired = resign(app, tokens["access_token"], exp=now() - 1)
    assert introspect(browser.http, *rp, expired).json == INACTIVE


def test_2_2_expired_refresh_token_is_only_active_false(app, browser, rp, tokens):
    """§2.2: an expired refresh token "is not active"."""
    with app.app_context():
        db.session.execute(update(RefreshToken).values(expires_at=utcnow().replace(year=2000)))
        db.session.commit()
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json == INACTIVE


def test_2_2_rotated_refresh_token_is_only_active_false(browser, rp, tokens):
    """§2.2: a refresh token already exchanged (rotated, RFC 9700 §4.14.2) is no longer
    active; its successor is."""
    rotated = refresh(browser.http, *rp, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json == INACTIVE
    assert introspect(browser.http, *rp, rotated.json["refresh_token"]).json["active"] is True


def test_2_2_unknown_token_is_only_active_false(browser, rp):
    """§2.2: a token that does "not exist on this server" is ``{"active": false}``."""
    for value in ("unknown", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", random_token()):
        response = introspect(browser.http, *rp, value)
        assert response.status_code == 200
        assert response.json == INACTIVE


def test_2_2_disabled_account_token_is_only_active_false(app, browser, rp, tokens):
    """§2.2 ``active``: "whether or not the presented token is currently active"; a disabled
    account's tokens are not (userinfo refuses them too)."""
    with app.app_context():
        db.session.execute(update(Account).where(Account.username == "alice").values(disabled=True))
        db.session.commit()
    assert introspect(browser.http, *rp, tokens["access_token"]).json == INACTIVE
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json == INACTIVE


def test_2_1_requires_client_authentication(browser, rp, tokens):
    """§2.1: "To prevent token scanning attacks, the endpoint MUST also require some form of
    authorization to access this endpoint"; RFC 6749 §5.2 ``invalid_client`` (401)."""
    requests = [
        {"data": {"token": tokens["access_token"]}},
        {"data": {"token": tokens["access_token"], "client_id": rp[0]}},
        {"data": {"token": tokens["access_token"]}, "auth": (rp[0], "wrong-secret")},
    ]
    for kw in requests:
        response = browser.http.post("/introspect", **kw)
        assert response.status_code == 401
        assert response.json["error"] == "invalid_client"


def test_2_1_public_clients_cannot_introspect(app, browser):
    """§2.1: the endpoint MUST require authorization; a public client has no credentials, so
    ``client_id`` alone is ``invalid_client``."""
    setup_rp(app)
    client_id, _ = make_client(app, name="SPA", public=True)
    tokens = issue_tokens(browser, client_id, None)
    response = browser.http.post("/introspect", data={"token": tokens["access_token"], "client_id": client_id})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_2_2_another_clients_token_is_only_active_false(app, browser, tokens):
    """§2.2: when "the protected resource is not allowed to introspect this particular token",
    the response is ``{"active": false}``."""
    other = make_client(app, name="Other RP")
    for kind in ("access_token", "refresh_token"):
        response = introspect(browser.http, *other, tokens[kind])
        assert response.status_code == 200
        assert response.json == INACTIVE


def test_2_1_missing_token_is_invalid_request(browser, rp):
    """§2.1 ``token``: "REQUIRED"; RFC 6749 §5.2 ``invalid_request``."""
    response = browser.http.post("/introspect", data={"token_type_hint": "access_token"}, auth=rp)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_2_1_get_is_not_allowed(browser, rp, tokens):
    """§2.1: "The protected resource calls the introspection endpoint using an HTTP POST
    request"."""
    response = browser.http.get("/introspect", query_string={"token": tokens["access_token"]}, auth=rp)
    assert response.status_code == 405


# ---- §2.1, §4: a resource server introspects the tokens meant for it ----

API = "https://api.example.com"


def _service(app, name, **targets) -> tuple[str, str]:
    """A system account registered for ``targets`` (``service create --audience/--resource``)."""
    with app.app_context():
        client, secret = admin_services.create_service(name=name, **targets)
        db.session.commit()
        return client.client_id, secret


@pytest.fixture
def api_tokens(app, browser):
    """alice's tokens, issued to an app (not the resource server) for the API's audience."""
    rp = setup_rp(app, grants=["refresh_token"], audience=API)
    return rp, issue_tokens(browser, *rp, scope="openid profile")


def test_2_1_resource_server_introspects_a_token_issued_to_another_client(app, browser, api_tokens):
    """§2.1: the protected resource asks about a token it received; §2.2 ``aud``, ``sub``,
    ``client_id`` (the app the token was issued to) and, a person having signed in, ``acr``,
    ``amr`` and ``auth_time`` as in the token."""
    rp, tokens = api_tokens
    rs = _service(app, "api", audience=API)
    body = introspect(browser.http, *rs, tokens["access_token"]).json
    claims = claims_of(tokens["access_token"])
    assert body["active"] is True
    assert (body["aud"], body["client_id"], body["sub"], body["username"]) == (API, rp[0], claims["sub"], "alice")
    assert (body["acr"], body["amr"], body["auth_time"]) == (claims["acr"], claims["amr"], claims["auth_time"])
    assert body["acr"] == "pwd" and body["amr"] == ["pwd"]
    assert body["nbf"] == body["iat"] == claims["iat"]


def test_2_1_a_registered_resource_counts_like_the_audience(app, browser, api_tokens):
    """RFC 8707: a resource registered for the caller (``--resource``) is an audience it serves."""
    _, tokens = api_tokens
    rs = _service(app, "api-v2", audience="https://other.example.com", resources=[API])
    assert introspect(browser.http, *rs, tokens["access_token"]).json["active"] is True


def test_4_a_resource_server_of_another_audience_learns_nothing(app, browser, api_tokens):
    """§4: the server "SHOULD" limit which protected resources learn about a token; §2.2: one
    "not allowed to introspect this particular token" gets exactly ``{"active": false}``."""
    _, tokens = api_tokens
    for rs in (_service(app, "billing", audience="https://billing.example.com"), _service(app, "bare")):
        for kind in ("access_token", "refresh_token"):
            assert introspect(browser.http, *rs, tokens[kind]).json == INACTIVE


def test_4_the_resource_server_does_not_see_the_apps_refresh_token(app, browser, api_tokens):
    """A refresh token is for the authorization server only (RFC 6749 §1.5): only its client
    learns about it, not the resource server its access tokens are for."""
    rp, tokens = api_tokens
    rs = _service(app, "api", audience=API)
    assert introspect(browser.http, *rs, tokens["refresh_token"]).json == INACTIVE
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json["active"] is True


def test_4_tokens_for_the_provider_itself_are_nobody_elses(app, browser, tokens):
    """A token for the issuer's own audience (userinfo, the admin API) is not answered to a
    client registered with the issuer as its audience: only to the client it was issued to."""
    issuer = app.extensions["oidc_settings"].issuer
    assert claims_of(tokens["access_token"])["aud"] == issuer
    rs = _service(app, "claims-issuer", audience=issuer)
    assert introspect(browser.http, *rs, tokens["access_token"]).json == INACTIVE


def test_2_2_revoked_token_is_inactive_to_the_resource_server(app, browser, api_tokens):
    """§2.2: revocation shows at once, to the resource server too."""
    rp, tokens = api_tokens
    rs = _service(app, "api", audience=API)
    assert revoke(browser.http, *rp, tokens["access_token"]).status_code == 200
    assert introspect(browser.http, *rs, tokens["access_token"]).json == INACTIVE


def test_2_2_refresh_token_carries_how_the_person_signed_in(browser, rp, tokens):
    """§2.2 allows further members; ``acr``, ``amr``, ``auth_time`` (OIDC Core §2) come from the
    refresh token's own record and match the ID token's."""
    body = introspect(browser.http, *rp, tokens["refresh_token"]).json
    id_token = claims_of(tokens["id_token"])
    assert (body["acr"], body["amr"], body["auth_time"]) == (id_token["acr"], id_token["amr"], id_token["auth_time"])


# ---- the documented members are the members ----

def _documented_members() -> dict[str, set[str]]:
    """docs/endpoints.md's member table for ``POST /introspect``: column → members it lists."""
    text = (Path(__file__).parents[2] / "docs" / "endpoints.md").read_text()
    section = text.split("### `POST /introspect`", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    columns = {"access_token": 1, "refresh_token": 2, "personal_token": 3}
    out: dict[str, set[str]] = {kind: set() for kind in columns}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for member in re.findall(r"`([a-z_]+)`", cells[0]):
            for kind, index in columns.items():
                if cells[index]:
                    out[kind].add(member)
    return out


def test_2_2_every_documented_member_is_what_the_code_answers(app, browser):
    """§2.2 members, access, refresh and personal tokens, each with every optional member
    present (a person signed in; roles for the audience): exactly the members the table in
    docs/endpoints.md lists, and ``token_type`` as documented (a personal token is ``Bearer``,
    RFC 6749 §5.1)."""
    rp = setup_rp(app, grants=["refresh_token"], audience=API)
    with app.app_context():
        role_service.define("reader", role_service.parse_statements(
            [{"audience": API, "actions": ["read"], "resources": ["*"]}]))
        alice = admin_accounts.find_account("alice")
        role_service.grant(alice, "reader")
        _, personal = personal_tokens.create(alice, audience=API)
        db.session.commit()
    tokens = issue_tokens(browser, *rp, scope="openid profile")
    documented = _documented_members()
    answers = {"access_token": introspect(browser.http, *rp, tokens["access_token"]).json,
               "refresh_token": introspect(browser.http, *rp, tokens["refresh_token"]).json,
               "personal_token": introspect(browser.http, *_service(app, "api", audience=API), personal).json}
    for kind, body in answers.items():
        assert set(body) == documented[kind], kind
    assert [answers[k]["token_type"] for k in answers] == ["Bearer", "refresh_token", "Bearer"]
    personal_doc = (Path(__file__).parents[2] / "docs" / "personal-tokens.md").read_text()
    assert 'token_type: "Bearer"' in personal_doc and "personal_token\"" not in personal_doc
