"""``/healthz`` and ``/readyz`` on a real ``oidc-provider serve``, and what a database outage
looks like from outside: 503 in the protocol's shape, no traceback, and recovery without a
restart. The outage is made on PostgreSQL (the scratch database of the server is closed to
connections and its backends terminated from an admin connection, then reopened); it runs when
the suite runs on PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
import requests
from live import LiveServer, _cli_path, free_port
from sqlalchemy import create_engine, text

from oidc_provider import PACKAGE, dbcheck

from ..helpers import query_of
from .conftest import REDIRECT_URI, Live, LiveBrowser

pytestmark = pytest.mark.e2e

TEST_URL = os.environ.get("OIDC_TEST_DATABASE_URL", "")
TIMEOUT = 10
HEADS, _ = dbcheck._scripts(str(PACKAGE / "migrations"))


@pytest.fixture(scope="module")
def server():
    server = LiveServer(database_url=TEST_URL or None, workers=1)
    try:
        server.prepare()
        server.start()
        yield server
    finally:
        server.stop()


def get(server, path: str, **kw) -> requests.Response:
    return requests.get(server.issuer + path, timeout=TIMEOUT, **kw)


def wait_for(probe, *, seconds: float = 10.0):
    """The first truthy result of ``probe()`` within ``seconds`` (checked every 0.2 s)."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def execute(url: str, statement: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def test_healthz_and_readyz_say_ok_without_caching(server):
    alive = get(server, "/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    ready = get(server, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "signing_key": "ok"}}
    for response in (alive, ready):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("stored,status", [("0001", "behind"), ("ffffffffffff", "ahead")])
def test_readyz_is_503_while_the_migrations_are_not_this_versions(server, stored, status):
    """The schema revision changed under a running server (another version migrated it, or a
    backup from an older one was restored): not ready, saying which check fails and nothing more."""
    head = next(iter(HEADS))
    execute(server.db_url, f"UPDATE alembic_version SET version_num = '{stored}'")
    try:
        # (a list: a 503 Response is falsy)
        found = wait_for(lambda: [r for r in [get(server, "/readyz")] if r.status_code == 503])
        assert found, "readyz stayed 200"
        answer = found[0]
        assert answer.json() == {"status": "unavailable",
                                 "checks": {"database": "ok", "migrations": status, "signing_key": "ok"}}
        assert stored not in answer.text and head not in answer.text
    finally:
        execute(server.db_url, f"UPDATE alembic_version SET version_num = '{head}'")
    assert wait_for(lambda: get(server, "/readyz").status_code == 200)
    assert "not ready: the database schema is at revision" in server.log_tail(200)


def test_readyz_names_a_secret_key_that_cannot_decrypt_the_signing_keys(server, tmp_path):
    """``serve`` refuses to start with an OIDC_SECRET_KEY that does not open the stored keys;
    another WSGI server on ``oidc_provider.wsgi:app`` does start, /readyz says why, and a token
    request is a 503, not a 500 with a traceback."""
    service = server.create_service("readiness-probe")
    wrong = {**server.env, "OIDC_SECRET_KEY": secrets.token_urlsafe(48)}
    refused = subprocess.run([_cli_path(), "serve", "--port", str(free_port())], env=wrong,
                             capture_output=True, text=True, timeout=60, check=False)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode != 0 and len(lines) == 1 and "OIDC_SECRET_KEY does not open" in lines[0], lines

    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")
    other = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                              "oidc_provider.wsgi:app"], env=wrong, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _status(base + "/healthz") == 200, seconds=30)
        ready = requests.get(base + "/readyz", timeout=TIMEOUT)
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable",
                                "checks": {"database": "ok", "migrations": "ok", "signing_key": "undecryptable"}}
        assert wrong["OIDC_SECRET_KEY"] not in ready.text and server.env["OIDC_SECRET_KEY"] not in ready.text
        token = requests.post(base + "/token", data={"grant_type": "client_credentials"}, timeout=TIMEOUT,
                              auth=(service["client_id"], service["client_secret"]))
        assert _unavailable_json(token), token.text
    finally:
        os.killpg(other.pid, signal.SIGTERM)
        other.wait(timeout=15)
        log.close()
    logged = (tmp_path / "gunicorn.log").read_text()
    assert "not ready: OIDC_SECRET_KEY does not open the signing keys stored in this database" in logged
    assert "signing keys unreadable on POST /token: OIDC_SECRET_KEY does not open" in logged
    assert wrong["OIDC_SECRET_KEY"] not in logged and "Traceback" not in logged


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


# ---- a PostgreSQL outage while serving ----

def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def sign_in(live: Live, client: dict, browser: LiveBrowser | None = None) -> dict:
    """A full code flow with PKCE (RFC 6749 §4.1, RFC 7636): the person signs in, the client
    redeems the code; returns the token response."""
    browser = browser or LiveBrowser(live)
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(12)
    callback = browser.authorize(live.issuer + "/authorize?" + urlencode({
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI,
        "scope": "openid profile", "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}))
    params = query_of(callback)
    assert params["state"] == state
    response = requests.post(live.issuer + "/token", timeout=TIMEOUT,
                             auth=(client["client_id"], client["client_secret"]),
                             data={"grant_type": "authorization_code", "code": params["code"],
                                   "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert response.status_code == 200, response.text
    return response.json()


class Outage:
    """Closes the server's database to every connection, its own included, and reopens it."""

    def __init__(self, database_url: str, name: str):
        parts = urlsplit(database_url.replace("postgresql+psycopg://", "postgresql://", 1))
        self.admin = create_engine(urlunsplit(parts._replace(path="/postgres")).replace(
            "postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        self.name = name

    def begin(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                               {"n": self.name})

    def end(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))
        self.admin.dispose()


def _unavailable_json(response: requests.Response) -> bool:
    return (response.status_code == 503 and response.headers.get("Retry-After") == "5"
            and response.headers["Content-Type"] == "application/json"
            and response.json()["error"] == "temporarily_unavailable")


if TEST_URL.startswith("postgresql"):
    def test_a_database_outage_is_503_and_the_provider_recovers_by_itself():
        """While the database refuses connections: pages answer a short 503 page, protocol
        endpoints RFC 6749 §5.2 JSON with ``temporarily_unavailable`` (§4.1.2.1) and
        ``Retry-After`` (RFC 9110 §15.6.4), /readyz 503, /healthz and discovery 200; the log has
        one line per failed request and no traceback. Once the database is back, a full sign-in
        works again without a restart."""
        server = LiveServer(database_url=TEST_URL, workers=2)
        outage = None
        try:
            server.prepare()
            password = secrets.token_urlsafe(18)
            server.create_user("alice", password)
            client = server.create_client("Outage app", [REDIRECT_URI], grants=["refresh_token"])
            server.start()
            live = Live(issuer=server.issuer, user="alice", password=password)
            browser = LiveBrowser(live)
            tokens = sign_in(live, client, browser)
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            assert get(server, "/userinfo", headers=bearer).status_code == 200

            outage = Outage(server.db_url, server._scratch.name)
            outage.begin()
            login = browser.http.get(server.issuer + "/login", timeout=TIMEOUT)  # with its session cookie
            assert (login.status_code, login.headers["Retry-After"]) == (503, "5")
            assert login.headers["Content-Type"].startswith("text/html") and "Temporarily unavailable" in login.text
            assert get(server, "/login").status_code == 503  # and without
            refreshed = requests.post(server.issuer + "/token", timeout=TIMEOUT,
                                      auth=(client["client_id"], client["client_secret"]),
                                      data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
            assert _unavailable_json(refreshed), refreshed.text
            assert _unavailable_json(get(server, "/userinfo", headers=bearer))
            # /jwks.json is served from the process's key cache for at most 5 s, then 503.
            assert wait_for(lambda: _unavailable_json(get(server, "/jwks.json")), seconds=10)
            ready = get(server, "/readyz")
            assert (ready.status_code, ready.json()["checks"]["database"]) == (503, "unavailable")
            assert get(server, "/healthz").status_code == 200
            assert browser.http.get(server.issuer + "/healthz", timeout=TIMEOUT).status_code == 200  # a cookie too
            assert get(server, "/.well-known/openid-configuration").status_code == 200  # static metadata

            outage.end()
            outage = None
            assert wait_for(lambda: get(server, "/readyz").status_code == 200, seconds=10)
            again = sign_in(live, client)
            assert get(server, "/userinfo", headers={"Authorization": f"Bearer {again['access_token']}"}).ok
            assert get(server, "/jwks.json").status_code == 200

            logged = server.log_tail(400)
            assert "Traceback" not in logged
            assert f'database unavailable on POST /token: the database "{server._scratch.name}"' in logged
            assert "is not accepting connections" in logged
        finally:
            if outage is not None:
                outage.end()
            server.stop()
