"""Passkeys through the Flask test client with a software authenticator (W3C WebAuthn Level 3;
issue 3 "Passkeys"): registration (§7.1), username-less sign-in (§7.2 with a discoverable
credential) reaching ``phr``, a passkey as the second factor after a password reaching ``mfa``,
single-use challenges that expire after five minutes, origin and RP ID checks, the signCount
rule, management (rename, remove, the last way to sign in) and bad input, which always gets a
JSON error and changes nothing.

The provider runs with issuer ``http://localhost:5000``: the RP ID is then ``localhost`` and the
allowed origin ``http://localhost:5000``, which is what ``SoftwareAuthenticator`` uses.
"""

from __future__ import annotations

import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from oidc_provider.authn.passkeys import PasskeyError
from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent, Passkey, WebAuthnChallenge

from ..helpers import PASSWORD, Browser, csrf_token, make_client, make_user
from ..spec._support import (
    SESSION_COOKIE,
    age_login,
    at_login,
    query_of,
    redirected_to_client,
    start,
    urlpath,
    verified_claims,
)
from ..unit.authn._authenticator import SoftwareAuthenticator

ISSUER = "http://localhost:5000"


@pytest.fixture
def app(app_factory):
    return app_factory(issuer=ISSUER)


@pytest.fixture
def alice(app):
    return make_user(app)


@pytest.fixture
def rp(app):
    return make_client(app, trusted=True)


# ---- helpers ----

def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def page_csrf(browser, path: str) -> str:
    page = browser.http.get(path)
    assert page.status_code == 200, (path, page.status_code)
    match = re.search(r'data-csrf="([^"]+)"', page.text) or re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def call(browser, path: str, body=None, *, csrf: str, method: str = "POST", **kw):
    if body is not None:
        kw["json"] = body
    return browser.http.open(path, method=method, headers={"X-CSRFToken": csrf}, **kw)


def sign_in_with_password(browser, username="alice") -> None:
    page = browser.http.get("/login")
    response = browser.http.post("/login", data={"csrf_token": csrf_token(page.text), "username": username,
                                                 "password": PASSWORD})
    assert response.status_code == 302, response.status_code


def register(browser, authenticator: SoftwareAuthenticator, name="Laptop", **create_kw):
    """The account page's "Add a passkey": options, ``create()``, verify. Returns the response."""
    csrf = page_csrf(browser, "/login")
    options = call(browser, "/passkeys/register/options", {}, csrf=csrf)
    assert options.status_code == 200, options.json
    authenticator.user_handle = b64url_decode(options.json["user"]["id"])
    credential = authenticator.create(b64url_decode(options.json["challenge"]), **create_kw)
    return call(browser, "/passkeys/register", {"credential": credential, "name": name}, csrf=csrf)


def registered(app, browser, **authenticator_kw) -> SoftwareAuthenticator:
    """Alice signs in with her password, registers a passkey and signs out."""
    authenticator = SoftwareAuthenticator(**authenticator_kw)
    sign_in_with_password(browser)
    assert register(browser, authenticator).status_code == 201
    browser.http.post("/account/logout", data={"csrf_token": page_csrf(browser, "/account")})
    return authenticator


def login_options(browser, pid=None) -> tuple[dict, str]:
    csrf = page_csrf(browser, "/login" + (f"?p={pid}" if pid else ""))
    # As passkeys.js does: the pending request goes with the options call too (its CSRF token).
    options = call(browser, "/passkeys/login/options", {"p": pid} if pid else {}, csrf=csrf)
    assert options.status_code == 200, options.json
    return options.json, csrf


def passkey_login(browser, authenticator, *, pid=None, **get_kw):
    """The login page's "Sign in with a passkey"."""
    options, csrf = login_options(browser, pid)
    credential = authenticator.get(b64url_decode(options["challenge"]), **get_kw)
    return call(browser, "/passkeys/login", {"credential": credential, "p": pid}, csrf=csrf)


def passkey_verify(browser, authenticator, *, pid=None, csrf=None, **get_kw):
    """"Use a passkey" for a signed-in person (step-up page, fresh authentication)."""
    csrf = csrf or page_csrf(browser, "/login")
    options = call(browser, "/passkeys/verify/options", {}, csrf=csrf)
    assert options.status_code == 200, options.json
    credential = authenticator.get(b64url_decode(options.json["challenge"]), **get_kw)
    return call(browser, "/passkeys/verify", {"credential": credential, "p": pid}, csrf=csrf)


def stored(app) -> list[Passkey]:
    with app.app_context():
        rows = list(db.session.scalars(select(Passkey).order_by(Passkey.id)))
        db.session.expunge_all()
        return rows


def snapshot(app) -> dict:
    """What bad input must never change."""
    with app.app_context():
        return {
            "passkeys": [(p.id, p.name, p.sign_count, p.last_used_at) for p in db.session.scalars(select(Passkey))],
            "challenges": db.session.scalar(select(func.count()).select_from(WebAuthnChallenge)),
            "handles": list(db.session.scalars(select(Account.webauthn_user_handle))),
        }


def reasons(app, event: str) -> list[str | None]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.reason).where(AuditEvent.event == event)
                                       .order_by(AuditEvent.id)))


def signed_in(browser) -> dict | None:
    """The session's login as the account page shows it (None when signed out)."""
    page = browser.http.get("/account")
    return None if page.status_code == 302 else {"status": page.status_code}


def pid_of(response) -> str:
    assert at_login(response), response.headers.get("Location")
    return query_of(response.headers["Location"])["p"]


# ---- §7.1 registration ----

def test_7_1_registration_stores_the_credential_record(app, browser, alice):
    """§7.1 "Create and store a new credential record": id, public key, signCount, transports,
    backup flags, and whether the user was verified; the account page lists it by name."""
    authenticator = SoftwareAuthenticator(backup_eligible=True, backed_up=True, sign_count=7)
    sign_in_with_password(browser)
    response = register(browser, authenticator, name="  Work   laptop ")
    assert response.status_code == 201, response.json
    assert response.json["passkey"]["name"] == "Work laptop"
    [row] = stored(app)
    assert (row.credential_id, row.public_key, row.sign_count) == (
        authenticator.credential_id, authenticator.cose_public_key, 7)
    assert (row.backup_eligible, row.backup_state, row.user_verified_at_registration) == (True, True, True)
    assert (row.transports, row.aaguid) == (["hybrid", "internal"], "adce0002-35bc-c60a-648b-0b25f1f05503")
    assert "Work laptop" in browser.http.get("/account/passkeys").text
    assert reasons(app, "account:passkey:registered") == [None]


def test_5_4_registration_options_ask_for_a_discoverable_credential_and_exclude_registered_ones(app, browser, alice):
    """§5.4.6 residentKey "required" (username-less sign-in needs a discoverable credential);
    §5.4 excludeCredentials lists the account's passkeys so an authenticator makes no second."""
    sign_in_with_password(browser)
    first = SoftwareAuthenticator()
    assert register(browser, first).status_code == 201
    csrf = page_csrf(browser, "/login")
    assert passkey_verify(browser, first, csrf=csrf).status_code == 200  # a second one needs phr
    options = call(browser, "/passkeys/register/options", {}, csrf=csrf).json
    assert options["rp"] == {"id": "localhost", "name": "Single sign-on"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert [d["id"] for d in options["excludeCredentials"]] == [
        base64.urlsafe_b64encode(first.credential_id).rstrip(b"=").decode()]


def test_14_6_1_user_handle_is_64_random_bytes_not_the_username(app, browser, alice):
    """§14.6.1: "It is RECOMMENDED to let the user handle be 64 random bytes"; it must not
    contain the username or email. It stays the same for the account's later passkeys."""
    sign_in_with_password(browser)
    csrf = page_csrf(browser, "/login")
    handles = {call(browser, "/passkeys/register/options", {}, csrf=csrf).json["user"]["id"] for _ in range(2)}
    assert len(handles) == 1
    handle = b64url_decode(handles.pop())
    assert len(handle) == 64 and b"alice" not in handle
    with app.app_context():
        assert db.session.scalar(select(Account.webauthn_user_handle)) == handle


def test_7_1_a_credential_registered_to_one_account_is_refused_for_another(app, browser, alice):
    """§7.1: "Verify that the credentialId is not yet registered for any user. If the credentialId
    is already known then the Relying Party SHOULD fail this registration ceremony"."""
    authenticator = registered(app, browser)
    make_user(app, "bob")
    other = Browser(app)
    sign_in_with_password(other, "bob")
    before = snapshot(app)
    response = register(other, authenticator)
    assert (response.status_code, response.json["error"]) == (400, "passkey_refused")
    assert snapshot(app)["passkeys"] == before["passkeys"]
    assert reasons(app, "account:passkey:registered")[-1] == "already_registered"


def test_registration_needs_a_signed_in_person(app, browser, alice):
    csrf = page_csrf(browser, "/login")
    for path in ("/passkeys/register/options", "/passkeys/register", "/passkeys/verify/options", "/passkeys/verify"):
        response = call(browser, path, {}, csrf=csrf)
        assert (path, response.status_code, response.json["error"]) == (path, 401, "login_required")
    assert browser.http.get("/account/passkeys").headers["Location"] == "/login?next=/account/passkeys"


# ---- §7.2 username-less sign-in ----

def test_7_2_username_less_sign_in_with_user_verification_reaches_phr(app, browser, alice, rp):
    """A person with a passkey and no session opens an app asking for ``phr``, chooses "Sign in
    with a passkey" on the login page and lands back at the app, whose ID token says
    ``acr=phr`` and RFC 8176 ``amr`` ["hwk", "user"]; no password was typed."""
    authenticator = registered(app, browser)
    client_id, secret = rp
    person = Browser(app)
    response, _ = start(person, client_id, acr_values="phr")
    pid = pid_of(response)
    assert "Sign in with a passkey" in person.http.get(response.headers["Location"]).text

    signed = passkey_login(person, authenticator, pid=pid)
    assert signed.status_code == 200, signed.json
    assert signed.json == {"acr": "phr", "next": f"/authorize/continue/{pid}"}
    result = redirected_to_client(person.follow(person.http.get(signed.json["next"])))
    tokens = person.redeem(client_id, secret, result["code"])
    claims = verified_claims(person.http, tokens.json["id_token"])
    assert (claims["acr"], claims["amr"]) == ("phr", ["hwk", "user"])
    [row] = stored(app)
    assert (row.sign_count, row.last_used_at is not None) == (authenticator.sign_count, True)
    assert reasons(app, "account:passkey-login:success") == [None]


def test_a_passkey_sign_in_for_a_pending_request_is_csrf_checked_against_that_request(app, browser, alice):
    """Login CSRF (RFC 6749 §10.12) on "Sign in with a passkey": for a pending request the
    login page's token is bound to that request, as the password form's is. Another request's
    token, the session's or none gets no challenge and signs nobody in; without ``p`` the
    session's token is still the one checked."""
    authenticator = registered(app, browser)
    client_id = make_client(app, trusted=True)[0]
    person = Browser(app)
    first, second = pid_of(start(person, client_id)[0]), pid_of(start(person, client_id)[0])
    first_token, second_token = page_csrf(person, f"/login?p={first}"), page_csrf(person, f"/login?p={second}")
    assert first_token != second_token
    session_token = page_csrf(person, "/login")
    for sent in (first_token, session_token, ""):
        refused = call(person, "/passkeys/login/options", {"p": second}, csrf=sent)
        assert (refused.status_code, refused.json["error"]) == (400, "invalid_request"), sent
    assert call(person, "/passkeys/login/options", {}, csrf=second_token).status_code == 400
    options = call(person, "/passkeys/login/options", {"p": second}, csrf=second_token)
    assert options.status_code == 200, options.json
    credential = authenticator.get(b64url_decode(options.json["challenge"]))
    refused = call(person, "/passkeys/login", {"credential": credential, "p": second}, csrf=first_token)
    assert refused.status_code == 400 and signed_in(person) is None
    signed = call(person, "/passkeys/login", {"credential": credential, "p": second}, csrf=second_token)
    assert signed.status_code == 200 and signed.json["next"] == f"/authorize/continue/{second}", signed.json
    assert "code" in redirected_to_client(person.follow(person.http.get(signed.json["next"])))


def test_passkey_sign_ins_from_two_tabs_with_no_session_both_complete(app, browser, alice):
    """Two login pages rendered before any session existed; a passkey sign-in in the first tab
    replaces the session, and the second tab's, with its page's token, still goes through."""
    authenticator = registered(app, browser)
    client_id = make_client(app, trusted=True)[0]
    person = Browser(app)
    tabs = [start(person, client_id) for _ in range(2)]
    tokens = [page_csrf(person, f"/login?p={pid_of(response)}") for response, _ in tabs]
    assert person.http.get_cookie(SESSION_COOKIE) is None
    for (response, params), token in zip(tabs, tokens, strict=True):
        pid = pid_of(response)
        options = call(person, "/passkeys/login/options", {"p": pid}, csrf=token)
        assert options.status_code == 200, options.json
        credential = authenticator.get(b64url_decode(options.json["challenge"]))
        signed = call(person, "/passkeys/login", {"credential": credential, "p": pid}, csrf=token)
        assert signed.status_code == 200, signed.json
        assert redirected_to_client(person.follow(person.http.get(signed.json["next"])))["state"] == params["state"]


def test_5_5_sign_in_options_allow_any_discoverable_credential_and_require_user_verification(app, browser):
    """§5.5 allowCredentials empty: the authenticator offers the person's discoverable credentials
    for this RP ID; userVerification "required" so that the passkey alone is two factors."""
    options, _ = login_options(browser)
    assert (options["rpId"], options["allowCredentials"], options["userVerification"]) == (
        "localhost", [], "required")
    assert len(b64url_decode(options["challenge"])) >= 16


def test_a_synced_passkey_gives_swk(app, browser, alice):
    """RFC 8176 "swk": a backup-eligible (synced) passkey is a software-secured key."""
    authenticator = registered(app, browser, backup_eligible=True)
    assert passkey_login(browser, authenticator, sign_count=0).json["acr"] == "phr"
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.detail).where(
            AuditEvent.event == "account:passkey-login:success"))["amr"] == ["swk", "user"]


def test_7_2_username_less_sign_in_without_user_verification_is_refused(app, browser, alice):
    """§7.2: "If user verification was determined to be required, verify that the UV bit of the
    flags in authData is set"."""
    authenticator = registered(app, browser)
    before = snapshot(app)
    response = passkey_login(browser, authenticator, uv=False)
    assert (response.status_code, response.json["error"]) == (400, "passkey_refused")
    assert signed_in(browser) is None
    assert snapshot(app)["passkeys"] == before["passkeys"]
    assert reasons(app, "account:passkey-login:failure") == ["user_verification_missing"]


def test_13_4_3_a_challenge_is_used_once(app, browser, alice):
    """§13.4.3: challenges are "never reused"; replaying a verified response is refused, in
    the session it was issued to (the sign-in spent it) and in any other (not its session)."""
    authenticator = registered(app, browser)
    options, csrf = login_options(browser)
    credential = authenticator.get(b64url_decode(options["challenge"]))
    assert call(browser, "/passkeys/login", {"credential": credential}, csrf=csrf).status_code == 200
    again = call(browser, "/passkeys/login", {"credential": credential}, csrf=page_csrf(browser, "/login"))
    replay = Browser(app)
    response = call(replay, "/passkeys/login", {"credential": credential}, csrf=page_csrf(replay, "/login"))
    for refused in (again, response):
        assert (refused.status_code, refused.json["error"]) == (400, "challenge_expired")
    assert signed_in(replay) is None
    assert reasons(app, "account:passkey-login:failure") == ["challenge_foreign_session"] * 2


def test_13_4_3_concurrent_uses_of_one_challenge_sign_in_once(app, browser, alice):
    """Challenges live in the database and are claimed by one conditional DELETE, so of several
    simultaneous uses of one response (as from several provider processes) exactly one wins."""
    authenticator = registered(app, browser)
    options, _ = login_options(browser)
    credential = authenticator.get(b64url_decode(options["challenge"]))
    barrier = threading.Barrier(4)

    def attempt(_):
        with app.test_request_context():
            try:
                barrier.wait()
                app.extensions["oidc_passkeys"].authenticate(credential)
                return "signed in"
            except PasskeyError as exc:
                return str(exc.reason)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(4) as pool:
        results = sorted(pool.map(attempt, range(4)))
    assert results == ["challenge_unknown"] * 3 + ["signed in"]


def test_a_failed_ceremony_spends_its_challenge_too(app, browser, alice):
    authenticator = registered(app, browser)
    options, csrf = login_options(browser)
    challenge = b64url_decode(options["challenge"])
    bad = call(browser, "/passkeys/login", {"credential": authenticator.get(challenge, origin="https://evil.example")},
               csrf=csrf)
    assert bad.status_code == 400
    again = call(browser, "/passkeys/login", {"credential": authenticator.get(challenge)}, csrf=csrf)
    assert (again.status_code, again.json["error"]) == (400, "challenge_expired")


def test_a_challenge_expires_after_five_minutes(app, browser, alice):
    """DESIGN: "challenges expire after 5 minutes"; §15.1 timeout 300 000 ms."""
    authenticator = registered(app, browser)
    options, csrf = login_options(browser)
    assert options["timeout"] == 300_000
    with app.app_context():
        row = db.session.scalar(select(WebAuthnChallenge))
        assert row.expires_at - row.created_at == timedelta(minutes=5)
        db.session.execute(update(WebAuthnChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    credential = authenticator.get(b64url_decode(options["challenge"]))
    response = call(browser, "/passkeys/login", {"credential": credential}, csrf=csrf)
    assert (response.status_code, response.json["error"]) == (400, "challenge_expired")
    assert signed_in(browser) is None
    assert reasons(app, "account:passkey-login:failure") == ["challenge_expired"]
    assert snapshot(app)["challenges"] == 0


def test_a_challenge_for_a_signed_in_person_is_not_a_username_less_one(app, browser, alice):
    """A challenge is bound to its ceremony and account: the one issued for Alice's step-up cannot
    sign anyone in from the login page."""
    authenticator = registered(app, browser)
    sign_in_with_password(browser)
    csrf = page_csrf(browser, "/login")
    options = call(browser, "/passkeys/verify/options", {}, csrf=csrf).json
    credential = authenticator.get(b64url_decode(options["challenge"]))
    other = Browser(app)
    response = call(other, "/passkeys/login", {"credential": credential}, csrf=page_csrf(other, "/login"))
    assert (response.status_code, response.json["error"]) == (400, "challenge_expired")


@pytest.mark.parametrize("get_kw, reason", [
    ({"origin": "https://evil.example"}, "origin_mismatch"),
    ({"origin": "http://localhost:5001"}, "origin_mismatch"),
    ({"rp_id": "evil.example"}, "rp_id_mismatch"),
    ({"rp_id": "sub.localhost"}, "rp_id_mismatch"),
    ({"type": "webauthn.create"}, "client_data_type"),
    ({"up": False}, "user_presence_missing"),
])
def test_7_2_wrong_origin_or_rp_id_is_refused_and_changes_nothing(app, browser, alice, get_kw, reason):
    """§7.2: "Verify that the value of C.origin is an origin expected by the Relying Party" and
    "Verify that the rpIdHash in authData is the SHA-256 hash of the RP ID expected by the
    Relying Party" (a phishing site gets neither right)."""
    authenticator = registered(app, browser)
    before = snapshot(app)
    response = passkey_login(browser, authenticator, **get_kw)
    assert (response.status_code, response.json["error"]) == (400, "passkey_refused")
    assert signed_in(browser) is None
    assert snapshot(app)["passkeys"] == before["passkeys"]
    assert reasons(app, "account:passkey-login:failure") == [reason]


def test_7_1_registration_from_a_wrong_origin_or_rp_id_is_refused(app, browser, alice):
    """§7.1: the same origin and RP ID checks when registering."""
    sign_in_with_password(browser)
    for create_kw, reason in (({"origin": "https://evil.example"}, "origin_mismatch"),
                              ({"rp_id": "evil.example"}, "rp_id_mismatch")):
        response = register(browser, SoftwareAuthenticator(), **create_kw)
        assert (response.status_code, response.json["error"]) == (400, "passkey_refused")
        assert reasons(app, "account:passkey:registered")[-1] == reason
    assert stored(app) == []


def test_7_2_unknown_credential_and_wrong_user_handle_are_refused(app, browser, alice):
    """§7.2: the account identified by response.userHandle must hold a credential record whose id
    equals credential.rawId."""
    authenticator = registered(app, browser)
    stranger = SoftwareAuthenticator()
    assert passkey_login(browser, stranger).status_code == 400
    authenticator.user_handle = b"\x00" * 64
    assert passkey_login(browser, authenticator).status_code == 400
    assert reasons(app, "account:passkey-login:failure") == ["unknown_credential", "user_handle_mismatch"]


def test_a_disabled_account_cannot_sign_in_with_its_passkey(app, browser, alice):
    authenticator = registered(app, browser)
    with app.app_context():
        db.session.execute(update(Account).values(disabled=True))
        db.session.commit()
    response = passkey_login(browser, authenticator)
    assert (response.status_code, signed_in(browser)) == (400, None)
    assert reasons(app, "account:passkey-login:failure") == ["account_disabled"]


@pytest.mark.parametrize("backup_eligible, counts, refused", [
    (False, [5, 3], True),
    (False, [5, 5], True),
    (False, [5, 0], True),
    (False, [5, 6], False),
    (True, [0, 0], False),
    (True, [5, 3], False),
])
def test_7_2_sign_count_regression_is_refused_unless_backup_eligible(app, browser, alice, backup_eligible, counts,
                                                                     refused):
    """§7.2 signCount: a counter that does not grow is "a signal ... that the authenticator may be
    cloned"; DESIGN: refused unless the credential is backup-eligible (synced copies share a key,
    not a counter). A refusal leaves the stored count as it was."""
    authenticator = registered(app, browser, backup_eligible=backup_eligible)
    first, second = counts
    assert passkey_login(browser, authenticator, sign_count=first).status_code == 200
    response = passkey_login(Browser(app), authenticator, sign_count=second)
    assert response.status_code == (400 if refused else 200)
    assert stored(app)[0].sign_count == (first if refused else second)
    if refused:
        assert reasons(app, "account:passkey-login:failure") == ["sign_count_regression"]


# ---- second factor and step-up ----

def test_passkey_as_second_factor_after_a_password_reaches_mfa(app, browser, alice, rp):
    """Issue 3: a passkey "as a second factor after a password". Alice's security key does not
    verify the user, so it proves possession only: password + key = ``mfa`` (RFC 8176 "pwd",
    "hwk", "mfa"), and the session id changes with the level."""
    authenticator = registered(app, browser)
    with app.app_context():
        db.session.execute(update(Passkey).values(user_verified_at_registration=False))
        db.session.commit()
        account = db.session.scalar(select(Account))
        assert app.extensions["oidc_second_factors"].methods_of(account) == ["pwd", "hwk"]
    client_id, secret = rp
    response, _ = start(browser, client_id, acr_values="mfa")
    response = browser.follow(browser.login(response))
    assert response.status_code == 302 and urlpath(response.headers["Location"]).startswith("/step-up/")
    step_up = response.headers["Location"]
    pid = step_up.rsplit("/", 1)[1]
    before = browser.http.get_cookie("oidc_session").value

    verified = passkey_verify(browser, authenticator, pid=pid, csrf=page_csrf(browser, step_up), uv=False)
    assert verified.json == {"acr": "mfa", "next": f"/authorize/continue/{pid}"}
    assert browser.http.get_cookie("oidc_session").value != before
    result = redirected_to_client(browser.follow(browser.http.get(verified.json["next"])))
    claims = verified_claims(browser.http, browser.redeem(client_id, secret, result["code"]).json["id_token"])
    assert (claims["acr"], claims["amr"]) == ("mfa", ["pwd", "hwk", "mfa"])
    assert reasons(app, "account:step-up:success") == [None]


def test_a_passkey_with_user_verification_after_a_password_reaches_phr(app, browser, alice, rp):
    """An app asking for ``phr`` from a person signed in with a password: only the passkey is
    asked for, and with user verification the session reaches ``phr``."""
    authenticator = registered(app, browser)
    client_id, secret = rp
    sign_in_with_password(browser)
    response, _ = start(browser, client_id, acr_values="phr")
    assert urlpath(response.headers["Location"]).startswith("/step-up/")
    pid = response.headers["Location"].rsplit("/", 1)[1]
    verified = passkey_verify(browser, authenticator, pid=pid, csrf=page_csrf(browser, response.headers["Location"]))
    assert verified.json["acr"] == "phr"
    result = redirected_to_client(browser.follow(browser.http.get(verified.json["next"])))
    claims = verified_claims(browser.http, browser.redeem(client_id, secret, result["code"]).json["id_token"])
    assert claims["acr"] == "phr" and set(claims["amr"]) == {"pwd", "hwk", "user", "mfa"}


def test_the_step_up_page_offers_a_passkey_only_to_someone_who_has_one(app, browser, alice, rp):
    client_id, _ = rp
    make_user(app, "bob")
    registered(app, browser)
    pages = {}
    for username in ("alice", "bob"):
        person = Browser(app)
        with app.app_context():  # both have TOTP, so both are sent to the step-up page
            account = db.session.scalar(select(Account).where(Account.username == username))
            account.totp_enabled_at = utcnow()
            db.session.commit()
        sign_in_with_password(person, username)
        response, _ = start(person, client_id, acr_values="mfa")
        assert urlpath(response.headers["Location"]).startswith("/step-up/")
        pages[username] = person.http.get(response.headers["Location"]).text
    assert "Use a passkey" in pages["alice"] and 'src="/static/passkeys.js"' in pages["alice"]
    assert "Use a passkey" not in pages["bob"]


def test_verify_options_name_only_the_signed_in_persons_passkeys(app, browser, alice):
    """§5.5 allowCredentials: for a known account, its own credentials."""
    authenticator = registered(app, browser)
    make_user(app, "bob")
    registered_for_bob = Browser(app)
    sign_in_with_password(registered_for_bob, "bob")
    assert register(registered_for_bob, SoftwareAuthenticator()).status_code == 201
    sign_in_with_password(browser)
    options = call(browser, "/passkeys/verify/options", {}, csrf=page_csrf(browser, "/login")).json
    assert [b64url_decode(d["id"]) for d in options["allowCredentials"]] == [authenticator.credential_id]
    assert options["userVerification"] == "preferred"


def test_bobs_passkey_does_not_step_up_alices_session(app, browser, alice):
    make_user(app, "bob")
    bob = Browser(app)
    sign_in_with_password(bob, "bob")
    bobs_key = SoftwareAuthenticator()
    assert register(bob, bobs_key).status_code == 201
    sign_in_with_password(browser)
    response = passkey_verify(browser, bobs_key)
    assert (response.status_code, response.json["error"]) == (400, "passkey_refused")
    assert reasons(app, "account:passkey-login:failure") == ["unknown_credential"]


# ---- management ----

def test_rename_a_passkey(app, browser, alice):
    sign_in_with_password(browser)
    register(browser, SoftwareAuthenticator())
    [row] = stored(app)
    csrf = page_csrf(browser, "/login")
    response = call(browser, f"/account/passkeys/{row.id}", {"name": "Phone"}, csrf=csrf, method="PATCH")
    assert (response.status_code, response.json["passkey"]["name"]) == (200, "Phone")
    assert stored(app)[0].name == "Phone"
    assert reasons(app, "account:passkey:renamed") == [None]


def test_someone_elses_passkey_is_not_found(app, browser, alice):
    sign_in_with_password(browser)
    register(browser, SoftwareAuthenticator())
    [row] = stored(app)
    make_user(app, "bob")
    bob = Browser(app)
    sign_in_with_password(bob, "bob")
    csrf = page_csrf(bob, "/login")
    before = snapshot(app)
    for method, body in (("PATCH", {"name": "Mine now"}), ("DELETE", {})):
        response = call(bob, f"/account/passkeys/{row.id}", body, csrf=csrf, method=method)
        assert (method, response.status_code, response.json["error"]) == (method, 404, "not_found")
    assert snapshot(app) == before


def test_removing_a_passkey_needs_a_fresh_sign_in_at_its_level(app, browser, alice):
    """Issue 3: "Removing a factor requires a fresh authentication at the level that factor
    gives": a passkey with user verification gives ``phr``; a password session is not enough,
    nor a passkey session older than ten minutes."""
    authenticator = registered(app, browser)
    [row] = stored(app)
    sign_in_with_password(browser)
    csrf = page_csrf(browser, "/login")
    response = call(browser, f"/account/passkeys/{row.id}", csrf=csrf, method="DELETE")
    assert response.status_code == 403
    assert (response.json["error"], response.json["level"], response.json["max_age"]) == (
        "fresh_authentication_required", "phr", 600)
    assert len(stored(app)) == 1

    assert passkey_verify(browser, authenticator, csrf=csrf).json["acr"] == "phr"
    age_login(app, browser, 601)
    assert call(browser, f"/account/passkeys/{row.id}", csrf=csrf, method="DELETE").status_code == 403

    assert passkey_verify(browser, authenticator, csrf=csrf).status_code == 200
    response = call(browser, f"/account/passkeys/{row.id}", csrf=csrf, method="DELETE")
    assert (response.status_code, response.json) == (200, {"removed": row.id})
    assert stored(app) == []
    assert reasons(app, "account:passkey:removed") == [None]
    assert _recovery_codes_left(app) == 0, "no second factor left: its recovery codes went with it"


def test_the_last_way_to_sign_in_cannot_be_removed(app, browser, alice):
    """Issue 3: "a person may not delete their last way to sign in (409 with an explanation)":
    no password and only this passkey. With a second passkey the first may go."""
    authenticator = registered(app, browser)
    with app.app_context():
        db.session.execute(update(Account).values(password_hash=None))
        db.session.commit()
    assert passkey_login(browser, authenticator).json["acr"] == "phr"
    [row] = stored(app)
    csrf = page_csrf(browser, "/login")
    response = call(browser, f"/account/passkeys/{row.id}", csrf=csrf, method="DELETE")
    assert (response.status_code, response.json["error"]) == (409, "last_sign_in_method")
    assert "only way you can sign in" in response.json["error_description"]
    assert len(stored(app)) == 1

    assert register(browser, SoftwareAuthenticator(), name="Spare").status_code == 201
    assert call(browser, f"/account/passkeys/{row.id}", csrf=csrf, method="DELETE").status_code == 200
    assert [p.name for p in stored(app)] == ["Spare"]


def test_a_linked_upstream_sign_in_counts_as_another_way_to_sign_in(app, browser, alice):
    """Without a password, the only passkey may go when a GitHub (or other upstream) sign-in is
    linked: the person can still sign in."""
    from oidc_provider.models import FederatedIdentity

    authenticator = registered(app, browser)
    with app.app_context():
        db.session.execute(update(Account).values(password_hash=None))
        account = db.session.scalar(select(Account))
        db.session.add(FederatedIdentity(account_id=account.id, provider="github", subject="42"))
        db.session.commit()
    assert passkey_login(browser, authenticator).json["acr"] == "phr"
    [row] = stored(app)
    response = call(browser, f"/account/passkeys/{row.id}", csrf=page_csrf(browser, "/login"),
                    method="DELETE")
    assert response.status_code == 200 and stored(app) == []


# ---- bad input: a JSON error, never a 500, nothing changed ----

GARBAGE = {
    "not json": dict(data="{not json", content_type="application/json"),
    "json array": dict(json=[]),
    "json string": dict(json="credential"),
    "deeply nested": dict(data="[" * 60_000, content_type="application/json"),
    "form encoded": dict(data={"credential": "x"}),
    "no body": {},
    "credential a string": dict(json={"credential": "{}"}),
    "credential empty": dict(json={"credential": {}}),
    "credential null": dict(json={"credential": None}),
    "credential without response": dict(json={"credential": {"id": "AA", "rawId": "AA", "type": "public-key"}}),
    "clientDataJSON not base64": dict(json={"credential": {
        "id": "AA", "rawId": "AA", "type": "public-key", "response": {
            "clientDataJSON": "!!!", "attestationObject": "!!!", "authenticatorData": "!!!", "signature": "!!!"}}}),
    "clientDataJSON without a challenge": dict(json={"credential": {
        "id": "AA", "rawId": "AA", "type": "public-key", "response": {
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0", "attestationObject": "oA",
            "authenticatorData": "AA", "signature": "AA"}}}),
    "empty response, oversized id": dict(json={"credential": {"id": "A" * 1400, "rawId": "A" * 1400,
                                                              "type": "public-key", "response": {}}}),
    "too large": dict(data="x" * 70_000, content_type="application/json"),
}


@pytest.mark.parametrize("path", ["/passkeys/login", "/passkeys/register", "/passkeys/verify"])
@pytest.mark.parametrize("body", list(GARBAGE.values()), ids=list(GARBAGE))
def test_malformed_bodies_get_a_json_400_and_change_nothing(app, browser, alice, path, body):
    """DESIGN "What bad input gets": a clear error in the protocol's shape, nothing changed,
    never a 500."""
    authenticator = registered(app, browser)
    sign_in_with_password(browser)
    csrf = page_csrf(browser, "/login")
    assert passkey_verify(browser, authenticator, csrf=csrf).status_code == 200  # may add another
    for options in ("/passkeys/login/options", "/passkeys/register/options", "/passkeys/verify/options"):
        assert call(browser, options, {}, csrf=csrf).status_code == 200
    before = snapshot(app)
    response = browser.http.post(path, headers={"X-CSRFToken": csrf}, **body)
    assert response.status_code == (413 if body is GARBAGE["too large"] else 400)
    assert response.mimetype == "application/json"
    assert response.json["error"] == "invalid_request"
    assert isinstance(response.json["error_description"], str)
    assert snapshot(app) == before


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, 42, None, ["a"], "tab\tand\x07bell"])
def test_a_bad_passkey_name_is_refused(app, browser, alice, name):
    sign_in_with_password(browser)
    register(browser, SoftwareAuthenticator(), name="Laptop")
    [row] = stored(app)
    csrf = page_csrf(browser, "/login")
    before = snapshot(app)
    response = call(browser, f"/account/passkeys/{row.id}", {"name": name}, csrf=csrf, method="PATCH")
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")
    assert snapshot(app) == before


def test_a_bad_name_at_registration_spends_nothing(app, browser, alice):
    sign_in_with_password(browser)
    authenticator = SoftwareAuthenticator()
    response = register(browser, authenticator, name="x" * 65)
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")
    assert stored(app) == [] and snapshot(app)["challenges"] == 1


def test_a_missing_csrf_token_is_a_json_400(app, browser, alice):
    """The JSON endpoints are CSRF-protected through the X-CSRFToken header."""
    sign_in_with_password(browser)
    for path in ("/passkeys/login/options", "/passkeys/register/options", "/passkeys/login"):
        response = browser.http.post(path, json={})
        assert (path, response.status_code, response.json["error"]) == (path, 400, "invalid_request")
    assert snapshot(app)["challenges"] == 0


def test_an_unknown_method_or_id_is_json_not_a_500(app, browser, alice):
    sign_in_with_password(browser)
    csrf = page_csrf(browser, "/login")
    assert browser.http.get("/passkeys/login").status_code == 405
    response = call(browser, "/account/passkeys/999999", {"name": "x"}, csrf=csrf, method="PATCH")
    assert (response.status_code, response.json["error"]) == (404, "not_found")
    assert call(browser, "/passkeys/login", {"credential": {}}, csrf=csrf, method="PUT").status_code == 405


# ---- configuration ----

def test_passkeys_are_off_under_an_ip_address_issuer(app_factory, alice):
    """Browsers refuse WebAuthn when the RP ID would be an IP address: with issuer
    ``http://127.0.0.1:5000`` and no OIDC_WEBAUTHN_RP_ID, there is no passkey button and the
    endpoints say so."""
    app = app_factory()
    browser = Browser(app)
    page = browser.http.get("/login")
    assert "passkey" not in page.text
    response = call(browser, "/passkeys/login/options", {}, csrf=csrf_token(page.text))
    assert (response.status_code, response.json["error"]) == (404, "passkeys_unavailable")


def test_configured_rp_id_and_origins_are_used(app_factory, alice):
    """OIDC_WEBAUTHN_RP_ID / OIDC_WEBAUTHN_ORIGINS: a passkey for the parent domain, used from an
    allowed origin on a subdomain."""
    app = app_factory(issuer="https://id.example.com", webauthn_rp_id="example.com",
                      webauthn_origins="https://id.example.com https://login.example.com")
    http = app.test_client()
    page = http.get("/login", base_url="https://id.example.com")
    assert "Sign in with a passkey" in page.text
    options = http.post("/passkeys/login/options", json={}, base_url="https://id.example.com",
                                headers={"X-CSRFToken": csrf_token(page.text),
                                         "Referer": "https://id.example.com/login"})
    assert options.json["rpId"] == "example.com"


def test_methods_of_an_account_name_its_passkeys_and_reset_mfa_removes_them(app, browser, alice):
    """The ladder sees what a passkey can prove (``SecondFactors.methods_of``): a synced one with
    user verification is "swk" + "user" and reaches ``phr``; ``oidc-provider user reset-mfa``
    (for someone who lost every factor) removes passkeys with the other factors."""
    registered(app, browser, backup_eligible=True)
    factors = app.extensions["oidc_second_factors"]
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert factors.methods_of(account) == ["pwd", "swk", "user"]
        assert app.extensions["oidc_settings"].ladder.level_of(factors.methods_of(account)) == "phr"
        factors.reset(account)
        db.session.commit()
        assert factors.methods_of(account) == ["pwd"]
    assert stored(app) == []


def _recovery_codes_left(app) -> int:
    from oidc_provider.models import RecoveryCode

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_(None)))


def test_the_first_passkey_brings_recovery_codes_once_and_the_last_one_takes_them(app, browser, alice):
    """Issue 3: recovery codes are "generated at first second-factor enrollment, shown once":
    a passkey is a second factor too. They back up second factors, so removing the last one
    drops them."""
    sign_in_with_password(browser)
    laptop = SoftwareAuthenticator()
    first = register(browser, laptop, name="Laptop")
    assert first.status_code == 201
    codes = first.json["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert _recovery_codes_left(app) == 10
    # Registering proved the new passkey: this session holds it. A new password-only one does not.
    browser.http.post("/account/logout", data={"csrf_token": page_csrf(browser, "/login")})
    sign_in_with_password(browser)
    refused = call(browser, "/passkeys/register/options", {}, csrf=page_csrf(browser, "/login"))
    assert (refused.status_code, refused.json["error"], refused.json["level"]) == (
        403, "fresh_authentication_required", "phr"), "a password session cannot add one beside a passkey"
    assert [row.name for row in stored(app)] == ["Laptop"]
    assert passkey_verify(browser, laptop).status_code == 200
    second = register(browser, SoftwareAuthenticator(), name="Phone")
    assert (second.status_code, second.json["recovery_codes"]) == (201, []), "shown once, not again"
    assert _recovery_codes_left(app) == 10

    factors = app.extensions["oidc_second_factors"]
    with app.test_request_context():
        account = db.session.scalar(select(Account))
        assert factors.use_recovery_code(account, codes[0])
    assert _recovery_codes_left(app) == 9

    laptop, phone = stored(app)
    with app.app_context():
        db.session.delete(db.session.get(Passkey, phone.id))
        db.session.commit()
    with app.test_request_context():
        account = db.session.scalar(select(Account))
        factors.drop_unused_recovery_codes(account)
        db.session.commit()
    assert _recovery_codes_left(app) == 9, "a passkey is still there"
    with app.app_context():
        db.session.delete(db.session.get(Passkey, laptop.id))
        db.session.commit()
    with app.test_request_context():
        factors.drop_unused_recovery_codes(db.session.scalar(select(Account)))
        db.session.commit()
    assert _recovery_codes_left(app) == 0


def test_the_account_confirm_page_offers_a_passkey_and_it_makes_the_session_fresh(app, browser, alice):
    """Someone whose second factor is a passkey confirms it's them with it (no code to type)."""
    authenticator = registered(app, browser)
    sign_in_with_password(browser)
    page = browser.http.get("/account/confirm?level=mfa&why=recovery-codes")
    assert page.status_code == 200 and "Use a passkey" in page.text
    csrf = page_csrf(browser, "/account/confirm?level=mfa")
    verified = passkey_verify(browser, authenticator, csrf=csrf)
    assert (verified.status_code, verified.json["next"]) == (200, "/account")
    regenerated = browser.http.post("/account/recovery-codes", data={"csrf_token": page_csrf(browser, "/account")})
    assert regenerated.status_code == 200 and regenerated.text.count("<li><code>") == 10


def test_an_old_user_verification_does_not_make_a_new_proof_without_it_fresh(app, browser, alice):
    """Freshness counts each method's own time: a session that reached phr an hour ago, then
    proves a passkey without user verification, is not a fresh phr sign-in, so the passkey
    (which gives phr) still cannot be removed."""
    authenticator = registered(app, browser)
    [row] = stored(app)
    response = passkey_login(browser, authenticator)
    assert response.status_code == 200 and response.json.get("acr", "phr") == "phr"
    age_login(app, browser, 3600)
    csrf = page_csrf(browser, "/login")
    assert passkey_verify(browser, authenticator, csrf=csrf, uv=False).status_code == 200
    refused = call(browser, f"/account/passkeys/{row.id}", csrf=csrf, method="DELETE")
    assert (refused.status_code, refused.json["error"]) == (403, "fresh_authentication_required")
    assert len(stored(app)) == 1


# ---- enrolling a passkey in the middle of an authorization request ----

def test_someone_without_a_passkey_asked_for_phr_adds_one_on_the_enrolment_page(app, browser, alice, rp):
    """DESIGN: "A user who has no factor strong enough is led through enrolling one": for
    ``phr`` that is a passkey (an authenticator app reaches only ``mfa``, so it is not offered).
    The new passkey is then proven once and the request goes on at ``phr``."""
    client_id, secret = rp
    response, _ = start(browser, client_id, acr_values="phr")
    response = browser.follow(browser.login(response))
    assert urlpath(response.headers["Location"]).startswith("/enroll/")
    enroll_page = response.headers["Location"]
    pid = enroll_page.rsplit("/", 1)[1]
    page = browser.http.get(enroll_page)
    assert "Add a passkey and continue" in page.text and 'id="totp-secret"' not in page.text
    typed = browser.http.post(enroll_page, data={"csrf_token": csrf_token(page.text), "code": "123456"})
    assert typed.status_code == 400, "no authenticator app on a phr enrolment"

    authenticator = SoftwareAuthenticator()
    added = register(browser, authenticator, name="Laptop")
    assert added.status_code == 201 and len(added.json["recovery_codes"]) == 10
    verified = passkey_verify(browser, authenticator, pid=pid, csrf=csrf_token(page.text))
    assert verified.json == {"acr": "phr", "next": f"/authorize/continue/{pid}"}
    result = redirected_to_client(browser.follow(browser.http.get(verified.json["next"])))
    claims = verified_claims(browser.http, browser.redeem(client_id, secret, result["code"]).json["id_token"])
    assert claims["acr"] == "phr"


def test_with_totp_enrolled_phr_asks_for_the_code_before_a_passkey_can_be_added(app, browser, alice, rp):
    """Review finding: the password alone must not be enough to add a factor beside an existing
    one. Asked for ``phr``, someone with TOTP first proves it (``mfa``), then adds a passkey."""
    import pyotp

    factors = app.extensions["oidc_second_factors"]
    with app.test_request_context():
        account = db.session.scalar(select(Account))
        sealed, shown = factors.begin_totp(account)
        assert factors.confirm_totp(account, sealed, pyotp.TOTP(shown["secret"]).now())
        account.totp_last_counter -= 1
        db.session.commit()
    client_id, _ = rp
    response, _ = start(browser, client_id, acr_values="phr")
    response = browser.follow(browser.login(response))
    assert urlpath(response.headers["Location"]).startswith("/step-up/")
    refused = call(browser, "/passkeys/register/options", {}, csrf=page_csrf(browser, response.headers["Location"]))
    assert (refused.status_code, refused.json["level"]) == (403, "mfa")
    step_up = response.headers["Location"]
    page = browser.http.get(step_up)
    stepped = browser.http.post(step_up, data={"csrf_token": csrf_token(page.text), "kind": "totp",
                                               "code": pyotp.TOTP(shown["secret"]).now()})
    assert stepped.status_code == 302
    response = browser.follow(stepped)
    assert urlpath(response.headers["Location"]).startswith("/enroll/")
    assert register(browser, SoftwareAuthenticator()).status_code == 201


@pytest.mark.parametrize("acr_values, expected", [("phr", "required"), ("mfa", "preferred")])
def test_7_2_step_up_options_require_user_verification_when_only_that_reaches_the_level(
        app, browser, alice, rp, acr_values, expected):
    """WebAuthn §5.4.6 / §7.2: a passkey without user verification reaches mfa at most, so a
    request for phr asks the authenticator for it ("required"); for mfa, "preferred" lets a
    security key without a PIN prove possession."""
    registered(app, browser)
    client_id, _ = rp
    sign_in_with_password(browser)
    response, _ = start(browser, client_id, acr_values=acr_values)
    step_up = response.headers["Location"]
    assert urlpath(step_up).startswith("/step-up/")
    pid = step_up.rsplit("/", 1)[1]
    options = call(browser, "/passkeys/verify/options", {"p": pid}, csrf=page_csrf(browser, step_up))
    assert options.status_code == 200 and options.json["userVerification"] == expected
    removal = call(browser, "/passkeys/verify/options", {"level": "phr"}, csrf=page_csrf(browser, step_up))
    assert removal.json["userVerification"] == "required"
    for garbage in ({"p": 5}, {"level": ["phr"]}, {"p": "nope"}):
        assert call(browser, "/passkeys/verify/options", garbage, csrf=page_csrf(browser, step_up)).json[
            "userVerification"] == "preferred"
