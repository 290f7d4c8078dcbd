"""``/metrics`` from a real ``oidc-provider serve`` with two granian workers: every scrape,
whichever worker answers it, adds up the counts of both (prometheus_client's multiprocess mode
in a private directory that ``serve`` makes and removes), and counts survive a worker being
replaced."""

from __future__ import annotations

import os
import re
import secrets
import signal
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ..helpers import pkce_pair, query_of
from .conftest import REDIRECT_URI, TIMEOUT, Live, LiveBrowser

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "conformance"))
from live import LiveServer  # noqa: E402

pytestmark = pytest.mark.e2e
TOKEN_REQUESTS = 20
SCRAPES = 6


def scrape(issuer: str) -> dict:
    # A new connection each time (no Session): the scrapes land on either worker.
    response = requests.get(issuer + "/metrics", timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def worker_pids(directory: Path) -> set[int]:
    """The processes that counted something: prometheus_client names each file by its pid."""
    return {int(m.group(1)) for f in directory.iterdir() if (m := re.fullmatch(r"counter_(\d+)\.db", f.name))}


def code_flow(live: Live, client: dict) -> None:
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI,
              "scope": "openid profile", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
              "code_challenge": challenge, "code_challenge_method": "S256"}
    callback = LiveBrowser(live).authorize(f"{live.issuer}/authorize?{urlencode(params)}")
    token = requests.post(f"{live.issuer}/token", auth=(client["client_id"], client["client_secret"]), data={
        "grant_type": "authorization_code", "code": query_of(callback)["code"], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier}, timeout=TIMEOUT)
    assert token.status_code == 200, token.text


def failed_login(live: Live) -> None:
    http = requests.Session()
    page = http.get(live.issuer + "/login", timeout=TIMEOUT)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    refused = http.post(live.issuer + "/login", data={"csrf_token": csrf, "username": live.user,
                                                      "password": "not the password"}, timeout=TIMEOUT)
    assert refused.status_code == 401


def client_credentials(live: Live, service: dict) -> int:
    return requests.post(f"{live.issuer}/token", data={"grant_type": "client_credentials"},
                         auth=(service["client_id"], service["client_secret"]), timeout=TIMEOUT).status_code


def wait_until_gone(pid: int) -> None:
    """Until the worker has exited (and granian has started its replacement)."""
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"worker {pid} did not exit"
        time.sleep(0.1)


@pytest.mark.parametrize("server_name", ["granian", "gunicorn"])
def test_two_workers_add_up_in_every_scrape_and_keep_counts_when_a_worker_is_replaced(tmp_path, server_name):
    # TMPDIR: where serve makes its private directory, so that the test can look at it.
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"), workers=2,
                        env_overrides={"OIDC_METRICS": "true", "TMPDIR": str(tmp_path),
                                       "OIDC_SERVE_SERVER": server_name})
    try:
        server.prepare()
        password = secrets.token_urlsafe(18)
        server.create_user("alice", password)
        client = server.create_client("Metrics RP", [REDIRECT_URI])
        service = server.create_service("metrics-job")
        server.start()
        live = Live(issuer=server.issuer, user="alice", password=password)
        [directory] = tmp_path.glob("oidc-provider-metrics-*")
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700

        before = scrape(live.issuer)
        code_flow(live, client)
        failed_login(live)
        with ThreadPoolExecutor(max_workers=4) as pool:  # concurrent: both workers serve some
            statuses = list(pool.map(lambda _: client_credentials(live, service), range(TOKEN_REQUESTS)))
        assert statuses == [200] * TOKEN_REQUESTS
        assert len(worker_pids(directory)) == 2, "both workers counted something"

        expected = {
            ("oidc_tokens_issued_total", "grant_type", "client_credentials"): TOKEN_REQUESTS,
            ("oidc_tokens_issued_total", "grant_type", "authorization_code"): 1,
        }
        for _ in range(SCRAPES):
            after = scrape(live.issuer)
            for (name, label, value), count in expected.items():
                assert delta(before, after, name, **{label: value}) == count, (name, value)
            assert delta(before, after, "oidc_logins_total", method="password", outcome="success") == 1
            assert delta(before, after, "oidc_logins_total", method="password", outcome="failure") == 1
            assert delta(before, after, "oidc_http_requests_total", endpoint="token.token",
                         status="200") == TOKEN_REQUESTS + 1
            assert delta(before, after, "oidc_http_request_duration_seconds_count", endpoint="token.token",
                         status="200") == TOKEN_REQUESTS + 1
            assert delta(before, after, "oidc_audit_events_total", event="account:login:failure",
                         outcome="failure") == 1

        # A worker replaced (gunicorn's child_exit, or granian's replacement worker as it starts,
        # runs mark_process_dead): what it counted stays.
        victim = min(worker_pids(directory) - {server.process.pid})
        os.kill(victim, signal.SIGTERM)
        wait_until_gone(victim)
        assert client_credentials(live, service) == 200
        after = scrape(live.issuer)
        assert delta(before, after, "oidc_tokens_issued_total", grant_type="client_credentials") == TOKEN_REQUESTS + 1
        assert "Traceback" not in server.log_tail(400)
    finally:
        server.stop()
    assert not directory.exists(), "serve removes its metrics directory when it exits"
