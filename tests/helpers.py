"""Test helpers: make accounts and clients, and a Browser that walks the authorization
journey through the Flask test client, answering the login and consent pages like a person."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

from werkzeug.test import EnvironBuilder

from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.admin import clients as admin_clients
from oidc_provider.extensions import db
from oidc_provider.serving import rsgi

PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://rp.example/cb"


def make_user(app, username="alice", password=PASSWORD, **kw):
    with app.app_context():
        account = admin_accounts.create_user(app.extensions["oidc_passwords"], username=username,
                                             email=kw.pop("email", f"{username}@example.com"),
                                             name=kw.pop("name", username.title()), password=password,
                                             email_verified=kw.pop("email_verified", True))
        db.session.commit()
        return account.subject


def make_client(app, **kw):
    """Returns (client_id, client_secret)."""
    kw.setdefault("name", "Test RP")
    kw.setdefault("redirect_uris", [REDIRECT_URI])
    kw.setdefault("post_logout_redirect_uris", ["https://rp.example/bye"])
    with app.app_context():
        client, secret = admin_clients.create_client(**kw)
        db.session.commit()
        return client.client_id, secret


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """A person with a browser, driving the provider's pages through the test client."""

    def __init__(self, app):
        self.app = app
        self.http = app.test_client()
        self.verifier = None

    def authorize_params(self, client_id, /, **extra):
        self.verifier, challenge = pkce_pair()
        params = {
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update({k: v for k, v in extra.items() if v is not None})
        for key in [k for k, v in extra.items() if v is None]:
            params.pop(key, None)
        return params

    def get(self, path, **kw):
        return self.http.get(path, **kw)

    def login(self, response, username="alice", password=PASSWORD):
        """Fill in the login page the response redirected to."""
        assert response.status_code == 302, response.status_code
        page = self.http.get(response.headers["Location"])
        assert page.status_code == 200
        form_action = "/login"
        pid = query_of(response.headers["Location"]).get("p")
        data = {"csrf_token": csrf_token(page.text), "username": username, "password": password}
        if pid:
            data["p"] = pid
        return self.http.post(form_action, data=data)

    def consent(self, response, decision="allow"):
        assert response.status_code == 302 and "/consent/" in response.headers["Location"], \
            response.headers.get("Location")
        page = self.http.get(response.headers["Location"])
        assert page.status_code == 200
        return self.http.post(urlsplit(response.headers["Location"]).path,
                              data={"csrf_token": csrf_token(page.text), "decision": decision})

    def follow(self, response):
        """Follow redirects inside the provider until one leaves it (or a page renders)."""
        seen = []
        while response.status_code == 302 and response.headers["Location"].startswith(("/", "http://localhost")):
            location = response.headers["Location"]
            seen.append(location)
            assert len(seen) < 20, f"redirect loop: {seen[-4:]}"
            if "/login" in location or "/consent/" in location or "/step-up/" in location or "/enroll/" in location:
                return response
            response = self.http.get(location)
        return response

    def sign_in_and_authorize(self, client_id, *, consent=True, username="alice", password=PASSWORD, **extra):
        """Run the whole journey; return the final redirect's query parameters."""
        params = self.authorize_params(client_id, **extra)
        response = self.follow(self.http.get("/authorize", query_string=params))
        if response.status_code == 302 and "/login" in response.headers["Location"]:
            response = self.follow(self.login(response, username, password))
        if consent and response.status_code == 302 and "/consent/" in response.headers["Location"]:
            response = self.follow(self.consent(response))
        assert response.status_code == 302, (response.status_code, response.text[:500])
        location = response.headers["Location"]
        assert location.startswith(REDIRECT_URI), location
        result = query_of(location)
        result["_sent_state"] = params["state"]
        result["_sent_nonce"] = params.get("nonce")
        return result

    def redeem(self, client_id, secret, code, verifier=None, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier or self.verifier, **extra}
        auth = (client_id, secret) if secret else None
        if auth is None:
            data["client_id"] = client_id
        return self.http.post("/token", data=data, auth=auth)


def configured(**settings):
    """Run a test on a provider built with these settings (the ``app`` fixture, indirectly)."""
    import pytest

    return pytest.mark.parametrize("app", [settings], indirect=True)


# OIDC_ENROLLED_FACTORS=when-asked, the levels-of-authentication mode: only the application's
# request decides the level, so an enrolled person can hold a password-only session.
WHEN_ASKED = configured(enrolled_factors="when-asked")


def lane_answer(app, lane, request: dict):
    """What ``lane`` (of ``serving/lanes.py``) answers to ``request`` (``EnvironBuilder``'s
    arguments), run as granian's worker runs it (``rsgi.Bridge``): on SQLite as it is, on
    PostgreSQL in an event loop of its own with its reads awaited (``loop_reads.LoopReads``)."""
    environ = EnvironBuilder(**request).get_environ()
    body = environ["wsgi.input"].read()
    reads = rsgi._lane_reads(app, app.extensions["oidc_settings"])
    if reads is None:
        return lane.answer(environ, body)

    async def in_a_loop():
        try:
            return await reads.run(lane.answer, environ, body)
        finally:
            await reads.close()

    return asyncio.run(in_a_loop())


def left_to_app(app, lane, request: dict, status: int | None = None):
    """``lane`` leaves ``request`` to the app, which answers it (with ``status``)."""
    assert lane_answer(app, lane, request) is None
    answered = app.test_client().open(**request)
    if status is not None:
        assert answered.status_code == status, answered.data
    return answered


def assert_same_fields(headers: list, expected) -> None:
    """A lane's header fields are the app's (``X-Request-Id`` aside; their order means nothing)."""
    assert sorted((n.lower(), v) for n, v in headers if n.lower() != "x-request-id") == \
        sorted((n.lower(), v) for n, v in expected.headers.items() if n.lower() != "x-request-id")
