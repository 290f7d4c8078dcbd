"""Step-up to a second factor in a real browser (issue 3; DESIGN "Levels of authentication"):
headless Chromium signs in with a password, is asked for ``mfa``, has no second factor so enrols
TOTP by reading the key from the page, and the relying party receives an ID token with
``acr=mfa`` (OIDC Core §2, §3.1.2.1 ``acr_values``; RFC 8176 §2 ``amr``; RFC 6238 TOTP).

The provider and the recording relying party are the ones of ``test_browser_pages.py``: the
Flask app on a real HTTP server, Chromium from Debian, the code redeemed over HTTP.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect

from ..helpers import make_client
from . import test_browser_pages as pages
from .test_browser_pages import AuthorizationRequest, Setup, authorization_request, sign_in

# The live provider, recording relying party and Chromium of the other browser tests (pytest
# finds fixtures among a module's attributes).
chromium = pages.chromium
context = pages.context
page = pages.page
relying_party = pages.relying_party
setup = pages.setup

pytestmark = pytest.mark.e2e

TIMEOUT = 10


def redeem(setup: Setup, request: AuthorizationRequest, client: tuple[str, str]) -> dict:
    """The relying party's side of OIDC Core §3.1.3: take the code it received, redeem it at
    /token with its client secret (over HTTP, not the test client), and verify the ID token
    against /jwks.json. Returns the ID token's claims."""
    received = setup.rp.last()
    assert received.args.get("state") == request.state, received.args
    assert "code" in received.args, received.args
    client_id, secret = client
    token = requests.post(f"{setup.issuer}/token", auth=(client_id, secret), timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": received.args["code"],
        "redirect_uri": setup.redirect_uri, "code_verifier": request.verifier})
    assert token.status_code == 200, token.text
    jwks = requests.get(f"{setup.issuer}/jwks.json", timeout=TIMEOUT).json()
    claims = jwt.decode(token.json()["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"]).claims
    assert (claims["iss"], claims["nonce"]) == (setup.issuer, request.nonce)
    return dict(claims)


def navigations(page) -> list[str]:
    """Every URL the page navigates to from now on, each redirect included."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url) if request.is_navigation_request() else None)
    return urls


def a_wrong_code(secret: str) -> str:
    """Six digits that are not the code of any time-step the provider could accept now."""
    otp, now = pyotp.TOTP(secret), time.time()
    valid = {otp.at(now + 30 * step) for step in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(0, 1_000_000, 111_111)) if c not in valid)


def enrol_totp(page, *, why: str, decline_label: str) -> str:
    """On the enrolment page: check it says why, read the key from the page (what a person
    types into an authenticator app that cannot scan), check the QR code and the otpauth://
    URI, type the app's current code. Returns the key."""
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    expect(page.get_by_text(why)).to_be_visible()
    expect(page.get_by_role("button", name=decline_label)).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    uri = urlsplit(page.locator("#totp-uri").inner_text().strip())
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [secret]

    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    return secret


def see_recovery_codes_and_continue(page) -> None:
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    page.get_by_role("link", name="I have saved them, continue").click()


@pytest.mark.parametrize("asked_by", ["acr_values", "client_min_acr"])
def test_3_1_2_1_person_enrols_totp_in_the_browser_and_the_rp_gets_acr_mfa(setup, page, asked_by):
    """OIDC Core §3.1.2.1 ``acr_values`` (or the operator's ``--min-acr mfa`` for the client):
    a person with only a password signs in, enrols TOTP on the page that says why, and the RP's
    ID token has ``acr=mfa`` and RFC 8176 ``amr`` with ``otp`` and ``mfa``. A second request
    in the same browser is not asked again; after signing out, password plus the step-up code
    page (not enrolment) reach ``mfa`` again."""
    if asked_by == "acr_values":
        client, ask = (setup.client_id, setup.secret), {"acr_values": "mfa"}
        name, why, decline_label = "Browser Test RP", "Browser Test RP asks for a stronger sign-in", "Not now"
    else:
        client = make_client(setup.app, name="Finance dashboard", redirect_uris=[setup.redirect_uri],
                             min_acr="mfa")
        ask = {}
        name, why, decline_label = "Finance dashboard", "Finance dashboard requires a second factor", "Cancel"

    # 1. Password, then enrolment (no factor strong enough), recovery codes, consent.
    request = authorization_request(setup, client_id=client[0], **ask)
    page.goto(request.url)
    sign_in(page)
    secret = enrol_totp(page, why=why, decline_label=decline_label)
    see_recovery_codes_and_continue(page)
    expect(page.get_by_role("heading", name=f"Allow {name}?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    first = redeem(setup, request, client)
    assert first["acr"] == "mfa"
    assert {"otp", "mfa"} <= set(first["amr"]), first["amr"]
    assert isinstance(first["auth_time"], int)

    # 2. The session is at mfa: a new request asking acr_values=mfa goes straight back.
    request = authorization_request(setup, client_id=client[0], acr_values="mfa")
    visited = navigations(page)
    page.goto(request.url)
    page.wait_for_url(f"{setup.redirect_uri}?*")
    assert [urlsplit(u).path for u in visited] == ["/authorize", "/cb"], "no login, step-up or consent page"
    second = redeem(setup, request, client)
    assert (second["acr"], second["sub"], second["auth_time"]) == ("mfa", first["sub"], first["auth_time"])

    # 3. Signed out: password, then only the code (TOTP is enrolled now), back at mfa.
    page.goto(f"{setup.issuer}/logout")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    request = authorization_request(setup, client_id=client[0], acr_values="mfa")
    page.goto(request.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    # OIDC_ENROLLED_FACTORS=always: her own factor binds now; a client minimum still names itself.
    binding = why if asked_by == "client_min_acr" else \
        f"Your account has a second factor: enter it to finish signing in to {name}"
    expect(page.get_by_text(binding)).to_be_visible()
    # RFC 6238 §5.2: the enrolment code's time-step is spent and may not be accepted again; the
    # provider allows one step of clock drift, so the next step's code (a phone a little ahead)
    # is valid now without waiting up to 30 seconds for the app to show a new one.
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Continue", exact=True).click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    third = redeem(setup, request, client)
    assert (third["acr"], third["sub"]) == ("mfa", first["sub"])
    assert set(third["amr"]) == {"pwd", "otp", "mfa"}


def test_wrong_code_on_the_enrolment_page_is_an_alert_and_the_page_stays_usable(setup, page):
    """A labelled code input; a wrong code is announced as an alert that the input points to
    (aria-describedby), the same key is shown again, and the right code then works."""
    request = authorization_request(setup, acr_values="mfa")
    page.goto(request.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    code_input = page.get_by_label("Code from the app")
    expect(code_input).to_have_attribute("id", "code")
    expect(page.get_by_role("alert")).to_have_count(0)

    code_input.fill(a_wrong_code(secret))
    with page.expect_response(lambda r: r.request.method == "POST" and "/enroll/" in r.url) as posted:
        page.get_by_role("button", name="Turn on").click()
    assert posted.value.status == 401
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("That code did not work")
    expect(page.get_by_label("Code from the app")).to_have_attribute("aria-describedby", "code-error")
    expect(alert).to_have_attribute("id", "code-error")
    expect(page.locator("#totp-secret")).to_have_text(secret)

    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    see_recovery_codes_and_continue(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    assert redeem(setup, request, (setup.client_id, setup.secret))["acr"] == "mfa"


def test_rfc8176_an_enrolled_person_signing_in_to_an_app_is_asked_for_the_code(setup, page):
    """Issue 12, "Sign-in policy" (OIDC_ENROLLED_FACTORS=always, the default): the application
    asks for no level; Alice has an authenticator app, so after her password the browser shows
    the code page, and the RP's ID token says ``acr=mfa`` and ``amr`` ``["pwd", "otp", "mfa"]``
    (OIDC Core §2, RFC 8176 §2). A password alone never reaches the application."""
    from ..flows.test_step_up import enroll_totp

    secret, _ = enroll_totp(setup.app)
    request = authorization_request(setup)
    visited = navigations(page)
    page.goto(request.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    expect(page.get_by_text("Your account has a second factor")).to_be_visible()
    assert not setup.rp.at("/cb"), "nothing reached the RP with a password alone"
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("heading", name="Allow Browser Test RP?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    assert "/step-up/" in " ".join(urlsplit(u).path for u in visited)
    claims = redeem(setup, request, (setup.client_id, setup.secret))
    assert (claims["acr"], claims["amr"]) == ("mfa", ["pwd", "otp", "mfa"])
