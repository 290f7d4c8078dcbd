"""Whole journeys through the REAL connectors against real upstream servers on loopback (issue 4):
the fake GitHub (``tests/fakes/github.py``), the fake Google (``tests/fakes/google.py``) and a
second ``oidc-provider serve`` as the generic OIDC upstream (started as
``tests/e2e/test_upstream_oidc.py`` starts it). No test double: the provider under test runs in
the Flask test client with the connector configured in its settings, and the person's browser
goes out to the upstream over real HTTP (``requests``) and comes back to the callback.

Each journey starts at a relying party's authorization request (OIDC Core §3.1.2.1), presses
"Continue with ..." on the login page, signs in at the upstream, comes back, consents and ends
with an ID token from this provider whose ``amr`` is ``fed`` (RFC 8176 §2) at level ``pwd``.
Covered for each upstream: the linking rules 1 to 4, a denial at the upstream (RFC 6749
§4.1.2.1), a replayed upstream ``state`` (RFC 6749 §10.12); for Google, tampered ID tokens
(OIDC Core §3.1.3.7) and ``trust_mfa``. Every failure has its audit row, and no upstream code,
token or client secret appears in any page, audit row or log line."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from oidc_provider.audit import Event
from oidc_provider.extensions import db
from oidc_provider.federation.config import DEFAULTS
from oidc_provider.logs import JsonFormatter
from oidc_provider.models import Account, AuditEvent, FederatedIdentity, UpstreamState

from ..e2e.conftest import Live, LiveBrowser, _form_action, _hidden_fields
from ..e2e.test_upstream_oidc import CALLBACK, UpstreamServer
from ..fakes import github as github_fakes
from ..fakes import google as google_fakes
from ..helpers import Browser, csrf_token, make_client, make_user, query_of
from ..spec._support import at_consent, at_login, redirected_to_client, start, verified_claims

fake_github = github_fakes.fake_github
fake_google = google_fakes.fake_google

# The provider under test: the issuer whose callback URLs the upstreams have registered
# (port 9 on loopback: nothing listens there; the test client takes the callback instead).
ISSUER = "{0.scheme}://{0.netloc}".format(urlsplit(CALLBACK))
TIMEOUT = 15
UPSTREAM_TOKENS = ("access_token", "id_token", "refresh_token")


# ---- the upstreams ----

@dataclass
class Upstream:
    """One upstream and what it knows about the person signing in there."""

    name: str  # the connector's name here
    table: dict  # the connector's settings (without the rule flags)
    subject: str
    email: str
    username: str  # what sign-up derives from the upstream's answer
    walk: Callable[[str], str]  # the upstream authorization URL -> its redirect back to our callback
    deny: Callable[[], None]  # the person will press "Cancel" (or "Deny") at the upstream
    issued: Callable[[], list[str]]  # codes, tokens and secrets the upstream handed out


def one_redirect(url: str) -> str:
    """The fakes have no UI: the authorization endpoint answers with the redirect back."""
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return response.headers["Location"]


def github_upstream(fake) -> Upstream:
    def deny():
        fake.deny_with = "access_denied"

    return Upstream(
        name="github",
        table={"kind": "github", "client_id": fake.client_id, "client_secret": fake.client_secret,
               "github_url": fake.url, "github_api_url": fake.api_url},
        subject=str(fake.user["id"]), email="octocat@github.com", username=fake.user["login"],
        walk=one_redirect, deny=deny,
        issued=lambda: [fake.client_secret, *fake.issued_codes, *fake.issued_tokens])


def google_upstream(fake) -> Upstream:
    def deny():
        fake.knobs.deny = True

    return Upstream(
        name="google",
        table={"kind": "google", "issuer": fake.url, "client_id": fake.client_id,
               "client_secret": fake.client_secret},
        # Google sends no preferred_username: sign-up takes the email's local part.
        subject=fake.user.sub, email=fake.user.email, username=fake.user.email.split("@")[0],
        walk=one_redirect, deny=deny, issued=lambda: [fake.client_secret, *fake.issued])


@pytest.fixture(scope="module")
def corp_server(tmp_path_factory):
    """A second instance of this provider: ``UpstreamServer`` from the e2e test, one user,
    a trusted client (no consent page there) and one that asks (so the person can deny)."""
    server = UpstreamServer(tmp_path_factory.mktemp("corp") / "upstream.db")
    try:
        server.prepare()
        password = secrets.token_urlsafe(18)
        account = server.create_user("carol", password, email="carol@example.org", name="Carol Upstream")
        trusted = server.create_client("Downstream provider", [CALLBACK], extra=["--trusted"])
        asking = server.create_client("Downstream provider that asks", [CALLBACK])
        server.start()
        yield Live(issuer=server.issuer, user="carol", password=password, redirect_uri=CALLBACK,
                   clients={"trusted": trusted, "asking": asking, "account": account})
    finally:
        server.stop()


def deny_at_consent(live: Live, url: str) -> str:
    """Sign in at the upstream provider, then press "Deny" on its consent page; returns the
    redirect back (OIDC Core §3.1.2.6: error=access_denied)."""
    http = requests.Session()
    response = http.get(url, allow_redirects=False, timeout=TIMEOUT)
    for _ in range(12):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if not location.startswith(live.issuer + "/"):
                return location
            response = http.get(location, allow_redirects=False, timeout=TIMEOUT)
            continue
        html = response.text
        assert response.status_code == 200, (response.status_code, html[:300])
        if 'name="password"' in html:
            data = {**_hidden_fields(html), "username": live.user, "password": live.password}
        else:
            assert 'name="decision"' in html, html[:300]
            data = {**_hidden_fields(html), "decision": "deny"}
        response = http.post(_form_action(html, response.url), data=data, allow_redirects=False, timeout=TIMEOUT)
    raise AssertionError("the upstream did not send the person back within 12 steps")


def corp_upstream(live: Live) -> Upstream:
    chosen = {"client": live.clients["trusted"]}

    def table():
        client = chosen["client"]
        return {"kind": "oidc", "issuer": live.issuer, "display_name": "Corp SSO",
                "client_id": client["client_id"], "client_secret": client["client_secret"]}

    def walk(url):
        if chosen["client"] is live.clients["asking"]:
            return deny_at_consent(live, url)
        return LiveBrowser(live).authorize(url)  # signs in as carol; a trusted client skips consent

    upstream = Upstream(
        name="corp", table=table(), subject=live.clients["account"]["sub"], email="carol@example.org",
        username=live.user, walk=walk, deny=lambda: None,
        issued=lambda: [c["client_secret"] for c in (live.clients["trusted"], live.clients["asking"])])

    def deny():
        chosen["client"] = live.clients["asking"]
        upstream.table = table()

    upstream.deny = deny
    return upstream


@pytest.fixture(params=["github", "google", "corp"])
def upstream(request) -> Upstream:
    if request.param == "github":
        return github_upstream(request.getfixturevalue("fake_github"))
    if request.param == "google":
        return google_upstream(request.getfixturevalue("fake_google"))
    return corp_upstream(request.getfixturevalue("corp_server"))


# ---- the provider under test and the person ----

@dataclass
class Setup:
    app: object
    upstream: Upstream
    client_id: str
    secret: str
    pages: list = field(default_factory=list)  # every response of the provider under test
    seen: list = field(default_factory=list)  # upstream codes and tokens that went past

    def person(self) -> Person:
        return Person(self)


class Person:
    """Someone at a browser: the provider under test through the Flask test client, the
    upstream over real HTTP."""

    def __init__(self, setup: Setup):
        self.setup, self.upstream = setup, setup.upstream
        self.browser = Browser(setup.app)
        opened = self.browser.http.open

        def open_and_keep(*args, **kwargs):
            response = opened(*args, **kwargs)
            setup.pages.append(response.headers.get("Location", "") + "\n" + response.get_data(as_text=True))
            return response

        self.browser.http.open = open_and_keep

    def request(self, **extra) -> tuple[str, dict]:
        """The relying party's authorization request, to the login page; (pending id, params)."""
        response, params = start(self.browser, self.setup.client_id, **extra)
        assert at_login(response), (response.status_code, response.headers.get("Location"))
        pid = query_of(response.headers["Location"])["p"]
        page = self.browser.http.get(response.headers["Location"])
        assert f'action="/federation/{self.upstream.name}/start"' in page.text, "the login page's button"
        assert f'name="p" value="{pid}"' in page.text
        return pid, params

    def to_upstream_and_back(self, pid: str) -> str:
        """Press "Continue with ...", sign in at the upstream; the upstream's redirect back."""
        page = self.browser.http.get("/login", query_string={"p": pid})
        response = self.browser.http.post(f"/federation/{self.upstream.name}/start",
                                          data={"csrf_token": csrf_token(page.get_data(as_text=True)), "p": pid})
        assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:300])
        back = self.upstream.walk(response.headers["Location"])
        parts = urlsplit(back)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/federation/{self.upstream.name}/callback"
        self.setup.seen += [v for k, v in query_of(back).items() if k == "code"]
        return back

    def callback(self, back: str):
        parts = urlsplit(back)
        return self.browser.http.get(f"{parts.path}?{parts.query}")

    def finish(self, response, pid: str, params: dict) -> dict:
        """From the callback's answer: resume the request, consent, redeem; the ID token claims."""
        assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:500])
        assert response.headers["Location"] == f"/authorize/continue/{pid}", "exactly the request that sent them"
        response = self.browser.follow(response)
        if at_consent(response):
            response = self.browser.follow(self.browser.consent(response))
        result = redirected_to_client(response)
        assert (result["state"], result["iss"]) == (params["state"], ISSUER)
        token = self.browser.redeem(self.setup.client_id, self.setup.secret, result["code"])
        assert token.status_code == 200, token.json
        claims = verified_claims(self.browser.http, token.json["id_token"])
        assert (claims["iss"], claims["aud"], claims["nonce"]) == (ISSUER, self.setup.client_id, params["nonce"])
        return claims

    def journey(self, **extra) -> dict:
        pid, params = self.request(**extra)
        return self.finish(self.callback(self.to_upstream_and_back(pid)), pid, params)

    def refused_journey(self):
        """Up to the callback's answer, which must be a page of ours (no redirect anywhere)."""
        pid, _ = self.request()
        response = self.callback(self.to_upstream_and_back(pid))
        assert "Location" not in response.headers, response.headers.get("Location")
        assert response.mimetype == "text/html"
        return response

    def signed_in(self) -> bool:
        return self.browser.http.get("/account").status_code == 200


@pytest.fixture
def make_setup(app_factory, upstream, caplog):
    """Build the provider under test with ``upstream`` configured (plus ``flags``)."""
    caplog.set_level(logging.DEBUG, logger="oidc_provider")

    def build(**flags) -> Setup:
        app = app_factory(issuer=ISSUER, connectors=json.dumps({upstream.name: {**upstream.table, **flags}}))
        client_id, secret = make_client(app)
        setup = Setup(app, upstream, client_id, secret)
        # Watch (never change) what the real connector receives, to prove none of it is shown.
        connector = app.extensions["oidc_connectors"][upstream.name]
        assert type(connector).kind == upstream.table["kind"]

        def keep_tokens(response, *args, **kwargs):
            try:
                body = response.json()
            except ValueError:
                return
            if isinstance(body, dict):
                setup.seen.extend(v for k, v in body.items() if k in UPSTREAM_TOKENS and isinstance(v, str))

        connector.http.hooks["response"].append(keep_tokens)
        return setup

    return build


def nothing_leaked(setup: Setup, caplog) -> None:
    """Issue 4: "no upstream secret, code or token ever appears in a log or page"."""
    secrets_ = [s for s in [*setup.upstream.issued(), *setup.seen] if s]
    assert setup.pages and secrets_
    with setup.app.app_context():
        audit = [json.dumps([e.event, e.reason, e.account, e.detail]) for e in db.session.scalars(select(AuditEvent))]
    logged = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("oidc_provider")]
    for place, texts in (("page", setup.pages), ("audit row", audit), ("log line", logged)):
        for text in texts:
            for secret in secrets_:
                assert secret not in text, f"an upstream code, token or secret in a {place}"


def events(app, event: Event) -> list[tuple]:
    with app.app_context():
        return [(e.outcome, e.reason, e.account, e.detail) for e in
                db.session.scalars(select(AuditEvent).where(AuditEvent.event == event.value).order_by(AuditEvent.id))]


def links(app) -> list[tuple]:
    with app.app_context():
        return [(db.session.get(Account, f.account_id).username, f.provider, f.subject)
                for f in db.session.scalars(select(FederatedIdentity).order_by(FederatedIdentity.id))]


def accounts(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Account))


def account_named(app, username) -> Account | None:
    with app.app_context():
        return db.session.scalar(select(Account).where(Account.username == username))


def page_says(response, status: int, text: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, body[:500])
    assert text in body, body[:800]


def assert_fed_at_pwd(claims: dict) -> None:
    """RFC 8176 §2 ``fed``: one federated factor, level ``pwd``."""
    assert (claims["amr"], claims["acr"]) == (["fed"], "pwd")


# ---- the linking rules ----

def test_rule_1_the_second_login_signs_in_to_the_linked_account(make_setup, caplog):
    setup = make_setup(signup=True)
    first = setup.person().journey()
    second = setup.person().journey()  # another browser: a new login, not the session
    assert_fed_at_pwd(second)
    assert second["sub"] == first["sub"]
    assert accounts(setup.app) == 1
    assert links(setup.app) == [(setup.upstream.username, setup.upstream.name, setup.upstream.subject)]
    rules = [detail["rule"] for _, _, _, detail in events(setup.app, Event.FEDERATED_LOGIN_SUCCESS)]
    assert rules == ["signup", "linked"]
    nothing_leaked(setup, caplog)


def test_rule_2_a_verified_email_links_to_the_account_with_that_verified_email(make_setup, upstream, caplog):
    setup = make_setup(match_email=True)
    local = make_user(setup.app, "local-person", email=upstream.email.upper(), email_verified=True)
    claims = setup.person().journey()
    assert_fed_at_pwd(claims)
    assert claims["sub"] == local
    assert links(setup.app) == [("local-person", upstream.name, upstream.subject)]
    assert accounts(setup.app) == 1
    [(_, _, account, detail)] = events(setup.app, Event.FEDERATED_LINKED)
    assert (account, detail) == ("local-person", {"provider": upstream.name, "rule": "email"})
    nothing_leaked(setup, caplog)


def test_rule_2_follows_the_kinds_default_when_not_configured(make_setup, upstream, caplog):
    """Email matching is on by default only where ``config.DEFAULTS`` says so for the kind
    (never for a generic OIDC upstream): without it the same person is refused (rule 4)."""
    on_by_default = DEFAULTS[upstream.table["kind"]][2]
    setup = make_setup()
    local = make_user(setup.app, "local-person", email=upstream.email, email_verified=True)
    person = setup.person()
    if on_by_default:
        assert person.journey()["sub"] == local
        assert links(setup.app) == [("local-person", upstream.name, upstream.subject)]
    else:
        page_says(person.refused_journey(), 403, "No account for this sign-in")
        assert links(setup.app) == [] and not person.signed_in()
        assert [r[:2] for r in events(setup.app, Event.FEDERATED_LOGIN_FAILURE)] == [("failure", "no_account")]
    nothing_leaked(setup, caplog)


def test_rule_2_an_unverified_local_email_never_matches(make_setup, upstream, caplog):
    setup = make_setup(match_email=True)
    make_user(setup.app, "local-person", email=upstream.email, email_verified=False)
    person = setup.person()
    page_says(person.refused_journey(), 403, "No account for this sign-in")
    assert links(setup.app) == [] and accounts(setup.app) == 1 and not person.signed_in()
    assert [r[:2] for r in events(setup.app, Event.FEDERATED_LOGIN_FAILURE)] == [("failure", "no_account")]
    nothing_leaked(setup, caplog)


@pytest.mark.parametrize("upstream", ["google"], indirect=True)
def test_rule_2_a_google_email_outside_gmail_and_workspace_never_matches(make_setup, upstream, fake_google, caplog):
    """Google vouches for an address only on gmail.com or with ``hd`` (a Workspace domain):
    without ``hd`` the same "verified" alice@example.com links nothing."""
    fake_google.knobs.omit = {"hd"}
    setup = make_setup(match_email=True)
    make_user(setup.app, "local-person", email=upstream.email, email_verified=True)
    page_says(setup.person().refused_journey(), 403, "No account for this sign-in")
    assert links(setup.app) == []
    assert [r[:2] for r in events(setup.app, Event.FEDERATED_LOGIN_FAILURE)] == [("failure", "no_account")]
    nothing_leaked(setup, caplog)


@pytest.mark.parametrize("match_email", [True, False])
def test_rule_3_sign_up_creates_an_account_with_a_derived_de_duplicated_username(make_setup, upstream, match_email,
                                                                                caplog):
    """The new account's email counts as verified only when the operator trusts this
    connector's emails (match_email): a verified email here is what rule 2 matches on."""
    setup = make_setup(signup=True, match_email=match_email)
    # The name sign-up would derive is taken (by someone with another email): "-2" it is.
    make_user(setup.app, upstream.username, email="someone-else@example.net")
    claims = setup.person().journey()
    assert_fed_at_pwd(claims)
    created = account_named(setup.app, f"{upstream.username}-2")
    assert created is not None and claims["sub"] == created.subject
    assert (created.password_hash, created.email, created.email_verified) == (None, upstream.email, match_email)
    assert links(setup.app) == [(f"{upstream.username}-2", upstream.name, upstream.subject)]
    [(_, _, account, detail)] = events(setup.app, Event.FEDERATED_SIGNUP)
    assert (account, detail) == (f"{upstream.username}-2", {"provider": upstream.name})
    nothing_leaked(setup, caplog)


def test_rule_4_without_sign_up_the_person_is_refused_and_nothing_is_created(make_setup, caplog):
    setup = make_setup()
    make_user(setup.app, "bob", email="bob@example.net")
    person = setup.person()
    response = person.refused_journey()
    page_says(response, 403, "No account for this sign-in")
    assert "ask the site&#39;s operator for an account" in response.get_data(as_text=True)
    assert accounts(setup.app) == 1 and links(setup.app) == [] and not person.signed_in()
    assert events(setup.app, Event.FEDERATED_SIGNUP) == [] and events(setup.app, Event.FEDERATED_LINKED) == []
    [(outcome, reason, account, detail)] = events(setup.app, Event.FEDERATED_LOGIN_FAILURE)
    assert (outcome, reason, account, detail) == ("failure", "no_account", None, {"provider": setup.upstream.name})
    nothing_leaked(setup, caplog)


# ---- errors ----

def test_rfc6749_4_1_2_1_a_denial_at_the_upstream_is_a_page_and_an_audit_row(make_setup, upstream, caplog):
    upstream.deny()
    setup = make_setup(signup=True)
    person = setup.person()
    page_says(person.refused_journey(), 400, "You did not allow the sign-in at the other site.")
    assert setup.seen == [], "no code came back, so none was exchanged"
    assert accounts(setup.app) == 0 and links(setup.app) == [] and not person.signed_in()
    [(outcome, reason, _, detail)] = events(setup.app, Event.FEDERATED_LOGIN_FAILURE)
    assert (outcome, reason, detail) == ("failure", "access_denied", {"provider": upstream.name, "purpose": "login"})
    nothing_leaked(setup, caplog)


def test_rfc6749_10_12_a_replayed_state_is_the_already_used_page(make_setup, upstream, caplog):
    setup = make_setup(signup=True)
    person = setup.person()
    pid, params = person.request()
    back = person.to_upstream_and_back(pid)
    first = person.callback(back)
    replayed = person.callback(back)
    page_says(replayed, 400, "This sign-in was already used")
    # The replay changed nothing: the first answer still resumes the request.
    assert_fed_at_pwd(person.finish(first, pid, params))
    assert accounts(setup.app) == 1 and len(links(setup.app)) == 1
    assert [r[:2] for r in events(setup.app, Event.FEDERATED_LOGIN_FAILURE)] == [("failure", "state_unknown")]
    with setup.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(UpstreamState)) == 0
    nothing_leaked(setup, caplog)


@pytest.mark.parametrize("upstream", ["google"], indirect=True)
def test_a_replayed_state_never_reaches_the_upstream_token_endpoint(make_setup, fake_google, caplog):
    """RFC 6749 §10.12: the state is consumed before the code is exchanged, so a replay sends
    nothing to the upstream (counted at the fake Google's token endpoint)."""
    setup = make_setup(signup=True)
    person = setup.person()
    pid, _ = person.request()
    back = person.to_upstream_and_back(pid)
    assert person.callback(back).status_code == 302
    page_says(person.callback(back), 400, "already used")
    assert fake_google.hits("/token") == 1
    nothing_leaked(setup, caplog)


# ---- Google: the ID token (OIDC Core §3.1.3.7) and trust_mfa ----

TAMPERED = {
    "bad_signature": {"bad_signature": True},  # step 6
    "alg_none": {"alg": "none"},  # step 7
    "alg_hs256": {"alg": "HS256"},  # step 8
    "wrong_iss": {"iss": "https://accounts.example.net"},  # step 2
    "wrong_aud": {"aud": "someone-else.apps.googleusercontent.com"},  # step 3
    "wrong_azp": {"aud": [google_fakes.CLIENT_ID, "other"], "azp": "other"},  # steps 4-5
    "expired": {"expired": True},  # step 9
    "issued_in_the_future": {"iat_offset": 3600},  # step 10
    "wrong_nonce": {"nonce": "not-the-nonce-this-login-sent"},  # step 11
    "no_id_token": {"no_id_token": True},
}


@pytest.mark.parametrize("upstream", ["google"], indirect=True)
@pytest.mark.parametrize("defect", sorted(TAMPERED))
def test_oidc_core_3_1_3_7_a_tampered_google_id_token_is_refused(make_setup, fake_google, defect, caplog):
    for knob, value in TAMPERED[defect].items():
        setattr(fake_google.knobs, knob, value)
    setup = make_setup(signup=True)
    person = setup.person()
    response = person.refused_journey()
    page_says(response, 400, "Sign-in did not work")
    assert "could not be trusted" in response.get_data(as_text=True) or defect == "no_id_token"
    assert accounts(setup.app) == 0 and links(setup.app) == [] and not person.signed_in()
    [(outcome, reason, _, detail)] = events(setup.app, Event.FEDERATED_LOGIN_FAILURE)
    assert (outcome, reason, detail["provider"]) == ("failure", "id_token", "google")
    assert fake_google.hits("/token") == 1, "the code was exchanged once, and what came back was refused"
    nothing_leaked(setup, caplog)


@pytest.mark.parametrize("upstream", ["google"], indirect=True)
@pytest.mark.parametrize("trust_mfa, upstream_amr, acr, amr", [
    (True, ["pwd", "mfa"], "mfa", ["fed", "mfa"]),
    (False, ["pwd", "mfa"], "pwd", ["fed"]),  # not trusted: the upstream's word does not count
    (True, ["pwd"], "pwd", ["fed"]),  # trusted, but the upstream did no MFA
])
def test_rfc8176_trust_mfa_takes_the_amr_of_googles_id_token(make_setup, fake_google, trust_mfa, upstream_amr, acr,
                                                             amr, caplog):
    fake_google.knobs.extra = {"amr": upstream_amr}
    setup = make_setup(signup=True, trust_mfa=trust_mfa)
    claims = setup.person().journey()
    assert (claims["acr"], claims["amr"]) == (acr, amr)
    [(_, _, _, detail)] = events(setup.app, Event.FEDERATED_LOGIN_SUCCESS)
    assert (detail["acr"], detail["amr"]) == (acr, amr)
    nothing_leaked(setup, caplog)


@pytest.mark.parametrize("upstream", ["google"], indirect=True)
def test_an_rp_asking_for_mfa_needs_no_step_up_after_a_trusted_mfa_upstream_login(make_setup, fake_google, caplog):
    """OIDC Core §3.1.2.1 ``acr_values``: the upstream's MFA satisfies ``mfa`` here."""
    fake_google.knobs.extra = {"amr": ["pwd", "mfa"]}
    setup = make_setup(signup=True, trust_mfa=True)
    claims = setup.person().journey(acr_values="mfa")
    assert (claims["acr"], claims["amr"]) == ("mfa", ["fed", "mfa"])
    nothing_leaked(setup, caplog)
