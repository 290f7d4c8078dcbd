"""Moving a provider from SQLite to PostgreSQL (and back) as the operator guide says: stop it,
``oidc-provider export FILE``, ``init`` the new database, ``oidc-provider import FILE`` with the
same ``OIDC_SECRET_KEY``, start ``serve`` on it.

Everything goes through real processes: the provider is built with the CLI, a person signs in
through the browser pages (OpenID Connect Core §3.1) and enrols TOTP (RFC 6238), a system
account gets a ``client_credentials`` token (RFC 6749 §4.4), and after the move the same
password, TOTP key, client secret, refresh token (RFC 6749 §6), browser session and ``sub``
(OIDC Core §2: "never reassigned") work.
The PostgreSQL server is the one named by OIDC_TEST_DATABASE_URL, or the local one that
``bin/test`` uses.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import pyotp
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from live import LiveServer, _cli_path  # conformance/live.py, on sys.path via tests/e2e/conftest.py

from .conftest import REDIRECT_URI, TIMEOUT, Live, LiveBrowser, _form_action, _hidden_fields

pytestmark = pytest.mark.e2e

_TEST_URL = os.environ.get("OIDC_TEST_DATABASE_URL", "")
POSTGRES = _TEST_URL if _TEST_URL.startswith("postgresql") else "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AUDIENCE = "https://api.example.test"
SCOPE = "openid profile offline_access"
# What the operator compares before and after: every view the CLI gives of the data.
VIEWS = (("user", "show", "alice"), ("client", "list"), ("role", "list"), ("keys", "list"),
         ("audit", "list", "--limit", "1000"))


def claims_of(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class AuthenticatorApp:
    """The person's TOTP app (RFC 6238): it learns the key on the enrolment page."""

    secret: str | None = None
    last_step: int = -1

    def code(self) -> str:
        # The next time-step's code (within the provider's window of one step), and never a
        # step at or before one already used: the provider refuses a replayed or older step
        # (RFC 6238 §5.2), so a second sign-in within the same 30 s waits for the next step.
        while int(time.time() // 30) + 1 <= self.last_step:
            time.sleep(0.5)
        self.last_step = int(time.time() // 30) + 1
        return pyotp.TOTP(self.secret).at(self.last_step * 30)


def sign_in(issuer: str, client: dict, user: str, password: str, browser: LiveBrowser | None = None, *,
            app: AuthenticatorApp | None = None, acr_values: str | None = None) -> dict:
    """Authorization code flow with PKCE through the provider's pages (login, TOTP enrolment or
    step-up with ``app``, consent); the token response."""
    live = Live(issuer=issuer, user=user, password=password)
    browser = browser or LiveBrowser(live)
    metadata = live.metadata()
    rp = OAuth2Session(client["client_id"], client["client_secret"], scope=SCOPE, redirect_uri=REDIRECT_URI,
                       code_challenge_method="S256")
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                         nonce=generate_token(20), **({"acr_values": acr_values} if acr_values else {}))
    response = browser.go(url)
    for _ in range(4):
        if response.is_redirect:
            break
        html = response.text
        assert app is not None and response.status_code == 200, (response.status_code, html[:300])
        if 'id="totp-secret"' in html:  # enrolment: read the key, type the app's code
            app.secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
            browser.pages_seen.append("enrol")
        elif 'id="continue"' in html:  # the recovery codes, shown once
            response = browser.go(urljoin(response.url, unescape(re.search(r'href="([^"]*)" id="continue"',
                                                                           html).group(1))))
            continue
        else:
            browser.pages_seen.append("step-up")
        response = browser.http.post(_form_action(html, response.url), timeout=TIMEOUT, allow_redirects=False,
                                     data={**_hidden_fields(html), "code": app.code(), "kind": "totp"})
        if response.is_redirect:
            response = browser.go(urljoin(response.url, response.headers["Location"]))
    assert response.status_code == 302 and response.headers["Location"].startswith(REDIRECT_URI + "?"), (
        response.status_code, response.text[:300])
    return rp.fetch_token(metadata["token_endpoint"], authorization_response=response.headers["Location"],
                          code_verifier=verifier)


def token_request(issuer: str, client: dict, **data) -> requests.Response:
    return requests.post(issuer + "/token", data=data, auth=(client["client_id"], client["client_secret"]),
                         timeout=TIMEOUT)


def oidc(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_cli_path(), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def views(env: dict, which=VIEWS) -> dict:
    out = {}
    for view in which:
        done = oidc(env, *view, "--json")
        assert done.returncode == 0, (view, done.stderr)
        out[" ".join(view)] = json.loads(done.stdout)
    return out


def audit_trail(view: dict) -> list:
    """The audit trail, without the rows that export and import add (to the source after the
    file is written, to the target after the import)."""
    return [e for e in view["audit list --limit 1000"] if not e["event"].startswith("admin:data:")]


def refused(env: dict, *args: str, says: str) -> None:
    """The command fails with exit status 1 and one line on stderr that says why."""
    done = oidc(env, *args)
    assert done.returncode == 1, (args, done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert says in done.stderr, done.stderr


def halt(server: LiveServer) -> None:
    """Stop ``serve`` but keep its database (LiveServer.stop() also removes it)."""
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A provider on SQLite that has been used: a person signed in (session, code, tokens,
    refresh token, consent, audit), a system account with a token, a role granted to both.
    It is stopped and exported; yields what the tests need."""
    out = tmp_path_factory.mktemp("move")
    server = LiveServer(workers=1, env_overrides={"OIDC_DEFAULT_AUDIENCE": AUDIENCE})
    try:
        server.prepare()
        password = generate_token(18)
        server.create_user("alice", password)
        client = server.create_client("Mover", [REDIRECT_URI], grants=["refresh_token"])
        service = server.create_service("mover-job")
        server.cli("role", "define", "reader", "--audience", AUDIENCE, "--action", "read", "--resource", "doc:*")
        server.cli("user", "grant", "alice", "reader", as_json=False)
        server.cli("service", "grant", "mover-job", "reader", as_json=False)
        server.start()
        browser, app = LiveBrowser(Live(issuer=server.issuer, user="alice", password=password)), AuthenticatorApp()
        tokens = sign_in(server.issuer, client, "alice", password, browser, app=app, acr_values="mfa")
        assert browser.pages_seen == ["login", "enrol", "consent"]
        assert claims_of(tokens["id_token"])["acr"] == "mfa"
        assert token_request(server.issuer, service, grant_type="client_credentials").status_code == 200
        halt(server)

        export = out / "provider-export.jsonl"
        done = server.cli("export", str(export))
        assert done["revision"] and done["tables"]["account"] == 2 and done["tables"]["refresh_token"] == 1
        yield {"server": server, "export": export, "password": password, "client": client, "service": service,
               "tokens": tokens, "browser": browser, "app": app, "views": views(server.env),
               "secret_key": server.env["OIDC_SECRET_KEY"]}
    finally:
        server.stop()


def test_export_file_is_private_and_holds_every_table(source):
    export = source["export"]
    assert export.stat().st_mode & 0o777 == 0o600  # sealed keys, digests, password hashes
    lines = export.read_text().splitlines()
    tables = [json.loads(line)["table"] for line in lines if line.startswith('{"table"')]
    from oidc_provider.extensions import db
    from oidc_provider.models import Account  # noqa: F401 - registers every model

    assert tables == [t.name for t in db.metadata.sorted_tables]
    assert json.loads(lines[-1])["end"]["tables"]["audit_event"] == len(audit_trail(source["views"]))
    exported = source["views"]["audit list --limit 1000"][0]  # newest first
    assert (exported["event"], exported["actor"]) == ("admin:data:exported", "cli")


def test_moved_to_postgresql_people_apps_tokens_and_roles_work_unchanged(source, tmp_path):
    old = source["server"]
    target = LiveServer(database_url=POSTGRES, port=old.port, workers=2, env_overrides={
        "OIDC_SECRET_KEY": source["secret_key"], "OIDC_DEFAULT_AUDIENCE": AUDIENCE})
    try:
        target.prepare()  # oidc-provider init on the new PostgreSQL database
        init_keys = target.cli("keys", "list")

        # A truncated file is refused in one transaction: the database is as `init` left it.
        truncated = tmp_path / "truncated.jsonl"
        truncated.write_text("\n".join(source["export"].read_text().splitlines()[:-3]) + "\n")
        refused(target.env, "import", str(truncated), says="truncated")
        assert target.cli("keys", "list") == init_keys and target.cli("user", "list") == []

        counts = target.cli("import", str(source["export"]))["tables"]
        assert counts["account"] == 2 and counts["audit_event"] == len(audit_trail(source["views"]))
        moved = views(target.env)
        assert moved["audit list --limit 1000"][0]["event"] == "admin:data:imported"
        assert audit_trail(moved) == audit_trail(source["views"])  # the whole audit trail
        for view in VIEWS[:-1]:  # people, apps, roles, keys
            assert moved[" ".join(view)] == source["views"][" ".join(view)], view
        refused(target.env, "import", str(source["export"]), says="not empty")

        target.start()
        issuer, client = target.issuer, source["client"]
        assert issuer == old.issuer

        # RFC 6749 §6: the refresh token issued on SQLite refreshes on PostgreSQL.
        refreshed = token_request(issuer, client, grant_type="refresh_token",
                                  refresh_token=source["tokens"]["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert claims_of(refreshed.json()["access_token"])["resource_access"][AUDIENCE]["roles"] == ["reader"]

        # The browser session and the consent moved too: alice is still signed in.
        browser = source["browser"]
        browser.pages_seen.clear()
        again = sign_in(issuer, client, "alice", source["password"], browser)
        assert browser.pages_seen == [] and claims_of(again["id_token"])["sub"] == claims_of(
            source["tokens"]["id_token"])["sub"]

        # The same password, TOTP key (sealed under OIDC_SECRET_KEY) and client secret; OIDC
        # Core §2: the same sub.
        fresh = LiveBrowser(Live(issuer=issuer, user="alice", password=source["password"]))
        tokens = sign_in(issuer, client, "alice", source["password"], fresh, app=source["app"], acr_values="mfa")
        assert fresh.pages_seen == ["login", "step-up"]  # no enrolment: the factor moved
        old_sub = claims_of(source["tokens"]["id_token"])["sub"]
        assert claims_of(tokens["id_token"])["sub"] == old_sub and claims_of(tokens["id_token"])["acr"] == "mfa"
        access = claims_of(tokens["access_token"])
        assert access["sub"] == old_sub and access["resource_access"][AUDIENCE]["roles"] == ["reader"]

        # RFC 6749 §4.4: the system account's secret still gets a token, with its role.
        service = token_request(issuer, source["service"], grant_type="client_credentials")
        assert service.status_code == 200, service.text
        assert claims_of(service.json()["access_token"])["resource_access"][AUDIENCE]["roles"] == ["reader"]

        # The id sequences were moved past the imported rows: new rows get new ids.
        carol_password = generate_token(18)
        target.create_user("carol", carol_password)
        newcomer = target.create_client("After the move", [REDIRECT_URI])
        target.cli("role", "define", "writer", "--audience", AUDIENCE, "--action", "write")
        target.cli("user", "grant", "carol", "writer", as_json=False)
        carol = claims_of(sign_in(issuer, newcomer, "carol", carol_password)["access_token"])
        assert carol["resource_access"][AUDIENCE]["roles"] == ["writer"]

        # And back: copy-database from PostgreSQL into a new SQLite database.
        back = {**target.env, "OIDC_DATABASE_URL": f"sqlite:///{tmp_path / 'back.db'}"}
        assert oidc(back, "init").returncode == 0
        copied = target.cli("copy-database", "--to", back["OIDC_DATABASE_URL"])["tables"]
        assert copied["account"] == 3
        which = (("user", "list"), ("audit", "list", "--limit", "1000"))
        back_views, target_views = views(back, which), views(target.env, which)
        assert back_views["user list"] == target_views["user list"]
        assert audit_trail(back_views) == audit_trail(target_views)
    finally:
        target.stop()


@pytest.fixture
def sqlite_target(source, tmp_path):
    """The environment of a new SQLite provider that `init` prepared, with the source's key."""
    env = {**source["server"].env, "OIDC_DATABASE_URL": f"sqlite:///{tmp_path / 'target.db'}"}
    assert oidc(env, "init").returncode == 0
    return env


def _untouched(env: dict) -> None:
    done = oidc(env, "user", "list", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == []


def test_a_damaged_file_is_refused_and_nothing_changes(source, sqlite_target, tmp_path):
    text = source["export"].read_text()
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(text.replace('"alice"', '"mallory"', 1))  # valid JSON, wrong checksum
    refused(sqlite_target, "import", str(damaged), says="checksum does not match")
    _untouched(sqlite_target)
    garbage = tmp_path / "garbage.jsonl"
    lines = text.splitlines()
    garbage.write_text("\n".join([*lines[:5], lines[5][: len(lines[5]) // 2], *lines[6:]]) + "\n")
    refused(sqlite_target, "import", str(garbage), says="line 6 is not JSON")
    _untouched(sqlite_target)
    refused(sqlite_target, "import", str(tmp_path / "missing.jsonl"), says="no such file")
    # The refusals left the database usable: the real file imports.
    assert json.loads(oidc(sqlite_target, "import", str(source["export"]), "--json").stdout)["tables"]["account"] == 2


def test_another_revision_is_refused(source, sqlite_target, tmp_path):
    lines = source["export"].read_text().splitlines()
    header = json.loads(lines[0])
    older = tmp_path / "older.jsonl"
    older.write_text("\n".join([json.dumps({**header, "revision": "0005"}), *lines[1:]]) + "\n")
    refused(sqlite_target, "import", str(older), says="exported at migration 0005")
    _untouched(sqlite_target)

    # A target (or source) database whose migrations differ from the code's.
    with sqlite3.connect(sqlite_target["OIDC_DATABASE_URL"].removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0005'")
    refused(sqlite_target, "import", str(source["export"]), says="the database schema is at revision 0005")
    refused(sqlite_target, "export", str(tmp_path / "out.jsonl"), says="the database schema is at revision 0005")
    refused(source["server"].env, "copy-database", "--to", sqlite_target["OIDC_DATABASE_URL"],
            says="the target database is at migration 0005")
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_another_secret_key_is_refused(source, sqlite_target, tmp_path):
    wrong = {**sqlite_target, "OIDC_SECRET_KEY": generate_token(48)}
    refused(wrong, "import", str(source["export"]), says="cannot be unsealed with this OIDC_SECRET_KEY")
    _untouched(sqlite_target)
    # Nor is an export made with a key that does not open the source's signing keys.
    refused(wrong, "export", str(tmp_path / "out.jsonl"), says="does not open the signing keys")
    assert list(tmp_path.glob("out.jsonl*")) == []


def test_export_never_overwrites(source):
    refused(source["server"].env, "export", str(source["export"]), says="exists")
    assert Path(source["export"]).stat().st_size > 0
