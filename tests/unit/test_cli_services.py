# ruff: noqa: F811 - the CLI fixtures (env, run) are imported from test_cli and used by name
"""``oidc-provider service ...`` on the server: one live credential at a time (rotate, set-key,
revoke), disable/enable, roles, and database credentials read from standard input, never from
the command line."""

from __future__ import annotations

import json

from joserfc.jwk import ECKey

from .test_cli import _json, _one_line_error, env, run  # noqa: F401 - the shared CLI fixtures


def test_one_live_credential_at_a_time(run, tmp_path):
    created = _json(run("service", "create", "sync-job", "--scope", "sync:write", "--json"))
    first = created["client_secret"]
    assert created["token_endpoint_auth_method"] == "client_secret_basic" and created["has_secret"]
    assert "sync-job" in run("service", "list").stdout
    rotated = _json(run("service", "rotate", "sync-job", "--json"))
    assert rotated["client_secret"] != first and rotated["client_id"] == created["client_id"]
    assert "shown once" in run("service", "rotate", "sync-job").stdout

    key = ECKey.generate_key("P-256", parameters={"kid": "sync-1"})
    public = tmp_path / "sync.jwk"
    public.write_text(json.dumps(key.as_dict(private=False)))
    keyed = _json(run("service", "set-key", "sync-job", "--jwk", str(public), "--json"))
    assert keyed["token_endpoint_auth_method"] == "private_key_jwt" and keyed["has_secret"] is False
    assert keyed["key_ids"] == ["sync-1"]

    private = tmp_path / "private.jwk"
    private.write_text(json.dumps(key.as_dict(private=True)))
    _one_line_error(run("service", "set-key", "sync-job", "--jwk", str(private), ok=False))
    both = run("service", "set-key", "sync-job", "--jwk", str(public), "--jwks-uri", "https://k.example/jwks",
               ok=False)
    assert both.exit_code == 2 and "exactly one of" in both.stderr

    assert "no live credential" in run("service", "revoke", "sync-job").stdout
    shown = _json(run("service", "show", "sync-job", "--json"))
    assert shown["has_credential"] is False and shown["key_ids"] == []


def test_disable_enable_and_roles(run):
    run("service", "create", "report-job")
    assert run("service", "disable", "report-job").stdout.strip() == "report-job disabled"
    assert _json(run("service", "show", "report-job", "--json"))["disabled"] is True
    assert run("service", "enable", "report-job").stdout.strip() == "report-job enabled"
    run("role", "define", "reports-writer", "--audience", "https://reports.example", "--action", "write")
    assert run("service", "grant", "report-job", "reports-writer").stdout.strip() == "report-job holds reports-writer"
    assert _json(run("service", "show", "report-job", "--json"))["roles"] == ["reports-writer"]
    run("service", "revoke", "report-job", "reports-writer")
    assert _json(run("service", "show", "report-job", "--json"))["roles"] == []
    # A person is not a system account.
    run("user", "create", "frank")
    _one_line_error(run("service", "grant", "frank", "reports-writer", ok=False))
    _one_line_error(run("service", "rotate", "frank", ok=False))


def test_database_credentials_come_from_standard_input(run, env):
    run("service", "create", "etl-job")
    stored = run("service", "db-credentials", "set", "etl-job", "--dsn", "postgresql://etl@db.internal:5432/warehouse",
                 "--password-stdin", input="s3cret-db-password\n")
    assert "stored for etl-job" in stored.stdout and "s3cret" not in stored.stdout
    assert _json(run("service", "show", "etl-job", "--json"))["has_database_credentials"] is True
    # A password in the DSN is refused, and not echoed back.
    refused = run("service", "db-credentials", "set", "etl-job", "--dsn", "postgresql://etl:hunter2@db/w",
                  "--password-stdin", input="x\n", ok=False)
    _one_line_error(refused)
    assert "hunter2" not in refused.stderr
    _one_line_error(run("service", "db-credentials", "set", "etl-job", "--dsn", "postgresql://etl@db/w", ok=False),
                    "--password-stdin")
    # The database holds neither the password nor the DSN in clear.
    import sqlite3

    db = sqlite3.connect(env["OIDC_DATABASE_URL"].removeprefix("sqlite:///"))
    rows = db.execute("select dsn_sealed, password_sealed from database_credential").fetchall()
    db.close()
    assert rows and all(b"s3cret-db-password" not in bytes(v) and b"warehouse" not in bytes(v)
                        for row in rows for v in row)


def test_audience_and_resources_at_create_and_update(run):
    """``service create --audience/--resource`` registers what the system account serves (the
    audiences whose tokens it may introspect); ``service update`` changes them and the scope,
    never the credential; ``client update`` refuses a system account's client."""
    created = _json(run("service", "create", "reports-api", "--audience", "https://reports.example",
                        "--resource", "https://reports.example/v2", "--json"))
    assert (created["audience"], created["resources"]) == ("https://reports.example", ["https://reports.example/v2"])
    assert "audience: https://reports.example" in run("service", "show", "reports-api").stdout
    updated = _json(run("service", "update", "reports-api", "--audience", "none", "--no-resources",
                        "--scope", "reports:read", "--json"))
    assert (updated["audience"], updated["resources"], updated["scope"]) == (None, [], "reports:read")
    assert updated["has_secret"] is True
    _one_line_error(run("service", "update", "reports-api", "--resource", "not a uri", ok=False))
    _one_line_error(run("service", "update", "reports-api", "--scope", "bad\"scope", ok=False))
    refused = run("client", "update", created["client_id"], "--audience", "https://evil.example", ok=False)
    _one_line_error(refused)
    assert "belongs to a system account" in refused.stderr
    both = run("service", "update", "reports-api", "--resource", "https://a.example", "--no-resources", ok=False)
    assert both.exit_code == 2
