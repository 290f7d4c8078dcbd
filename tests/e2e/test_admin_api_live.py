"""The admin API's refusals against a real ``oidc-provider serve`` (issue 12): a missing
permission is RFC 6750 §3.1 ``insufficient_scope`` with its challenge; ``admin:*`` does not
reach a system account's client through the clients operations; a personal token narrowed to a
role does not get the rights of another role later created under the same name.
"""

from __future__ import annotations

import os

import pytest
import requests

from .conftest import REDIRECT_URI, LiveServer

pytestmark = pytest.mark.e2e
TIMEOUT = 15
PASSWORD = "a-live-test-password-" + "a" * 8


@pytest.fixture(scope="module")
def server():
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        server.prepare()
        for name in ("ops", "carol"):
            server.create_user(name, PASSWORD)
        server.cli("role", "define", "admin", "--audience", server.issuer, "--action", "admin:*")
        server.cli("role", "define", "reader", "--audience", server.issuer, "--action", "admin:roles:read")
        server.cli("user", "grant", "ops", "admin", as_json=False)
        server.cli("user", "grant", "carol", "reader", as_json=False)
        server.ops = server.cli("token", "create", "--user", "ops", "--audience", server.issuer)["token"]
        server.carol = server.cli("token", "create", "--user", "carol", "--audience", server.issuer,
                                  "--grant", "reader")["token"]
        server.rp = server.create_client("Live RP", [REDIRECT_URI])
        server.job = server.cli("service", "create", "nightly")
        server.start()
        yield server
    finally:
        server.stop()


def _call(server, method, path, token, **kw):
    return requests.request(method, f"{server.issuer}/api/admin{path}", timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {token}"}, **kw)


def test_rfc6750_3_1_a_missing_permission_is_insufficient_scope_with_a_challenge(server):
    """§3.1 ``insufficient_scope``: "The request requires higher privileges than provided by the
    access token. The resource server SHOULD respond with the HTTP 403 (Forbidden) status code
    and MAY include the scope attribute with the scope necessary to access the protected
    resource"."""
    assert _call(server, "GET", "/roles", server.carol).status_code == 200
    refused = _call(server, "GET", "/accounts", server.carol)
    assert refused.status_code == 403
    assert (refused.json()["error"], refused.json()["scope"]) == ("insufficient_scope", "admin:accounts:read")
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="admin", error="insufficient_scope"')
    assert 'scope="admin:accounts:read"' in challenge


def test_clients_write_does_not_reach_a_system_accounts_client(server):
    client_id = server.job["client_id"]
    for method, path, body in (("PATCH", f"/clients/{client_id}", {"resources": ["https://evil.example"]}),
                               ("POST", f"/clients/{client_id}/secret", None),
                               ("DELETE", f"/clients/{client_id}", None)):
        refused = _call(server, method, path, server.ops, json=body)
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden"), (method, path)
    # Its credential still works: nothing was changed.
    token = requests.post(f"{server.issuer}/token", data={"grant_type": "client_credentials"}, timeout=TIMEOUT,
                          auth=(client_id, server.job["client_secret"]))
    assert token.status_code == 200, token.text
    changed = _call(server, "PATCH", "/services/nightly", server.ops, json={"audience": "https://reports.example"})
    assert (changed.status_code, changed.json()["audience"]) == (200, "https://reports.example")
    assert _call(server, "PATCH", f"/clients/{server.rp['client_id']}", server.ops,
                 json={"name": "Renamed RP"}).json()["name"] == "Renamed RP"


def test_a_role_recreated_under_the_same_name_does_not_widen_a_narrowed_token(server):
    """carol's token is narrowed to the role "reader". The role is taken back, removed, and a
    role "reader" allowing much more is created and given to her: the token is narrowed to the
    old role, by id, and gets none of it."""
    server.cli("user", "revoke", "carol", "reader", as_json=False)
    server.cli("role", "remove", "reader", as_json=False)
    server.cli("role", "define", "reader", "--audience", server.issuer, "--action", "admin:*")
    server.cli("user", "grant", "carol", "reader", as_json=False)
    for path in ("/roles", "/accounts"):
        refused = _call(server, "GET", path, server.carol)
        assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope"), path
    fresh = server.cli("token", "create", "--user", "carol", "--audience", server.issuer, "--grant", "reader")
    assert _call(server, "GET", "/accounts", fresh["token"]).status_code == 200
