"""RFC 8707 (Resource Indicators for OAuth 2.0): the ``resource`` parameter at the
authorization endpoint (§2.1) and the token endpoint (§2.2), and ``invalid_target`` (§2)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from oidc_provider.admin import clients as admin_clients
from oidc_provider.admin import services as admin_services
from oidc_provider.digests import digest
from oidc_provider.extensions import db
from oidc_provider.models import AuthorizationCode, Client

from ..helpers import Browser, make_client, make_user
from ._clients import claims_of, counts, refresh
from ._support import redirected_to_client, refused_each, start

APP = "https://app.example.com"
API = "https://api.example.com"
WIKI = "https://wiki.example.com/api"
OTHER = "https://other.example.com"


@pytest.fixture
def rp(app):
    """A client whose default audience is APP and which may also ask for API and WIKI."""
    make_user(app)
    return make_client(app, grants=["refresh_token"], audience=APP, resources=[API, WIKI])


def _code(browser, client_id, **extra) -> str:
    return browser.sign_in_and_authorize(client_id, **extra)["code"]


def _redeem(browser, rp, code, **extra):
    return browser.redeem(*rp, code, **extra)


def _aud(body) -> str:
    return claims_of(body["access_token"])["aud"]


def _refused(response, description=None):
    assert (response.status_code, response.json["error"]) == (400, "invalid_target"), response.json
    assert response.headers["Cache-Control"] == "no-store"
    if description is not None:
        assert response.json["error_description"] == description


def _service(app, **targets):
    with app.app_context():
        client, secret = admin_services.create_service(name="backup-job")
        admin_clients.set_client_targets(client, **targets)
        db.session.commit()
        return client.client_id, secret


def _client_credentials(http, client_id, secret, **extra):
    return http.post("/token", data={"grant_type": "client_credentials", **extra}, auth=(client_id, secret))


# ---- the audience when no resource is named ----

def test_2_no_resource_gives_the_clients_default_audience(app, browser, rp):
    """§2: "the authorization server ... can use a default resource" when the client names
    none; here the client's registered audience."""
    body = _redeem(browser, rp, _code(browser, rp[0])).json
    assert _aud(body) == APP


def test_2_without_a_client_audience_the_default_is_oidc_default_audience(app_factory):
    app = app_factory(default_audience="https://default.example.com")
    browser = Browser(app)
    make_user(app)
    rp = make_client(app)
    body = _redeem(browser, rp, _code(browser, rp[0])).json
    assert _aud(body) == "https://default.example.com"


def test_2_without_any_configured_audience_it_is_the_issuer(app, browser):
    make_user(app)
    rp = make_client(app)
    body = _redeem(browser, rp, _code(browser, rp[0])).json
    assert _aud(body) == app.extensions["oidc_settings"].issuer


# ---- §2.1 the authorization request ----

def test_2_1_an_allowed_resource_is_kept_on_the_code(app, browser, rp):
    """§2.1: the client "indicates the protected resource(s) to which it is requesting
    access" in the authorization request; the grant is bound to them."""
    code = _code(browser, rp[0], resource=[API, WIKI])
    with app.app_context():
        row = db.session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_digest == digest(code)))
        assert row.resources == [API, WIKI]


def test_2_1_unregistered_resource_is_invalid_target_at_the_redirect_uri(app, browser, rp):
    """§2: "If the client omits the resource parameter when the authorization server requires
    it, or the requested resource is invalid, unknown, or malformed, the authorization server
    should reject the request with an invalid_target error"; at the authorization endpoint as
    an error response to the redirect URI (RFC 6749 §4.1.2.1)."""
    before = counts(app)
    refused_each(app, browser, rp[0], "resource", [OTHER, API + "/", "https://API.example.com"],
                 error="invalid_target")
    assert counts(app) == before


def test_2_1_one_unregistered_among_several_is_invalid_target(app, browser, rp):
    response, params = start(browser, rp[0], resource=[API, OTHER])
    result = redirected_to_client(response)
    assert (result["error"], result["state"]) == ("invalid_target", params["state"])


def test_2_resource_must_be_an_absolute_uri_without_fragment(app, browser, rp):
    """§2: "Its value MUST be an absolute URI ... The URI MUST NOT include a fragment
    component." Malformed values are refused the same way, never with a server error."""
    refused_each(app, browser, rp[0], "resource",
                 ["", "api", "/relative/path", "https://", API + "#frag", API + "#", " " + API,
                  API + "/ä", "https://[::1", "https://api.example.com:99999", "x" * 201,
                  "https://api.example.com/" + "a" * 300],
                 error="invalid_target")


def test_2_1_too_many_resources_is_invalid_target(app, browser, rp):
    response, _ = start(browser, rp[0], resource=[API] * 11)
    assert redirected_to_client(response)["error"] == "invalid_target"


def test_2_1_invalid_target_before_login_is_redirected_not_a_page(app, rp):
    """The client and its redirect URI are valid, so the error goes back to the client even
    with nobody signed in (RFC 6749 §4.1.2.1)."""
    http = app.test_client()
    response = http.get("/authorize", query_string={
        "response_type": "code", "client_id": rp[0], "redirect_uri": "https://rp.example/cb",
        "scope": "openid", "state": "s1", "resource": OTHER, "code_challenge": "x" * 43,
        "code_challenge_method": "S256"})
    result = redirected_to_client(response)
    assert (result["error"], result["state"]) == ("invalid_target", "s1")


# ---- §2.2 the token request ----

def test_2_2_single_resource_of_the_authorization_is_the_audience(app, browser, rp):
    """§2.2: with no ``resource`` in the token request, the token is for the one resource the
    authorization named."""
    body = _redeem(browser, rp, _code(browser, rp[0], resource=API)).json
    assert _aud(body) == API


def test_2_2_resource_named_at_the_authorization_may_be_asked_for(app, browser, rp):
    """§2.2: "the client can also use the resource parameter ... to indicate the target
    service or resource" of the access token it asks for."""
    body = _redeem(browser, rp, _code(browser, rp[0], resource=[API, WIKI]), resource=WIKI).json
    assert _aud(body) == WIKI


def test_2_2_several_resources_at_authorization_and_none_asked_gives_the_default(app, browser, rp):
    body = _redeem(browser, rp, _code(browser, rp[0], resource=[API, WIKI])).json
    assert _aud(body) == APP


def test_2_2_resource_not_in_the_authorization_is_invalid_target(app, browser, rp):
    """§2.2: the requested resource must be one "the client has been granted" by the
    authorization; an allowed resource the authorization did not name is refused. The code
    is used up (RFC 6749 §4.1.2: used at most once) and nothing is issued."""
    code = _code(browser, rp[0], resource=API)
    before = counts(app)
    response = _redeem(browser, rp, code, resource=WIKI)
    _refused(response, "The resource was not named in the authorization request.")
    assert counts(app) == before
    again = _redeem(browser, rp, code)
    assert (again.status_code, again.json["error"]) == (400, "invalid_grant")


def test_2_2_any_allowed_resource_when_the_authorization_named_none(app, browser, rp):
    body = _redeem(browser, rp, _code(browser, rp[0]), resource=WIKI).json
    assert _aud(body) == WIKI


def test_2_2_default_audience_may_be_named(app, browser, rp):
    body = _redeem(browser, rp, _code(browser, rp[0]), resource=APP).json
    assert _aud(body) == APP


def test_2_2_unregistered_resource_at_the_token_endpoint_is_invalid_target(app, browser, rp):
    _refused(_redeem(browser, rp, _code(browser, rp[0]), resource=OTHER),
             "The client may not ask for this resource.")


def test_2_2_two_resources_in_one_token_request_is_invalid_target(app, browser, rp):
    """§2.2: the client asks for a token for a resource; one token here is for one audience,
    so a request naming several is refused rather than given a token for all of them."""
    code = _code(browser, rp[0], resource=[API, WIKI])
    _refused(_redeem(browser, rp, code, resource=[API, WIKI]), "one resource per token request")


@pytest.mark.parametrize("value", ["api", API + "#x", "", "https://[::1", "x" * 500, API + "/ä"])
def test_2_malformed_resource_at_the_token_endpoint_is_invalid_target(app, browser, rp, value):
    _refused(_redeem(browser, rp, _code(browser, rp[0]), resource=value))


def test_2_2_refresh_token_keeps_the_authorizations_resources(app, browser, rp):
    """§2.2: a refresh token request may name a resource "the client has been granted"; the
    resources of the original authorization travel with each rotated refresh token."""
    body = _redeem(browser, rp, _code(browser, rp[0], resource=[API, WIKI]), resource=API).json
    assert _aud(body) == API
    second = refresh(browser.http, *rp, body["refresh_token"], resource=WIKI)
    assert second.status_code == 200, second.json
    assert _aud(second.json) == WIKI
    third = refresh(browser.http, *rp, second.json["refresh_token"], resource=API)
    assert _aud(third.json) == API
    fourth = refresh(browser.http, *rp, third.json["refresh_token"])
    assert _aud(fourth.json) == APP  # two resources granted, none asked: the default


def test_2_2_refresh_with_a_resource_not_granted_is_invalid_target_and_keeps_the_token(app, browser, rp):
    """A refused refresh request changes nothing: the refresh token is not used up, so a
    corrected retry is not taken for reuse (RFC 9700 §4.14.2)."""
    body = _redeem(browser, rp, _code(browser, rp[0], resource=API)).json
    before = counts(app)
    _refused(refresh(browser.http, *rp, body["refresh_token"], resource=WIKI))
    _refused(refresh(browser.http, *rp, body["refresh_token"], resource=OTHER))
    assert counts(app) == before
    retry = refresh(browser.http, *rp, body["refresh_token"])
    assert retry.status_code == 200, retry.json
    assert _aud(retry.json) == API


def test_2_2_single_granted_resource_is_kept_across_rotations(app, browser, rp):
    body = _redeem(browser, rp, _code(browser, rp[0], resource=WIKI)).json
    for _ in range(2):
        body = refresh(browser.http, *rp, body["refresh_token"]).json
        assert _aud(body) == WIKI


def test_2_2_resource_removed_from_the_client_is_refused_later(app, browser, rp):
    """The client's registration is read at every token request: a resource the operator took
    away is no longer issued, even for an authorization that named it."""
    body = _redeem(browser, rp, _code(browser, rp[0], resource=API)).json
    with app.app_context():
        client = db.session.scalar(select(Client).where(Client.client_id == rp[0]))
        admin_clients.set_client_targets(client, resources=[WIKI])
        db.session.commit()
    _refused(refresh(browser.http, *rp, body["refresh_token"]), "The client may not ask for this resource.")


def test_2_client_credentials_resource_must_be_allowed(app, client):
    """§2: a client_credentials request may name a resource; it must be one registered for
    the client, else ``invalid_target``."""
    client_id, secret = _service(app, audience=APP, resources=[API])
    assert _aud(_client_credentials(client, client_id, secret).json) == APP
    assert _aud(_client_credentials(client, client_id, secret, resource=API).json) == API
    before = counts(app)
    _refused(_client_credentials(client, client_id, secret, resource=WIKI))
    _refused(_client_credentials(client, client_id, secret, resource=[API, APP]), "one resource per token request")
    assert counts(app) == before


def test_2_introspection_reports_the_tokens_audience(app, browser, rp):
    """RFC 7662 §2.2 ``aud``: the audience the token was issued for."""
    body = _redeem(browser, rp, _code(browser, rp[0], resource=WIKI)).json
    response = browser.http.post("/introspect", data={"token": body["access_token"]}, auth=rp)
    assert (response.json["active"], response.json["aud"]) == (True, WIKI)


def test_2_other_repeated_parameters_remain_invalid_request(app, browser, rp):
    """§2 lets ``resource`` repeat; any other parameter repeated is still ``invalid_request``
    (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once")."""
    response = browser.http.post("/token", data={"grant_type": ["refresh_token", "refresh_token"]}, auth=rp)
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")
