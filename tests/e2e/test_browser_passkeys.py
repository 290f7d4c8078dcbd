"""Passkeys in a real browser (issue 3; W3C WebAuthn Level 3 §7.1, §7.2; RFC 8176 §2): headless
Chromium with a virtual authenticator (Chrome DevTools Protocol ``WebAuthn`` domain: CTAP2,
internal, resident keys, user verification) signs in with a password, registers a passkey on
the account page, signs out, and then signs in username-less with it from an authorization
request: the relying party redeems the code with its client secret and the verified ID token
says ``acr=phr``.

WebAuthn refuses IP addresses (the RP ID must be a domain), so the provider is served as
``http://localhost:<port>``: RP ID ``localhost``, and a secure context for Chromium over plain
http. The relying party stays on 127.0.0.1.
"""

from __future__ import annotations

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect

from ..helpers import PASSWORD, make_client, make_user
from . import test_browser_pages as pages
from ._browser import LiveServer
from .test_browser_pages import Setup, authorization_request

chromium = pages.chromium
context = pages.context
page = pages.page
relying_party = pages.relying_party

pytestmark = pytest.mark.e2e

TIMEOUT = 10


@pytest.fixture
def setup(app_factory, relying_party):
    rp_server, rp = relying_party
    server = LiveServer()
    issuer = server.url.replace("127.0.0.1", "localhost")
    app = app_factory(issuer=issuer)
    server.start(app)
    make_user(app)
    redirect_uri = f"{rp_server.url}/cb"
    client_id, secret = make_client(app, name="Browser Test RP", redirect_uris=[redirect_uri],
                                    post_logout_redirect_uris=[f"{rp_server.url}/bye"])
    yield Setup(app, issuer, rp, redirect_uri, f"{rp_server.url}/bye", client_id, secret)
    server.stop()


@pytest.fixture
def authenticator(context, page):
    """A platform authenticator that holds discoverable credentials and verifies the user
    (as a phone's fingerprint sensor would), answering without any prompt."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
    }})
    yield cdp, added["authenticatorId"]
    cdp.send("WebAuthn.disable")


def sign_in(page, username="alice", password=PASSWORD):
    """The password form (``exact``: the page also has "Sign in with a passkey")."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def id_token_claims(setup: Setup, request) -> dict:
    received = setup.rp.last()
    assert received.args.get("state") == request.state, received.args
    token = requests.post(f"{setup.issuer}/token", auth=(setup.client_id, setup.secret), timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": received.args["code"],
        "redirect_uri": setup.redirect_uri, "code_verifier": request.verifier})
    assert token.status_code == 200, token.text
    jwks = requests.get(f"{setup.issuer}/jwks.json", timeout=TIMEOUT).json()
    claims = jwt.decode(token.json()["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"]).claims
    assert (claims["iss"], claims["aud"], claims["nonce"]) == (setup.issuer, setup.client_id, request.nonce)
    return dict(claims)


def save_recovery_codes(page):
    """The first second factor brings 10 recovery codes, shown once on the page."""
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("button", name="I have saved them").click()


def test_register_a_passkey_then_sign_in_username_less_and_the_rp_gets_acr_phr(setup, page, authenticator):
    """§7.1 then §7.2 with a discoverable credential and user verification: no username or
    password is typed at the second sign-in, and the ID token carries ``acr=phr`` with RFC 8176
    ``amr`` ["hwk", "user"]."""
    cdp, authenticator_id = authenticator
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    # 1. Password sign-in, then "Add a passkey" on the account page.
    page.goto(f"{setup.issuer}/login")
    sign_in(page)
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_label("Name for a new passkey").fill("Chromium test key")
    page.get_by_role("button", name="Add a passkey").click()
    save_recovery_codes(page)
    expect(page.locator("[data-passkey-name]")).to_have_text(["Chromium test key"])
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert [(c["rpId"], c["isResidentCredential"]) for c in credentials] == [("localhost", True)]

    # 2. Sign out.
    page.goto(f"{setup.issuer}/logout")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()

    # 3. The application asks for phr; the person picks "Sign in with a passkey".
    request = authorization_request(setup, acr_values="phr")
    page.goto(request.url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", name="Allow Browser Test RP?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")

    claims = id_token_claims(setup, request)
    assert (claims["acr"], claims["amr"]) == ("phr", ["hwk", "user"])
    assert isinstance(claims["auth_time"], int)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert credentials[0]["signCount"] >= 2, "registration and one assertion"
    # No script error and no Content-Security-Policy violation (the browser's own /favicon.ico 404
    # is the only resource allowed to fail).
    assert [e for e in errors if not e.startswith("Failed to load resource")] == []


def test_cancelled_passkey_sign_in_is_announced_and_leaves_the_password_form_usable(setup, page, authenticator):
    """When the authenticator has no passkey for this site the browser reports NotAllowedError:
    the page says so in its status line, and nobody is signed in."""
    request = authorization_request(setup)
    page.goto(request.url)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("status")).to_contain_text("no passkey was chosen", timeout=15_000)
    expect(page.get_by_label("Username")).to_be_editable()
    assert setup.rp.received == []


def test_rename_then_remove_after_confirming_with_the_passkey(setup, page, authenticator):
    """The account page's passkey list: rename in place; registering proved the passkey, so the
    session holds it (``phr``) and "Remove" works within OIDC_ACCOUNT_REAUTH_SECONDS."""
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{setup.issuer}/login")
    sign_in(page)
    page.get_by_label("Name for a new passkey").fill("Old name")
    page.get_by_role("button", name="Add a passkey").click()
    save_recovery_codes(page)
    expect(page.locator("[data-passkey-name]")).to_have_text(["Old name"])
    expect(page.locator("#session-acr")).to_have_text("phr")

    page.get_by_label("New name for Old name").fill("Laptop")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("[data-passkey-name]")).to_have_text(["Laptop"])

    with page.expect_response(lambda r: r.request.method == "DELETE" and r.status == 200):
        page.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("No passkeys yet.")).to_be_visible()
    expect(page.locator("#session-acr")).to_have_text("phr")


def test_signed_in_with_a_password_the_step_up_page_takes_the_passkey_and_the_rp_gets_phr(setup, page,
                                                                                         authenticator):
    """Logged in lower, asked for ``phr``: the step-up page offers "Use a passkey" (only the
    missing factor, never the password again), and the ID token says ``acr=phr`` with ``pwd``,
    ``hwk``, ``user`` and ``mfa`` in ``amr``."""
    page.goto(f"{setup.issuer}/login")
    sign_in(page)
    page.get_by_label("Name for a new passkey").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    save_recovery_codes(page)
    expect(page.locator("[data-passkey-name]")).to_have_text(["Laptop"])

    # Another visit with a password alone (registering put the passkey in the first session).
    page.context.clear_cookies()
    request = authorization_request(setup, acr_values="phr")
    page.goto(request.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", name="Allow Browser Test RP?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    claims = id_token_claims(setup, request)
    assert claims["acr"] == "phr"
    assert set(claims["amr"]) == {"pwd", "hwk", "user", "mfa"}


def test_asked_for_phr_without_a_passkey_the_person_adds_one_on_the_way_and_the_rp_gets_phr(setup, page,
                                                                                          authenticator):
    """The enrolment page of an authorization request that needs ``phr``: "Add a passkey and
    continue" registers one with the virtual authenticator, shows the recovery codes once,
    proves the new passkey, and the request goes on."""
    request = authorization_request(setup, acr_values="phr")
    page.goto(request.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Add a passkey", level=1)).to_be_visible()
    expect(page.locator("#totp-secret")).to_have_count(0)
    page.get_by_label("Name for the passkey").fill("Phone")
    page.get_by_role("button", name="Add a passkey and continue").click()
    save_recovery_codes(page)
    expect(page.get_by_role("heading", name="Allow Browser Test RP?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    claims = id_token_claims(setup, request)
    assert claims["acr"] == "phr"
    assert {"pwd", "user", "mfa"} <= set(claims["amr"])
