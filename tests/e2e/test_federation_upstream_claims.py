"""Upstream login through a real provider (a threaded server on loopback, driven over HTTP as
a browser does) with a generic OIDC upstream that puts the profile and email claims only in
its UserInfo response (OIDC Core §5.4; node oidc-provider's default): the connector asks
userinfo (§5.3), so email linking and sign-up see what the upstream said. Every request the
upstream receives is answered while the provider holds no database transaction (issue 12: no
lock held across an upstream HTTP call), checked on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import sqlite3
from html import unescape

import pytest
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent, FederatedIdentity

from ..fakes.google import FakeGoogle
from ..helpers import make_user
from ._browser import LiveServer

pytestmark = pytest.mark.e2e
TIMEOUT = 15


class TransactionProbe:
    """Asks the provider's database, from outside the provider, whether a transaction is open
    that would make others wait: SQLite: can another connection take the write lock at once (a
    transaction that only read holds no lock); PostgreSQL: is any other session ``idle in
    transaction``."""

    def __init__(self, database_url: str):
        self.url = make_url(database_url)
        self.engine = None if self.url.get_backend_name() == "sqlite" else create_engine(self.url)
        self.found: list[tuple[str, bool]] = []  # (upstream path, a transaction was open)

    def open_transaction(self) -> bool:
        if self.engine is None:
            conn = sqlite3.connect(self.url.database, timeout=0.5, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:
                return True
            finally:
                conn.close()
        with self.engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")).scalar() > 0

    def __call__(self, path: str) -> None:
        self.found.append((path, self.open_transaction()))


@pytest.fixture
def provider(app_factory):
    """(app, provider URL, fake upstream, probe): the upstream registered the provider's callback."""
    server, upstream_server = LiveServer(), LiveServer()
    fake = FakeGoogle(upstream_server.url, redirect_uris=(f"{server.url}/federation/corp/callback",))
    fake.knobs.claims_in_userinfo = True
    fake.knobs.extra = {"preferred_username": "alice.upstream"}
    upstream_server.start(fake.app)
    connectors = {"corp": {"kind": "oidc", "issuer": fake.url, "client_id": fake.client_id,
                           "client_secret": fake.client_secret, "display_name": "Corp SSO",
                           "match_email": True, "signup": True}}
    app = app_factory(issuer=server.url, connectors=json.dumps(connectors))
    server.start(app)
    probe = TransactionProbe(app.extensions["oidc_settings"].database_url)
    fake.on_request = probe
    try:
        yield app, server.url, fake, probe
    finally:
        server.stop()
        upstream_server.stop()
        if probe.engine is not None:
            probe.engine.dispose()


def continue_with_corp(url: str) -> requests.Response:
    """A browser on the login page presses "Continue with Corp SSO" (a POST with the page's CSRF
    token) and follows every redirect: to the upstream, back to the callback, on to the account."""
    browser = requests.Session()
    page = browser.get(f"{url}/login", timeout=TIMEOUT)
    assert 'action="/federation/corp/start"' in page.text
    token = unescape(re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1))
    return browser.post(f"{url}/federation/corp/start", data={"csrf_token": token}, timeout=TIMEOUT)


def test_5_3_email_only_in_userinfo_links_the_account_with_that_verified_email(provider):
    """OIDC Core §5.3/§5.4 with linking rule 2: the upstream's ID token carries no email; its
    userinfo says alice@example.com, verified, and the account here with that verified email
    is linked and signed in (before this, email linking never fired for such an upstream)."""
    app, url, fake, probe = provider
    subject = make_user(app, "alice", email="alice@example.com", email_verified=True)
    done = continue_with_corp(url)
    assert done.status_code == 200 and done.url == f"{url}/account", (done.status_code, done.url)
    assert fake.hits("/v1/userinfo") == 1
    with app.app_context():
        link = db.session.scalar(select(FederatedIdentity))
        account = db.session.get(Account, link.account_id)
        assert (account.subject, link.provider, link.subject, link.email) == (
            subject, "corp", fake.user.sub, "alice@example.com")


def test_5_3_sign_up_from_userinfo_claims_is_named_as_the_upstream_says(provider):
    """OIDC Core §5.3 with linking rule 3: a new account takes its username, name and email from
    the userinfo answer, not a blank account called "user"."""
    app, url, fake, _ = provider
    done = continue_with_corp(url)
    assert done.status_code == 200 and done.url == f"{url}/account"
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert (account.username, account.name, account.email, account.email_verified) == (
            "alice.upstream", "Alice Example", "alice@example.com", True)


def test_5_3_2_userinfo_sub_mismatch_is_a_refused_sign_in_page(provider):
    """OIDC Core §5.3.2: the userinfo ``sub`` must equal the ID token's, else its values MUST
    NOT be used: the person gets a 400 page and no account or link is made."""
    app, url, fake, _ = provider
    fake.knobs.userinfo_sub = "someone-else"
    done = continue_with_corp(url)
    assert done.status_code == 400 and "could not be trusted" in done.text
    with app.app_context():
        assert db.session.scalar(select(Account)) is None
        assert db.session.scalar(select(FederatedIdentity)) is None
        reasons = db.session.scalars(select(AuditEvent.reason).where(AuditEvent.reason.is_not(None))).all()
        assert "userinfo" in reasons


def test_no_database_transaction_is_open_while_the_upstream_answers(provider):
    """Issue 12 ("upstream HTTP calls ... never run inside a transaction holding a
    database-wide lock"): discovery, the token exchange, the JWKS and userinfo are each
    answered while the provider holds no transaction, so another request can write at once."""
    app, url, fake, probe = provider
    make_user(app, "alice", email="alice@example.com", email_verified=True)
    with app.app_context():  # the probe sees a transaction that holds a lock (SQLite: one that
        # only read holds none since issue 13; a locking read takes the write lock)
        db.session.execute(select(Account.id).limit(1).with_for_update())
        assert probe.open_transaction()
        db.session.rollback()
    assert not probe.open_transaction()
    assert continue_with_corp(url).status_code == 200
    paths = {path for path, _ in probe.found}
    assert {"/.well-known/openid-configuration", "/token", "/oauth2/v3/certs", "/v1/userinfo"} <= paths, paths
    assert [path for path, held in probe.found if held] == []
