"""Bad input against a real ``oidc-provider serve`` process (SQLite, or PostgreSQL when
OIDC_TEST_DATABASE_URL says so), over raw sockets where a client library would refuse to send
it: NUL bytes, bytes that are not UTF-8 and over-long lines in the request line and headers,
and NUL in the parameters and Basic credentials that reached PostgreSQL before the input guard.
Never a 5xx, the server stays up, and its log holds no traceback.

And an unexpected database error (a column the running server reads is renamed under it) is
a 500 in the protocol's shape, logged in one line that names the exception class and the
request id, without the statement's parameters (what the client sent).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
from urllib.parse import urlsplit

import pytest
import requests
from live import LiveServer
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.e2e

TIMEOUT = 15
CLOSE = b"Connection: close\r\n"


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


def _form(path: bytes, body: bytes, *headers: bytes) -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + CLOSE + b"".join(h + b"\r\n" for h in headers)
            + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def _get(target: bytes, *headers: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + CLOSE + b"".join(h + b"\r\n" for h in headers) \
        + b"\r\n"


RAW_REQUESTS = {
    "nul-in-path": _get(b"/login\x00"),
    "nul-percent-in-path": _get(b"/consent/a%00b"),
    "non-utf8-in-path": _get(b"/step-up/\xff\xfe"),
    "non-utf8-percent-in-path": _get(b"/authorize/continue/%ff%fe"),
    "nul-in-query": _get(b"/authorize?client_id=a%00b&response_type=code"),
    "raw-nul-in-query": _get(b"/authorize?client_id=a\x00b"),
    "non-utf8-in-query": _get(b"/authorize?client_id=\xff\xfe&response_type=code"),
    "over-long-request-line": _get(b"/authorize?state=" + b"A" * 20_000),
    "nul-in-header": _get(b"/.well-known/openid-configuration", b"X-Note: a\x00b"),
    "nul-in-header-name": _get(b"/login", b"X-N\x00te: a"),
    "over-long-header": _get(b"/login", b"X-Note: " + b"a" * 9_000),
    "too-many-headers": _get(b"/login", *[b"X-Filler-%d: x" % i for i in range(150)]),
    "nul-in-cookie": _get(b"/authorize", b"Cookie: oidc_session=a\x00b"),
    "nul-in-bearer": _get(b"/userinfo", b"Authorization: Bearer a\x00b"),
    "not-http": b"\x00\x01\x02\xff\r\n\r\n",
    "nul-client-id-form": _form(b"/token", b"grant_type=client_credentials&client_id=a%00b&client_secret=x"),
    "nul-client-id-basic": _form(b"/token", b"grant_type=client_credentials",
                                 b"Authorization: Basic " + _b64(b"a\x00b:x")),
    "nul-client-id-revoke": _form(b"/revoke", b"token=x&client_id=a%00b"),
    "nul-basic-introspect": _form(b"/introspect", b"token=x", b"Authorization: Basic " + _b64(b"a%00b:x")),
    "nul-username": _form(b"/login", b"username=a%00b&password=x"),
    "non-utf8-form": _form(b"/token", b"grant_type=\xff\xfe&client_id=\xff"),
    "raw-nul-form": _form(b"/revoke", b"token=a\x00b&client_id=x"),
    "nul-in-logout": _get(b"/logout?client_id=a%00b&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye"),
    "huge-account-id": _form(b"/account/sessions/99999999999999999999/end", b"csrf_token=x"),
}


# Not refused, but never a 5xx: obs-text in a field value (RFC 9110 §5.5) and a long value
# within the limits.
ACCEPTABLE_REQUESTS = {
    "non-utf8-in-header": _get(b"/login", b"X-Note: \xff\xfe\xfd"),
    "long-query-value": _get(b"/logout?state=" + b"A" * 3_900),
    # RFC 9112 §2.2: "a recipient MAY recognize a single LF as a line terminator": granian's
    # parser (httparse) does, gunicorn's refuses with 400. Either way, never a 5xx.
    "bare-lf": b"GET /login HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n",
}


def _status(url: str, name: str, raw: bytes) -> int:
    answer = _exchange(url, raw)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer.split(b"\r\n", 1)[0])
    # A connection closed without an answer is a refusal too, but no request here needs it.
    assert match, (name, answer[:200])
    return int(match.group(1))


def _exchange(url: str, raw: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(raw)
        with_answer = b""
        try:
            while chunk := sock.recv(65536):
                with_answer += chunk
        except ConnectionResetError:  # a server may reset a connection it refuses to read
            pass
    return with_answer


@pytest.fixture(scope="module")
def server():
    live = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        live.prepare()
        live.create_user("alice", secrets.token_urlsafe(18))
        live.client = live.create_client("Live RP", ["https://rp.example/cb"],
                                         post_logout_redirect_uris=["https://rp.example/bye"])
        live.start()
        yield live
    finally:
        live.stop()


def test_raw_bad_requests_get_4xx_and_the_server_stays_up(server):
    """RFC 9110 §5.5 (field values are visible characters), RFC 6749 Appendix B (parameters
    are UTF-8): what breaks them is a 4xx, from the HTTP server or from the provider; never a
    5xx, and the provider keeps answering."""
    answers = {name: _status(server.url, name, raw) for name, raw in RAW_REQUESTS.items()}
    assert {name: status for name, status in answers.items() if not 400 <= status < 500} == {}
    others = {name: _status(server.url, name, raw) for name, raw in ACCEPTABLE_REQUESTS.items()}
    assert {name: status for name, status in others.items() if status >= 500} == {}
    # The provider itself answered these (not the HTTP server): in its own shapes.
    assert answers["nul-client-id-form"] == 400
    assert answers["nul-client-id-basic"] == 401
    assert answers["huge-account-id"] == 404
    discovery = requests.get(server.url + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert discovery.status_code == 200
    assert server.process.poll() is None
    log = server.log_text()
    assert "Traceback" not in log
    assert "unhandled" not in log


def test_parameters_reaching_postgresql_get_protocol_errors(server):
    """The values the attack run sent (NUL in client_id, nonce, username), each answered in its
    endpoint's shape: RFC 6749 §5.2 JSON, an OIDC Core §3.1.2.6 redirect, or a page."""
    client_id = server.client["client_id"]
    token = requests.post(server.url + "/token", data={"grant_type": "client_credentials", "client_id": "a\x00b",
                                                        "client_secret": "x"}, timeout=TIMEOUT)
    assert (token.status_code, token.json()["error"]) == (400, "invalid_request")
    authorize = requests.get(server.url + "/authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": "https://rp.example/cb", "scope": "openid",
        "state": "st", "nonce": "n\x00", "code_challenge": "a" * 43, "code_challenge_method": "S256",
    }, allow_redirects=False, timeout=TIMEOUT)
    assert authorize.status_code == 302
    assert authorize.headers["Location"].startswith("https://rp.example/cb?error=invalid_request&")
    login = requests.post(server.url + "/login", data={"username": "a\x00b", "password": "x"}, timeout=TIMEOUT)
    assert login.status_code == 400
    assert login.headers["Content-Type"].startswith("text/html")


def test_unexpected_database_error_is_one_line_without_parameters(tmp_path):
    """A statement the database refuses (here: a column renamed under the running server) is
    a 500 ``server_error`` in the RFC 6749 §5.2 shape, logged in one line (class, where,
    request id) without the statement's parameters: the client_id and secret sent."""
    live = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        live.prepare()
        live.start()
        engine = create_engine(live.db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE client RENAME COLUMN name TO name_gone"))
        engine.dispose()
        marker = "marker-" + secrets.token_hex(8)
        ids = []
        for _ in range(3):
            response = requests.post(live.url + "/token", data={
                "grant_type": "client_credentials", "client_id": marker, "client_secret": marker + "-secret",
            }, timeout=TIMEOUT)
            assert response.status_code == 500
            assert response.json()["error"] == "server_error"
            ids.append(response.headers["X-Request-Id"])
        log = live.log_text()
        assert marker not in log
        assert "Traceback" not in log
        assert "parameters" not in log.lower()
        lines = [line for line in log.splitlines() if "unhandled" in line]
        assert len(lines) == 3, log
        for line, rid in zip(lines, ids, strict=True):
            assert "unhandled sqlalchemy.exc." in line and " at oauth/" in line and "on POST /token" in line, line
            assert rid in line, line
        # Every line of the log is a log line: nothing (no statement, no traceback) spills over.
        assert all(re.match(r"\d{4}-\d\d-\d\dT|\[\d{4}-|\{", line) for line in log.splitlines() if line.strip()), log
    finally:
        live.stop()
