"""Logs of a real ``oidc-provider serve`` (issue 11, "Logs"): one format per process chosen by
``OIDC_LOG_FORMAT``, one access line per request with the request id sent back as
``X-Request-Id``, audit lines in the same stream with the same id, and no secret, token, code
or password anywhere in the log of a full run (RFC 6749 §10.3: access token credentials "MUST
be kept confidential in transit and storage")."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from .conftest import REDIRECT_URI, TIMEOUT, Live, LiveBrowser, LiveServer

pytestmark = pytest.mark.e2e


def start_server(log_format: str) -> tuple[LiveServer, Live, dict]:
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"),
                        env_overrides={"OIDC_LOG_LEVEL": "INFO", "OIDC_LOG_FORMAT": log_format})
    server.prepare()
    password = secrets.token_urlsafe(18)
    server.create_user("carol", password)
    clients = {"web": server.create_client("Logs web app", [REDIRECT_URI], grants=["refresh_token"]),
               "service": server.create_service("logs-job")}
    server.start()
    return server, Live(issuer=server.issuer, user="carol", password=password, clients=clients), clients


class Exchanges:
    """Every response the test saw: (method, path, status, X-Request-Id)."""

    def __init__(self):
        self.seen: list[tuple[str, str, int, str | None]] = []

    def hook(self, response, *args, **kwargs):
        self.seen.append((response.request.method, urlsplit(response.url).path, response.status_code,
                          response.headers.get("X-Request-Id")))

    def session(self, http: requests.Session | None = None) -> requests.Session:
        http = http or requests.Session()
        http.hooks["response"].append(self.hook)
        return http


def wait_for(server: LiveServer, needles: list[str]) -> str:
    """The log once every needle is in it (lines are written as each response ends)."""
    deadline = time.monotonic() + 10
    while True:
        text = server.log_text()
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def full_run(live: Live, clients: dict, exchanges: Exchanges) -> list[str]:
    """Sign in through the code flow with PKCE, redeem the code, refresh, call userinfo and
    introspection, and get a client_credentials token; return every secret that was used."""
    web, service = clients["web"], clients["service"]
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    browser = LiveBrowser(live)
    exchanges.session(browser.http)
    callback = browser.authorize(live.issuer + "/authorize?" + urlencode({
        "response_type": "code", "client_id": web["client_id"], "redirect_uri": REDIRECT_URI,
        "scope": "openid profile", "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256"}))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    http = exchanges.session()
    auth = (web["client_id"], web["client_secret"])
    tokens = http.post(live.issuer + "/token", auth=auth, timeout=TIMEOUT, headers={"X-Request-Id": "e2e-token.1"},
                       data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                             "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["X-Request-Id"] == "e2e-token.1"  # a short, safe incoming id is kept
    tokens = tokens.json()
    refreshed = http.post(live.issuer + "/token", auth=auth, timeout=TIMEOUT,
                          data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    refreshed = refreshed.json()
    userinfo = http.get(live.issuer + "/userinfo", timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {refreshed['access_token']}",
                                 "X-Request-Id": "x" * 65})  # too long: replaced
    assert userinfo.status_code == 200 and userinfo.headers["X-Request-Id"] != "x" * 65
    introspected = http.post(live.issuer + "/introspect", auth=auth, timeout=TIMEOUT,
                             data={"token": refreshed["access_token"]})
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    machine = http.post(live.issuer + "/token", auth=(service["client_id"], service["client_secret"]),
                        data={"grant_type": "client_credentials"}, timeout=TIMEOUT,
                        headers={"X-Request-Id": "bad id; drop table"})  # unsafe: replaced
    assert machine.status_code == 200, machine.text
    assert re.fullmatch(r"[0-9a-f]{32}", machine.headers["X-Request-Id"])
    return [live.password, web["client_secret"], service["client_secret"], code, verifier, state,
            tokens["access_token"], tokens["refresh_token"], tokens["id_token"], refreshed["access_token"],
            refreshed["refresh_token"], refreshed["id_token"], machine.json()["access_token"]]


@pytest.fixture(scope="module")
def json_run():
    server, live, clients = start_server("json")
    try:
        exchanges = Exchanges()
        used = full_run(live, clients, exchanges)
        text = wait_for(server, [rid for *_, rid in exchanges.seen])
        yield text, exchanges.seen, used
    finally:
        server.stop()


def test_json_mode_every_line_is_one_json_object(json_run):
    text, _, _ = json_run
    lines = text.splitlines()
    assert len(lines) > 10
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry), line
    loggers = {json.loads(line)["logger"] for line in lines}
    # granian's own lines (and its Rust core's) come through its logger, "_granian".
    assert {"oidc_provider.access", "oidc_provider.audit", "_granian"} <= loggers


def test_json_mode_one_access_line_per_request_with_its_request_id(json_run):
    text, seen, _ = json_run
    access = [e for e in map(json.loads, text.splitlines()) if e["logger"] == "oidc_provider.access"]
    by_id = {e["request_id"]: e for e in access}
    assert len(by_id) == len(access), "two access lines share a request id"
    assert len(seen) >= 8
    for method, path, status, rid in seen:
        entry = by_id.get(rid)
        assert entry is not None, f"no access line for {method} {path} ({rid})"
        assert (entry["method"], entry["path"], entry["status"]) == (method, path, status)
        assert entry["client"] == "127.0.0.1" and isinstance(entry["duration_ms"], float)
    # The discovery polling of LiveServer's start is logged too: nothing else is.
    assert {e["path"] for e in access} - {p for _, p, _, _ in seen} <= {"/.well-known/openid-configuration"}


def test_json_mode_audit_lines_carry_the_request_id_of_their_request(json_run):
    text, seen, _ = json_run
    entries = list(map(json.loads, text.splitlines()))
    login = next(e for e in entries if e.get("event") == "account:login:success")
    login_post = [rid for method, path, _, rid in seen if (method, path) == ("POST", "/login")]
    assert login["request_id"] in login_post
    assert login["account"] == "carol" and login["outcome"] == "success"
    issued = next(e for e in entries if e.get("event") == "oauth:code:issued")
    assert issued["request_id"] in {rid for *_, rid in seen}


def test_json_mode_no_secret_code_token_or_password_in_the_log(json_run):
    text, _, used = json_run
    assert all(len(secret) >= 16 for secret in used)
    leaked = [i for i, secret in enumerate(used) if secret in text]
    assert leaked == []
    assert "?" not in "".join(json.loads(line).get("path", "") for line in text.splitlines())


def test_text_mode_lines_are_key_value_text_with_request_ids():
    server, live, clients = start_server("text")
    try:
        exchanges = Exchanges()
        used = full_run(live, clients, exchanges)
        text = wait_for(server, [rid for *_, rid in exchanges.seen])
    finally:
        server.stop()
    lines = text.splitlines()
    for line in lines:
        assert not line.startswith("{"), line
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ ", line), line
    for method, path, status, rid in exchanges.seen:
        assert any(f" method={method} path={path} status={status} " in line and line.endswith(f"request_id={rid}")
                   for line in lines), (method, path, rid)
    login = next(line for line in lines if " oidc_provider.audit account:login:success " in line)
    assert "account=carol" in login and re.search(r"request_id=\S+$", login)
    assert [i for i, secret in enumerate(used) if secret in text] == []
