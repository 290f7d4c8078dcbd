"""End-to-end fixtures: one real ``oidc-provider serve`` process per test session.

The server-starting code is shared with the conformance runner (``conformance/live.py``): a
free loopback port, a fresh SQLite database in a temporary directory (or a scratch PostgreSQL
database, created and dropped, when OIDC_TEST_DATABASE_URL is a PostgreSQL URL), a random
``OIDC_SECRET_KEY``, cheap argon2, and users and clients registered with the operator CLI.
Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "conformance"))

from live import LiveServer  # noqa: E402

# Port 9 (discard) on loopback: the browser stops at the redirect and never connects there.
REDIRECT_URI = "http://127.0.0.1:9/e2e/callback"
POST_LOGOUT_REDIRECT_URI = "http://127.0.0.1:9/e2e/logged-out"
TIMEOUT = 15


@dataclass
class Live:
    issuer: str
    user: str
    password: str
    clients: dict = field(default_factory=dict)
    redirect_uri: str = REDIRECT_URI
    post_logout_redirect_uri: str = POST_LOGOUT_REDIRECT_URI

    def metadata(self) -> dict:
        response = requests.get(self.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def live_server():
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        server.prepare()
        password = secrets.token_urlsafe(18)
        server.create_user("alice", password, name="Alice Example")
        clients = {}
        for key in ("authlib", "openid_client"):
            clients[key] = server.create_client(
                f"E2E {key}", [REDIRECT_URI], post_logout_redirect_uris=[POST_LOGOUT_REDIRECT_URI],
                grants=["refresh_token"],
            )
        clients["service"] = server.create_service("e2e-service")
        server.start()
        yield Live(issuer=server.issuer, user="alice", password=password, clients=clients)
    finally:
        server.stop()


@dataclass
class Pair:
    """Two instances of one provider behind an imaginary load balancer: ``live`` describes the
    first (its issuer, user, password, clients), ``urls`` are where each instance listens."""

    live: Live
    first: LiveServer
    second: LiveServer

    @property
    def urls(self) -> list[str]:
        return [self.first.url, self.second.url]


@pytest.fixture(scope="module")
def two_instances():
    """Two ``serve`` processes on one database: a scratch PostgreSQL database in the PostgreSQL
    pass (OIDC_TEST_DATABASE_URL), else one SQLite file; the same secret key and issuer. For
    races that only show when requests land on different processes. Register more users or
    clients with ``pair.first.cli(...)``."""
    first = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    second = None
    try:
        first.prepare()
        password = secrets.token_urlsafe(18)
        first.create_user("alice", password, name="Alice Example")
        client = first.create_client("E2E pair", [REDIRECT_URI], post_logout_redirect_uris=[POST_LOGOUT_REDIRECT_URI],
                                     grants=["refresh_token"])
        second = first.twin()
        first.start()
        second.start()
        yield Pair(live=Live(issuer=first.issuer, user="alice", password=password, clients={"pair": client}),
                   first=first, second=second)
    finally:
        if second is not None:
            second.stop()
        first.stop()


@pytest.fixture
def new_browser(live_server):
    """Make a fresh browser (its own cookie jar) for the live server."""
    return lambda: LiveBrowser(live_server)


def _hidden_fields(html: str) -> dict:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        kind = re.search(r'type="([^"]*)"', tag)
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if kind and kind.group(1) == "hidden" and name:
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields


def _form_action(html: str, base: str) -> str:
    match = re.search(r'<form[^>]*action="([^"]*)"', html)
    assert match, "no form on the page"
    return urljoin(base, unescape(match.group(1)))


class LiveBrowser:
    """A person at a browser: follows the provider's redirects, fills in the login page
    (csrf_token, username, password) and allows on the consent page, and stops at the first
    redirect that leaves the provider without following it."""

    def __init__(self, live: Live):
        self.live = live
        self.http = requests.Session()
        self.pages_seen: list[str] = []

    def _inside(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.live.issuer).netloc

    def go(self, url: str, **kw) -> requests.Response:
        """GET ``url`` and walk the provider's pages; return the redirect that leaves it (or
        the page where the journey stopped)."""
        response = self.http.get(url, allow_redirects=False, timeout=TIMEOUT, **kw)
        for _ in range(12):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if not self._inside(location):
                    return response
                response = self.http.get(location, allow_redirects=False, timeout=TIMEOUT)
                continue
            html = response.text
            if response.status_code == 200 and 'name="password"' in html:
                self.pages_seen.append("login")
                data = {**_hidden_fields(html), "username": self.live.user, "password": self.live.password}
            elif response.status_code == 200 and 'name="decision"' in html:
                self.pages_seen.append("consent")
                data = {**_hidden_fields(html), "decision": "allow"}
            else:
                return response
            assert data.get("csrf_token"), "the form carries no csrf_token"
            response = self.http.post(_form_action(html, response.url), data=data,
                                      allow_redirects=False, timeout=TIMEOUT)
        raise AssertionError("the journey did not leave the provider within 12 steps")

    def authorize(self, url: str) -> str:
        """Run an authorization request; return the callback URL it redirected to."""
        response = self.go(url)
        assert response.status_code == 302, (response.status_code, response.text[:300])
        location = response.headers["Location"]
        assert location.startswith(self.live.redirect_uri + "?"), location
        return location
