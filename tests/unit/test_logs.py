"""``oidc_provider.logs``: the request id (kept from ``X-Request-Id`` only when short and safe),
the access line (never the query string, which carries codes and state: RFC 6749 §4.1.2), and
the two formats (one line per record; no one can forge a line through a value)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from oidc_provider.logs import JsonFormatter, TextFormatter

from ..helpers import csrf_token


@pytest.fixture
def records():
    """Every record the provider logs, and its JSON line, formatted when it is emitted (as the
    process's handler does: inside the request)."""
    caught: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            record.json_line = JsonFormatter().format(record)
            caught.append(record)

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("oidc_provider")
    logger.addHandler(handler)
    yield caught
    logger.removeHandler(handler)


def access_lines(records) -> list[dict]:
    return [json.loads(r.json_line) for r in records if r.name == "oidc_provider.access"]


@pytest.mark.parametrize("incoming", ["abc-123", "A.b_c-9", "x" * 64])
def test_a_short_safe_request_id_is_kept_and_sent_back(client, records, incoming):
    response = client.get("/.well-known/openid-configuration", headers={"X-Request-Id": incoming})
    assert response.headers["X-Request-Id"] == incoming
    assert access_lines(records)[-1]["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["", "x" * 65, "has space", "semi;colon", "quote\"", "über", "a\tb"])
def test_any_other_request_id_is_replaced(client, records, incoming):
    response = client.get("/jwks.json", headers={"X-Request-Id": incoming})
    sent = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", sent)
    assert access_lines(records)[-1]["request_id"] == sent


def test_every_response_gets_one_even_errors(client, records):
    for path in ("/no-such-page", "/token"):
        response = client.get(path)
        assert response.status_code in (404, 405) and response.headers["X-Request-Id"]
    statuses = [(line["path"], line["status"]) for line in access_lines(records)]
    assert statuses[-2:] == [("/no-such-page", 404), ("/token", 405)]


def test_the_access_line_names_the_path_without_the_query(client, records):
    client.get("/authorize?code=SECRET-CODE&state=SECRET-STATE&client_id=x")
    line = access_lines(records)[-1]
    assert (line["method"], line["path"], line["client"]) == ("GET", "/authorize", "127.0.0.1")
    assert isinstance(line["status"], int) and line["duration_ms"] >= 0
    assert "SECRET" not in JsonFormatter().format(records[-1]) + TextFormatter().format(records[-1])


def test_the_client_address_is_the_one_proxy_fix_found(app_factory, records):
    app = app_factory(proxy_hops=1)
    app.test_client().get("/jwks.json", headers={"X-Forwarded-For": "203.0.113.9"})
    assert access_lines(records)[-1]["client"] == "203.0.113.9"


def _record(message: str, **fields) -> logging.LogRecord:
    record = logging.LogRecord("oidc_provider.test", logging.INFO, __file__, 1, message, None, None)
    record.fields = fields
    return record


def test_text_format_escapes_control_characters_so_no_line_can_be_forged():
    line = TextFormatter().format(_record("hello\nFAKE LINE", account="eve\r\nINFO forged", n=3, none=None))
    assert "\n" not in line and "\r" not in line
    assert line.endswith(' oidc_provider.test hello\\x0aFAKE LINE account="eve\\r\\nINFO forged" n=3')


def test_json_format_is_one_object_with_the_fields_and_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record("failed", event="x:y:z")
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"], entry["event"]) == ("INFO", "oidc_provider.test",
                                                                                  "failed", "x:y:z")
    assert "ValueError: boom" in entry["exception"] and entry["time"].endswith("Z")


def test_audit_lines_carry_the_request_id_of_their_request(client, records):
    page = client.get("/login")
    client.post("/login", data={"csrf_token": csrf_token(page.text), "username": "nobody",
                                "password": "wrong-password-x"}, headers={"X-Request-Id": "audit-rid-1"})
    audit = [json.loads(r.json_line) for r in records if r.name == "oidc_provider.audit"]
    assert audit and all(line["request_id"] == "audit-rid-1" for line in audit)
