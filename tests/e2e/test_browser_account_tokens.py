"""Personal access tokens on the account page in headless Chromium with JavaScript off (issue 5:
the pages work without it): create one through the labelled form, copy it from the page once,
use it at the admin API (RFC 6750 §2.1 bearer), revoke it."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from oidc_provider.access import roles as role_service
from oidc_provider.access.evaluator import Statement
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.extensions import db

from ..helpers import PASSWORD, make_user
from ._browser import LiveServer, launch_chromium

pytestmark = pytest.mark.e2e


@pytest.fixture
def provider(app_factory):
    server = LiveServer()
    app = app_factory(issuer=server.url)
    server.start(app)
    make_user(app)
    with app.app_context():
        role_service.define("admin", [Statement.from_dict({"audience": server.url, "actions": ["admin:*"],
                                                           "resources": ["*"]})])
        role_service.grant(admin_accounts.find_account("alice"), "admin")
        db.session.commit()
    yield server.url
    server.stop()


@pytest.fixture
def page():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        context = chromium.new_context(java_script_enabled=False)
        context.set_default_timeout(10_000)
        yield context.new_page()
        context.close()
        chromium.close()


def test_create_copy_use_and_revoke_a_token_without_javascript(provider, page):
    page.goto(f"{provider}/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Personal access tokens")).to_be_visible()

    page.get_by_role("link", name="Create a personal access token").click()
    page.get_by_label("Name (what it is for)").fill("deploy")
    page.get_by_label("An app your roles cover").select_option(provider)
    expect(page.get_by_role("group", name="Roles it may use")).to_be_visible()
    page.get_by_label("admin").check()
    page.get_by_label("Expires after").select_option("7d")
    page.get_by_role("button", name="Create token").click()

    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("oidcpat_")
    used = requests.get(f"{provider}/api/admin/accounts", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert used.status_code == 200 and [a["username"] for a in used.json()] == ["alice"]

    page.get_by_role("link", name="I have copied it, back to my account").click()
    expect(page.locator("#personal-tokens")).not_to_contain_text(token)
    page.get_by_role("button", name="Revoke deploy").click()
    expect(page.get_by_role("status")).to_have_text("The personal access token was revoked: it no longer works.")
    refused = requests.get(f"{provider}/api/admin/accounts", headers={"Authorization": f"Bearer {token}"},
                           timeout=10)
    assert refused.status_code == 401
