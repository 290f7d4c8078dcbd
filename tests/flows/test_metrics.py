"""``/metrics`` (Prometheus text exposition format) through the Flask test client: off by
default, and after real journeys every counter moved by exactly what happened. The counters are
those of this test process (one set per process), so each test compares two scrapes."""

from __future__ import annotations

import collections

import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from oidc_provider.admin import services as admin_services
from oidc_provider.authn import throttle
from oidc_provider.extensions import db
from oidc_provider.federation.connector import ConnectorError
from oidc_provider.models import AuditEvent

from ..helpers import PASSWORD, Browser, csrf_token, make_client, make_user
from ..spec._support import redirected_to_client, start
from .test_federation import connect, link, upstream_login
from .test_passkeys import ISSUER as PASSKEY_ISSUER
from .test_passkeys import passkey_login, registered
from .test_step_up import at, decline, enroll_totp, submit_code

TOKEN = "metrics-bearer-token-" + "m" * 32


def scrape(http, **headers) -> collections.Counter:
    """Every sample of one scrape, keyed by (name, sorted labels)."""
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    return collections.Counter({
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text) for sample in family.samples
    })


def moved(before, after) -> dict:
    """What changed between two scrapes, as {(name, labels): delta}, without the latency sums
    and buckets (their values depend on timing) and without the scrape itself."""
    return {key: after[key] - before[key] for key in after.keys() | before.keys()
            if after[key] != before[key] and not key[0].endswith(("_sum", "_bucket", "_created"))
            and ("endpoint", "metrics") not in key[1]}


def labels(**values) -> tuple:
    return tuple(sorted(values.items()))


@pytest.fixture
def app(app_factory):
    return app_factory(metrics=True)


def _audit_counts(app) -> dict:
    with app.app_context():
        rows = db.session.execute(select(AuditEvent.event, AuditEvent.outcome, func.count())
                                  .group_by(AuditEvent.event, AuditEvent.outcome))
        return {("oidc_audit_events_total", labels(event=e, outcome=o)): n for e, o, n in rows}


def _post_login(http, username, password):
    page = http.get("/login")
    return http.post("/login", data={"csrf_token": csrf_token(page.text), "username": username,
                                     "password": password})


def test_metrics_is_404_when_off(app_factory):
    """``OIDC_METRICS`` defaults to false: no route at all."""
    assert app_factory.default.extensions["oidc_settings"].metrics is False
    assert app_factory.default.test_client().get("/metrics").status_code == 404


def test_a_code_flow_a_refresh_and_client_credentials_move_exactly_their_counters(app, browser):
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    with app.app_context():
        service, service_secret = admin_services.create_service(name="backup-job")
        service_id = service.client_id
        db.session.commit()
    before, audit_before = scrape(browser.http), _audit_counts(app)

    result = browser.sign_in_and_authorize(client_id)
    tokens = browser.redeem(client_id, secret, result["code"]).json
    refreshed = browser.http.post("/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": tokens["refresh_token"]}, auth=(client_id, secret))
    assert refreshed.status_code == 200
    assert browser.http.post("/token", data={"grant_type": "client_credentials"},
                             auth=(service_id, service_secret)).status_code == 200
    refused = browser.http.post("/token", data={"grant_type": "client_credentials"}, auth=(service_id, "wrong"))
    assert refused.status_code == 401

    after = scrape(browser.http)
    delta = moved(before, after)
    tokens_issued = {k: v for k, v in delta.items() if k[0] == "oidc_tokens_issued_total"}
    assert tokens_issued == {("oidc_tokens_issued_total", labels(grant_type=g)): 1
                             for g in ("authorization_code", "refresh_token", "client_credentials")}
    assert delta[("oidc_logins_total", labels(method="password", outcome="success"))] == 1
    token_requests = {k: v for k, v in delta.items() if ("endpoint", "token.token") in k[1]}
    assert token_requests == {
        ("oidc_http_requests_total", labels(endpoint="token.token", status="200")): 3,
        ("oidc_http_request_duration_seconds_count", labels(endpoint="token.token", status="200")): 3,
        ("oidc_http_requests_total", labels(endpoint="token.token", status="401")): 1,
        ("oidc_http_request_duration_seconds_count", labels(endpoint="token.token", status="401")): 1,
    }
    assert delta[("oidc_http_requests_total", labels(endpoint="authorize.authorize", status="302"))] == 1
    # The audit counter agrees with the audit table, event by event.
    audit_rows = collections.Counter(_audit_counts(app))
    audit_rows.subtract(audit_before)
    assert {k: v for k, v in delta.items() if k[0] == "oidc_audit_events_total"} == +audit_rows
    # The scrape before is counted in the scrape after, by its endpoint's name.
    assert after[("oidc_http_requests_total", labels(endpoint="metrics", status="200"))] - \
        before[("oidc_http_requests_total", labels(endpoint="metrics", status="200"))] == 1
    # No person, client or secret in any label: only bounded names.
    values = {value for (_, pairs) in after for _, value in pairs}
    assert values.isdisjoint({"alice", client_id, secret, service_id, service_secret, "backup-job"})


def test_failed_and_throttled_logins_are_counted_apart(app, client):
    make_user(app)
    before = scrape(client)
    for _ in range(throttle.FREE_FAILURES["account"] + 2):
        assert _post_login(client, "alice", "wrong password").status_code == 401
    assert _post_login(client, "alice", PASSWORD).status_code == 401  # locked: refused unchecked
    delta = moved(before, scrape(client))
    audit = _audit_counts(app)
    failures = audit[("oidc_audit_events_total", labels(event="account:login:failure", outcome="failure"))]
    throttled = audit[("oidc_audit_events_total", labels(event="account:login:throttled", outcome="failure"))]
    assert failures + throttled == throttle.FREE_FAILURES["account"] + 3 and throttled >= 2
    assert delta[("oidc_logins_total", labels(method="password", outcome="failure"))] == failures
    assert delta[("oidc_logins_total", labels(method="password", outcome="throttled"))] == throttled
    assert delta[("oidc_throttled_attempts_total", labels(check="password"))] == throttled
    assert ("oidc_logins_total", labels(method="password", outcome="success")) not in delta
    assert delta[("oidc_http_requests_total", labels(endpoint="login.login", status="401"))] == failures + throttled


def test_step_ups_by_method_and_outcome(app, browser):
    """A step-up with a TOTP code (RFC 8176 ``otp``), then one where the person says "Not now"."""
    make_user(app)
    secret, _ = enroll_totp(app)
    client_id, _ = make_client(app, trusted=True)
    before = scrape(browser.http)
    response, _ = start(browser, client_id, acr_values="mfa")
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/")
    redirected_to_client(browser.follow(submit_code(browser, response, pyotp.TOTP(secret).now())))
    later = Browser(app)
    response, _ = start(later, client_id, acr_values="mfa")
    response = later.follow(later.login(response))
    assert at(response, "/step-up/")
    redirected_to_client(decline(later, response))
    delta = moved(before, scrape(browser.http))
    assert {k: v for k, v in delta.items() if k[0] == "oidc_step_ups_total"} == {
        ("oidc_step_ups_total", labels(method="otp", outcome="success")): 1,
        ("oidc_step_ups_total", labels(method="none", outcome="failure")): 1,
    }


def test_a_passkey_sign_in_is_a_passkey_login(app_factory):
    """WebAuthn §7.2 sign-in from the login page (passkeys need a domain: ``localhost``)."""
    app = app_factory(metrics=True, issuer=PASSKEY_ISSUER)
    make_user(app)
    authenticator = registered(app, Browser(app))
    person = Browser(app)
    before = scrape(person.http)
    assert passkey_login(person, authenticator).status_code == 200
    delta = moved(before, scrape(person.http))
    assert {k: v for k, v in delta.items() if k[0] == "oidc_logins_total"} == {
        ("oidc_logins_total", labels(method="passkey", outcome="success")): 1}


def test_upstream_logins_by_connector_and_outcome(app, browser):
    make_user(app)
    link(app, "alice")
    connect(app, "github")
    connect(app, "broken", error=ConnectorError("upstream_error", "The other site said no."))
    before = scrape(browser.http)
    assert upstream_login(browser, "github").status_code == 302
    assert upstream_login(browser, "broken").status_code == 400
    delta = moved(before, scrape(browser.http))
    assert {k: v for k, v in delta.items() if k[0] in ("oidc_upstream_logins_total", "oidc_logins_total")} == {
        ("oidc_upstream_logins_total", labels(provider="github", outcome="success")): 1,
        ("oidc_upstream_logins_total", labels(provider="broken", outcome="failure")): 1,
        ("oidc_logins_total", labels(method="upstream", outcome="success")): 1,
        ("oidc_logins_total", labels(method="upstream", outcome="failure")): 1,
    }


def test_database_errors_are_counted_by_error_class(app):
    http = app.test_client()
    before = scrape(http)
    with app.app_context():
        with pytest.raises(Exception) as raised:
            db.session.execute(text("SELECT * FROM no_such_table"))
        db.session.rollback()
    delta = moved(before, scrape(http))
    assert delta == {("oidc_database_errors_total", labels(error=type(raised.value).__name__)): 1}
    assert type(raised.value).__name__ in ("OperationalError", "ProgrammingError")  # SQLite, PostgreSQL


def test_database_unreachable_is_counted(app_factory):
    """A refused connection (nothing listens on port 9) is a database error too."""
    down = app_factory(metrics=True, database_url="postgresql+psycopg://nobody@127.0.0.1:9/none")
    http = down.test_client()
    before = scrape(http)
    http.get("/jwks.json")
    delta = moved(before, scrape(http))
    assert {k: v for k, v in delta.items() if k[0] == "oidc_database_errors_total"} == {
        ("oidc_database_errors_total", labels(error="OperationalError")): 1}


def test_a_metrics_token_is_required_when_set(app_factory):
    """RFC 6750 §3: a request without the token gets 401 with a ``Bearer`` challenge."""
    http = app_factory(metrics=True, metrics_token=TOKEN).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + TOKEN}):
        response = http.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert scrape(http, Authorization=f"Bearer {TOKEN}")
