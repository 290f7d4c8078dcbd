"""Accounts as operators expect (issue 11), against a live ``oidc-provider serve`` and the
operator CLI as separate processes: creating "Alice" when "alice" exists is refused in one
line; signing in as "ALICE" (Authlib as the relying party, ``requests`` as the browser) gives
alice's ``sub``; ``user update`` and a weak ``user set-password`` act on the running provider's
database, and the person's password change on the account page is held to the same policy."""

from __future__ import annotations

import os
import re
import secrets
import subprocess

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from live import LiveServer, _cli_path
from playwright.sync_api import expect, sync_playwright

from ._browser import launch_chromium
from .conftest import REDIRECT_URI, TIMEOUT, Live, LiveBrowser, _hidden_fields

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def provider():
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        server.prepare()
        password = secrets.token_urlsafe(18)
        created = server.create_user("alice", password, name="Alice Example")
        client = server.create_client("E2E accounts RP", [REDIRECT_URI])
        server.start()
        yield server, Live(issuer=server.issuer, user="ALICE", password=password, clients={"rp": client}), created
    finally:
        server.stop()


def cli(server, *args, stdin=None):
    return subprocess.run([_cli_path(), *args], input=stdin, env=server.env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_sign_in_as_ALICE_is_alice(provider):
    server, live, created = provider
    metadata = live.metadata()
    client = live.clients["rp"]
    rp = OAuth2Session(client["client_id"], client["client_secret"], scope="openid profile",
                       redirect_uri=live.redirect_uri, code_challenge_method="S256")
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                         nonce=generate_token(20))
    rp.fetch_token(metadata["token_endpoint"], authorization_response=LiveBrowser(live).authorize(url),
                   code_verifier=verifier)
    info = rp.get(metadata["userinfo_endpoint"], timeout=TIMEOUT).json()
    assert (info["sub"], info["preferred_username"]) == (created["sub"], "alice")


def test_creating_Alice_beside_alice_is_one_line(provider):
    server, _, _ = provider
    done = cli(server, "user", "create", "Alice", "--password-stdin", stdin="violet kettle moonrise\n")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == ("Error: an account named 'alice' already exists (usernames are unique "
                                   "regardless of case)")


def test_set_password_and_update_from_the_cli(provider):
    server, _, created = provider
    weak = cli(server, "user", "set-password", "Alice", "--password-stdin", stdin="iloveyouiloveyou\n")
    assert weak.returncode == 1 and weak.stderr.startswith("Error: password is too easy to guess (")
    assert len(weak.stderr.strip().splitlines()) == 1 and "iloveyou" not in weak.stderr
    done = cli(server, "user", "update", "ALICE", "--email", "alice@new.example", "--name", "Alice Liddell")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "updated alice: email alice@new.example (unverified), name Alice Liddell"


def test_the_account_page_refuses_a_weak_new_password_with_the_reason(provider):
    _, live, _ = provider
    person = LiveBrowser(live)
    page = person.go(live.issuer + "/account")
    assert page.status_code == 200 and "Sign out" in page.text, "signed in as ALICE"
    form = person.http.get(live.issuer + "/account/password", timeout=TIMEOUT)
    answer = person.http.post(live.issuer + "/account/password", timeout=TIMEOUT, allow_redirects=False, data={
        **_hidden_fields(form.text), "current_password": live.password, "new_password": "Alice in Wonderland",
        "confirm_password": "Alice in Wonderland"})
    assert answer.status_code == 400
    assert re.search(r'role="alert"[^>]*>The new password must not contain your username\.<', answer.text)


def test_in_chromium_the_password_form_says_why_and_a_good_one_is_taken(provider):
    """A person in a real browser, signed in as "ALICE": the form refuses a common password
    with the reason (announced: role=alert, tied to the field), then takes a good one."""
    server, live, _ = provider
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(live.issuer + "/account")
            page.get_by_label("Username").fill("ALICE")
            page.get_by_label("Password").fill(live.password)
            page.get_by_role("button", name="Sign in", exact=True).click()
            page.goto(live.issuer + "/account/password")
            expect(page.get_by_text("New password (at least 15 characters)")).to_be_visible()

            def change(new):
                page.get_by_label("Current password").fill(live.password)
                page.get_by_label("New password (at least 15 characters)").fill(new)
                page.get_by_label("New password again").fill(new)
                page.get_by_role("button", name="Change password").click()

            change("password12345678")
            alert = page.get_by_role("alert")
            expect(alert).to_have_text("The new password is too easy to guess (this is similar to a commonly used "
                                       "password): a few random words make a good one.")
            described = page.get_by_label("New password (at least 15 characters)").get_attribute("aria-describedby")
            assert "password-error" in described.split()

            change("quiet harbour lanterns")
            page.wait_for_url(re.compile(r"/account\?done=password$"))
        finally:
            browser.close()
            # The other tests sign in with the first password: the operator sets it back.
            cli(server, "user", "set-password", "alice", "--password-stdin", stdin=live.password + "\n")
