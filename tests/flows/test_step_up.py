"""Step-up and enrolment through the Flask test client (issue 3; DESIGN "Levels of
authentication"): logged out or in × the level asked for × the factors enrolled.

- Logged out and asked for ``mfa``: one journey, password then only the code.
- Logged in at ``pwd`` and asked for ``mfa``: only the missing factor, never the password again,
  and a new session id (the level changed).
- No factor strong enough: the enrolment page (QR code and the ``otpauth://`` URI in text),
  confirmed by a first valid code, then 10 recovery codes shown once.
- ``acr_values`` is voluntary (OIDC Core §3.1.2.1): "Not now" goes on at the level reached;
  an essential ``acr`` or a client minimum is binding (§5.5.1.1): "Cancel" is access_denied.
- ``prompt=none`` never downgrades silently (§3.1.2.6).
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import func, select

from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent, RecoveryCode

from ..helpers import WHEN_ASKED, csrf_token, make_client, make_user
from ..spec._support import (
    SESSION_COOKIE,
    at_login,
    redirected_to_client,
    start,
    tokens_for,
    urlpath,
    verified_claims,
)

ESSENTIAL_MFA = '{"id_token": {"acr": {"essential": true, "values": ["mfa"]}}}'


# ---- helpers ----

def enroll_totp(app, username="alice") -> tuple[str, list[str]]:
    """Give an account TOTP the way the enrolment page does; returns (secret, recovery codes)."""
    factors = app.extensions["oidc_second_factors"]
    with app.test_request_context():
        account = db.session.scalar(select(Account).where(Account.username == username))
        sealed, shown = factors.begin_totp(account)
        codes = factors.confirm_totp(account, sealed, pyotp.TOTP(shown["secret"]).now(), now=None)
        assert codes is not None
        # The first code was used at enrolment: step-up tests must not replay it.
        account.totp_last_counter -= 1
        db.session.commit()
        return shown["secret"], codes


def _page(browser, response):
    assert response.status_code == 302, (response.status_code, response.text[:300])
    page = browser.http.get(response.headers["Location"])
    assert page.status_code == 200, page.status_code
    return urlsplit(response.headers["Location"]).path, page


def at(response, prefix: str) -> bool:
    return response.status_code == 302 and urlpath(response.headers["Location"]).startswith(prefix)


def submit_code(browser, response, code, kind="totp"):
    """Fill in the step-up page the response redirected to."""
    path, page = _page(browser, response)
    assert path.startswith("/step-up/"), path
    return browser.http.post(path, data={"csrf_token": csrf_token(page.text), "code": code, "kind": kind})


def decline(browser, response):
    path, page = _page(browser, response)
    pid = path.rsplit("/", 1)[1]
    return browser.follow(browser.http.post(f"/step-up/{pid}/decline", data={"csrf_token": csrf_token(page.text)}))


def read_enrolment(page_text: str) -> tuple[str, str]:
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page_text).group(1)
    uri = unescape(re.search(r'id="totp-uri"[^>]*>([^<]+)<', page_text).group(1))
    return secret, uri


def redeem_code(browser, client_id, secret, code) -> dict:
    response = browser.redeem(client_id, secret, code)
    assert response.status_code == 200, response.json
    return response.json


def code_from(browser, response) -> str:
    return redirected_to_client(browser.follow(response))["code"]


def claims_after(browser, client_id, secret, response) -> dict:
    tokens = redeem_code(browser, client_id, secret, code_from(browser, response))
    return verified_claims(browser.http, tokens["id_token"])


def session_cookie(browser) -> str:
    return browser.http.get_cookie(SESSION_COOKIE).value


def events(app, name: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == name)))




@pytest.fixture
def alice(app):
    return make_user(app)


@pytest.fixture
def client(app):
    return make_client(app, trusted=True)


# ---- logged out ----

def test_logged_out_asked_for_mfa_signs_in_at_mfa_in_one_journey(app, browser, alice, client):
    """OIDC Core §3.1.2.1 acr_values; RFC 8176 amr: the ID token says what was used."""
    secret, _ = enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id, acr_values="mfa")
    assert at_login(response)
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/"), "after the password only the missing factor is asked"
    response = submit_code(browser, response, pyotp.TOTP(secret).now())
    claims = claims_after(browser, client_id, client_secret, response)
    assert claims["acr"] == "mfa"
    assert set(claims["amr"]) == {"pwd", "otp", "mfa"}
    assert isinstance(claims["auth_time"], int)


def test_logged_out_with_an_essential_acr_claim_steps_up_too(app, browser, alice, client):
    """OIDC Core §5.5.1.1: acr requested as an Essential Claim with values."""
    secret, _ = enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id, claims=ESSENTIAL_MFA)
    response = browser.follow(browser.login(response))
    response = submit_code(browser, response, pyotp.TOTP(secret).now())
    assert claims_after(browser, client_id, client_secret, response)["acr"] == "mfa"


def test_client_minimum_level_needs_the_second_factor(app, browser, alice):
    secret, _ = enroll_totp(app)
    client_id, client_secret = make_client(app, trusted=True, min_acr="mfa")
    response, _ = start(browser, client_id)
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/")
    response = submit_code(browser, response, pyotp.TOTP(secret).now())
    assert claims_after(browser, client_id, client_secret, response)["acr"] == "mfa"


@WHEN_ASKED
def test_no_level_asked_means_a_password_is_enough_even_with_totp_enrolled(app, browser, alice, client):
    """OIDC_ENROLLED_FACTORS=when-asked: the trade-off it documents."""
    enroll_totp(app)
    client_id, client_secret = client
    tokens = tokens_for(browser, client_id, client_secret)
    assert verified_claims(browser.http, tokens["id_token"])["acr"] == "pwd"


# ---- logged in lower ----

@WHEN_ASKED
def test_logged_in_at_pwd_is_asked_only_for_the_code_and_gets_a_new_session_id(app, browser, alice, client):
    """Issue 3: "logged in lower → ask only for the missing factor; the session id is renewed
    on every level change"."""
    secret, _ = enroll_totp(app)
    client_id, client_secret = client
    first = tokens_for(browser, client_id, client_secret)
    assert verified_claims(browser.http, first["id_token"])["acr"] == "pwd"
    before = session_cookie(browser)

    response, _ = start(browser, client_id, acr_values="mfa")
    assert at(response, "/step-up/"), response.headers.get("Location")
    response = submit_code(browser, response, pyotp.TOTP(secret).now())
    assert session_cookie(browser) != before
    claims = claims_after(browser, client_id, client_secret, response)
    assert (claims["acr"], claims["sub"]) == ("mfa", verified_claims(browser.http, first["id_token"])["sub"])
    assert events(app, "account:step-up:success")


def test_a_session_at_mfa_is_not_asked_again(app, browser, alice, client):
    secret, _ = enroll_totp(app)
    client_id, _ = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = submit_code(browser, browser.follow(browser.login(response)), pyotp.TOTP(secret).now())
    redirected_to_client(browser.follow(response))
    for extra in ({"acr_values": "mfa"}, {"acr_values": "pwd"}, {"prompt": "none", "acr_values": "mfa"},
                  {"claims": ESSENTIAL_MFA}):
        response, _ = start(browser, client_id, **extra)
        assert "code" in redirected_to_client(response), extra


def test_the_access_token_carries_the_stepped_up_level(app, browser, alice, client):
    """RFC 9068 §2.2.1: acr, amr and auth_time in the JWT access token."""
    secret, _ = enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = submit_code(browser, browser.follow(browser.login(response)), pyotp.TOTP(secret).now())
    tokens = redeem_code(browser, client_id, client_secret, code_from(browser, response))
    access = verified_claims(browser.http, tokens["access_token"])
    assert access["acr"] == "mfa" and "otp" in access["amr"]


# ---- prompt=none ----

def test_3_1_2_6_prompt_none_logged_out_asking_for_mfa_is_login_required(app, browser, alice, client):
    client_id, _ = client
    response, _ = start(browser, client_id, prompt="none", acr_values="mfa")
    assert redirected_to_client(response)["error"] == "login_required"


@WHEN_ASKED
@pytest.mark.parametrize("extra", [{"acr_values": "mfa"}, {"claims": ESSENTIAL_MFA}])
def test_3_1_2_6_prompt_none_at_a_lower_level_is_interaction_required_even_with_totp(app, browser, alice, client,
                                                                                   extra):
    enroll_totp(app)
    client_id, client_secret = client
    tokens_for(browser, client_id, client_secret)
    response, params = start(browser, client_id, prompt="none", **extra)
    result = redirected_to_client(response)
    assert (result["error"], result["state"], "code" in result) == ("interaction_required", params["state"], False)


# ---- must enroll first ----

def test_without_a_factor_the_person_enrolls_totp_and_gets_recovery_codes_once(app, browser, alice, client):
    client_id, client_secret = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = browser.follow(browser.login(response))
    assert at(response, "/enroll/")
    path, page = _page(browser, response)
    assert "asks for a stronger sign-in" in page.text
    assert "<svg" in page.text, "a QR code"
    secret, uri = read_enrolment(page.text)
    parsed = urlsplit(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert parse_qs(parsed.query)["secret"] == [secret]

    wrong = browser.http.post(path, data={"csrf_token": csrf_token(page.text), "code": "000000"})
    assert wrong.status_code == 401 and "did not work" in wrong.text
    assert read_enrolment(wrong.text)[0] == secret, "the same key is shown again"
    with app.app_context():
        assert db.session.scalar(select(Account.totp_enabled_at)) is None, "nothing changed"

    done = browser.http.post(path, data={"csrf_token": csrf_token(wrong.text), "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r'<li><code>([^<]+)</code></li>', done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 10
        stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
        assert not set(codes) & set(stored), "only argon2id hashes are stored"
        assert all(h.startswith("$argon2id$") for h in stored)
        assert db.session.scalar(select(Account.totp_secret_encrypted)).find(secret.encode()) == -1
    next_url = unescape(re.search(r'href="([^"]+)"[^>]*id="continue"', done.text).group(1))
    claims = claims_after(browser, client_id, client_secret, browser.http.get(next_url))
    assert claims["acr"] == "mfa"
    assert events(app, "account:totp:enrolled")


def test_an_enrolment_page_reload_keeps_the_same_key(app, browser, alice, client):
    client_id, _ = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = browser.follow(browser.login(response))
    _, first = _page(browser, response)
    _, again = _page(browser, response)
    assert read_enrolment(first.text) == read_enrolment(again.text)


def test_voluntary_acr_values_not_now_goes_on_at_pwd(app, browser, alice, client):
    """OIDC Core §3.1.2.1: acr_values asks for a Voluntary Claim; the ID token reports the level
    truly reached."""
    client_id, client_secret = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = decline(browser, browser.follow(browser.login(response)))
    assert claims_after(browser, client_id, client_secret, response)["acr"] == "pwd"


@WHEN_ASKED
def test_voluntary_acr_values_with_totp_enrolled_not_now_goes_on_at_pwd(app, browser, alice, client):
    enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/")
    assert claims_after(browser, client_id, client_secret, decline(browser, response))["acr"] == "pwd"


@pytest.mark.parametrize("binding", ["client_min_acr", "essential_acr"])
def test_5_5_1_1_cancelling_a_binding_level_is_access_denied(app, browser, alice, binding):
    if binding == "client_min_acr":
        client_id, _ = make_client(app, trusted=True, min_acr="mfa")
        extra = {}
    else:
        client_id, _ = make_client(app, trusted=True)
        extra = {"claims": ESSENTIAL_MFA}
    response, params = start(browser, client_id, **extra)
    response = browser.follow(browser.login(response))
    assert at(response, "/enroll/")
    _, page = _page(browser, response)
    assert "Cancel" in page.text and "Not now" not in page.text
    result = redirected_to_client(decline(browser, response))
    assert (result["error"], result["state"], "code" in result) == ("access_denied", params["state"], False)


def test_client_minimum_says_why_on_the_enrolment_page(app, browser, alice):
    client_id, _ = make_client(app, trusted=True, min_acr="mfa", name="Finance dashboard")
    response, _ = start(browser, client_id)
    _, page = _page(browser, browser.follow(browser.login(response)))
    assert "Finance dashboard requires a second factor" in page.text


# ---- codes: wrong, replayed, recovery, throttled ----

def test_rfc6238_5_2_a_code_is_accepted_once(app, browser, alice, client):
    """RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after the
    successful validation has been issued for the first OTP"."""
    secret, _ = enroll_totp(app)
    client_id, _ = client
    code = pyotp.TOTP(secret).now()
    response, _ = start(browser, client_id, acr_values="mfa")
    response = submit_code(browser, browser.follow(browser.login(response)), code)
    redirected_to_client(browser.follow(response))

    browser.http.get("/logout")
    browser.http.delete_cookie(SESSION_COOKIE)
    response, _ = start(browser, client_id, acr_values="mfa")
    step = browser.follow(browser.login(response))
    replay = submit_code(browser, step, code)
    assert replay.status_code == 401 and "did not work" in replay.text
    assert events(app, "account:totp:failure")[-1].reason == "wrong_or_replayed_code"


@pytest.mark.parametrize("typed", ["000000", "", "12345", "abcdef", "1" * 64, "１２３４５６", "\x00" * 6])
def test_wrong_or_malformed_codes_are_refused_and_change_nothing(app, browser, alice, client, typed):
    secret, _ = enroll_totp(app)
    client_id, _ = client
    if typed == "000000" and pyotp.TOTP(secret).verify(typed, valid_window=1):
        pytest.fail("the random secret happens to produce 000000 now; rerun")
    response, _ = start(browser, client_id, acr_values="mfa")
    step = browser.follow(browser.login(response))
    refused = submit_code(browser, step, typed)
    # NUL never reaches the step-up page: the input guard refuses it (400, the error page).
    assert refused.status_code == (400 if "\x00" in typed else 401)
    with app.app_context():
        assert db.session.scalar(select(Account.totp_last_counter)) is not None
    response, _ = start(browser, client_id, prompt="none", acr_values="mfa")
    assert redirected_to_client(response)["error"] == "interaction_required", "the session did not step up"


def test_a_recovery_code_steps_up_once_and_is_audited(app, browser, alice, client):
    _, codes = enroll_totp(app)
    client_id, client_secret = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = submit_code(browser, browser.follow(browser.login(response)), codes[0].upper(), kind="recovery")
    claims = claims_after(browser, client_id, client_secret, response)
    assert claims["acr"] == "mfa"
    used = events(app, "account:recovery-code:used")
    assert len(used) == 1 and used[0].detail["remaining"] == 9

    browser.http.get("/logout")
    browser.http.delete_cookie(SESSION_COOKIE)
    response, _ = start(browser, client_id, acr_values="mfa")
    again = submit_code(browser, browser.follow(browser.login(response)), codes[0], kind="recovery")
    assert again.status_code == 401


def test_totp_attempts_are_throttled_per_account(app, browser, alice, client):
    """Issue 3: attempts rate-limited per account; past the allowance even the right code waits."""
    secret, _ = enroll_totp(app)
    client_id, _ = client
    response, _ = start(browser, client_id, acr_values="mfa")
    step = browser.follow(browser.login(response))
    for _ in range(4):
        assert submit_code(browser, step, "000000").status_code == 401
    refused = submit_code(browser, step, pyotp.TOTP(secret).now())
    assert refused.status_code == 429 and "Too many" in refused.text
    with app.app_context():
        reasons = [e.reason for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.event == "account:totp:failure"))]
    assert "throttled" in reasons


# ---- bad input on the pages ----

def test_step_up_pages_without_a_pending_request_are_a_clear_error(app, browser, alice, client):
    for path in ("/step-up/unknown", "/enroll/unknown"):
        response = browser.follow(browser.http.get(path))
        assert response.status_code == 400 and "expired" in response.text


def test_step_up_post_without_csrf_token_is_refused(app, browser, alice, client):
    secret, _ = enroll_totp(app)
    client_id, _ = client
    response, _ = start(browser, client_id, acr_values="mfa")
    step = browser.follow(browser.login(response))
    path = urlsplit(step.headers["Location"]).path
    refused = browser.http.post(path, data={"code": pyotp.TOTP(secret).now()})
    assert refused.status_code == 400
    response, _ = start(browser, client_id, prompt="none", acr_values="mfa")
    assert redirected_to_client(response)["error"] == "interaction_required"


def test_a_tampered_session_cookie_is_a_fresh_anonymous_session(app, browser, alice, client):
    """The authorization request is bound to the browser by its own cookie (issue 12), so it
    survives; the session does not, and the person signs in again instead of stepping up."""
    secret, _ = enroll_totp(app)
    client_id, _ = client
    response, _ = start(browser, client_id, acr_values="mfa")
    step = browser.follow(browser.login(response))
    path = urlsplit(step.headers["Location"]).path
    raw = session_cookie(browser)
    for forged in ("x" * 43, raw[:-1] + ("B" if raw.endswith("A") else "A"), "", "%00" * 10, "a" * 500):
        browser.http.set_cookie(SESSION_COOKIE, forged)
        response = browser.follow(browser.http.get(path))
        assert at(response, "/login"), (forged, response.status_code)


def test_a_voluntary_level_above_a_client_minimum_enrols_for_the_minimum_and_cannot_be_skipped(app, browser, alice):
    """acr_values=phr is voluntary, the client's mfa minimum is not: the person is led to the
    minimum with a page that offers "Cancel" (access_denied), never "Not now"."""
    client_id, client_secret = make_client(app, trusted=True, min_acr="mfa")
    response, params = start(browser, client_id, acr_values="phr")
    response = browser.follow(browser.login(response))
    path, page = _page(browser, response)
    assert path.startswith("/enroll/")
    assert "requires a second factor" in page.text and "Not now" not in page.text
    result = redirected_to_client(decline(browser, response))
    assert (result["error"], result["state"]) == ("access_denied", params["state"])


def test_the_enrolment_page_is_no_way_around_the_step_up_page(app, browser, alice, client):
    """Review finding: someone with only the password, sent to /step-up/<id>, opened
    /enroll/<id> instead and replaced the person's authenticator app with their own. Each page
    serves only the request whose decision sent the browser there."""
    secret, _ = enroll_totp(app)
    with app.app_context():
        before = db.session.scalar(select(Account.totp_secret_encrypted))
    client_id, _ = client
    response, _ = start(browser, client_id, acr_values="mfa")
    response = browser.follow(browser.login(response))
    assert at(response, "/step-up/")
    pid = urlsplit(response.headers["Location"]).path.rsplit("/", 1)[1]
    detour = browser.follow(browser.http.get(f"/enroll/{pid}"))
    assert detour.status_code == 302 and urlpath(detour.headers["Location"]).startswith("/step-up/")
    token = csrf_token(browser.http.get(response.headers["Location"]).text)
    attacker = pyotp.random_base32()
    posted = browser.http.post(f"/enroll/{pid}", data={"csrf_token": token, "code": pyotp.TOTP(attacker).now()})
    assert posted.status_code == 302 and "/authorize/continue/" in posted.headers["Location"]
    with app.app_context():
        assert db.session.scalar(select(Account.totp_secret_encrypted)) == before, "nothing changed"
    response, _ = start(browser, client_id, prompt="none", acr_values="mfa")
    assert redirected_to_client(response)["error"] == "interaction_required"


def test_a_second_authenticator_app_is_never_confirmed(app, alice):
    secret, _ = enroll_totp(app)
    factors = app.extensions["oidc_second_factors"]
    with app.test_request_context():
        account = db.session.scalar(select(Account))
        sealed, shown = factors.begin_totp(account)
        assert factors.confirm_totp(account, sealed, pyotp.TOTP(shown["secret"]).now()) is None
    assert events(app, "account:totp:failure")[-1].reason == "already_enrolled"
