"""Upstream login in a real browser (issue 4): headless Chromium starts at a relying party's
authorization request, presses "Continue with GitHub" on the login page, goes through a fake
GitHub on loopback that speaks GitHub's OAuth web flow, comes back, consents, and the relying
party redeems the code for an ID token whose ``amr`` is ``fed`` (RFC 8176) at level ``pwd``.
The GitHub account's verified primary email matches the local account's verified email
(linking rule 2), so the identity is linked on the way; the second time it is rule 1."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from oidc_provider.extensions import db
from oidc_provider.models import FederatedIdentity

from ..fakes import github as fakes
from ..helpers import make_client, make_user
from . import test_browser_pages as pages
from ._browser import LiveServer
from .test_browser_pages import Setup, authorization_request
from .test_browser_passkeys import id_token_claims

chromium = pages.chromium
context = pages.context
page = pages.page
relying_party = pages.relying_party
fake_github = fakes.fake_github

pytestmark = pytest.mark.e2e
TIMEOUT = 10


@pytest.fixture
def setup(app_factory, relying_party, fake_github):
    rp_server, rp = relying_party
    server = LiveServer()
    connectors = {"github": {"kind": "github", "client_id": fake_github.client_id, "match_email": True,
                             "client_secret": fake_github.client_secret,
                             "github_url": fake_github.url, "github_api_url": fake_github.api_url}}
    app = app_factory(issuer=server.url, connectors=json.dumps(connectors))
    server.start(app)
    make_user(app, email="octocat@github.com", email_verified=True)
    redirect_uri = f"{rp_server.url}/cb"
    client_id, secret = make_client(app, name="Browser Test RP", redirect_uris=[redirect_uri],
                                    post_logout_redirect_uris=[f"{rp_server.url}/bye"])
    yield Setup(app, server.url, rp, redirect_uri, f"{rp_server.url}/bye", client_id, secret)
    server.stop()


def test_continue_with_github_from_an_rps_request_links_by_verified_email_and_the_rp_gets_fed(setup, page):
    request = authorization_request(setup)
    page.goto(request.url)
    page.get_by_role("button", name="Continue with GitHub").click()
    expect(page.get_by_role("heading", name="Allow Browser Test RP?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    claims = id_token_claims(setup, request)
    assert (claims["acr"], claims["amr"]) == ("pwd", ["fed"])
    with setup.app.app_context():
        link = db.session.scalar(select(FederatedIdentity))
        assert (link.provider, link.subject) == ("github", "583231")

    # Signed out, the second time is rule 1 (the link), straight back to the app.
    page.goto(f"{setup.issuer}/logout")
    page.get_by_role("button", name="Sign out", exact=True).click()
    again = authorization_request(setup)
    page.goto(again.url)
    page.get_by_role("button", name="Continue with GitHub").click()
    page.wait_for_url(f"{setup.redirect_uri}?*")
    assert id_token_claims(setup, again)["sub"] == claims["sub"]


def test_denied_at_github_is_a_clear_page_and_no_sign_in(setup, page, fake_github):
    fake_github.deny_with = "access_denied"
    request = authorization_request(setup)
    page.goto(request.url)
    page.get_by_role("button", name="Continue with GitHub").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert "did not allow" in page.content()
    assert page.url.startswith(setup.issuer), "no redirect to the relying party"
    with setup.app.app_context():
        assert db.session.scalar(select(FederatedIdentity)) is None
