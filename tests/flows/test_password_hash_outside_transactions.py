"""Setting a password holds no database lock while argon2id and the policy check run (issue 12,
"No write lock during slow work"): ``oidc-provider user create`` / ``user set-password``, the
admin API's account creation and password set, and the account page's new password. Each hash
is watched: no transaction of the request is open, and another connection can write meanwhile
(on SQLite an open transaction holds the database's write lock)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from oidc_provider.authn.password_policy import PasswordPolicy
from oidc_provider.authn.passwords import Passwords
from oidc_provider.cli import main
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuthThrottle

from ..helpers import PASSWORD, make_user
from ._admin import API, admin_token, bearer
from .test_account_page import NEW_PASSWORD, post, sign_in

STRONG = "violet kettle moonrise"


@pytest.fixture
def watched(monkeypatch):
    """Every argon2id hash and policy check, with whether it ran outside any transaction while
    another connection could take the write lock."""
    seen: list[tuple[str, bool]] = []

    def another_writer_gets_in() -> bool:
        with db.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout = 200")  # waiting for a lock fails fast
                conn.commit()
            with conn.begin():
                conn.execute(update(AuthThrottle).where(AuthThrottle.key == "no-such-key").values(failures=0))
        return True

    def watch(name, original):
        def wrapper(*args, **kwargs):
            seen.append((name, not db.session().in_transaction() and another_writer_gets_in()))
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(Passwords, "hash", watch("hash", Passwords.hash))
    monkeypatch.setattr(PasswordPolicy, "problem", watch("policy", PasswordPolicy.problem))
    return seen


def _stored(app, username):
    with app.app_context():
        return db.session.scalar(select(Account.password_hash).where(Account.username == username))


def test_admin_api_create_and_set_password_hash_with_no_transaction_open(app, client, watched):
    token = admin_token(app, "ops")
    watched.clear()
    created = client.post(API + "/accounts", headers=bearer(token), json={"username": "carol", "password": STRONG})
    assert created.status_code == 201, created.json
    assert [name for name, _ in watched] == ["policy", "hash"] and all(ok for _, ok in watched), watched
    first = _stored(app, "carol")
    assert first and first.startswith("$argon2id$")

    watched.clear()
    done = client.put(API + "/accounts/carol/password", headers=bearer(token), json={"password": "amber orchard tide"})
    assert done.status_code == 200, done.json
    assert [name for name, _ in watched] == ["policy", "hash"] and all(ok for _, ok in watched), watched
    assert _stored(app, "carol") not in (None, first)


def test_admin_api_set_password_of_an_account_deleted_while_hashing_is_a_404(app, client, monkeypatch):
    """The hash runs between two transactions: the account may go meanwhile. A 404, not a 500."""
    token = admin_token(app, "ops")
    make_user(app, "carol")
    original = Passwords.hash

    def delete_carol_then_hash(self, password):
        with db.engine.begin() as conn:
            conn.execute(Account.__table__.delete().where(Account.username == "carol"))
        return original(self, password)

    monkeypatch.setattr(Passwords, "hash", delete_carol_then_hash)
    gone = client.put(API + "/accounts/carol/password", headers=bearer(token), json={"password": STRONG})
    assert (gone.status_code, gone.json["error"]) == (404, "not_found"), gone.json


def test_cli_user_create_and_set_password_hash_with_no_transaction_open(tmp_path, watched):
    env = {"OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": "cli-hash-secret-" + "s" * 32,
           "OIDC_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "OIDC_ARGON2_TIME_COST": "1",
           "OIDC_ARGON2_MEMORY_COST": "1024", "OIDC_ARGON2_PARALLELISM": "1", "OIDC_CONFIG_FILE": ""}
    runner = CliRunner()

    def run(*args, input=None):
        result = runner.invoke(main, list(args), input=input, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)

    run("init")
    watched.clear()
    run("user", "create", "alice", "--email", "alice@example.com", "--password-stdin", input=STRONG + "\n")
    run("user", "set-password", "alice", "--password-stdin", input="copper lantern drizzle\n")
    assert [name for name, _ in watched] == ["policy", "hash"] * 2 and all(ok for _, ok in watched), watched


def test_account_page_new_password_is_checked_and_hashed_with_no_transaction_open(app, browser, watched):
    make_user(app)
    sign_in(browser)
    stored = _stored(app, "alice")
    watched.clear()
    done = post(browser, "/account/password", "/account/password", current_password=PASSWORD,
                new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"].endswith("/account?done=password")
    assert [name for name, _ in watched] == ["policy", "hash"] and all(ok for _, ok in watched), watched
    assert _stored(app, "alice") != stored
