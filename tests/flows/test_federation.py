"""Upstream login through the Flask test client (issue 4), with a test-double connector that
returns a configured identity or raises ``ConnectorError`` (the real connectors are tested
against loopback fakes elsewhere). Covers every linking rule, each error page, the upstream
``state`` (single use, 10 minutes, bound to the browser, per connector: RFC 6749 §10.12), the
journey from a relying party through the upstream back to an ID token, step-up after an
upstream login, ``trust_mfa``, and the account page's link and unlink rules."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pyotp
import pytest
from sqlalchemy import select, update

from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.federation.config import ConnectorConfig
from oidc_provider.federation.connector import Connector, ConnectorError, Identity
from oidc_provider.federation.state import s256
from oidc_provider.models import Account, AuditEvent, FederatedIdentity, UpstreamState

from ..helpers import Browser, configured, csrf_token, make_client, make_user, query_of
from ..spec._support import age_login, at_consent, at_login, redirected_to_client, start, verified_claims
from .test_step_up import enroll_totp, submit_code

UPSTREAM = "https://upstream.example/authorize"


class FakeConnector(Connector):
    """Answers ``finish`` with ``identity`` or raises ``error``; remembers what it was given."""

    kind = "github"

    def __init__(self, config, identity=None, error=None):
        super().__init__(config)
        self.identity, self.error = identity, error
        self.started, self.finished = [], []

    def start(self, *, redirect_uri, state, nonce, code_challenge):
        self.started.append({"redirect_uri": redirect_uri, "state": state, "nonce": nonce,
                             "code_challenge": code_challenge})
        return UPSTREAM + "?" + urlencode({"state": state, "code_challenge": code_challenge})

    def finish(self, *, redirect_uri, params, nonce, code_verifier):
        self.finished.append({"redirect_uri": redirect_uri, "params": dict(params), "nonce": nonce,
                              "code_verifier": code_verifier})
        if self.error is not None:
            raise self.error
        self.upstream_error(params)
        return self.identity


def identity(subject="1001", email="alice@example.com", email_verified=True, username="alice-gh", provider="github",
             amr=()):
    return Identity(provider=provider, subject=subject, email=email, email_verified=email_verified,
                    name="Alice Upstream", username=username, amr=tuple(amr))


def connect(app, name="github", who=None, error=None, **flags) -> FakeConnector:
    config = ConnectorConfig(name=name, kind="github", client_id="upstream-client", client_secret="s" * 32,
                             display_name=flags.pop("display_name", "GitHub"), scopes="read:user user:email",
                             **flags)
    connector = FakeConnector(config, who if who is not None else identity(provider=name), error)
    app.extensions["oidc_connectors"][name] = connector
    return connector


def press_start(browser, name="github", p=None):
    """Press "Continue with ..." on the login page (the one for request ``p`` when given): a POST
    with that page's CSRF token."""
    page = browser.http.get("/login", query_string={"p": p} if p else None)
    if page.status_code != 200:  # no such request: the plain sign-in page's form
        page = browser.http.get("/login")
    return browser.http.post(f"/federation/{name}/start",
                             data={"csrf_token": csrf_token(page.text), **({"p": p} if p else {})})


def go_upstream(browser, name="github", p=None):
    """Press "Continue with ..."; returns the state the upstream was sent."""
    response = press_start(browser, name, p)
    assert response.status_code == 302, (response.status_code, response.text[:300])
    assert response.headers["Location"].startswith(UPSTREAM)
    return query_of(response.headers["Location"])["state"]


def come_back(browser, state, name="github", **params):
    return browser.http.get(f"/federation/{name}/callback", query_string={"code": "upstream-code", "state": state,
                                                                          **params})


def upstream_login(browser, name="github", p=None):
    return come_back(browser, go_upstream(browser, name, p), name)


def events(app, name):
    with app.app_context():
        return [(e.outcome, e.reason, e.account, e.detail) for e in
                db.session.scalars(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id))]


def account_named(app, username):
    with app.app_context():
        return db.session.scalar(select(Account).where(Account.username == username))


def links(app):
    with app.app_context():
        return [(db.session.get(Account, f.account_id).username, f.provider, f.subject)
                for f in db.session.scalars(select(FederatedIdentity).order_by(FederatedIdentity.id))]


def link(app, username, subject="1001", provider="github"):
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == username))
        db.session.add(FederatedIdentity(account_id=account.id, provider=provider, subject=subject))
        db.session.commit()


def signed_in_as(app, browser):
    page = browser.http.get("/account")
    if page.status_code != 200:
        return None
    return page.text.split("Signed in as <strong>")[1].split("</strong>")[0]


def refused(response, status, text):
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.mimetype == "text/html"
    assert text in response.text, response.text[:800]


@pytest.fixture
def alice(app):
    return make_user(app)


# ---- the login page ----

def test_no_button_without_a_configured_connector(app, browser):
    page = browser.http.get("/login")
    assert page.status_code == 200 and "Continue with" not in page.text


def test_a_button_per_configured_connector_carries_the_pending_request(app, browser):
    connect(app)
    connect(app, "corp", display_name="Corp SSO")
    client_id, _ = make_client(app)
    response, _ = start(browser, client_id)
    assert at_login(response)
    pid = query_of(response.headers["Location"])["p"]
    page = browser.http.get(response.headers["Location"])
    assert "Continue with GitHub" in page.text and "Continue with Corp SSO" in page.text
    assert 'action="/federation/github/start"' in page.text and f'name="p" value="{pid}"' in page.text


def test_start_sends_state_pkce_s256_and_nonce_and_the_callback(app, browser):
    """RFC 7636 §4.2: the challenge is S256 of the verifier later given to finish; the nonce and
    the redirect URI given to finish are those of the start."""
    connector = connect(app)
    state = go_upstream(browser)
    assert len(state) >= 43
    come_back(browser, state)
    started, finished = connector.started[0], connector.finished[0]
    assert started["code_challenge"] == s256(finished["code_verifier"])
    assert started["nonce"] == finished["nonce"] and len(started["nonce"]) >= 43
    assert started["redirect_uri"] == finished["redirect_uri"] == "http://127.0.0.1:5000/federation/github/callback"
    with app.app_context():
        assert db.session.scalar(select(UpstreamState)) is None, "consumed"


# ---- linking rules ----

def test_rule_1_a_linked_identity_signs_in_to_its_account_and_is_refreshed(app, browser, alice):
    make_user(app, "bob", email="alice-other@example.com")
    link(app, "bob")
    connect(app, match_email=True)
    response = upstream_login(browser)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert signed_in_as(app, browser) == "bob", "the link wins over a matching email"
    with app.app_context():
        row = db.session.scalar(select(FederatedIdentity))
        assert (row.email, row.username, row.last_login_at is not None) == ("alice@example.com", "alice-gh", True)
    [(outcome, _, account, detail)] = events(app, "account:federated-login:success")
    assert (outcome, account, detail["rule"], detail["amr"], detail["acr"]) == ("success", "bob", "linked", ["fed"],
                                                                                "pwd")


def test_rule_2_a_verified_email_links_to_the_account_with_that_verified_email(app, browser, alice):
    connect(app, match_email=True, who=identity(email="ALICE@example.com"))
    response = upstream_login(browser)
    assert response.status_code == 302
    assert signed_in_as(app, browser) == "alice"
    assert links(app) == [("alice", "github", "1001")]
    assert events(app, "account:federated-identity:linked")[0][3] == {"provider": "github", "rule": "email"}


def test_rule_2_needs_email_matching_enabled_for_the_connector(app, browser, alice):
    connect(app, match_email=False)
    refused(upstream_login(browser), 403, "There is no account here for that sign-in")
    assert links(app) == []
    assert events(app, "account:federated-login:failure")[0][:2] == ("failure", "no_account")


def test_rule_2_an_unverified_upstream_email_never_matches(app, browser, alice):
    connect(app, match_email=True, who=identity(email_verified=False))
    refused(upstream_login(browser), 403, "There is no account here for that sign-in")
    assert links(app) == []


def test_rule_2_an_unverified_local_email_never_matches(app, browser):
    make_user(app, email_verified=False)
    connect(app, match_email=True)
    refused(upstream_login(browser), 403, "There is no account here")
    assert links(app) == []


def test_rule_2_an_account_that_links_another_identity_there_is_refused(app, browser, alice):
    link(app, "alice", subject="999")
    connect(app, match_email=True, signup=True)
    refused(upstream_login(browser), 403, "already linked to a different sign-in")
    assert links(app) == [("alice", "github", "999")]
    assert events(app, "account:federated-login:failure")[0][:3] == \
        ("failure", "email_account_linked_to_another_identity", "alice")


def test_rule_3_sign_up_creates_a_passwordless_account_and_links_it(app, browser):
    connect(app, signup=True, who=identity(username="New User!", email="new@example.com", email_verified=False))
    response = upstream_login(browser)
    assert response.status_code == 302
    account = account_named(app, "New-User-")
    assert account is not None and signed_in_as(app, browser) == "New-User-"
    assert (account.password_hash, account.email, account.email_verified) == (None, "new@example.com", False)
    assert links(app) == [("New-User-", "github", "1001")]
    assert events(app, "account:federated-signup:created")[0][2] == "New-User-"


def test_rule_3_usernames_are_derived_and_de_duplicated(app, alice):
    make_user(app, "alice-2", email="a2@example.com")
    connect(app, signup=True)
    for subject, who in (("1", identity(subject="1", username=None, email="Alice@Elsewhere.example")),
                         ("2", identity(subject="2", username=None, email=None, email_verified=False)),
                         ("3", identity(subject="3", username="..", email=None))):
        connect(app, signup=True, match_email=True, who=who)  # trusted for emails: the new one is verified
        assert upstream_login(Browser(app)).status_code == 302, subject
    names = [name for name, _, _ in links(app)]
    assert names == ["Alice-3", "user", "user-2"]
    assert account_named(app, "Alice-3").email_verified is True


def test_rule_4_refused_without_sign_up_says_what_to_do(app, browser):
    connect(app)
    response = upstream_login(browser)
    refused(response, 403, "Sign in another way, or ask the site")
    assert signed_in_as(app, browser) is None


def test_a_disabled_account_is_refused(app, browser, alice):
    link(app, "alice")
    with app.app_context():
        db.session.execute(update(Account).values(disabled=True))
        db.session.commit()
    connect(app)
    refused(upstream_login(browser), 403, "disabled")
    assert signed_in_as(app, browser) is None


# ---- errors at the upstream ----

@pytest.mark.parametrize("reason", ["access_denied", "upstream_error", "missing_code", "token_exchange", "profile",
                                    "email", "id_token", "unreachable"])
def test_each_connector_error_is_a_page_and_an_audit_row(app, browser, reason):
    connect(app, error=ConnectorError(reason, f"Message for {reason}."))
    response = upstream_login(browser)
    refused(response, 400, f"Message for {reason}.")
    assert "upstream-code" not in response.text
    assert events(app, "account:federated-login:failure")[-1][:2] == ("failure", reason)


def test_rfc6749_4_1_2_1_an_upstream_error_is_not_echoed(app, browser):
    connect(app)
    state = go_upstream(browser)
    response = browser.http.get("/federation/github/callback", query_string={
        "state": state, "error": "access_denied", "error_description": "<script>alert(1)</script>"})
    refused(response, 400, "You did not allow the sign-in")
    assert "<script>alert" not in response.text and "alert(1)" not in response.text


def test_an_unexpected_connector_failure_is_a_page_not_a_500(app, browser):
    connect(app, error=KeyError("access_token=secret-from-upstream"))
    response = upstream_login(browser)
    refused(response, 400, "could not be used")
    assert "secret-from-upstream" not in response.text


def test_unknown_connector_is_404(app, browser):
    refused(press_start(browser, "nope"), 404, "no sign-in option by that name")
    refused(browser.http.get("/federation/nope/callback?state=x&code=y"), 404, "no sign-in option")


def test_start_with_a_dead_pending_request_is_refused(app, browser):
    connect(app)
    refused(press_start(browser, p="not-a-request"), 400, "expired")


def test_rfc9110_15_5_6_start_by_get_is_405_with_allow_post(app, browser):
    """A link or an image on another site cannot start an upstream login (login CSRF, RFC 6749
    §10.12): GET is 405 with ``Allow: POST`` (RFC 9110 §15.5.6: the server MUST send Allow)."""
    connect(app)
    response = browser.http.get("/federation/github/start")
    assert (response.status_code, response.headers.get("Allow")) == (405, "POST")
    with app.app_context():
        assert db.session.scalar(select(UpstreamState)) is None, "no state was issued"


def test_start_without_the_csrf_token_is_refused_and_issues_no_state(app, browser):
    """A cross-site form POST lacks the page's CSRF token: refused, nothing stored."""
    connect(app)
    response = browser.http.post("/federation/github/start", data={})
    assert response.status_code == 400
    assert "Form expired" in response.text
    with app.app_context():
        assert db.session.scalar(select(UpstreamState)) is None


# ---- the upstream state (RFC 6749 §10.12) ----

def test_a_replayed_state_is_refused(app, browser, alice):
    link(app, "alice")
    connect(app)
    state = go_upstream(browser)
    assert come_back(browser, state).status_code == 302
    refused(come_back(browser, state), 400, "already used")
    assert events(app, "account:federated-login:failure")[-1][:2] == ("failure", "state_unknown")


def test_a_missing_or_unknown_state_is_refused(app, browser):
    connector = connect(app)
    refused(browser.http.get("/federation/github/callback?code=c"), 400, "already used")
    refused(come_back(browser, "made-up"), 400, "already used")
    assert connector.finished == [], "no code is exchanged without a valid state"


def test_an_expired_state_is_refused(app, browser, alice):
    link(app, "alice")
    connector = connect(app)
    state = go_upstream(browser)
    with app.app_context():
        db.session.execute(update(UpstreamState).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    refused(come_back(browser, state), 400, "More than 10 minutes")
    assert connector.finished == []
    assert signed_in_as(app, browser) is None


def test_a_state_from_another_browser_is_refused(app, browser, alice):
    """Login CSRF (RFC 6749 §10.12): a callback carrying someone else's state does not sign
    this browser in."""
    link(app, "alice")
    connect(app)
    state = go_upstream(browser)
    other = Browser(app)
    refused(come_back(other, state), 403, "another browser")
    assert signed_in_as(app, other) is None
    # The failed attempt consumed it.
    refused(come_back(browser, state), 400, "already used")


def test_a_state_issued_for_another_connector_is_refused(app, browser, alice):
    link(app, "alice")
    connect(app)
    corp = connect(app, "corp", who=identity(provider="corp"))
    state = go_upstream(browser, "github")
    refused(come_back(browser, state, "corp"), 400, "different sign-in option")
    assert corp.finished == []


# ---- the whole journey ----

def test_journey_from_rp_through_upstream_to_id_token(app, browser, alice):
    """OIDC Core §3.1.2: the RP's request resumes after the upstream; RFC 8176 ``fed``."""
    link(app, "alice")
    connect(app)
    client_id, secret = make_client(app)
    response, params = start(browser, client_id)
    assert at_login(response)
    pid = query_of(response.headers["Location"])["p"]
    response = upstream_login(browser, p=pid)
    assert response.headers["Location"] == f"/authorize/continue/{pid}"
    response = browser.follow(response)
    assert at_consent(response)
    result = redirected_to_client(browser.follow(browser.consent(response)))
    assert result["state"] == params["state"]
    tokens = browser.redeem(client_id, secret, result["code"]).json
    claims = verified_claims(browser.http, tokens["id_token"])
    assert (claims["acr"], claims["amr"], claims["nonce"]) == ("pwd", ["fed"], params["nonce"])
    assert claims["sub"] == alice


def test_step_up_to_mfa_after_an_upstream_login_uses_the_totp_held_here(app, browser, alice):
    link(app, "alice")
    connect(app)
    secret_totp, _ = enroll_totp(app)
    client_id, secret = make_client(app, trusted=True)
    response, _ = start(browser, client_id, acr_values="mfa")
    pid = query_of(response.headers["Location"])["p"]
    response = browser.follow(upstream_login(browser, p=pid))
    assert urlsplit(response.headers["Location"]).path.startswith("/step-up/"), response.headers["Location"]
    response = browser.follow(submit_code(browser, response, pyotp.TOTP(secret_totp).now()))
    result = redirected_to_client(response)
    claims = verified_claims(browser.http, browser.redeem(client_id, secret, result["code"]).json["id_token"])
    assert claims["acr"] == "mfa" and set(claims["amr"]) == {"fed", "otp", "mfa"}


@pytest.mark.parametrize("trust_mfa, upstream_amr, acr, amr", [
    (True, ["pwd", "mfa"], "mfa", ["fed", "mfa"]),
    (False, ["pwd", "mfa"], "pwd", ["fed"]),     # not trusted: the upstream's word does not count
    (True, ["pwd"], "pwd", ["fed"]),             # trusted, but the upstream did not do MFA
])
def test_trust_mfa_takes_the_upstream_amr(app, browser, alice, trust_mfa, upstream_amr, acr, amr):
    link(app, "alice")
    connect(app, trust_mfa=trust_mfa, who=identity(amr=upstream_amr))
    client_id, secret = make_client(app, trusted=True)
    response, _ = start(browser, client_id, acr_values="mfa")
    pid = query_of(response.headers["Location"])["p"]
    response = browser.follow(upstream_login(browser, p=pid))
    if acr == "pwd":
        # acr_values is voluntary: without a factor here, the enrolment page offers one; say no.
        assert urlsplit(response.headers["Location"]).path.startswith(("/step-up/", "/enroll/"))
        path = urlsplit(response.headers["Location"]).path
        page = browser.http.get(path)
        response = browser.follow(browser.http.post(f"/step-up/{path.rsplit('/', 1)[1]}/decline",
                                                    data={"csrf_token": csrf_token(page.text)}))
    result = redirected_to_client(response)
    claims = verified_claims(browser.http, browser.redeem(client_id, secret, result["code"]).json["id_token"])
    assert (claims["acr"], claims["amr"]) == (acr, amr)


# ---- the account page ----

def sign_in_with_password(browser):
    response = browser.login(browser.http.get("/account", follow_redirects=False))
    assert response.status_code == 302


def account_post(browser, path):
    # Any page's token: /account itself sends a password-only session of an enrolled person to
    # the second-factor step (OIDC_ENROLLED_FACTORS=always).
    page = browser.http.get("/login")
    return browser.http.post(path, data={"csrf_token": csrf_token(page.text)})


def test_account_page_lists_links_and_offers_the_others(app, browser, alice):
    link(app, "alice")
    connect(app)
    connect(app, "corp", display_name="Corp SSO")
    sign_in_with_password(browser)
    page = browser.http.get("/account").text
    assert "Linked sign-ins" in page and "Link Corp SSO" in page and "Link GitHub" not in page
    assert "Unlink" in page


def test_linking_from_the_account_page(app, browser, alice):
    connect(app, who=identity(email="someone-else@example.com"))
    sign_in_with_password(browser)
    response = account_post(browser, "/account/links/github/start")
    assert response.status_code == 302 and response.headers["Location"].startswith(UPSTREAM)
    response = come_back(browser, query_of(response.headers["Location"])["state"])
    assert response.headers["Location"] == "/account?done=linked"
    assert links(app) == [("alice", "github", "1001")]
    assert signed_in_as(app, browser) == "alice"
    assert events(app, "account:federated-identity:linked")[0][3] == {"provider": "github", "rule": "explicit"}


def test_linking_needs_a_fresh_sign_in(app, browser, alice):
    connect(app)
    sign_in_with_password(browser)
    age_login(app, browser, 11 * 60)
    response = account_post(browser, "/account/links/github/start")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/account/confirm"
    assert links(app) == []


def test_linking_without_a_password_and_stale_asks_to_sign_in_again(app, browser, alice):
    link(app, "alice", subject="corp-1", provider="corp")
    connect(app, "corp", who=identity(provider="corp", subject="corp-1"))
    connect(app)
    with app.app_context():
        db.session.execute(update(Account).values(password_hash=None))
        db.session.commit()
    assert upstream_login(browser, "corp").status_code == 302
    age_login(app, browser, 11 * 60)
    refused(account_post(browser, "/account/links/github/start"), 403, "Sign out, sign in again")


@configured(account_reauth_seconds=120)
def test_linking_follows_the_account_guards_reauth_window(app, browser, alice):
    """Linking is one of the account page's changes to what signs the person in: it uses the
    account guard's OIDC_ACCOUNT_REAUTH_SECONDS, not a window of its own."""
    connect(app)
    sign_in_with_password(browser)
    age_login(app, browser, 121)
    stale = urlsplit(account_post(browser, "/account/links/github/start").headers["Location"])
    assert stale.path == "/account/confirm" and "why=add-factor" in stale.query
    age_login(app, browser, 100)
    assert account_post(browser, "/account/links/github/start").headers["Location"].startswith(UPSTREAM)


def test_a_password_only_session_of_an_enrolled_person_cannot_unlink(app, browser, alice):
    """OIDC_ENROLLED_FACTORS=always through the account guard: a session the second factor has
    not completed goes to the second-factor step, and the link stays."""
    enroll_totp(app)
    link(app, "alice")
    connect(app)
    sign_in_with_password(browser)
    with app.app_context():
        link_id = db.session.scalar(select(FederatedIdentity.id))
    response = account_post(browser, f"/account/links/{link_id}/remove")
    assert urlsplit(response.headers["Location"]).path == "/sign-in/second-factor"
    assert links(app) == [("alice", "github", "1001")]


def test_linking_an_identity_of_another_account_is_refused(app, browser, alice):
    make_user(app, "bob")
    link(app, "bob")
    connect(app)
    sign_in_with_password(browser)
    response = account_post(browser, "/account/links/github/start")
    refused(come_back(browser, query_of(response.headers["Location"])["state"]), 403, "belongs to another account")
    assert links(app) == [("bob", "github", "1001")]
    assert events(app, "account:federated-identity:linked")[-1][:2] == ("failure", "already_linked_elsewhere")


def test_linking_a_second_identity_at_the_same_connector_is_refused(app, browser, alice):
    link(app, "alice", subject="999")
    connect(app)
    sign_in_with_password(browser)
    refused(account_post(browser, "/account/links/github/start"), 409, "Unlink it first")


def test_a_link_started_by_someone_who_signed_out_does_not_link(app, browser, alice):
    make_user(app, "bob")
    connect(app)
    sign_in_with_password(browser)
    response = account_post(browser, "/account/links/github/start")
    state = query_of(response.headers["Location"])["state"]
    account_post(browser, "/account/logout")
    # Signing out ended the session the state was bound to.
    refused(come_back(browser, state), 403, "started in another browser")
    assert links(app) == []


def test_unlinking_with_a_password_left(app, browser, alice):
    link(app, "alice")
    connect(app)
    sign_in_with_password(browser)
    with app.app_context():
        link_id = db.session.scalar(select(FederatedIdentity.id))
    response = account_post(browser, f"/account/links/{link_id}/remove")
    assert response.headers["Location"] == "/account?done=unlinked"
    assert links(app) == []
    assert events(app, "account:federated-identity:unlinked")[0][:3] == ("success", None, "alice")


def test_unlinking_the_last_way_to_sign_in_is_refused(app, browser):
    connect(app, signup=True)
    assert upstream_login(browser).status_code == 302  # a new account without a password
    with app.app_context():
        link_id = db.session.scalar(select(FederatedIdentity.id))
    refused(account_post(browser, f"/account/links/{link_id}/remove"), 409, "last way to sign in")
    assert len(links(app)) == 1
    assert events(app, "account:federated-identity:unlinked")[0][:2] == ("failure", "last_way_to_sign_in")


def test_unlinking_someone_elses_link_changes_nothing(app, browser, alice):
    make_user(app, "bob")
    link(app, "bob")
    sign_in_with_password(browser)
    with app.app_context():
        link_id = db.session.scalar(select(FederatedIdentity.id))
    assert account_post(browser, f"/account/links/{link_id}/remove").status_code == 302
    assert links(app) == [("bob", "github", "1001")]


def test_the_upstream_url_carries_the_challenge_never_the_verifier(app, browser):
    """RFC 7636 §4.3: the verifier stays here until the token request."""
    connect(app)
    response = press_start(browser)
    with app.app_context():
        verifier = db.session.scalar(select(UpstreamState.code_verifier))
    assert verifier not in response.headers["Location"]
    assert query_of(response.headers["Location"])["code_challenge"] == s256(verifier)


# ---- review findings: account takeover paths closed ----

def test_signup_from_a_connector_not_trusted_for_email_plants_no_verified_email(app, browser):
    """A connector with sign-up but without match_email must not create an account whose email
    is verified: rule 2 of another connector would later match it (account takeover)."""
    connect(app, "corp", signup=True, match_email=False, who=identity(provider="corp", email="victim@example.com"))
    assert upstream_login(browser, "corp").status_code == 302
    created = account_named(app, "alice-gh")
    assert (created.email, created.email_verified) == ("victim@example.com", False)


def test_signup_never_takes_an_email_another_account_has(app, browser, alice):
    connect(app, signup=True, match_email=False, who=identity(email="alice@example.com", subject="666"))
    assert upstream_login(browser).status_code == 302
    created = account_named(app, "alice-gh")
    assert (created.email, created.email_verified) == (None, False)


def test_unicode_look_alike_emails_never_match(app, browser):
    """The Kelvin sign U+212A lowercases to "k": "\u212aate@example.com" must not reach kate."""
    make_user(app, "kate", email="kate@example.com", email_verified=True)
    connect(app, match_email=True, who=identity(email="\u212aate@example.com"))
    refused(upstream_login(browser), 403, "no account")
    assert links(app) == []


def test_linking_needs_a_fresh_sign_in_at_the_accounts_level(app, browser, alice):
    """With a second factor, a fresh password alone is not enough to link a new way in."""
    enroll_totp(app)
    connect(app)
    sign_in_with_password(browser)
    response = account_post(browser, "/account/links/github/start")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, "level=mfa" in location.query) == ("/account/confirm", True)
    assert links(app) == []


@pytest.mark.parametrize("name", ["state", "code"])
def test_6749_3_1_a_repeated_callback_parameter_is_refused(app, browser, alice, name):
    connect(app)
    state = go_upstream(browser)
    query = f"state={state}&code=upstream-code&{name}=again"
    response = browser.http.get(f"/federation/github/callback?{query}")
    refused(response, 400, "malformed")
    assert signed_in_as(app, browser) is None


@pytest.mark.parametrize("subject", ["", "a\x00b", "x" * 256])
def test_an_unusable_upstream_subject_is_refused(app, browser, alice, subject):
    connect(app, signup=True, who=identity(subject=subject))
    refused(upstream_login(browser), 400, "cannot use")
    assert links(app) == []


def test_5_7_a_connector_repointed_at_another_upstream_does_not_match_old_subjects(app, browser, alice):
    """OIDC Core §5.7: only iss and sub together identify a person. A link made with one
    upstream is not used when the connector now points at another (the same subject there may
    be someone else)."""
    connect(app)
    link(app, "alice")
    with app.app_context():
        db.session.execute(update(FederatedIdentity).values(issuer="https://old-github.example"))
        db.session.commit()
    refused(upstream_login(browser), 403, "different site")
    assert signed_in_as(app, browser) is None


def test_a_new_link_remembers_its_upstream(app, browser):
    make_user(app, "carol", email="carol@example.com", email_verified=True)
    connect(app, match_email=True, who=identity(email="carol@example.com"))
    assert upstream_login(browser).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(FederatedIdentity.issuer)) == "https://github.com"
