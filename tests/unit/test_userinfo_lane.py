"""The userinfo lane (serving/lanes.py) answers a plain UserInfo request (OIDC Core §5.3.1: GET,
RFC 6750 §2.1 bearer token) exactly as the app would, and leaves to the app every request the
app would answer otherwise (RFC 6750 §3 challenges, a token in the body, anything the input
guard refuses). Each request is given to the lane as the WSGI environ the app gets and to the
app through Flask's test client."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from oidc_provider.extensions import db
from oidc_provider.models import Account
from oidc_provider.oauth.tokens import TokenService
from oidc_provider.serving.lanes import UserinfoLane, lanes

from ..helpers import assert_same_fields, lane_answer, left_to_app
from ..spec._tokens import foreign_token, issue_tokens, now, resign, revoke, setup_rp


@pytest.fixture
def rp(app):
    return setup_rp(app)


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp, scope="openid profile email")


def _request(token, *, method="GET", query="", headers=None, scheme="Bearer", **extra):
    return {"path": "/userinfo", "method": method, "query_string": query,
            "headers": {"Authorization": f"{scheme} {token}", **(headers or {})}, **extra}


def _lane(app, request):
    return lane_answer(app, UserinfoLane(app), request)


def _same_answer(app, request):
    answer = _lane(app, request)
    assert answer is not None, "the lane left a plain UserInfo request to the app"
    status, headers, content = answer
    expected = app.test_client().open(**request)
    assert status == expected.status_code == 200, expected.json
    assert content == expected.data
    assert_same_fields(headers, expected)
    return answer


def test_oidc_core_5_3_2_the_lane_answers_as_the_app_does(app, tokens):
    status, headers, content = _same_answer(app, _request(tokens["access_token"]))
    assert b'"preferred_username":"alice"' in content
    assert dict(headers)["Cache-Control"] == "no-store"


def test_oidc_core_5_5_claims_requested_by_name_as_the_app_releases_them(app, browser, rp):
    tokens = issue_tokens(browser, *rp, scope="openid", claims='{"userinfo": {"email": null}}')
    status, _, content = _same_answer(app, _request(tokens["access_token"]))
    assert b'"email"' in content


def test_rfc6750_2_1_the_bearer_scheme_name_is_case_insensitive(app, tokens):
    _same_answer(app, _request(tokens["access_token"], scheme="bearer"))


@pytest.mark.parametrize("app", [{"hsts_max_age": 600, "proxy_hops": 1}], indirect=True)
def test_rfc6797_7_2_hsts_and_the_logged_address_behind_a_proxy(app, tokens, caplog):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with caplog.at_level(logging.INFO, logger="oidc_provider.access"):
        caplog.clear()
        _, headers, _ = _same_answer(app, _request(tokens["access_token"], headers=forwarded))
        lines = [r for r in caplog.records if r.name == "oidc_provider.access"]
    assert dict(headers)["Strict-Transport-Security"] == "max-age=600"
    assert [line.fields["client"] for line in lines] == ["203.0.113.9", "203.0.113.9"]  # the lane's, the app's


@pytest.mark.parametrize("app", [{"metrics": True}], indirect=True)
def test_metrics_count_the_request_under_the_views_name(app, tokens):
    registry = app.extensions["oidc_metrics"].registry
    labels = {"endpoint": "userinfo.userinfo", "status": "200"}
    before = registry.get_sample_value("oidc_http_requests_total", labels) or 0
    _lane(app, _request(tokens["access_token"]))
    app.test_client().open(**_request(tokens["access_token"]))
    assert registry.get_sample_value("oidc_http_requests_total", labels) == before + 2


def _left_to_app(app, request, status):
    return left_to_app(app, UserinfoLane(app), request, status)


@pytest.mark.parametrize(("change", "status"), [
    ({"method": "POST"}, 200),  # OIDC Core §5.3.1: POST too, the app's
    ({"query": "x=1"}, 200),
    ({"query": "access_token=abc"}, 400),  # RFC 6750 §2.3: never in the URL here
    ({"scheme": "Basic"}, 401),  # RFC 6750 §3.1: no authentication information
    ({"headers": {"X-Note": "a\x01b"}}, 400),  # RFC 9110 §5.5: the input guard's
    ({"data": "x", "content_type": "text/plain"}, 200),
], ids=["post", "query", "token-in-query", "basic", "control-in-header", "body"])
def test_rfc6750_anything_else_is_left_to_the_app(app, tokens, change, status):
    _left_to_app(app, _request(tokens["access_token"], **change), status)


def test_rfc6750_3_1_invalid_tokens_are_the_apps_challenge(app, tokens, rp):
    token = tokens["access_token"]
    for bad in ("", "abc", foreign_token(token), resign(app, token, exp=now() - 1),
                resign(app, token, iss="https://other.example")):
        answered = _left_to_app(app, _request(bad), 401 if bad else 400)
        assert "WWW-Authenticate" in answered.headers
    assert revoke(app.test_client(), *rp, token).status_code == 200
    _left_to_app(app, _request(token), 401)


def test_oidc_core_5_3_1_a_token_without_openid_is_the_apps_insufficient_scope(app, browser, rp, tokens):
    narrowed = resign(app, tokens["access_token"], scope="profile")
    assert _left_to_app(app, _request(narrowed), 403).json["error"] == "insufficient_scope"


def test_a_disabled_account_is_left_to_the_app(app, tokens):
    with app.app_context():
        db.session.execute(update(Account).values(disabled=True))
        db.session.commit()
    _left_to_app(app, _request(tokens["access_token"]), 401)


def test_a_database_error_is_left_to_the_app(app, tokens, monkeypatch):
    def down(self, token):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(TokenService, "validate_access_token", down)
    assert _lane(app, _request(tokens["access_token"])) is None


def test_the_lanes_by_path(app):
    assert {path: type(lane).__name__ for path, lane in lanes(app).items()} == \
        {"/token": "TokenLane", "/introspect": "IntrospectionLane", "/userinfo": "UserinfoLane"}
