"""The ``oidc-provider`` command (click), run with CliRunner against a temporary SQLite
database configured through the environment: every error is one line and a non-zero exit;
``--json`` output is for scripts; secrets are printed once and never shown again."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from oidc_provider.cli import main

SECRET_KEY = "cli-test-secret-" + "s" * 32


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "cli.db"
    return {
        "OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": SECRET_KEY,
        "OIDC_DATABASE_URL": f"sqlite:///{path}", "OIDC_ARGON2_TIME_COST": "1",
        "OIDC_ARGON2_MEMORY_COST": "1024", "OIDC_ARGON2_PARALLELISM": "1", "OIDC_CONFIG_FILE": "",
    }


@pytest.fixture(scope="module")
def run(env):
    runner = CliRunner()

    def invoke(*args, input=None, ok=True, extra_env=None):
        result = runner.invoke(main, list(args), input=input, env={**env, **(extra_env or {})},
                               catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    first = invoke("init", "--json")
    assert len(json.loads(first.stdout)["keys_created"]) == 6  # active + next for RS256, ES256, EdDSA
    return invoke


def _json(result):
    return json.loads(result.stdout)


def _one_line_error(result, *fragments):
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_init_is_idempotent(run):
    again = _json(run("init", "--json"))
    assert again == {"keys_created": [], "files_tightened": []}
    keys = _json(run("keys", "list", "--json"))
    assert sorted((k["alg"], k["state"]) for k in keys) == sorted(
        (alg, state) for alg in ("RS256", "ES256", "EdDSA") for state in ("active", "next"))


def test_user_lifecycle(run):
    created = _json(run("user", "create", "carol", "--email", "carol@example.com", "--name", "Carol",
                        "--email-verified", "--password-stdin", "--json", input="a long password\n"))
    assert created["username"] == "carol"
    assert created["email_verified"] is True
    assert created["has_password"] is True
    assert "password" not in json.dumps(created).replace("has_password", "")
    listed = _json(run("user", "list", "--json"))
    assert "carol" in [u["username"] for u in listed]
    shown = _json(run("user", "show", "carol", "--json"))
    assert shown["sub"] == created["sub"]
    assert run("user", "disable", "carol").stdout.strip() == "carol disabled"
    assert _json(run("user", "show", "carol", "--json"))["disabled"] is True
    assert run("user", "enable", "carol").stdout.strip() == "carol enabled"
    assert _json(run("user", "show", "carol", "--json"))["disabled"] is False
    assert run("user", "set-password", "carol", "--password-stdin", input="another long one\n").exit_code == 0
    assert run("user", "delete", "carol", "--yes").stdout.strip() == "deleted carol"
    _one_line_error(run("user", "show", "carol", ok=False), "no account named 'carol'")


def test_user_errors_are_one_line(run):
    run("user", "create", "dave", "--email", "dave@example.com", "--password-stdin", input="a long password\n")
    _one_line_error(run("user", "create", "dave", "--password-stdin", input="a long password\n", ok=False),
                    "already exists")
    _one_line_error(run("user", "create", "erin", "--password-stdin", input="short\n", ok=False),
                    "at least 15 characters")
    _one_line_error(run("user", "create", "bad name", "--password-stdin", input="a long password\n", ok=False),
                    "username")
    _one_line_error(run("user", "create", "frank", "--email", "not-an-email", "--password-stdin",
                        input="a long password\n", ok=False), "email")
    _one_line_error(run("user", "create", "gina", "--password-stdin", input="\n", ok=False),
                    "no password on standard input")
    _one_line_error(run("user", "disable", "nobody", ok=False), "no account named 'nobody'")
    _one_line_error(run("user", "set-password", "dave", ok=False), "--password-stdin")


def test_client_create_prints_the_secret_once(run, env):
    created = _json(run("client", "create", "--name", "Wiki", "--redirect-uri", "https://wiki.example/cb",
                        "--post-logout-redirect-uri", "https://wiki.example/", "--grant", "refresh_token",
                        "--json"))
    client_id, secret = created["client_id"], created["client_secret"]
    assert len(secret) >= 43
    assert created["grant_types"] == ["authorization_code", "refresh_token"]
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    shown = run("client", "show", client_id, "--json")
    assert secret not in shown.stdout
    assert "client_secret" not in _json(shown)
    assert secret not in run("client", "show", client_id).stdout
    assert secret not in run("client", "list", "--json").stdout
    # Stored as a SHA-256 digest only.
    import sqlite3

    path = env["OIDC_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT * FROM client WHERE client_id = ?", (client_id,)).fetchone()
    assert hashlib.sha256(secret.encode()).hexdigest() in row
    assert secret not in [str(v) for v in row]


def test_client_create_text_output_shows_secret_once(run):
    text = run("client", "create", "--name", "Text", "--redirect-uri", "https://text.example/cb").stdout
    assert text.startswith("client_id: ")
    assert "client_secret: " in text
    assert "shown once" in text


def test_public_client_has_no_secret(run):
    created = _json(run("client", "create", "--name", "SPA", "--redirect-uri", "https://spa.example/cb",
                        "--public", "--json"))
    assert "client_secret" not in created
    assert created["public"] is True
    assert created["token_endpoint_auth_method"] == "none"


def test_private_key_jwt_client_reads_public_jwks(run, tmp_path):
    from joserfc import jwk

    key = jwk.ECKey.generate_key("P-256", private=True)
    public = tmp_path / "jwks.json"
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    created = _json(run("client", "create", "--name", "Daemon", "--redirect-uri", "https://d.example/cb",
                        "--auth-method", "private_key_jwt", "--jwks", str(public), "--json"))
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in created
    private = tmp_path / "private.json"
    private.write_text(json.dumps(key.as_dict(private=True)))
    _one_line_error(run("client", "create", "--name", "Leaky", "--redirect-uri", "https://d.example/cb",
                        "--auth-method", "private_key_jwt", "--jwks", str(private), ok=False),
                    "public keys only")


def test_client_rotate_secret_update_and_delete(run):
    created = _json(run("client", "create", "--name", "Blog", "--redirect-uri", "https://blog.example/cb",
                        "--json"))
    client_id = created["client_id"]
    rotated = _json(run("client", "rotate-secret", client_id, "--json"))
    assert rotated["client_id"] == client_id
    assert rotated["client_secret"] != created["client_secret"]
    updated = _json(run("client", "update", client_id, "--name", "Blog 2", "--redirect-uri",
                        "https://blog.example/new", "--trusted", "--id-token-alg", "ES256", "--json"))
    assert updated["name"] == "Blog 2"
    assert updated["redirect_uris"] == ["https://blog.example/new"]
    assert updated["trusted"] is True
    assert updated["id_token_signed_response_alg"] == "ES256"
    assert _json(run("client", "show", client_id, "--json")) == updated
    assert run("client", "delete", client_id, "--yes").stdout.strip() == f"deleted {client_id}"
    _one_line_error(run("client", "show", client_id, ok=False), f"no client with id {client_id!r}")


def test_client_errors_are_one_line(run):
    _one_line_error(run("client", "show", "no-such-client", ok=False), "no client with id 'no-such-client'")
    _one_line_error(run("client", "rotate-secret", "no-such-client", ok=False), "no client")
    _one_line_error(run("client", "delete", "no-such-client", "--yes", ok=False), "no client")
    _one_line_error(run("client", "create", "--name", "Frag", "--redirect-uri", "https://x.example/cb#frag",
                        ok=False), "no fragment")
    _one_line_error(run("client", "create", "--name", "Rel", "--redirect-uri", "/relative", ok=False),
                    "must be absolute")
    _one_line_error(run("client", "create", "--name", "JS", "--redirect-uri", "javascript:alert(1)", ok=False),
                    "forbidden scheme")
    _one_line_error(run("client", "create", "--name", "None", ok=False), "--redirect-uri")
    _one_line_error(run("client", "create", "--name", "G", "--redirect-uri", "https://x.example/cb",
                        "--grant", "password", ok=False), "unknown grant 'password'")
    public = _json(run("client", "create", "--name", "Pub", "--redirect-uri", "https://p.example/cb",
                       "--public", "--json"))
    _one_line_error(run("client", "rotate-secret", public["client_id"], ok=False), "does not use a shared secret")
    confidential = _json(run("client", "create", "--name", "Upd", "--redirect-uri", "https://u.example/cb",
                             "--json"))
    _one_line_error(run("client", "update", confidential["client_id"], "--redirect-uri",
                        "https://u.example/cb#x", ok=False), "no fragment")


def test_service_create_prints_credentials_once(run):
    created = _json(run("service", "create", "nightly-backup", "--json"))
    assert created["name"] == "nightly-backup"
    assert len(created["client_secret"]) >= 43
    assert created["client_id"] not in run("client", "list", "--json").stdout  # not a relying party
    _one_line_error(run("service", "create", "nightly-backup", ok=False), "already exists")
    _one_line_error(run("service", "create", "bad name", ok=False), "service name")


def test_keys_rotate_promotes_next_and_keeps_old_published(run):
    before = {(k["alg"], k["state"]): k["kid"] for k in _json(run("keys", "list", "--json"))}
    promoted = _json(run("keys", "rotate", "--json"))
    assert sorted(k["alg"] for k in promoted) == ["ES256", "EdDSA", "RS256"]
    after = _json(run("keys", "list", "--json"))
    states = {k["kid"]: k["state"] for k in after}
    for alg in ("RS256", "ES256", "EdDSA"):
        assert states[before[(alg, "next")]] == "active"
        assert states[before[(alg, "active")]] == "retired"
    assert sum(1 for k in after if k["state"] == "next") == 3
    assert "now signing with" in run("keys", "rotate").stdout


def test_cleanup_reports_counts(run):
    counts = _json(run("cleanup", "--json"))
    assert set(counts) >= {"authorization_codes", "revoked_tokens", "refresh_tokens", "used_assertions",
                           "audit_events", "sessions", "signing_keys"}
    assert all(isinstance(v, int) and v >= 0 for v in counts.values())


def test_short_secret_key_is_one_line_error(run):
    result = run("user", "list", ok=False, extra_env={"OIDC_SECRET_KEY": "short"})
    _one_line_error(result, "OIDC_SECRET_KEY must be at least 32 bytes")


def test_several_bad_settings_are_one_line(run):
    result = run("init", ok=False, extra_env={"OIDC_SECRET_KEY": "short", "OIDC_ISSUER": "http://example.com",
                                              "OIDC_SESSION_TTL": "forever"})
    _one_line_error(result, "OIDC_SESSION_TTL", "OIDC_SECRET_KEY", "OIDC_ISSUER")


def test_bad_issuer_is_one_line_error(run):
    _one_line_error(run("client", "list", ok=False, extra_env={"OIDC_ISSUER": "http://example.com"}),
                    "OIDC_ISSUER must use https unless the host is loopback")


def test_help_lists_every_noun(run):
    text = run("--help").stdout
    for noun in ("init", "serve", "dev", "cleanup", "user", "client", "service", "keys"):
        assert noun in text
