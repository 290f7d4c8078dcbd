"""Personal access tokens on the account page (issue 5): "A token's grants are always a subset of
its owner's; a grant its owner no longer holds stops applying at once. Stored as digests; shown
once." Creating one needs a fresh authentication at the level the account's factors reach."""

from __future__ import annotations

import hashlib
import re

import pyotp
import pytest
from sqlalchemy import func, select

from oidc_provider.access import personal_tokens, principal
from oidc_provider.access import roles as role_service
from oidc_provider.access.evaluator import Statement
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.extensions import db
from oidc_provider.models import AuditEvent, PersonalToken
from oidc_provider.oauth.tokens import InvalidToken

from ..helpers import PASSWORD, csrf_token, make_user
from ..spec._support import age_login
from .test_account_page import confirm, sign_in
from .test_step_up import enroll_totp

APP = "https://app.example"
TOKEN = re.compile(r'<code class="wrap" id="new-token"[^>]*>(oidcpat_[A-Za-z0-9_-]+)</code>')


@pytest.fixture
def alice(app):
    return make_user(app)


def define_role(app, name, audience, actions, resources=("*",)):
    with app.app_context():
        role_service.define(name, [Statement.from_dict({"audience": audience, "actions": list(actions),
                                                        "resources": list(resources)})])
        db.session.commit()


def give(app, name, username="alice"):
    with app.app_context():
        role_service.grant(admin_accounts.find_account(username), name)
        db.session.commit()


def take(app, name, username="alice"):
    with app.app_context():
        role_service.revoke(admin_accounts.find_account(username), name)
        db.session.commit()


def issuer(app):
    return app.extensions["oidc_settings"].issuer


def token_rows(app):
    with app.app_context():
        return list(db.session.scalars(select(PersonalToken).order_by(PersonalToken.id)))


def create(browser, **form):
    """Fill in the create form (the session must be fresh enough)."""
    page = browser.http.get("/account/tokens/new")
    assert page.status_code == 200, page.headers.get("Location")
    data = {"csrf_token": csrf_token(page.text), "name": "backup script", "audience": "", "audience_other": APP,
            "lifetime": "30d", **form}
    return browser.http.post("/account/tokens", data=data)


def created_token(response) -> str:
    assert response.status_code == 200, (response.status_code, response.text[:400])
    match = TOKEN.search(response.text)
    assert match, "the token is on the page"
    return match.group(1)


def bearer_principal(app, token, audience=None):
    with app.test_request_context():
        found = principal.from_bearer(token, tokens=app.extensions["oidc_server"].policy.tokens, audience=audience)
        return found.account.username, sorted(r.name for r in found.roles)


def test_create_after_confirming_shows_the_token_once_and_stores_its_digest(app, browser, alice):
    """With an authenticator app, a password session confirms with a code first; the form then
    comes back, and the token is on the answer to it and nowhere after."""
    secret, _ = enroll_totp(app)
    sign_in(browser)
    first = browser.http.get("/account/tokens/new")
    assert first.status_code == 302
    assert "/account/confirm?level=mfa&why=personal-token" in first.headers["Location"]
    confirmed = confirm(browser, first, pyotp.TOTP(secret).now())
    assert confirmed.status_code == 302 and "/account/tokens/new?done=confirmed" in confirmed.headers["Location"]

    shown = create(browser)
    token = created_token(shown)
    assert token.startswith("oidcpat_") and "will not be shown again" in shown.text
    assert shown.headers["Cache-Control"] == "no-store"

    [row] = token_rows(app)
    assert row.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.public_id, row.token_digest, row.name, row.audience}
    assert row.role_ids is None and row.audience == APP and row.name == "backup script"
    home = browser.http.get("/account")
    assert home.status_code == 200 and token not in home.text
    assert row.public_id in home.text and "backup script" in home.text and "all your roles" in home.text
    assert "Live" in home.text
    assert token not in browser.http.get("/account/tokens/new").text, "shown once"
    with app.app_context():
        details = [str(e.detail) for e in db.session.scalars(select(AuditEvent))]
    assert any(row.public_id in d for d in details) and not any(token in d for d in details)


def test_a_stale_password_session_confirms_with_the_password(app, browser, alice):
    sign_in(browser)
    age_login(app, browser, 11 * 60)
    stale = browser.http.get("/account/tokens/new")
    assert "/account/confirm?level=pwd&why=personal-token" in stale.headers["Location"]
    refused = browser.http.post("/account/tokens", data={
        "csrf_token": csrf_token(browser.http.get("/account").text), "audience_other": APP, "lifetime": "30d"})
    assert refused.status_code == 302 and "/account/confirm" in refused.headers["Location"]
    assert token_rows(app) == [], "nothing created without a fresh sign-in"
    page = browser.http.get(stale.headers["Location"])
    assert 'name="code"' not in page.text
    done = browser.http.post("/account/confirm", data={"csrf_token": csrf_token(page.text), "level": "pwd",
                                                       "why": "personal-token", "password": PASSWORD,
                                                       "next": "/account/tokens/new"})
    assert done.status_code == 302 and done.headers["Location"] == "/account/tokens/new?done=confirmed"
    created_token(create(browser))


def test_the_token_authenticates_at_the_admin_api_with_its_owners_admin_role(app, browser, alice):
    define_role(app, "admin", issuer(app), ["admin:*"])
    give(app, "admin")
    sign_in(browser)
    page = browser.http.get("/account/tokens/new")
    assert f'<option value="{issuer(app)}"' in page.text, "the audiences the person's roles cover"
    token = created_token(create(browser, audience=issuer(app), audience_other="", roles="admin"))
    listed = app.test_client().get("/api/admin/accounts", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and [a["username"] for a in listed.get_json()] == ["alice"]
    assert bearer_principal(app, token, issuer(app)) == ("alice", ["admin"])
    assert token_rows(app)[0].last_used_at is not None


def test_narrowing_to_a_role_not_held_is_refused_and_creates_nothing(app, browser, alice):
    """A token's grants are always a subset of its owner's: a tampered form naming a role the
    person does not hold is a 400 on the page."""
    define_role(app, "admin", issuer(app), ["admin:*"])
    define_role(app, "reader", APP, ["read"])
    give(app, "reader")
    sign_in(browser)
    page = browser.http.get("/account/tokens/new")
    assert 'value="reader"' in page.text and 'value="admin"' not in page.text
    refused = create(browser, roles=["reader", "admin"])
    assert refused.status_code == 400 and 'id="token-error"' in refused.text
    assert "does not hold role(s) admin" in refused.text
    assert token_rows(app) == []


@pytest.mark.parametrize("form, message", [
    ({"lifetime": "1000d"}, "Choose one of the lifetimes offered."),
    ({"lifetime": "12h"}, "Choose one of the lifetimes offered."),
    ({"audience_other": ""}, "Choose or type the audience (the app) the token is for."),
    ({"audience_other": "has space"}, "audience must be 1-200 printable characters without spaces"),
    ({"name": "x" * 101}, "name must be at most 100 printable characters"),
])
def test_bad_form_values_are_400_on_the_page(app, browser, alice, form, message):
    sign_in(browser)
    refused = create(browser, **form)
    assert refused.status_code == 400 and message in refused.text
    assert token_rows(app) == []


def test_too_many_live_tokens_is_400(app, browser, alice):
    with app.app_context():
        account = admin_accounts.find_account("alice")
        for _ in range(personal_tokens.LIVE_TOKENS_PER_ACCOUNT):
            personal_tokens.create(account, audience=APP)
        db.session.commit()
    sign_in(browser)
    refused = create(browser)
    assert refused.status_code == 400 and "at most 50 live personal tokens" in refused.text
    assert len(token_rows(app)) == personal_tokens.LIVE_TOKENS_PER_ACCOUNT


def test_revoke_ones_own_token_only(app, browser, alice):
    make_user(app, "bob")
    with app.app_context():
        _, bobs_token = personal_tokens.create(admin_accounts.find_account("bob"), audience=APP, name="bob's")
        db.session.commit()
    sign_in(browser)
    token = created_token(create(browser))
    mine, bobs = (row.public_id for row in sorted(token_rows(app), key=lambda r: r.name))

    page = browser.http.get("/account")
    assert f'/account/tokens/{mine}/revoke' in page.text and bobs not in page.text
    other = browser.http.post(f"/account/tokens/{bobs}/revoke", data={"csrf_token": csrf_token(page.text)})
    assert other.status_code == 404
    assert bearer_principal(app, bobs_token)[0] == "bob", "bob's token still works"

    revoked = browser.http.post(f"/account/tokens/{mine}/revoke", data={"csrf_token": csrf_token(page.text)})
    assert revoked.status_code == 302 and revoked.headers["Location"].endswith("/account?done=token-revoked")
    with pytest.raises(InvalidToken):
        bearer_principal(app, token)
    home = browser.http.get("/account").text
    assert "Revoked" in home and f'/account/tokens/{mine}/revoke' not in home
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "account:personal-token:revoked")) == 1


def test_forms_without_csrf_are_refused(app, browser, alice):
    sign_in(browser)
    token = created_token(create(browser))
    [row] = token_rows(app)
    assert browser.http.post("/account/tokens", data={"audience_other": APP, "lifetime": "30d"}).status_code == 400
    assert browser.http.post(f"/account/tokens/{row.public_id}/revoke").status_code == 400
    assert len(token_rows(app)) == 1 and token_rows(app)[0].revoked_at is None
    assert bearer_principal(app, token)[0] == "alice"


@pytest.mark.parametrize("path", ["/account/tokens/new", "/account/tokens", "/account/tokens/abc/revoke"])
def test_token_pages_need_a_signed_in_person(app, browser, alice, path):
    if path.endswith("/new"):
        response = browser.http.get(path)
    else:
        token = csrf_token(browser.http.get("/login").text)
        response = browser.http.post(path, data={"csrf_token": token, "audience_other": APP, "lifetime": "30d"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/account")
    assert token_rows(app) == []


def test_a_role_the_owner_loses_stops_applying_at_once(app, browser, alice):
    """Narrowed or not, the token uses (its roles) ∩ (its owner's roles now)."""
    define_role(app, "admin", issuer(app), ["admin:*"])
    define_role(app, "reader", APP, ["read"])
    give(app, "admin")
    give(app, "reader")
    sign_in(browser)
    narrowed = created_token(create(browser, roles=["admin", "reader"]))
    everything = created_token(create(browser))
    assert bearer_principal(app, narrowed) == ("alice", ["admin", "reader"])
    assert bearer_principal(app, everything) == ("alice", ["admin", "reader"])

    take(app, "admin")
    assert bearer_principal(app, narrowed) == ("alice", ["reader"])
    assert bearer_principal(app, everything) == ("alice", ["reader"])
    assert "admin (no longer yours)" in browser.http.get("/account").text
