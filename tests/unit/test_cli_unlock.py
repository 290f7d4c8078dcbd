"""``oidc-provider user unlock NAME``, ``user reset-mfa NAME``, and the lockout and factors in
``user show`` (issue 3: "a temporary
lockout an admin can see and lift"), run with CliRunner against the test database, so it runs
on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.authn import throttle
from oidc_provider.cli import main
from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.models import AuditEvent, BrowserSession, RecoveryCode

from ..conftest import DATABASE_URL, ISSUER
from ..helpers import make_user


@pytest.fixture
def run(app):
    env = {
        "OIDC_ISSUER": ISSUER, "OIDC_SECRET_KEY": "cli-unlock-secret-" + "u" * 32,
        "OIDC_DATABASE_URL": DATABASE_URL, "OIDC_ARGON2_TIME_COST": "1",
        "OIDC_ARGON2_MEMORY_COST": "1024", "OIDC_ARGON2_PARALLELISM": "1", "OIDC_CONFIG_FILE": "",
    }
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def _lock(app, username, failures):
    with app.app_context():
        for _ in range(failures):
            throttle.fail([throttle.account_key(username)], now=utcnow())


def _show(run, username):
    result = run("user", "show", username, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["lockout"]


def test_5_2_2_show_reports_the_lockout_and_unlock_lifts_it(app, run):
    """NIST SP 800-63B §5.2.2: throttling must not lock a person out for good; the admin sees
    the count and the lock, and lifts it."""
    make_user(app)
    assert _show(run, "alice") is None
    assert run("user", "show", "alice").stdout.splitlines()[-1] == "lockout: none"
    # 11 failures: locked for 128 s, long enough for the test to see it on a slow machine.
    _lock(app, "Alice", 11)
    lockout = _show(run, "alice")
    assert lockout["failures"] == 11
    assert lockout["locked_until"].endswith("Z") and lockout["locked_until"] > lockout["last_failure_at"]
    text = run("user", "show", "alice").stdout.splitlines()
    assert text[-1] == (f"lockout: locked until {lockout['locked_until']} after 11 failed sign-ins "
                        "(lift with `user unlock`)")

    result = run("user", "unlock", "alice")
    assert (result.exit_code, result.stdout) == (0, "alice unlocked\n")
    assert _show(run, "alice") is None
    with app.app_context():
        assert throttle.check([throttle.account_key("alice")], now=utcnow()) is None
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "admin:account:updated"))
        assert [(r.account, r.detail) for r in rows] == [("alice", {"unlocked": True})]

    again = run("user", "unlock", "alice")
    assert (again.exit_code, again.stdout) == (0, "alice was not locked\n")


def test_5_2_2_show_lists_failures_below_the_lock(app, run):
    """Failures within the free allowance are shown, with no lock."""
    make_user(app)
    _lock(app, "alice", 2)
    assert {k: v for k, v in _show(run, "alice").items() if k != "last_failure_at"} == {
        "failures": 2, "locked_until": None}
    assert run("user", "show", "alice").stdout.splitlines()[-1] == (
        "lockout: not locked; 2 failed sign-ins in the last hour")


def test_unlock_of_an_unknown_account_is_a_one_line_error(app, run):
    result = run("user", "unlock", "nobody")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: no account named 'nobody'\n"


def test_unlock_also_lifts_a_lock_on_second_factor_codes(app, run):
    """Wrong TOTP or recovery codes lock the codes apart from the password; `user show` shows
    that lock and `user unlock` lifts it too."""
    make_user(app)
    with app.app_context():
        for _ in range(11):
            throttle.fail([throttle.code_key("alice")], now=utcnow())
    assert _show(run, "alice")["locked_until"] is not None
    assert run("user", "unlock", "alice").stdout == "alice unlocked\n"
    with app.app_context():
        assert throttle.check([throttle.code_key("alice")], now=utcnow()) is None


def _enroll(app):
    import pyotp

    factors = app.extensions["oidc_second_factors"]
    with app.test_request_context():
        account = admin_accounts.find_account("alice")
        sealed, shown = factors.begin_totp(account)
        assert factors.confirm_totp(account, sealed, pyotp.TOTP(shown["secret"]).now())


def test_show_lists_enrolled_factors_without_secrets(app, run):
    make_user(app)
    assert json.loads(run("user", "show", "alice", "--json").stdout)["factors"] == {
        "totp": None, "recovery_codes_left": 0, "passkeys": []}
    _enroll(app)
    shown = run("user", "show", "alice", "--json").stdout
    factors = json.loads(shown)["factors"]
    assert factors["totp"].endswith("Z") and factors["recovery_codes_left"] == 10
    assert "secret" not in shown and "argon2" not in shown
    assert "recovery codes left: 10" in run("user", "show", "alice").stdout


def test_reset_mfa_removes_every_second_factor_ends_sessions_and_is_audited(app, run):
    make_user(app)
    _enroll(app)
    with app.app_context():
        account = admin_accounts.find_account("alice")
        db.session.add(BrowserSession(id_digest="d" * 64, account_id=account.id, data={"account_id": account.id},
                                      created_at=utcnow(), last_seen_at=utcnow(),
                                      expires_at=utcnow() + timedelta(hours=1)))
        db.session.commit()
    result = run("user", "reset-mfa", "alice", "--yes")
    assert (result.exit_code, result.stdout) == (0, "alice: removed TOTP, 10 recovery codes; sessions ended\n")
    factors = json.loads(run("user", "show", "alice", "--json").stdout)["factors"]
    assert factors == {"totp": None, "recovery_codes_left": 0, "passkeys": []}
    with app.app_context():
        account = admin_accounts.find_account("alice")
        assert account.totp_secret_encrypted is None
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
        assert db.session.scalar(select(func.count()).select_from(BrowserSession).where(
            BrowserSession.account_id == account.id)) == 0
        assert [r.account for r in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event == "admin:account:mfa-reset"))] == ["alice"]
    again = run("user", "reset-mfa", "alice", "--yes")
    assert again.stdout == "alice: removed nothing (no second factor was enrolled); sessions ended\n"


def test_reset_mfa_asks_for_confirmation_and_refuses_unknown_accounts(app, run):
    make_user(app)
    _enroll(app)
    refused = run("user", "reset-mfa", "alice")  # no standard input: the confirmation aborts
    assert refused.exit_code == 1
    assert json.loads(run("user", "show", "alice", "--json").stdout)["factors"]["totp"] is not None
    unknown = run("user", "reset-mfa", "nobody", "--yes")
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: no account named 'nobody'\n")
