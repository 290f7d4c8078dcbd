"""``oidc-provider connector list|show`` and ``user links|unlink`` (issue 4 "Admin"): run with
CliRunner against a temporary SQLite database configured through the environment. A
connector's client secret is never printed; unlinking is audited and refuses to remove an
account's last way to sign in unless forced."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from oidc_provider import create_app
from oidc_provider.cli import main
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent, FederatedIdentity
from oidc_provider.settings import Settings

SECRET_KEY = "cli-test-secret-" + "s" * 32
GITHUB_SECRET = "github-client-secret-" + "g" * 20
CORP_SECRET = "corp-client-secret-" + "c" * 20
CONNECTORS = {
    "github": {"kind": "github", "client_id": "gh-client", "client_secret": GITHUB_SECRET, "signup": True},
    "corp": {"kind": "oidc", "client_id": "corp-client", "issuer": "https://sso.corp.example",
             "display_name": "Corp SSO", "match_email": True},
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-federation") / "cli.db"
    return {
        "OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": SECRET_KEY,
        "OIDC_DATABASE_URL": f"sqlite:///{path}", "OIDC_ARGON2_TIME_COST": "1",
        "OIDC_ARGON2_MEMORY_COST": "1024", "OIDC_ARGON2_PARALLELISM": "1", "OIDC_CONFIG_FILE": "",
        "OIDC_CONNECTORS": json.dumps(CONNECTORS), "OIDC_CONNECTOR_CORP_CLIENT_SECRET": CORP_SECRET,
    }


@pytest.fixture(scope="module")
def run(env):
    runner = CliRunner()

    def invoke(*args, input=None, ok=True):
        result = runner.invoke(main, list(args), input=input, env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    invoke("init", "--json")
    return invoke


@pytest.fixture(scope="module")
def app(env, run, monkeypatch_module):
    for name, value in env.items():
        monkeypatch_module.setenv(name, value)
    return create_app(Settings.from_env())


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _one_line_error(result, *fragments):
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_connector_list(run):
    text = run("connector", "list").stdout
    assert text.splitlines() == ["corp\toidc\tCorp SSO", "github\tgithub\tGitHub"]
    views = json.loads(run("connector", "list", "--json").stdout)
    assert [v["name"] for v in views] == ["corp", "github"]
    assert GITHUB_SECRET not in text + json.dumps(views) and CORP_SECRET not in json.dumps(views)


def test_connector_show_never_prints_the_secret(run):
    view = json.loads(run("connector", "show", "corp", "--json").stdout)
    assert view == {
        "name": "corp", "kind": "oidc", "display_name": "Corp SSO", "client_id": "corp-client",
        "client_secret": "set", "scopes": "openid email profile", "match_email": True, "signup": False,
        "trust_mfa": False, "issuer": "https://sso.corp.example",
        "callback_url": "http://127.0.0.1:5000/federation/corp/callback",
    }
    text = run("connector", "show", "github").stdout
    assert "callback_url: http://127.0.0.1:5000/federation/github/callback" in text
    assert "github_api_url: https://api.github.com" in text
    assert GITHUB_SECRET not in text


def test_connector_show_unknown(run):
    _one_line_error(run("connector", "show", "nope", ok=False), "no connector named 'nope'")


def _account_with_links(app, run, username, *, password: bool, providers):
    args = ["user", "create", username, "--email", f"{username}@example.com"]
    if password:
        run(*args, "--password-stdin", input="correct horse battery staple\n")
    else:
        run(*args)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == username))
        for provider, subject in providers:
            db.session.add(FederatedIdentity(account_id=account.id, provider=provider, subject=subject,
                                             username=f"{username}-{provider}"))
        db.session.commit()


def _audit(app, event):
    with app.app_context():
        return [(e.outcome, e.reason, e.account, e.detail) for e in
                db.session.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))]


def test_user_links_and_unlink(app, run):
    _account_with_links(app, run, "carol", password=True, providers=[("github", "42"), ("corp", "c-1")])
    assert run("user", "links", "carol").stdout.splitlines() == ["corp\tc-1\tcarol-corp", "github\t42\tcarol-github"]
    views = json.loads(run("user", "links", "carol", "--json").stdout)
    assert [(v["provider"], v["subject"]) for v in views] == [("corp", "c-1"), ("github", "42")]
    assert run("user", "unlink", "carol", "github").stdout == "unlinked github from carol\n"
    assert [v["provider"] for v in json.loads(run("user", "links", "carol", "--json").stdout)] == ["corp"]
    assert ("success", None, "carol", {"provider": "github", "by": "admin", "forced": False}) in \
        _audit(app, "account:federated-identity:unlinked")


def test_user_unlink_refuses_the_last_way_to_sign_in_unless_forced(app, run):
    _account_with_links(app, run, "dave", password=False, providers=[("github", "77")])
    _one_line_error(run("user", "unlink", "dave", "github", ok=False), "last way dave can sign in", "--force")
    assert run("user", "links", "dave").stdout.startswith("github\t77")
    assert ("failure", "last_way_to_sign_in", "dave", {"provider": "github", "by": "admin"}) in \
        _audit(app, "account:federated-identity:unlinked")
    run("user", "unlink", "dave", "github", "--force")
    assert run("user", "links", "dave").stdout == "(no linked identities)\n"


def test_user_unlink_errors(app, run):
    _one_line_error(run("user", "unlink", "nobody", "github", ok=False), "no account named 'nobody'")
    _one_line_error(run("user", "links", "nobody", ok=False), "no account named 'nobody'")
    run("user", "create", "erin")
    _one_line_error(run("user", "unlink", "erin", "github", ok=False), "erin has no identity linked at 'github'")
