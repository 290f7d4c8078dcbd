"""The introspection lane (serving/lanes.py) answers RFC 7662 §2.1 requests about JWT access tokens
(and tokens that are none of ours) exactly as the app would, members, permission and all, and
leaves to the app personal and refresh tokens, every error (RFC 6749 §5.2 ``invalid_client``,
``invalid_request``; RFC 7009 §2.2.1 ``unsupported_token_type``) and anything the input guard
refuses. Each request is given to the lane as the WSGI environ the app gets and to the app
through Flask's test client."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from oidc_provider.access import personal_tokens
from oidc_provider.access import roles as role_service
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.admin import services as admin_services
from oidc_provider.extensions import db
from oidc_provider.models import Client
from oidc_provider.serving.lanes import IntrospectionLane

from ..helpers import assert_same_fields, lane_answer, left_to_app
from ..spec._clients import set_columns
from ..spec._tokens import issue_tokens, now, resign, revoke, setup_rp

API = "https://api.example.com"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def rp(app):
    return setup_rp(app, grants=["refresh_token"], audience=API)


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp, scope="openid profile")


def _service(app, name, **targets) -> tuple[str, str]:
    with app.app_context():
        client, secret = admin_services.create_service(name=name, **targets)
        db.session.commit()
        return client.client_id, secret


def _request(caller, form, *, headers=None, body=None):
    data = body if body is not None else "&".join(f"{k}={quote(v, safe='')}" for k, v in form.items())
    return {"path": "/introspect", "method": "POST", "data": data, "content_type": FORM,
            "headers": {"Authorization": "Basic " + base64.b64encode(":".join(caller).encode()).decode(),
                        **(headers or {})}}


def _lane(app, request):
    return lane_answer(app, IntrospectionLane(app), request)


def _same_answer(app, request) -> dict:
    answer = _lane(app, request)
    assert answer is not None, "the lane left a plain introspection request to the app"
    status, headers, content = answer
    expected = app.test_client().open(**request)
    assert status == expected.status_code == 200, expected.data
    assert content == expected.data
    assert_same_fields(headers, expected)
    return json.loads(content)


def test_rfc7662_2_2_an_access_token_for_its_own_client(app, rp, tokens):
    body = _same_answer(app, _request(rp, {"token": tokens["access_token"]}))
    assert body["active"] is True and body["username"] == "alice" and body["aud"] == API


def test_rfc7662_2_2_with_a_hint_and_roles_at_the_audience(app, rp, browser):
    """§2.1 ``token_type_hint``; the ``resource_access`` slice as the roles are now."""
    with app.app_context():
        role_service.define("reader", role_service.parse_statements(
            [{"audience": API, "actions": ["read"], "resources": ["*"]}]))
        role_service.grant(admin_accounts.find_account("alice"), "reader")
        db.session.commit()
    tokens = issue_tokens(browser, *rp, scope="openid profile")
    body = _same_answer(app, _request(rp, {"token": tokens["access_token"], "token_type_hint": "access_token"}))
    assert body["resource_access"][API]["roles"] == ["reader"]


def test_rfc7662_4_the_resource_server_the_token_is_for_learns_about_it(app, tokens):
    """§4: a caller registered for the token's audience; another caller gets active false."""
    api = _service(app, "reports-api", audience=API)
    assert _same_answer(app, _request(api, {"token": tokens["access_token"]}))["active"] is True
    other = _service(app, "billing-api", audience="https://billing.example.com")
    assert _same_answer(app, _request(other, {"token": tokens["access_token"]})) == {"active": False}


def test_rfc7662_2_2_a_service_token_introspected_by_its_own_client(app, client):
    service = _service(app, "nightly-export")
    token = client.post("/token", data={"grant_type": "client_credentials"}, auth=service).json["access_token"]
    body = _same_answer(app, _request(service, {"token": token}))
    assert body["active"] is True and body["client_id"] == service[0]


def test_rfc7662_2_2_expired_revoked_unknown_and_foreign_are_not_active(app, rp, tokens):
    token = tokens["access_token"]
    for value in (resign(app, token, exp=now() - 1), "not-a-token", ""):
        assert _same_answer(app, _request(rp, {"token": value})) == {"active": False}
    assert revoke(app.test_client(), *rp, token).status_code == 200
    assert _same_answer(app, _request(rp, {"token": token})) == {"active": False}


def _left_to_app(app, request, status):
    return left_to_app(app, IntrospectionLane(app), request, status)


def test_personal_and_refresh_tokens_are_the_apps(app, rp, tokens):
    assert _left_to_app(app, _request(rp, {"token": tokens["refresh_token"]}), 200).json["active"] is True
    with app.app_context():
        _, personal = personal_tokens.create(admin_accounts.find_account("alice"), audience=API)
        db.session.commit()
    api = _service(app, "reports-api", audience=API)
    assert _left_to_app(app, _request(api, {"token": personal}), 200).json["active"] is True


@pytest.mark.parametrize(("form", "status"), [
    ({}, 400),  # §2.1: token REQUIRED
    ({"token": "x", "token_type_hint": "id_token"}, 400),  # RFC 7009 §2.2.1 unsupported_token_type
    ({"token": "x", "client_id": "y"}, None),
    ({"token": "x", "extra": "1"}, 200),
], ids=["no-token", "bad-hint", "client-id-in-body", "unknown-parameter"])
def test_rfc7662_2_1_other_requests_are_the_apps(app, rp, form, status):
    request = _request(rp, form)
    assert _lane(app, request) is None
    if status is not None:
        assert app.test_client().open(**request).status_code == status


def test_rfc6749_5_2_bad_credentials_and_other_auth_methods_are_the_apps(app, rp, tokens):
    token = tokens["access_token"]
    assert _left_to_app(app, _request((rp[0], rp[1] + "x"), {"token": token}), 401).json["error"] == "invalid_client"
    set_columns(app, Client, Client.client_id == rp[0], token_endpoint_auth_method="client_secret_post")
    assert _left_to_app(app, _request(rp, {"token": token}), 401).json["error"] == "invalid_client"


def test_repeated_token_and_nul_are_the_apps(app, rp, tokens):
    token = tokens["access_token"]
    _left_to_app(app, _request(rp, {}, body=f"token={token}&token={token}"), 400)
    _left_to_app(app, _request(rp, {}, body="token=%00"), 400)
