"""Key revocation and changing OIDC_SECRET_KEY against real ``oidc-provider serve`` processes
(issue 11): every worker stops trusting a revoked key within ``KeyStore.CACHE_SECONDS``; the
documented change of OIDC_SECRET_KEY across two processes sharing one database keeps both
serving; a re-key killed in the middle of its transaction loses nothing (PostgreSQL holds it
mid-way on a row lock).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from urllib.parse import urlencode

import psycopg
import pytest
import requests
from live import _cli_path as cli_path  # conformance/live.py, on sys.path through conftest.py

from oidc_provider.keys.store import KeyStore

from ..helpers import pkce_pair, query_of
from ..spec._clients import header_of
from .conftest import REDIRECT_URI, Live, LiveBrowser, LiveServer

pytestmark = pytest.mark.e2e
TIMEOUT = 15
PASSWORD = "a-live-test-password-" + "p" * 8
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def provider(**kw) -> LiveServer:
    server = LiveServer(database_url=kw.pop("database_url", os.environ.get("OIDC_TEST_DATABASE_URL")), **kw)
    server.prepare()
    server.create_user("alice", PASSWORD)
    server.client = server.create_client("Live RP", [REDIRECT_URI], grants=["refresh_token"])
    return server


def sign_in(server: LiveServer) -> dict:
    """The code flow with PKCE over HTTP, as a person and a relying party do; the token response."""
    live = Live(issuer=server.issuer, user="alice", password=PASSWORD)
    verifier, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": server.client["client_id"], "redirect_uri": REDIRECT_URI,
             "scope": "openid profile", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
             "code_challenge": challenge, "code_challenge_method": "S256"}
    callback = LiveBrowser(live).authorize(f"{server.issuer}/authorize?{urlencode(query)}")
    response = requests.post(f"{server.issuer}/token", timeout=TIMEOUT, auth=(
        server.client["client_id"], server.client["client_secret"]), data={
        "grant_type": "authorization_code", "code": query_of(callback)["code"], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier})
    assert response.status_code == 200, response.text
    return response.json()


def kid_of(token: str) -> str:
    return header_of(token)["kid"]


def userinfo(server, token) -> requests.Response:
    return requests.get(f"{server.issuer}/userinfo", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)


def introspection(server, token) -> dict:
    return requests.post(f"{server.issuer}/introspect", data={"token": token}, timeout=TIMEOUT,
                         auth=(server.client["client_id"], server.client["client_secret"])).json()


def published(server) -> list[str]:
    return [k["kid"] for k in requests.get(f"{server.issuer}/jwks.json", timeout=TIMEOUT).json()["keys"]]


def test_a_revoked_key_is_refused_by_every_worker_within_the_cache_interval():
    with provider(workers=2) as server:
        server.start()
        tokens = sign_in(server)
        kid = kid_of(tokens["access_token"])
        for _ in range(6):  # both workers have loaded and cached the key
            assert userinfo(server, tokens["access_token"]).status_code == 200
        server.cli("keys", "revoke", kid)
        revoked_at = time.monotonic()
        # Each worker reloads its keys at most CACHE_SECONDS after it last did.
        deadline = revoked_at + KeyStore.CACHE_SECONDS + 1.5
        while userinfo(server, tokens["access_token"]).status_code != 401 or kid in published(server):
            assert time.monotonic() < deadline, "a worker still trusts the revoked key"
            time.sleep(0.2)
        time.sleep(max(0.0, revoked_at + KeyStore.CACHE_SECONDS + 0.5 - time.monotonic()))
        for _ in range(8):  # whichever worker answers
            refused = userinfo(server, tokens["access_token"])
            assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
            assert introspection(server, tokens["access_token"]) == {"active": False}
            assert kid not in published(server)
        renewed = sign_in(server)
        assert kid_of(renewed["access_token"]) != kid
        assert kid_of(renewed["access_token"]) in published(server)
        assert userinfo(server, renewed["access_token"]).status_code == 200
        assert introspection(server, renewed["access_token"])["active"] is True


def test_changing_the_secret_key_across_two_processes_keeps_both_serving():
    """docs/operator-guide.md, several processes: restart each with the new key and the old one
    as OIDC_SECRET_KEY_PREVIOUS, re-key, restart each without OIDC_SECRET_KEY_PREVIOUS."""
    new_key = secrets.token_urlsafe(48)
    with provider(workers=1) as first:
        old_key = first.env["OIDC_SECRET_KEY"]
        first.start()
        second = LiveServer(workers=1)  # shares the first one's database, already initialised
        second.db_url, second.client = first.db_url, first.client
        second.env = {**first.env, "OIDC_ISSUER": second.issuer, "OIDC_SECRET_KEY": new_key,
                      "OIDC_SECRET_KEY_PREVIOUS": old_key}
        try:
            second.start()  # "restarted" with the new key: values are still sealed under the old one
            for server in (first, second):
                assert userinfo(server, sign_in(server)["access_token"]).status_code == 200
            second.cli("secret-key", "rotate")  # same environment: re-seal under the new key
            assert userinfo(second, sign_in(second)["access_token"]).status_code == 200
            stop_process(first)
            first.env = {**first.env, "OIDC_SECRET_KEY": new_key}
            first.start()
            for server in (first, second):
                assert userinfo(server, sign_in(server)["access_token"]).status_code == 200
        finally:
            second.stop()


def test_a_rekey_killed_in_the_middle_of_its_transaction_loses_nothing():
    """PostgreSQL: a row lock held elsewhere on the last sealed value stops the re-key after it
    has re-sealed the signing keys in its transaction; it is killed there (SIGKILL), and the
    database still holds exactly what it held, every value opening with the old key."""
    base = os.environ.get("OIDC_TEST_DATABASE_URL", "")
    with provider(database_url=base if base.startswith("postgresql") else LOCAL_POSTGRES) as server:
        server.create_service("backup-job")
        server.cli("service", "db-credentials", "set", "backup-job", "--dsn", "postgresql://b@db/b",
                   "--password-stdin", stdin="db-password-" + "x" * 12 + "\n")
        dsn = server.db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        snapshot = "SELECT kid, private_jwk_encrypted FROM signing_key ORDER BY kid"
        with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as watcher:
            before = watcher.execute(snapshot).fetchall()
            holder.execute("SELECT * FROM database_credential FOR UPDATE")
            rekey = subprocess.Popen([cli_path(), "secret-key", "rotate", "--new-key-stdin"], env=server.env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            rekey.stdin.write(secrets.token_urlsafe(48).encode() + b"\n")
            rekey.stdin.close()
            deadline = time.monotonic() + 60
            while not watcher.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      "AND query LIKE 'UPDATE database_credential%'").fetchone():
                assert rekey.poll() is None and time.monotonic() < deadline, rekey.stderr.read()
                time.sleep(0.1)
            # Mid-way: its own transaction already holds the re-sealed signing keys.
            assert watcher.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                   "WHERE c.relname = 'signing_key' AND l.mode = 'RowExclusiveLock'").fetchone()[0]
            rekey.send_signal(signal.SIGKILL)
            rekey.wait(timeout=10)
            holder.rollback()
            assert watcher.execute(snapshot).fetchall() == before
        listed = server.cli("keys", "list")
        assert len(listed) == 6 and all(k["readable"] for k in listed)
        server.start()
        assert userinfo(server, sign_in(server)["access_token"]).status_code == 200


def stop_process(server: LiveServer) -> None:
    """Stop the server process only (its database stays, for a restart)."""
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)
    server._log.close()
