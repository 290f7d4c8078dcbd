"""``oidc-provider --server URL --token-file F ...``: the operator's commands acting through
the admin API of a live ``oidc-provider serve`` from "another machine" (a process with no
database settings at all), authenticated by a personal access token with an admin role."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest
from live import LiveServer, _cli_path  # conformance/live.py, on sys.path via tests/e2e/conftest.py

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live_operator():
    """A provider of its own; ``live_operator.cli`` is the operator on the server itself."""
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        server.prepare()
        server.create_user("alice", secrets.token_urlsafe(18))
        server.start()
        yield server
    finally:
        server.stop()


def remote(server: str, token_file, *args, ok=True):
    """Run the CLI as if on another machine: no OIDC_* settings, no database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
    command = [_cli_path(), "--server", server, "--token-file", str(token_file), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def token_file(live_operator, tmp_path_factory):
    issuer = live_operator.issuer
    live_operator.cli("role", "define", "remote-admin", "--audience", issuer, "--action", "admin:*")
    live_operator.cli("user", "grant", "alice", "remote-admin", as_json=False)
    token = live_operator.cli("token", "create", "--user", "alice", "--audience", issuer,
                              "--name", "remote CLI")["token"]
    path = tmp_path_factory.mktemp("remote") / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def test_commands_act_through_the_admin_api(live_operator, token_file):
    issuer = live_operator.issuer
    users = json.loads(remote(issuer, token_file, "user", "list", "--json").stdout)
    assert "alice" in [u["username"] for u in users]

    remote(issuer, token_file, "role", "define", "viewer", "--audience", "https://app.example",
           "--action", "read", "--resource", "report:*")
    remote(issuer, token_file, "user", "grant", "alice", "viewer")
    shown = json.loads(remote(issuer, token_file, "user", "show", "alice", "--json").stdout)
    assert {"remote-admin", "viewer"} <= set(shown["roles"])

    created = json.loads(remote(issuer, token_file, "token", "create", "--user", "alice", "--audience",
                                "https://app.example", "--grant", "viewer", "--expires", "1d", "--json").stdout)
    assert created["token"].startswith("oidcpat_") and created["roles"] == ["viewer"]
    listed = json.loads(remote(issuer, token_file, "token", "list", "--user", "alice", "--json").stdout)
    assert created["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)  # shown once, never listed
    remote(issuer, token_file, "token", "revoke", created["id"])

    # Removing a granted role is refused (409), through the API as on the server.
    refused = remote(issuer, token_file, "role", "remove", "viewer", ok=False)
    assert refused.returncode == 1 and "409" in refused.stderr and "still granted" in refused.stderr
    remote(issuer, token_file, "user", "revoke", "alice", "viewer")
    remote(issuer, token_file, "role", "remove", "viewer")

    # Every admin action done remotely is audited with alice as the actor.
    events = json.loads(remote(issuer, token_file, "audit", "list", "--event", "admin:role:*", "--since", "1h",
                               "--json").stdout)
    assert {("admin:role:defined", "alice"), ("admin:role:granted", "alice"), ("admin:role:revoked", "alice"),
            ("admin:role:removed", "alice")} <= {(e["event"], e["actor"]) for e in events}


def test_server_only_commands_refuse_rather_than_act_locally(live_operator, token_file):
    done = remote(live_operator.issuer, token_file, "keys", "list", ok=False)
    assert done.returncode != 0 and "works on the server only" in done.stderr


def test_a_bad_token_is_a_one_line_error(live_operator, tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("oidcpat_not-a-real-token")
    done = remote(live_operator.issuer, bad, "user", "list", ok=False)
    assert done.returncode == 1 and "answered 401" in done.stderr
    assert "Traceback" not in done.stderr


def test_plain_http_to_another_host_is_refused(tmp_path):
    token = tmp_path / "t"
    token.write_text("oidcpat_x")
    done = remote("http://id.example.com", token, "user", "list", ok=False)
    assert done.returncode == 2 and "must use https" in done.stderr
