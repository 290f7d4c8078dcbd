"""Small helpers for the spec tests: verify what the provider issued against its own JWKS,
read authorization responses, and move stored times into the past instead of sleeping."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from oidc_provider.clock import epoch, utcnow
from oidc_provider.digests import digest
from oidc_provider.extensions import db
from oidc_provider.models import AuthorizationCode, BrowserSession

from ..helpers import REDIRECT_URI, query_of
from ._clients import issue_tokens

ALGORITHMS = ["RS256", "ES256", "EdDSA"]
SESSION_COOKIE = "oidc_session"


def verified_claims(http, token: str) -> dict:
    """The claims of a JWT after checking its signature against the JWKS at /jwks.json."""
    jwks = http.get("/jwks.json")
    assert jwks.status_code == 200
    decoded = jwt.decode(token, KeySet.import_key_set(jwks.json), algorithms=ALGORITHMS)
    return dict(decoded.claims)


def start(browser, client_id, /, *, method="GET", **extra):
    """Send an authorization request (PKCE pair kept on the browser) and follow the provider's
    own redirects until the login or consent page, or a response that leaves the provider."""
    params = browser.authorize_params(client_id, **extra)
    if method == "POST":
        response = browser.http.post("/authorize", data=params)
    else:
        response = browser.http.get("/authorize", query_string=params)
    return browser.follow(response), params


def at_login(response) -> bool:
    return response.status_code == 302 and urlpath(response.headers["Location"]) == "/login"


def at_consent(response) -> bool:
    return response.status_code == 302 and urlpath(response.headers["Location"]).startswith("/consent/")


def urlpath(location: str) -> str:
    return re.sub(r"^https?://[^/]+", "", location).split("?")[0]


def redirected_to_client(response, redirect_uri=REDIRECT_URI) -> dict:
    """The query of a redirect back to the client (fails if it went anywhere else)."""
    assert response.status_code == 302, (response.status_code, response.text[:300])
    location = response.headers["Location"]
    assert location.split("?")[0] == redirect_uri, location
    return query_of(location)


def error_page(response) -> None:
    """RFC 6749 §4.1.2.1: an HTML page for the person, status 400, and no redirect."""
    assert response.status_code == 400, response.status_code
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


def finish(browser, response, username="alice"):
    """Complete login and consent if asked; return the final response."""
    if at_login(response):
        response = browser.follow(browser.login(response, username))
    if at_consent(response):
        response = browser.follow(browser.consent(response))
    return response


def form_post_fields(html: str) -> tuple[str, dict]:
    """The action and hidden fields of a form_post response page."""
    action = re.search(r'<form method="post" action="([^"]*)"', html)
    assert action, html[:300]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', html))
    return unescape(action.group(1)), {unescape(k): unescape(v) for k, v in fields.items()}


def id_token_for(browser, client_id, secret, **extra) -> dict:
    """Run the journey, redeem the code and return the verified ID token claims."""
    return verified_claims(browser.http, tokens_for(browser, client_id, secret, **extra)["id_token"])


def age_login(app, browser, seconds: int) -> int:
    """Pretend the browser's login (and every factor proven since) happened ``seconds`` ago;
    returns the new auth_time."""
    raw = browser.http.get_cookie(SESSION_COOKIE)
    assert raw is not None, "the browser has no session"
    with app.app_context():
        row = db.session.scalar(select(BrowserSession).where(BrowserSession.id_digest == digest(raw.value)))
        when = utcnow() - timedelta(seconds=seconds)
        data = dict(row.data)
        data["auth_time"] = epoch(when)
        # Every method was proven then too (levels.fresh_enough reads these).
        data["proven"] = {method: epoch(when) for method in data.get("proven") or {}}
        row.data = data
        row.auth_time = when
        db.session.commit()
        return data["auth_time"]


def expire_code(app, code: str) -> None:
    """Move a code's expiry into the past instead of waiting for it."""
    with app.app_context():
        db.session.execute(
            update(AuthorizationCode).where(AuthorizationCode.code_digest == digest(code))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()


def tokens_for(browser, client_id, secret, **extra) -> dict:
    """Run the journey and redeem the code; return the token response body."""
    return issue_tokens(browser, client_id, secret, **extra)


def refused_each(app, browser, client_id, name: str, values, error="invalid_request") -> None:
    """One authorization request per value of parameter ``name`` (None leaves it out); each
    must be redirected back with ``error``, the request's ``state`` and ``iss``."""
    issuer = app.extensions["oidc_settings"].issuer
    for value in values:
        response, params = start(browser, client_id, **{name: value})
        result = redirected_to_client(response)
        assert (value, result.get("error"), result.get("state"), result.get("iss"), "code" in result) == \
            (value, error, params["state"], issuer, False)


def error_page_each(browser, client_id, name: str, values) -> None:
    """One authorization request per value of parameter ``name``; each gets the HTML error
    page (status 400, no redirect)."""
    for value in values:
        response, _ = start(browser, client_id, **{name: value})
        assert (value, response.status_code, response.headers.get("Location"), response.mimetype) == \
            (value, 400, None, "text/html")
