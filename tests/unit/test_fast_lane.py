"""The fast lane (serving/fast_lane.py) answers discovery (OIDC Discovery 1.0 §4, RFC 8414 §3)
and the JWKS (RFC 7517 §5) in granian's event loop exactly as the app would, and leaves to the
app every request whose answer could differ. Checked against the app's own answer (the Flask
test client) with an RSGI-like scope; tests/e2e/test_fast_lane_live.py does it through granian."""

from __future__ import annotations

import logging
import time

import pytest

from oidc_provider.keys import store
from oidc_provider.serving.fast_lane import DISCOVERY, JWKS, FastLane
from oidc_provider.web.input_guard import MAX_HEADERS, MAX_VALUE

PATHS = (*DISCOVERY, JWKS)
# Headers that are the request's own, not the document's.
PER_REQUEST = {"date", "x-request-id"}


class Scope:
    """What the lane reads of granian's RSGIScope."""

    def __init__(self, path, *, method="GET", query_string="", headers=(), scheme="http", client="127.0.0.1:50123"):
        self.path, self.method, self.query_string, self.scheme, self.client = path, method, query_string, scheme, client
        self.headers = Headers([("host", "127.0.0.1"), ("accept", "*/*"), *headers])


class Headers:
    """granian's RSGIHeaders: ``items()`` yields a repeated field once per line."""

    def __init__(self, pairs):
        self.pairs = list(pairs)

    def items(self):
        return list(self.pairs)


def _warm(app):
    """The first JWKS request goes through the app, which makes the document the lane serves."""
    assert app.test_client().get(JWKS).status_code == 200


def _header_map(headers) -> dict:
    return {name.lower(): value for name, value in headers}


@pytest.mark.parametrize("path", PATHS)
def test_rfc8414_3_rfc7517_5_the_lane_answers_as_the_app_does(app, path):
    _warm(app)
    answer = FastLane(app).answer(Scope(path))
    assert answer is not None
    status, headers, body = answer
    expected = app.test_client().get(path)
    assert status == expected.status_code == 200
    assert body == expected.data
    ours = _header_map(headers)
    theirs = {name.lower(): value for name, value in expected.headers.items() if name.lower() != "content-length"}
    assert {k: v for k, v in ours.items() if k not in PER_REQUEST} == \
        {k: v for k, v in theirs.items() if k not in PER_REQUEST}
    assert PER_REQUEST <= set(ours)
    assert int(len(body)) == int(expected.headers["Content-Length"])  # granian sets it from the body


@pytest.mark.parametrize("scope", [
    Scope(JWKS, method="HEAD"),
    Scope(JWKS, method="POST"),
    Scope(DISCOVERY[0], query_string="x=1"),
    Scope("/jwks.json/"),
    Scope("/token"),
    Scope(JWKS, headers=[("if-none-match", '"abc"')]),
    Scope(DISCOVERY[0], headers=[("if-modified-since", "Sat, 05 Dec 2026 21:01:33 GMT")]),
    Scope(JWKS, headers=[("content-length", "0")]),
    Scope(JWKS, headers=[("x-a", "1"), ("x-a", "2")]),  # a repeated field: the app joins them
    Scope(JWKS, headers=[("x-a", "bad\x01value")]),  # RFC 9110 §5.5: the input guard's 400
    Scope(JWKS, headers=[("x-a", "v" * (MAX_VALUE + 1))]),  # RFC 6585 §5: the guard's 431
    Scope(JWKS, headers=[(f"x-{i}", "v") for i in range(MAX_HEADERS)]),
], ids=["head", "post", "query", "other-path", "token", "if-none-match", "if-modified-since", "body",
        "repeated", "control-character", "too-long", "too-many"])
def test_what_the_app_could_answer_otherwise_goes_to_the_app(app, scope):
    _warm(app)
    assert FastLane(app).answer(scope) is None


def test_rfc9110_13_1_2_a_conditional_request_gets_the_apps_304(app):
    """If-None-Match is left to the app, which answers 304 for the document's ETag."""
    _warm(app)
    etag = _header_map(FastLane(app).answer(Scope(JWKS))[1])["etag"]
    assert app.test_client().get(JWKS, headers={"If-None-Match": etag}).status_code == 304


def test_rfc7517_5_the_key_set_goes_to_the_app_until_it_is_fresh(app):
    lane = FastLane(app)
    keys = app.extensions["oidc_server"].policy.keys
    keys.invalidate()
    assert lane.answer(Scope(JWKS)) is None  # never made in this process: the app makes it
    _warm(app)
    first = lane.answer(Scope(JWKS))
    assert first is not None
    keys.invalidate()  # what CACHE_SECONDS passing does: the app reloads from the database
    assert lane.answer(Scope(JWKS)) is None
    _warm(app)
    assert lane.answer(Scope(JWKS))[2] == first[2]


def test_rfc7517_5_a_rotation_reaches_the_lane_through_the_app(app):
    lane = FastLane(app)
    keys = app.extensions["oidc_server"].policy.keys
    _warm(app)
    before = lane.answer(Scope(JWKS))[2]
    with app.app_context():
        keys.rotate()
    assert lane.answer(Scope(JWKS)) is None
    _warm(app)
    after = lane.answer(Scope(JWKS))[2]
    assert after != before
    assert after == app.test_client().get(JWKS).data


def test_a_retired_key_leaves_the_lanes_key_set_when_its_publish_until_passes(app, monkeypatch):
    keys = app.extensions["oidc_server"].policy.keys
    with app.app_context():
        keys.rotate()  # the former active keys are retired, published until their tokens expire
    _warm(app)
    lane = FastLane(app)
    assert lane.answer(Scope(JWKS)) is not None
    later = time.time() + app.extensions["oidc_settings"].access_token_ttl + 3600
    monkeypatch.setattr(store.time, "time", lambda: later)
    assert lane.answer(Scope(JWKS)) is None  # the app drops the retired keys (its own clock)


def test_the_discovery_document_follows_a_replaced_metadata(app):
    lane = FastLane(app)
    assert lane.answer(Scope(DISCOVERY[0])) is not None
    app.extensions["oidc_metadata"] = {**app.extensions["oidc_metadata"], "service_documentation": "x"}
    try:
        assert lane.answer(Scope(DISCOVERY[0])) is None
    finally:
        app.extensions["oidc_metadata"] = app.extensions["oidc_metadata_document"].source


@pytest.mark.parametrize("app", [{"hsts_max_age": 600}], indirect=True)
def test_rfc6797_7_2_hsts_over_https_only(app):
    _warm(app)
    lane = FastLane(app)
    assert _header_map(lane.answer(Scope(JWKS, scheme="https"))[1])["strict-transport-security"] == "max-age=600"
    assert "strict-transport-security" not in _header_map(lane.answer(Scope(JWKS, scheme="http"))[1])
    # Without OIDC_PROXY_HOPS, X-Forwarded-Proto is anybody's word.
    forwarded = Scope(JWKS, headers=[("x-forwarded-proto", "https")])
    assert "strict-transport-security" not in _header_map(lane.answer(forwarded)[1])


@pytest.mark.parametrize("app", [{"hsts_max_age": 600, "proxy_hops": 1}], indirect=True)
def test_behind_a_proxy_the_scheme_and_address_are_what_proxyfix_finds(app, caplog):
    _warm(app)
    lane = FastLane(app)
    scope = Scope(JWKS, headers=[("x-forwarded-proto", "https"), ("x-forwarded-for", "198.51.100.7, 203.0.113.9")])
    with caplog.at_level(logging.INFO, logger="oidc_provider.access"):
        caplog.clear()
        headers = _header_map(lane.answer(scope)[1])
        (line,) = [r for r in caplog.records if r.name == "oidc_provider.access"]
        caplog.clear()
        # The app, given the same request: the same HSTS header and the same address logged.
        expected = app.test_client().get(JWKS, headers={"X-Forwarded-Proto": "https",
                                                        "X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
        (app_line,) = [r for r in caplog.records if r.name == "oidc_provider.access"]
    assert headers["strict-transport-security"] == expected.headers["Strict-Transport-Security"] == "max-age=600"
    assert line.fields["client"] == app_line.fields["client"] == "203.0.113.9"  # the trusted proxy's
    assert line.fields["path"] == JWKS and line.fields["status"] == 200
    assert line.fields["request_id"] == headers["x-request-id"]


def test_a_safe_request_id_is_kept_and_another_replaced(app):
    _warm(app)
    lane = FastLane(app)
    kept = lane.answer(Scope(JWKS, headers=[("x-request-id", "abc.DEF-123_x")]))
    assert _header_map(kept[1])["x-request-id"] == "abc.DEF-123_x"
    replaced = _header_map(lane.answer(Scope(JWKS, headers=[("x-request-id", "no spaces please")]))[1])
    assert replaced["x-request-id"] != "no spaces please"
    assert len(replaced["x-request-id"]) == 32


@pytest.mark.parametrize("app", [{"metrics": True}], indirect=True)
def test_metrics_count_what_the_lane_answers_under_the_views_name(app):
    _warm(app)
    registry = app.extensions["oidc_metrics"].registry
    labels = {"endpoint": "discovery.jwks", "status": "200"}
    before = registry.get_sample_value("oidc_http_requests_total", labels) or 0
    FastLane(app).answer(Scope(JWKS))
    assert registry.get_sample_value("oidc_http_requests_total", labels) == before + 1
