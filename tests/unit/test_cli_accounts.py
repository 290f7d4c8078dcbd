"""``oidc-provider user ...`` as operators expect it: usernames unique regardless of case and
found the same way, the password policy at ``user create`` and ``user set-password`` (one line
naming the rule), ``user update`` for email and display name (audited), ``dev``'s demo password,
and ``init`` on a database whose usernames clash by case (migration 0007)."""

from __future__ import annotations

import json
import secrets

import pytest
from click.testing import CliRunner
from flask_migrate import upgrade
from sqlalchemy import select, text

from oidc_provider import create_app
from oidc_provider.cli import main
from oidc_provider.cli.lifecycle import _create_demo
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent
from oidc_provider.settings import Settings

from ..conftest import settings_for

STRONG = "violet kettle moonrise"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-accounts") / "cli.db"
    return {
        "OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": "cli-accounts-secret-" + "s" * 32,
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

    invoke("init")
    invoke("user", "create", "alice", "--email", "alice@example.com", "--name", "Alice",
           "--email-verified", "--password-stdin", input=STRONG + "\n")
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


def _audit(env, event):
    app = create_app(Settings.from_env(env))
    with app.app_context():
        return [(e.account, e.detail) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))]


# ---- usernames, regardless of case

def test_creating_alice_in_other_case_is_refused_in_one_line(run):
    for name in ("Alice", "ALICE", "aLiCe"):
        _one_line_error(run("user", "create", name, "--password-stdin", input=STRONG + "\n", ok=False),
                        "an account named 'alice' already exists", "regardless of case")
    assert [u["username"] for u in _json(run("user", "list", "--json"))] == ["alice"]


def test_a_system_account_cannot_take_a_person_s_name_in_other_case(run):
    _one_line_error(run("service", "create", "ALICE", ok=False), "an account named 'alice' already exists")


def test_commands_find_the_account_whatever_the_case(run):
    shown = _json(run("user", "show", "ALICE", "--json"))
    assert shown["username"] == "alice", "kept as typed at creation"
    assert shown["sub"] == _json(run("user", "show", "alice", "--json"))["sub"]
    run("user", "create", "Bob.Smith", "--password-stdin", input=STRONG + " bob\n")
    assert _json(run("user", "show", "bob.smith", "--json"))["username"] == "Bob.Smith"
    _one_line_error(run("user", "show", "ålice", ok=False), "no account named 'ålice'")


# ---- the password policy (NIST SP 800-63B §3.1.1.2)

@pytest.mark.parametrize("password,rule", [
    ("short one", "password must be at least 15 characters"),
    ("password12345678", "password is too easy to guess (this is similar to a commonly used password)"),
    ("carol-is-my-password-now", "password must not contain your username"),
    ("send it all to CWright please", "password must not contain your email address"),
])
def test_user_create_refuses_a_weak_password_in_one_line(run, password, rule):
    _one_line_error(run("user", "create", "carol", "--email", "cwright@example.com", "--password-stdin",
                        input=password + "\n", ok=False), rule)
    _one_line_error(run("user", "show", "carol", ok=False), "no account named 'carol'")


def test_user_set_password_applies_the_policy(run, env):
    _one_line_error(run("user", "set-password", "alice", "--password-stdin", input="ALICE in wonderland\n",
                        ok=False), "password must not contain your username")
    _one_line_error(run("user", "set-password", "alice", "--password-stdin", input="qwertyuiopasdfgh\n",
                        ok=False), "password is too easy to guess")
    before = len(_audit(env, "admin:account:updated"))
    assert run("user", "set-password", "ALICE", "--password-stdin", input="copper lantern drizzle\n") \
        .stdout.strip() == "password set for ALICE"
    assert len(_audit(env, "admin:account:updated")) == before + 1


def test_the_minimum_length_is_a_setting(run):
    lower = {"OIDC_PASSWORD_MIN_LENGTH": "10"}
    run("user", "create", "dora", "--password-stdin", input="Wq7!vZ2kPz\n", extra_env=lower)
    _one_line_error(run("user", "create", "dora2", "--password-stdin", input="Wq7!vZ2kPz\n", ok=False),
                    "at least 15 characters")
    _one_line_error(run("user", "list", extra_env={"OIDC_PASSWORD_MIN_LENGTH": "6"}, ok=False),
                    "OIDC_PASSWORD_MIN_LENGTH must be between 8 and 64")


def test_dev_demo_password_passes_the_policy(run, env):
    """``oidc-provider dev`` makes its demo user through the same policy."""
    run("init")  # the module's database, whichever test of it runs first
    app = create_app(Settings.from_env(env))
    with app.app_context():
        demo = _create_demo(app.extensions["oidc_settings"])
        assert app.extensions["oidc_passwords"].policy.problem(demo["password"], username="demo") is None
        db.session.rollback()


# ---- user update

def test_user_update_changes_email_and_name_and_is_audited(run, env):
    run("user", "create", "erin", "--email", "erin@example.com", "--email-verified", "--name", "Erin",
        "--password-stdin", input=STRONG + "\n")
    out = run("user", "update", "ERIN", "--email", "erin@new.example", "--name", "Erin Example")
    assert out.stdout.strip() == "updated erin: email erin@new.example (unverified), name Erin Example"
    shown = _json(run("user", "show", "erin", "--json"))
    assert (shown["email"], shown["email_verified"], shown["name"]) == ("erin@new.example", False, "Erin Example")

    run("user", "update", "erin", "--email-verified")
    assert _json(run("user", "show", "erin", "--json"))["email_verified"] is True
    kept = _json(run("user", "update", "erin", "--email", "erin@third.example", "--email-verified", "--json"))
    assert (kept["email"], kept["email_verified"]) == ("erin@third.example", True)
    run("user", "update", "erin", "--no-email-verified", "--name", "")
    shown = _json(run("user", "show", "erin", "--json"))
    assert (shown["email_verified"], shown["name"]) == (False, None)

    changes = [d["changed"] for a, d in _audit(env, "admin:account:updated") if a == "erin"]
    assert changes == [["email", "email_verified", "name"], ["email_verified"], ["email", "email_verified"],
                       ["email_verified", "name"]]
    assert "erin@new.example" not in json.dumps(changes)


def test_user_update_errors_are_one_line(run):
    result = run("user", "update", "alice", ok=False)
    assert result.exit_code == 2 and "give --email, --name or --email-verified" in result.stderr
    _one_line_error(run("user", "update", "alice", "--email", "not-an-address", ok=False), "email must be an address")
    _one_line_error(run("user", "update", "nobody", "--name", "X", ok=False), "no account named 'nobody'")
    _one_line_error(run("user", "update", "alice", "--name", "n" * 201, ok=False), "at most 200 characters")


# ---- migration 0007 from the command line

def test_init_on_usernames_that_clash_by_case_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'clash.db'}"
    app = create_app(settings_for(database_url=url))
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory, revision="0006")
        with db.engine.begin() as conn:
            for username in ("dave", "Dave"):
                conn.execute(text("INSERT INTO account (subject, kind, username, email_verified, disabled) "
                                  "VALUES (:s, 'human', :u, false, false)"), {"s": secrets.token_hex(8), "u": username})
        db.engine.dispose()
    env = {"OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": "k" * 40, "OIDC_DATABASE_URL": url,
           "OIDC_CONFIG_FILE": ""}
    result = CliRunner().invoke(main, ["init"], env=env, catch_exceptions=False)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    # Alembic's own INFO lines may come first; the error is one line, the last.
    errors = [line for line in result.stderr.splitlines() if not line.startswith("INFO  [alembic")]
    assert len(errors) == 1 and errors[0].startswith("Error: cannot make usernames unique"), result.stderr
    assert "(migration 0007)" in errors[0] and "'Dave' and 'dave'" in errors[0]
    assert "UPDATE account SET username = 'dave-2' WHERE username = 'dave'" in errors[0]
    with app.app_context():
        assert sorted(db.session.scalars(select(Account.username))) == ["Dave", "dave"]
        db.session.remove()
        db.engine.dispose()
