"""The token lane (serving/lanes.py) answers a plain ``client_credentials`` request (RFC 6749
§4.4) exactly as the app would, and leaves to the app every request the app would answer
otherwise (an error, another grant, anything the input guard refuses). Each request here is
given to the lane as the WSGI environ the app gets and to the app through Flask's test client;
tests/e2e/test_token_lane_live.py does it through granian."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from sqlalchemy.exc import OperationalError

from oidc_provider.access import system_accounts
from oidc_provider.admin import services as admin_services
from oidc_provider.extensions import db
from oidc_provider.loop_reads import LoopReads
from oidc_provider.models import Client
from oidc_provider.serving import lanes, rsgi
from oidc_provider.serving.lanes import TokenLane
from oidc_provider.web.input_guard import MAX_VALUE

from ..helpers import lane_answer, left_to_app, make_client
from ..spec._clients import claims_of, header_of, set_columns

FORM = "application/x-www-form-urlencoded"
RESOURCE = "https://api.example/"
# Members of the token that differ between two tokens issued one after the other.
PER_TOKEN = {"jti", "iat", "exp"}


@pytest.fixture
def service(app):
    with app.app_context():
        client, secret = admin_services.create_service(name="nightly-export", scope="export:read export:write",
                                                       resources=[RESOURCE])
        db.session.commit()
        return client.client_id, secret


def _basic(client_id, secret, scheme="Basic"):
    return f"{scheme} " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _request(service, *, form=None, body=None, content_type=FORM, query="", method="POST", path="/token",
             authorization=None, headers=None):
    """Keyword arguments for both EnvironBuilder (the lane) and the test client (the app)."""
    form = form or {"grant_type": "client_credentials"}
    data = body if body is not None else "&".join(f"{k}={v}" for k, v in form.items())
    return {"path": path, "method": method, "query_string": query, "data": data, "content_type": content_type,
            "headers": {"Authorization": authorization if authorization is not None else _basic(*service),
                        **(headers or {})}}


def _lane(app, request):
    return lane_answer(app, TokenLane(app), request)


def _same_answer(app, request):
    """The lane answers ``request`` and its answer is the app's, token values aside."""
    answer = _lane(app, request)
    assert answer is not None, "the lane left a plain client_credentials request to the app"
    status, headers, content = answer
    expected = app.test_client().open(**request)
    assert status == expected.status_code == 200, expected.json
    ours = [(name.lower(), value) for name, value in headers]
    theirs = [(name.lower(), value) for name, value in expected.headers.items()]
    assert [(n, v) for n, v in ours if n not in ("x-request-id", "content-length")] == \
        [(n, v) for n, v in theirs if n not in ("x-request-id", "content-length")]
    assert dict(ours)["content-length"] == str(len(content))

    body, app_body = json.loads(content), expected.json
    assert list(body) == list(app_body)  # the members, in Authlib's order
    assert {k: v for k, v in body.items() if k != "access_token"} == \
        {k: v for k, v in app_body.items() if k != "access_token"}
    assert header_of(body["access_token"]) == header_of(app_body["access_token"])
    claims, app_claims = claims_of(body["access_token"]), claims_of(app_body["access_token"])
    assert {k: v for k, v in claims.items() if k not in PER_TOKEN} == \
        {k: v for k, v in app_claims.items() if k not in PER_TOKEN}
    assert claims["exp"] - claims["iat"] == app_claims["exp"] - app_claims["iat"]
    assert claims["jti"] != app_claims["jti"]
    return answer, expected


def test_rfc6749_4_4_2_a_plain_request_is_answered_as_the_app_answers_it(app, service):
    (_, _, content), _ = _same_answer(app, _request(service))
    assert content.startswith(b'{"access_token": ')


@pytest.mark.parametrize("form", [
    {"grant_type": "client_credentials", "scope": "export:read"},
    {"grant_type": "client_credentials", "scope": "export:read+openid+other"},  # RFC 6749 §3.3: narrowed
    {"grant_type": "client_credentials", "scope": ""},
    {"scope": "export:write", "grant_type": "client_credentials"},
    {"grant_type": "client_credentials", "resource": "https%3A%2F%2Fapi.example%2F"},  # RFC 8707 §2
], ids=["scope", "narrowed-scope", "empty-scope", "order", "resource"])
def test_rfc6749_3_3_rfc8707_2_scope_and_resource_as_the_grant_decides(app, service, form):
    _same_answer(app, _request(service, form=form))


@pytest.mark.parametrize("content_type", [FORM + ";charset=UTF-8", FORM + "; charset=utf-8"])
def test_rfc6749_3_2_a_utf8_charset_parameter_is_the_same_form(app, service, content_type):
    _same_answer(app, _request(service, content_type=content_type))


def test_rfc6749_2_3_1_the_basic_scheme_name_is_case_insensitive(app, service):
    """RFC 9110 §11.1: "It uses a case-insensitive token to identify the authentication scheme"."""
    _same_answer(app, _request(service, authorization=_basic(*service, scheme="basic")))


def test_a_safe_request_id_is_echoed(app, service):
    (_, headers, _), expected = _same_answer(app, _request(service, headers={"X-Request-Id": "job-42.a_b"}))
    assert dict(headers)["X-Request-Id"] == expected.headers["X-Request-Id"] == "job-42.a_b"


@pytest.mark.parametrize("app", [{"hsts_max_age": 600, "proxy_hops": 1}], indirect=True)
def test_rfc6797_7_2_hsts_and_the_logged_address_behind_a_proxy(app, service, caplog):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    with caplog.at_level(logging.INFO, logger="oidc_provider.access"):
        caplog.clear()
        answer = _lane(app, _request(service, headers=forwarded))
        (line,) = [r for r in caplog.records if r.name == "oidc_provider.access"]
        caplog.clear()
        expected = app.test_client().open(**_request(service, headers=forwarded))
        (app_line,) = [r for r in caplog.records if r.name == "oidc_provider.access"]
    assert dict(answer[1])["Strict-Transport-Security"] == expected.headers["Strict-Transport-Security"]
    assert line.fields == {**app_line.fields, "duration_ms": line.fields["duration_ms"],
                           "request_id": dict(answer[1])["X-Request-Id"]}
    assert line.fields["client"] == "203.0.113.9" and line.fields["status"] == 200
    plain = _lane(app, _request(service))  # RFC 6797 §7.2: never over http
    assert "Strict-Transport-Security" not in dict(plain[1])


@pytest.mark.parametrize("app", [{"metrics": True}], indirect=True)
def test_metrics_count_the_request_and_the_token_as_the_app_does(app, service):
    registry = app.extensions["oidc_metrics"].registry
    labels = {"endpoint": "token.token", "status": "200"}
    grant = {"grant_type": "client_credentials"}

    def counts():
        return (registry.get_sample_value("oidc_http_requests_total", labels) or 0,
                registry.get_sample_value("oidc_tokens_issued_total", grant) or 0)

    start = counts()
    app.test_client().open(**_request(service))
    by_app = counts()
    _lane(app, _request(service))
    assert by_app == (start[0] + 1, start[1] + 1)
    assert counts() == (by_app[0] + 1, by_app[1] + 1)


def _left_to_app(app, request, status=None):
    return left_to_app(app, TokenLane(app), request, status)


@pytest.mark.parametrize(("change", "status"), [
    ({"path": "/revoke"}, None),
    ({"method": "PUT"}, 405),
    ({"query": "grant_type=client_credentials"}, 400),  # RFC 6749 §2.3.1: no credentials in the URL
    ({"content_type": "application/json"}, 400),  # RFC 6749 §3.2
    ({"content_type": FORM + "; charset=latin-1"}, 200),  # answered by the app: Werkzeug reads UTF-8
    ({"form": {"grant_type": "authorization_code", "code": "x"}}, 400),
    ({"form": {"scope": "export:read"}}, 400),  # RFC 6749 §4.4.2: grant_type REQUIRED
    ({"body": "grant_type=client_credentials&scope=a&scope=b"}, 400),  # RFC 6749 §3.2: not repeated
    ({"body": "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example%2F&resource=x"}, 400),
    ({"form": {"grant_type": "client_credentials", "resource": "https%3A%2F%2Fother.example%2F"}}, 400),
    ({"form": {"grant_type": "client_credentials", "audience": "x"}}, 200),  # unknown: the app ignores it
    ({"form": {"grant_type": "client_credentials", "scope": "a" * 8193}}, 400),
    ({"body": "grant_type=client_credentials&scope=%00"}, 400),  # the input guard's
    ({"body": "grant_type=client_credentials&scope=%FF"}, 400),  # not UTF-8
    ({"headers": {"X-Note": "a\x01b"}}, 400),  # RFC 9110 §5.5
    ({"authorization": "Basic !!!"}, 401),
    ({"authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, 401),
    ({"authorization": "Bearer abc"}, 401),
    ({"authorization": ""}, 401),
], ids=["revoke", "put", "query", "json", "other-charset", "other-grant", "no-grant-type", "repeated",
        "two-resources", "foreign-resource", "unknown-parameter", "long-scope", "nul", "not-utf8",
        "control-in-header", "bad-base64", "no-colon", "bearer", "no-credentials"])
def test_rfc6749_5_2_anything_else_is_left_to_the_app(app, service, change, status):
    _left_to_app(app, _request(service, **change), status)


def test_rfc6749_5_2_wrong_or_unknown_credentials_are_the_apps_invalid_client(app, service):
    client_id, secret = service
    for authorization in (_basic(client_id, secret + "x"), _basic("f" * 32, secret), _basic(client_id, "s\x00")):
        answered = _left_to_app(app, _request(service, authorization=authorization), 401)
        assert answered.json["error"] == "invalid_client"


def test_rfc6749_4_4_a_client_not_allowed_the_grant_or_disabled_is_left_to_the_app(app, service):
    relying_party = make_client(app)
    assert _left_to_app(app, _request(relying_party), 400).json["error"] == "unauthorized_client"
    with app.app_context():
        system_accounts.disable("nightly-export")
        db.session.commit()
    assert _left_to_app(app, _request(service), 401).json["error"] == "invalid_client"


def test_rfc6749_2_3_1_a_client_registered_for_another_auth_method_is_left_to_the_app(app, service):
    set_columns(app, Client, Client.client_id == service[0], token_endpoint_auth_method="client_secret_post")
    assert _left_to_app(app, _request(service), 401).json["error"] == "invalid_client"


def test_a_body_over_the_apps_limit_is_left_to_the_app(app, service):
    body = "grant_type=client_credentials&x=" + "a" * (64 * 1024)
    _left_to_app(app, _request(service, body=body), 413)


def test_a_database_error_is_left_to_the_app_which_answers_503(app, service, monkeypatch):
    def down(_client_id):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(lanes, "query_client", down)
    assert _lane(app, _request(service)) is None


def test_a_credential_rotated_is_refused_at_once(app, service):
    """DESIGN's one live credential: the lane reads the credential every time."""
    assert _lane(app, _request(service)) is not None
    with app.app_context():
        new_secret = system_accounts.rotate("nightly-export")
        db.session.commit()
    assert _lane(app, _request(service)) is None
    assert _lane(app, _request((service[0], new_secret))) is not None


def test_on_postgresql_the_lanes_await_their_reads(app):
    """serving/rsgi.py: a PostgreSQL read waits on the network, so the lanes' reads are awaited
    (loop_reads.LoopReads); a SQLite read is a local file's, made as the app makes it."""
    reads = rsgi._lane_reads(app, app.extensions["oidc_settings"])
    assert isinstance(reads, LoopReads) == app.extensions["oidc_settings"].database_url.startswith("postgresql")


def test_a_too_long_header_is_left_to_the_app(app, service):
    _left_to_app(app, _request(service, headers={"X-Note": "v" * (MAX_VALUE + 1)}), 431)
