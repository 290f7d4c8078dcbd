# ruff: noqa: F811 - the CLI fixtures (env, run) are imported from test_cli and used by name
"""``oidc-provider role``, ``user grant/revoke/roles``, ``token`` and ``audit`` on the server
(CliRunner against a temporary SQLite database): what an operator types, what is stored, what
is refused (one line, non-zero exit, nothing changed), and that each action is audited with
``cli`` as its actor."""

from __future__ import annotations

import hashlib
import json

import pytest

from .test_cli import _json, _one_line_error, env, run  # noqa: F401 - the shared CLI fixtures


@pytest.fixture(scope="module")
def people(run):  # noqa: F811
    run("user", "create", "dora", "--email", "dora@example.com")
    run("user", "create", "eve", "--email", "eve@example.com")
    return run


def test_role_define_show_list_and_update(people):
    run = people
    created = _json(run("role", "define", "editor", "--audience", "https://app.example", "--action", "posts:*",
                        "--action", "comments:read", "--resource", "blog:*", "--description", "Edits posts",
                        "--json"))
    assert created["created"] is True
    assert created["statements"] == [{"audience": "https://app.example", "actions": ["posts:*", "comments:read"],
                                      "resources": ["blog:*"]}]
    updated = _json(run("role", "define", "editor", "--audience", "https://app.example", "--action", "posts:read",
                        "--json"))
    assert updated["created"] is False and updated["statements"][0]["resources"] == ["*"]
    assert updated["description"] == "Edits posts"  # kept when not given again
    assert "editor" in [r["name"] for r in _json(run("role", "list", "--json"))]
    text = run("role", "show", "editor").stdout
    assert "at https://app.example: posts:read on *" in text and "granted to: nobody" in text


def test_role_define_from_a_statements_file(people, tmp_path):
    run = people
    path = tmp_path / "ops.json"
    path.write_text(json.dumps([
        {"audience": "https://a.example", "actions": ["*"], "resources": ["*"]},
        {"audience": "https://b.example", "actions": ["read"], "resources": ["report:*"]},
    ]))
    view = _json(run("role", "define", "ops", "--statements-file", str(path), "--json"))
    assert [s["audience"] for s in view["statements"]] == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("args,fragment", [
    (["--audience", "https://app.example", "--action", "po*sts"], "trailing '*' only"),
    (["--audience", "https://app.example", "--action", "read", "--resource", "*x"], "trailing '*' only"),
    (["--audience", "https://app*", "--action", "read"], "no '*'"),
    (["--action", "read"], "--audience"),
], ids=["star-inside-action", "leading-star-resource", "star-in-audience", "no-audience"])
def test_bad_statements_are_refused_in_one_line(people, args, fragment):
    result = people("role", "define", "broken", *args, ok=False)
    assert result.exit_code != 0 and fragment in result.stderr
    assert "broken" not in [r["name"] for r in _json(people("role", "list", "--json"))]


def test_a_bad_role_name_is_refused(people):
    _one_line_error(people("role", "define", "--audience", "a", "--action", "b", "--", "-x", ok=False), "role name")
    _one_line_error(people("role", "define", "has space", "--audience", "a", "--action", "b", ok=False),
                    "role name")


def test_grant_revoke_and_remove_refused_while_granted(people):
    run = people
    run("role", "define", "viewer", "--audience", "https://app.example", "--action", "read")
    assert run("user", "grant", "dora", "viewer").stdout.strip() == "dora holds viewer"
    assert run("user", "grant", "dora", "viewer").stdout.strip() == "dora holds viewer (already did)"
    assert [r["name"] for r in _json(run("user", "roles", "dora", "--json"))] == ["viewer"]
    assert "viewer" in _json(run("user", "show", "dora", "--json"))["roles"]
    assert _json(run("role", "show", "viewer", "--json"))["granted_to"] == ["dora"]
    _one_line_error(run("role", "remove", "viewer", ok=False), "still granted to 1 account")
    _one_line_error(run("user", "grant", "dora", "no-such-role", ok=False), "no role named 'no-such-role'")
    _one_line_error(run("user", "grant", "nobody", "viewer", ok=False), "no account named 'nobody'")
    run("user", "revoke", "dora", "viewer")
    _one_line_error(run("user", "revoke", "dora", "viewer", ok=False), "does not hold role")
    assert run("role", "remove", "viewer").stdout.strip() == "removed role viewer"


def test_personal_token_lifecycle_is_stored_as_a_digest(people, env):
    run = people
    run("role", "define", "reader", "--audience", "https://app.example", "--action", "read")
    run("role", "define", "writer", "--audience", "https://app.example", "--action", "write")
    run("user", "grant", "dora", "reader")
    created = _json(run("token", "create", "--user", "dora", "--audience", "https://app.example",
                        "--grant", "reader", "--expires", "2w", "--name", "sync", "--json"))
    token = created["token"]
    assert token.startswith("oidcpat_") and len(token) > 40
    assert created["roles"] == ["reader"] and created["state"] == "live"
    listed = run("token", "list", "--user", "dora").stdout
    assert created["id"] in listed and token not in listed
    # Only the SHA-256 digest is in the database.
    import sqlite3

    db = sqlite3.connect(env["OIDC_DATABASE_URL"].removeprefix("sqlite:///"))
    stored = db.execute("select token_digest from personal_token where public_id = ?", (created["id"],)).fetchone()
    assert stored == (hashlib.sha256(token.encode()).hexdigest(),)
    assert token.encode() not in b"".join(str(row).encode() for row in db.execute("select * from personal_token"))
    db.close()
    # A token's grants are always a subset of its owner's.
    _one_line_error(run("token", "create", "--user", "dora", "--audience", "https://app.example", "--grant",
                        "writer", ok=False), "does not hold role(s) writer")
    _one_line_error(run("token", "create", "--user", "dora", "--audience", "https://app.example", "--expires",
                        "400d", ok=False), "366 days")
    _one_line_error(run("token", "create", "--user", "dora", "--audience", "has space", ok=False), "audience")
    assert run("token", "revoke", created["id"]).stdout.strip() == f"revoked {created['id']}"
    assert run("token", "revoke", created["id"]).stdout.strip() == f"{created['id']} was already revoked"
    _one_line_error(run("token", "revoke", "000000000000", ok=False), "no personal token")


def test_audit_list_filters_and_names_the_cli_as_actor(people):
    run = people
    run("role", "define", "audited", "--audience", "https://app.example", "--action", "read")
    run("user", "grant", "eve", "audited")
    events = _json(run("audit", "list", "--user", "eve", "--event", "admin:role:*", "--since", "1h", "--json"))
    assert [(e["event"], e["actor"]) for e in events][:1] == [("admin:role:granted", "cli")]
    assert events[0]["detail"] == {"role": "audited"}
    defined = _json(run("audit", "list", "--event", "admin:role:defined", "--limit", "1", "--json"))
    assert len(defined) == 1 and defined[0]["detail"]["role"] == "audited"
    text = run("audit", "list", "--user", "eve", "--limit", "1").stdout
    assert "admin:role:granted" in text and "by cli" in text
    assert _json(run("audit", "list", "--user", "eve", "--since", "2999-01-01T00:00:00Z", "--json")) == []
    _one_line_error(run("audit", "list", "--since", "yesterday", ok=False), "since must be")


def test_cleanup_deletes_revoked_personal_tokens_but_not_live_ones(people):
    run = people
    live = _json(run("token", "create", "--user", "eve", "--audience", "https://app.example", "--json"))
    gone = _json(run("token", "create", "--user", "eve", "--audience", "https://app.example", "--json"))
    run("token", "revoke", gone["id"])
    counts = _json(run("cleanup", "--json"))
    assert counts["personal_tokens"] >= 1
    left = [t["id"] for t in _json(run("token", "list", "--user", "eve", "--json"))]
    assert live["id"] in left and gone["id"] not in left
    # The audit trail keeps the history of the deleted token.
    events = _json(run("audit", "list", "--user", "eve", "--event", "account:personal-token:*", "--json"))
    assert {e["detail"]["token"] for e in events} >= {live["id"], gone["id"]}
