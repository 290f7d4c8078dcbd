"""Secret-key lifecycle (issue 11): nothing is sealed under an ``OIDC_SECRET_KEY`` that does not
open what is stored, and ``oidc-provider secret-key rotate`` re-seals every sealed value
(signing keys, TOTP secrets, database credentials) under a new key in one transaction.

The commands run as an operator runs them (click, settings from the environment) on the test
database, so these tests run on SQLite and on PostgreSQL (OIDC_TEST_DATABASE_URL); the provider
is then rebuilt with the new settings and used through the Flask test client.
"""

from __future__ import annotations

import json
from datetime import datetime

import pyotp
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from oidc_provider import create_app
from oidc_provider.access.system_accounts import associated_data
from oidc_provider.cli import main
from oidc_provider.extensions import db
from oidc_provider.keys.encryption import DATABASE_CREDENTIALS, TOTP_SECRETS, Sealer
from oidc_provider.keys.store import KeysUnreadable
from oidc_provider.models import Account, AuditEvent, DatabaseCredential, SigningKey

from ..conftest import DATABASE_URL, ISSUER, settings_for
from ..helpers import Browser, csrf_token, make_client, make_user
from ..spec._support import SESSION_COOKIE, at_login, start
from .test_step_up import at, claims_after, enroll_totp, read_enrolment, submit_code
from .test_system_accounts import DB_PASSWORD, DSN, FETCH_PATH, SERVICE, cc_token, create_service, run

OLD = settings_for().secret_key
NEW = "the-new-secret-key-" + "n" * 32
WRONG = "a-wrong-secret-key-" + "w" * 32


def cli(*args, secret_key=OLD, previous="", stdin=None):
    env = {"OIDC_ISSUER": ISSUER, "OIDC_SECRET_KEY": secret_key, "OIDC_SECRET_KEY_PREVIOUS": previous,
           "OIDC_DATABASE_URL": DATABASE_URL, "OIDC_CONFIG_FILE": "", "OIDC_ARGON2_TIME_COST": "1",
           "OIDC_ARGON2_MEMORY_COST": "1024", "OIDC_ARGON2_PARALLELISM": "1"}
    return CliRunner().invoke(main, list(args), input=stdin, env=env, catch_exceptions=False)


def one_line_error(result, *fragments) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def stored_values(app) -> dict:
    """Every sealed column, by row: to prove that a refused command changed nothing."""
    with app.app_context():
        keys = {k.kid: (k.state, k.private_jwk_encrypted) for k in db.session.scalars(select(SigningKey))}
        totp = {a.username: a.totp_secret_encrypted for a in db.session.scalars(select(Account))}
        creds = [(c.dsn_sealed, c.password_sealed) for c in db.session.scalars(select(DatabaseCredential))]
        return {"keys": keys, "totp": totp, "credentials": creds}


def starts(app) -> bool:
    """What ``serve`` checks at start: the active keys open."""
    with app.app_context():
        try:
            app.extensions["oidc_server"].policy.keys.check()
        except KeysUnreadable:
            return False
    return True


@pytest.fixture
def everything_sealed(app):
    """alice with TOTP, a confidential client, a system account with database credentials."""
    make_user(app)
    totp_secret, _ = enroll_totp(app)
    client_id, client_secret = make_client(app, trusted=True)
    service = create_service(app)
    run(app, "services.set-database-credentials", {"name": SERVICE, "dsn": DSN, "password": DB_PASSWORD})
    return {"totp": totp_secret, "client": (client_id, client_secret), "service": service}


def mfa_login_works(app, sealed) -> None:
    """Password then TOTP code, and an ID token at ``mfa``: the TOTP secret and signing keys open."""
    with app.app_context():
        # Each code is accepted once (RFC 6238 §5.2): let this login use the current one again.
        alice = db.session.scalar(select(Account).where(Account.username == "alice"))
        alice.totp_last_counter = pyotp.TOTP(sealed["totp"]).timecode(datetime.now()) - 1
        db.session.commit()
    browser = Browser(app)
    client_id, client_secret = sealed["client"]
    response, _ = start(browser, client_id, acr_values="mfa")
    assert at_login(response)
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/")
    response = submit_code(browser, response, pyotp.TOTP(sealed["totp"]).now())
    claims = claims_after(browser, client_id, client_secret, response)
    assert claims["acr"] == "mfa"


def database_credentials_fetch(app, sealed) -> dict:
    http = app.test_client()
    token = cc_token(http, *sealed["service"]).json["access_token"]
    response = http.get(FETCH_PATH, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.json
    return response.json


# ---- a wrong OIDC_SECRET_KEY never seals anything ----

def test_keys_rotate_with_a_wrong_key_is_refused_and_the_next_rotation_leaves_a_provider_that_starts(app):
    """The issue's sequence: `keys rotate` with a wrong key (today: success, keys sealed under
    it), then `keys rotate` with the right key (today: a provider that does not start)."""
    before = stored_values(app)
    wrong = cli("keys", "rotate", secret_key=WRONG)
    one_line_error(wrong, "OIDC_SECRET_KEY does not open the signing keys stored in this database "
                          "(sealed under another key)", "nothing was changed")
    assert stored_values(app) == before
    assert cli("keys", "rotate").exit_code == 0
    assert starts(app)
    listed = json.loads(cli("keys", "list", "--json").stdout)
    assert all(k["readable"] for k in listed)


def test_storing_database_credentials_under_a_wrong_key_is_refused(app):
    """`init` and `serve` refuse too (tests/unit/test_cli_wrong_secret.py)."""
    create_service(app)
    before = stored_values(app)
    line = one_line_error(cli("service", "db-credentials", "set", SERVICE, "--dsn", DSN, "--password-stdin",
                              secret_key=WRONG, stdin=DB_PASSWORD + "\n"),
                          "OIDC_SECRET_KEY does not open the signing keys stored in this database")
    assert DB_PASSWORD not in line
    assert stored_values(app) == before


def test_revoking_with_a_wrong_key_is_refused(app):
    kid = json.loads(cli("keys", "list", "--json").stdout)[0]["kid"]
    before = stored_values(app)
    one_line_error(cli("keys", "revoke", kid, secret_key=WRONG), "does not open the signing keys")
    assert stored_values(app) == before


def test_a_database_left_with_keys_sealed_under_two_keys_is_recovered_by_revoking_the_unreadable_ones(app):
    """A database rotated by an older version with a wrong key, then with the right one: the
    active keys are sealed under the wrong key and the provider does not start. `keys list`
    names them, `keys revoke` withdraws them with the right key, and the provider starts. With
    the wrong key, the TOTP secrets it does not open stop it from withdrawing the good keys."""
    make_user(app)
    enroll_totp(app)
    broken = create_app(settings_for(secret_key=WRONG))
    with broken.app_context():
        keys = broken.extensions["oidc_server"].policy.keys
        for row in db.session.scalars(select(SigningKey).where(SigningKey.state == "active")):
            row.state = "retired"
        for row in db.session.scalars(select(SigningKey).where(SigningKey.state == "next")):
            row.state = "active"
        for alg in ("RS256", "ES256", "EdDSA"):
            keys.add(alg, "next")  # what the old `keys rotate` did under a wrong key
        db.session.commit()
    with app.app_context():
        for row in db.session.scalars(select(SigningKey).where(SigningKey.state == "active")):
            row.state = "retired"
        for row in db.session.scalars(select(SigningKey).where(SigningKey.state == "next")):
            row.state = "active"
        for alg in ("RS256", "ES256", "EdDSA"):
            app.extensions["oidc_server"].policy.keys.add(alg, "next")
        db.session.commit()
    broken.extensions["oidc_server"].policy.keys.invalidate()
    assert not starts(app)

    listed = json.loads(cli("keys", "list", "--json").stdout)
    unreadable = [k["kid"] for k in listed if not k["readable"]]
    assert len(unreadable) == 3 and {k["state"] for k in listed if not k["readable"]} == {"active"}
    assert "UNREADABLE" in cli("keys", "list").stdout
    one_line_error(cli("keys", "rotate"), *unreadable, "if this OIDC_SECRET_KEY is the right one",
                   "keys revoke")
    good = [k["kid"] for k in listed if k["readable"]]
    before = stored_values(app)
    one_line_error(cli("keys", "revoke", *good, secret_key=WRONG),
                   "does not open the TOTP secret of alice", "not the key this database was sealed with")
    assert stored_values(app) == before
    revoked = cli("keys", "revoke", *unreadable, "--json")
    assert revoked.exit_code == 0, revoked.stderr
    assert len(json.loads(revoked.stdout)["now_active"]) == 3
    app.extensions["oidc_server"].policy.keys.invalidate()
    assert starts(app)
    with app.app_context():
        states = {k.kid: k.state for k in db.session.scalars(select(SigningKey))}
        assert {states[kid] for kid in unreadable} == {"revoked"}
        assert app.extensions["oidc_server"].policy.keys.sign({"sub": "x"}, "RS256")


# ---- secret-key rotate ----

def test_secret_key_rotate_with_a_wrong_current_key_changes_nothing(app, everything_sealed):
    before = stored_values(app)
    line = one_line_error(cli("secret-key", "rotate", "--new-key-stdin", secret_key=WRONG, stdin=NEW + "\n"),
                          "OIDC_SECRET_KEY does not open the signing keys stored in this database (sealed under "
                          "another key)", "nor 3 other stored value(s)", "nothing was changed")
    assert DB_PASSWORD not in line and NEW not in line and WRONG not in line
    assert stored_values(app) == before


@pytest.mark.parametrize(("new_key", "why"), [
    ("short-key", "at least 32 bytes"), ("", "at least 32 bytes"), (OLD, "is the current OIDC_SECRET_KEY")])
def test_secret_key_rotate_refuses_a_short_or_unchanged_new_key(app, everything_sealed, new_key, why):
    before = stored_values(app)
    one_line_error(cli("secret-key", "rotate", "--new-key-stdin", stdin=new_key + "\n"), why)
    assert stored_values(app) == before


def test_secret_key_rotate_without_a_new_key_needs_the_previous_one(app):
    one_line_error(cli("secret-key", "rotate"), "--new-key-stdin", "OIDC_SECRET_KEY_PREVIOUS")


def test_secret_key_rotate_reseals_everything_and_a_provider_with_only_the_new_key_works(
        app, app_factory, everything_sealed, tmp_path):
    key_file = tmp_path / "new-key"
    key_file.write_text(NEW + "\n")
    done = cli("secret-key", "rotate", "--new-key-file", str(key_file), "--json")
    assert done.exit_code == 0, done.stderr
    counts = json.loads(done.stdout)
    assert (counts["signing_keys"], counts["totp_secrets"], counts["database_credentials"]) == (6, 1, 2)
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "admin:secret-key:rotated"))
        assert event.detail["signing_keys"] == 6 and NEW not in json.dumps(event.detail)

    assert not starts(app_factory(secret_key=OLD)), "the old key alone opens nothing any more"
    renewed = app_factory(secret_key=NEW)
    assert starts(renewed)
    mfa_login_works(renewed, everything_sealed)
    fetched = database_credentials_fetch(renewed, everything_sealed)
    assert (fetched["dsn"], fetched["password"]) == (DSN, DB_PASSWORD)
    assert cli("keys", "rotate", secret_key=NEW).exit_code == 0


def test_during_a_change_the_previous_key_opens_what_it_sealed(app, app_factory, everything_sealed):
    """Several processes: restarted with OIDC_SECRET_KEY=new and OIDC_SECRET_KEY_PREVIOUS=old
    before the re-key, they serve from values still sealed under the old key; `secret-key
    rotate` with those same settings then re-seals under the new key; OIDC_SECRET_KEY_PREVIOUS
    can go."""
    changing = app_factory(secret_key=NEW, secret_key_previous=OLD)
    assert starts(changing)
    mfa_login_works(changing, everything_sealed)
    assert database_credentials_fetch(changing, everything_sealed)["password"] == DB_PASSWORD
    # A page rendered by a process still on the old key, posted to one restarted with the new.
    old_browser = Browser(app)
    page = old_browser.get("/login")
    form = {"csrf_token": csrf_token(page.text), "username": "alice", "password": "wrong-password-here"}
    # Accepted: the wrong password is what is refused (401); without the previous key the
    # CSRF check refuses the form (400).
    for receiver, status in ((changing, 401), (app_factory(secret_key=NEW), 400)):
        http = receiver.test_client()
        http.set_cookie(SESSION_COOKIE, old_browser.http.get_cookie(SESSION_COOKIE).value)
        assert http.post("/login", data=form).status_code == status

    done = cli("secret-key", "rotate", "--json", secret_key=NEW, previous=OLD)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["mode"] == "previous key retired"
    only_new = app_factory(secret_key=NEW)
    assert starts(only_new)
    mfa_login_works(only_new, everything_sealed)
    assert database_credentials_fetch(only_new, everything_sealed)["dsn"] == DSN


def test_an_interrupted_rekey_loses_nothing(app, everything_sealed):
    """A value that does not open, stored after all the others (a database credential sealed
    under a third key): the re-key has already re-sealed the signing keys and the TOTP secret
    in its transaction when it meets it; it rolls back and everything still opens with the
    old key."""
    create_service(app, "late-job")
    with app.app_context():
        run(app, "services.set-database-credentials", {"name": "late-job", "dsn": DSN, "password": DB_PASSWORD})
        row = db.session.scalars(select(DatabaseCredential).order_by(DatabaseCredential.id.desc())).first()
        account = db.session.get(Account, row.account_id)
        row.password_sealed = Sealer(WRONG, DATABASE_CREDENTIALS).seal(b"x", associated_data(account, "password"))
        db.session.commit()
    before = stored_values(app)
    line = one_line_error(cli("secret-key", "rotate", "--new-key-stdin", stdin=NEW + "\n"),
                          "database credential of late-job (password)", "nothing was changed",
                          "service db-credentials set")
    assert "signing key" not in line
    assert stored_values(app) == before
    app.extensions["oidc_server"].policy.keys.invalidate()
    assert starts(app)
    mfa_login_works(app, everything_sealed)
    assert database_credentials_fetch(app, everything_sealed)["password"] == DB_PASSWORD


def test_a_totp_secret_sealed_under_a_key_this_process_lacks_is_refused_without_an_error(
        app, app_factory, everything_sealed):
    """While a change rolls out, a TOTP set up on a restarted process is sealed under the new
    key; a process not yet restarted refuses the code (not the person's fault: not throttled)
    instead of failing, and the restarted ones accept it."""
    with app.app_context():
        alice = db.session.scalar(select(Account).where(Account.username == "alice"))
        alice.totp_secret_encrypted = Sealer(NEW, TOTP_SECRETS).seal(everything_sealed["totp"].encode(),
                                                                     alice.subject.encode())
        db.session.commit()
    browser = Browser(app)
    response, _ = start(browser, everything_sealed["client"][0], acr_values="mfa")
    response = browser.follow(browser.login(response))
    refused = submit_code(browser, response, pyotp.TOTP(everything_sealed["totp"]).now())
    assert refused.status_code == 401
    with app.app_context():
        reasons = list(db.session.scalars(select(AuditEvent.reason).where(AuditEvent.event == "account:totp:failure")))
        assert reasons == ["secret_unreadable"]
    mfa_login_works(app_factory(secret_key=NEW, secret_key_previous=OLD), everything_sealed)


def test_a_totp_enrolment_waiting_in_a_session_starts_again_after_a_rekey(app, app_factory):
    make_user(app)
    client_id, _ = make_client(app, trusted=True)
    browser = Browser(app)
    response, _ = start(browser, client_id, acr_values="mfa")
    response = browser.follow(browser.login(response))
    location = response.headers["Location"]
    first = read_enrolment(browser.get(location).text)
    done = cli("secret-key", "rotate", "--new-key-stdin", "--json", stdin=NEW + "\n")
    assert json.loads(done.stdout)["pending_totp_enrolments_dropped"] == 1
    renewed = app_factory(secret_key=NEW).test_client()
    renewed.set_cookie(SESSION_COOKIE, browser.http.get_cookie(SESSION_COOKIE).value)
    pid = location.rsplit("/", 1)[1]
    pending = f"oidc_pending_{pid}"  # the authorization request's own cookie (issue 12)
    renewed.set_cookie(pending, browser.http.get_cookie(pending).value)
    page = renewed.get(location)
    assert page.status_code == 200
    assert read_enrolment(page.text) != first
