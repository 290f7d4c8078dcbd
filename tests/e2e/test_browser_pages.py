"""The provider's pages in a real browser: headless Chromium walks login, consent, form_post,
logout and error pages against the provider served over HTTP, with a recording relying party
on a second local server (OIDC Core §3.1.2, OAuth 2.0 Form Post Response Mode, RP-Initiated
Logout 1.0)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect, sync_playwright

from ..helpers import PASSWORD, make_client, make_user, pkce_pair, query_of
from ._browser import LiveServer, RecordingRP, launch_chromium

pytestmark = pytest.mark.e2e

SCOPE_TEXTS = ["Know who you are (your account identifier)", "See your name and username",
               "See your email address"]


@dataclass
class Setup:
    app: object
    issuer: str
    rp: RecordingRP
    redirect_uri: str
    post_logout_uri: str
    client_id: str
    secret: str


@dataclass
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    verifier: str


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def relying_party():
    rp = RecordingRP()
    server = LiveServer().start(rp)
    yield server, rp
    server.stop()


@pytest.fixture
def setup(app_factory, relying_party):
    rp_server, rp = relying_party
    server = LiveServer()
    app = app_factory(issuer=server.url)
    server.start(app)
    make_user(app)
    redirect_uri, bye = f"{rp_server.url}/cb", f"{rp_server.url}/bye"
    client_id, secret = make_client(app, name="Browser Test RP", redirect_uris=[redirect_uri],
                                    post_logout_redirect_uris=[bye])
    yield Setup(app, server.url, rp, redirect_uri, bye, client_id, secret)
    server.stop()


@pytest.fixture
def context(chromium):
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


def authorization_request(setup: Setup, *, client_id=None, **extra) -> AuthorizationRequest:
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    params = {"response_type": "code", "client_id": client_id or setup.client_id,
              "redirect_uri": setup.redirect_uri, "scope": "openid profile email", "state": state,
              "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return AuthorizationRequest(f"{setup.issuer}/authorize?{urlencode(params)}", state, nonce, verifier)


def sign_in(page, username="alice", password=PASSWORD):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == "oidc_session"), None)


def test_3_1_2_4_person_signs_in_allows_and_rp_gets_code_that_redeems_for_id_token(setup, page):
    """A person opens the RP's link, sees the login page, signs in, sees a consent page naming
    the application and what it asks for, clicks Allow, and lands back at the RP. OIDC Core
    §3.1.2.5: the response carries ``code`` and "state ... MUST" equal the request's; RFC 9207
    §2: the authorization server "MUST include the iss parameter"."""
    request = authorization_request(setup)
    page.goto(request.url)
    expect(page).to_have_title(re.compile(r"^Sign in · "))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page)

    expect(page.get_by_role("heading", name="Allow Browser Test RP?")).to_be_visible()
    expect(page.locator("ul.scopes li")).to_have_text(SCOPE_TEXTS)
    expect(page.get_by_text("Signed in as alice")).to_be_visible()
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(f"{setup.redirect_uri}?*")
    expect(page.get_by_role("heading", name="Back at the application")).to_be_visible()
    received = setup.rp.last()
    assert (received.method, received.path) == ("GET", "/cb")
    assert set(received.args) == {"code", "state", "iss"}
    assert received.args["state"] == request.state
    assert received.args["iss"] == setup.issuer

    token = requests.post(f"{setup.issuer}/token", auth=(setup.client_id, setup.secret), timeout=10, data={
        "grant_type": "authorization_code", "code": received.args["code"],
        "redirect_uri": setup.redirect_uri, "code_verifier": request.verifier})
    assert token.status_code == 200, token.text
    jwks = requests.get(f"{setup.issuer}/jwks.json", timeout=10).json()
    id_token = jwt.decode(token.json()["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert id_token.claims["iss"] == setup.issuer
    assert id_token.claims["aud"] in (setup.client_id, [setup.client_id])
    assert id_token.claims["nonce"] == request.nonce


def test_login_page_wrong_password_keeps_username_and_announces_error(setup, page):
    """A person who types a wrong password sees "Incorrect username or password." announced as
    an alert, with the username still filled in; each input has its own <label>."""
    page.goto(authorization_request(setup).url)
    username, password = page.get_by_label("Username"), page.get_by_label("Password")
    expect(username).to_have_attribute("id", "username")
    expect(password).to_have_attribute("id", "password")
    username.fill("alice")
    password.fill("not the password")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/login")) as posted:
        page.get_by_role("button", name="Sign in", exact=True).click()
    assert posted.value.status == 401

    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Incorrect username or password.")
    expect(page.get_by_label("Username")).to_have_value("alice")
    expect(page.get_by_label("Username")).to_have_attribute("aria-describedby", "login-error")
    expect(page.get_by_label("Password")).to_have_value("")
    assert page.locator("label").count() == 2
    assert setup.rp.received == []


def test_form_post_2_browser_auto_submits_code_state_and_iss_to_rp(setup, page):
    """Form Post Response Mode §2: the response parameters are "encoded as HTML form values
    that are auto-submitted in the User Agent" — the browser POSTs code, state and iss to the
    redirect URI without the person pressing anything."""
    request = authorization_request(setup, response_mode="form_post")
    page.goto(request.url)
    sign_in(page)
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(setup.redirect_uri)
    expect(page.get_by_role("heading", name="Back at the application")).to_be_visible()
    received = setup.rp.last()
    assert (received.method, received.path, received.args) == ("POST", "/cb", {})
    assert set(received.form) == {"code", "state", "iss"}
    assert received.form["state"] == request.state
    assert received.form["iss"] == setup.issuer


def test_3_1_2_6_consent_deny_sends_access_denied_with_state_and_iss(setup, page):
    """OIDC Core §3.1.2.6 / RFC 6749 §4.1.2.1: when "the resource owner ... denied the
    request", the RP receives error=access_denied, with the request's state and (RFC 9207) iss."""
    request = authorization_request(setup)
    page.goto(request.url)
    sign_in(page)
    page.get_by_role("button", name="Deny").click()

    page.wait_for_url(f"{setup.redirect_uri}?*")
    received = setup.rp.last()
    assert received.args["error"] == "access_denied"
    assert received.args["state"] == request.state
    assert received.args["iss"] == setup.issuer
    assert "code" not in received.args


def test_rp_logout_2_confirmation_page_signs_out_then_prompt_none_is_login_required(setup, page):
    """RP-Initiated Logout 1.0 §2: without an id_token_hint the OP asks the person whether to
    sign out; after "Sign out" the session is gone, so OIDC Core §3.1.2.6 prompt=none
    "MUST return an error if an End-User is not already Authenticated": login_required."""
    page.goto(authorization_request(setup).url)
    sign_in(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")

    page.goto(f"{setup.issuer}/logout")
    expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()
    expect(page.get_by_text("You are signed in as alice.")).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()

    request = authorization_request(setup, prompt="none")
    page.goto(request.url)
    page.wait_for_url(f"{setup.redirect_uri}?*")
    received = setup.rp.last()
    assert received.args["error"] == "login_required"
    assert received.args["state"] == request.state
    assert received.args["iss"] == setup.issuer


def test_4_1_2_1_unknown_client_shows_error_page_and_does_not_redirect(setup, page):
    """RFC 6749 §4.1.2.1: if "the client identifier is missing or invalid, the authorization
    server SHOULD inform the resource owner of the error and MUST NOT automatically redirect
    the user-agent" — the person sees an error page (400) and stays on the provider."""
    request = authorization_request(setup, client_id="no-such-client")
    response = page.goto(request.url)
    assert response.status == 400
    assert page.url == request.url
    expect(page.get_by_role("heading", name="This sign-in request is not valid")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("invalid_client")
    assert setup.rp.received == []


def test_login_page_fits_a_phone_screen(setup, chromium, tmp_path):
    """On a 375×740 phone screen the login card is no wider than the screen and the Sign in
    button is visible without scrolling; screenshots of phone and desktop are saved."""
    phone = chromium.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2,
                                 is_mobile=True, has_touch=True)
    desktop = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = phone.new_page()
        page.goto(authorization_request(setup).url)
        card = page.locator("main.card").bounding_box()
        assert card["x"] >= 0 and card["width"] <= 375, card
        button = page.get_by_role("button", name="Sign in", exact=True)
        expect(button).to_be_in_viewport(ratio=1)
        page.screenshot(path=tmp_path / "login-phone.png")

        page = desktop.new_page()
        page.goto(authorization_request(setup).url)
        expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_in_viewport(ratio=1)
        page.screenshot(path=tmp_path / "login-desktop.png")
    finally:
        phone.close()
        desktop.close()
    assert (tmp_path / "login-phone.png").stat().st_size > 0
    assert (tmp_path / "login-desktop.png").stat().st_size > 0


def test_login_page_session_cookie_is_httponly_lax_and_renewed_at_login(setup, context, page):
    """The session cookie cannot be read by scripts (HttpOnly), is not sent on cross-site
    subrequests (SameSite=Lax), and gets a new value when the person signs in, so a cookie
    planted before login is useless afterwards (session fixation). The authorization request's
    own cookie (issue 12) has the same flags."""
    page.goto(f"{setup.issuer}/login")  # a session before signing in: what a fixation plants
    before = session_cookie(context)
    assert before is not None, context.cookies()
    page.goto(authorization_request(setup).url)
    request_cookies = [c for c in context.cookies() if c["name"].startswith("oidc_pending_")]
    assert [(c["httpOnly"], c["sameSite"]) for c in request_cookies] == [(True, "Lax")], context.cookies()
    sign_in(page)
    expect(page.get_by_role("heading", name="Allow Browser Test RP?")).to_be_visible()

    after = session_cookie(context)
    assert after is not None
    assert after["httpOnly"] is True
    assert after["sameSite"] == "Lax"
    assert after["value"] != before["value"]
    assert page.evaluate("document.cookie") == ""


def test_rfc8252_7_1_native_app_private_use_scheme_receives_the_code(setup, page):
    """RFC 8252 Appendix A: servers that support native apps "must support private-use URI
    scheme redirect URIs" (§7.1). After the person clicks Allow, the browser hands
    com.example.app:/cb?code=... to the app: the pages' Content-Security-Policy must not block
    the redirect that follows the consent form post."""
    native_uri = "com.example.app:/oauth2redirect"
    client_id, _ = make_client(setup.app, name="Native App", redirect_uris=[native_uri], public=True)
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": native_uri,
              "scope": "openid", "state": "native-state", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{setup.issuer}/authorize?{urlencode(params)}")
    sign_in(page)
    with page.expect_request(lambda r: r.url.startswith(native_uri)) as handed_over:
        page.get_by_role("button", name="Allow").click()

    received = query_of(handed_over.value.url)
    assert set(received) == {"code", "state", "iss"}
    assert (received["state"], received["iss"]) == ("native-state", setup.issuer)
    assert violations == []
    token = requests.post(f"{setup.issuer}/token", timeout=10, data={
        "grant_type": "authorization_code", "code": received["code"], "redirect_uri": native_uri,
        "client_id": client_id, "code_verifier": verifier})
    assert token.status_code == 200, token.text
    assert "id_token" in token.json()
