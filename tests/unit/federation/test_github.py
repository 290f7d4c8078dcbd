"""The GitHub connector against a fake GitHub on loopback, over real HTTP (issue 4): RFC 6749
§4.1 authorization code grant with RFC 7636 PKCE, then GitHub's REST API (docs: "Authorizing
OAuth apps", "REST API endpoints for users", "REST API endpoints for emails"). Every failure is
a ConnectorError with the right reason, and no message ever holds a secret, code or token."""

from __future__ import annotations

import secrets
import socket
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from oidc_provider.federation.config import ConnectorConfig
from oidc_provider.federation.connector import ConnectorError, Identity
from oidc_provider.federation.github import GitHubConnector
from tests.fakes import github as fakes
from tests.fakes.github import FakeGitHub

fake_github = fakes.fake_github  # the fixture: a FakeGitHub served on 127.0.0.1 for one test

CALLBACK = "http://127.0.0.1:5000/federation/github/callback"


def connector_for(fake: FakeGitHub, **overrides) -> GitHubConnector:
    config = ConnectorConfig(name="github", kind="github", client_id=fake.client_id,
                             client_secret=fake.client_secret, display_name="GitHub",
                             scopes="read:user user:email", match_email=True, github_url=fake.url,
                             github_api_url=fake.api_url)
    return GitHubConnector(replace(config, **overrides))


class Login:
    """One browser's trip: start() -> the fake's authorize endpoint -> the callback's query."""

    def __init__(self, connector: GitHubConnector, redirect_uri: str = CALLBACK):
        self.connector = connector
        self.state = secrets.token_urlsafe(32)
        self.nonce = secrets.token_urlsafe(16)
        self.code_verifier = secrets.token_urlsafe(48)
        self.url = connector.start(redirect_uri=redirect_uri, state=self.state, nonce=self.nonce,
                                   code_challenge=create_s256_code_challenge(self.code_verifier))
        answer = requests.get(self.url, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        assert location.startswith(redirect_uri + "?")
        self.params = dict(parse_qsl(urlsplit(location).query))

    def finish(self, params: dict | None = None, *, redirect_uri: str = CALLBACK, code_verifier: str | None = None):
        return self.connector.finish(redirect_uri=redirect_uri, params=self.params if params is None else params,
                                     nonce=self.nonce, code_verifier=code_verifier or self.code_verifier)


def refused(login: Login, reason: str, fake: FakeGitHub, **finish) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        login.finish(**finish)
    assert caught.value.reason == reason
    assert_no_secret(caught.value, fake, login)
    return caught.value


def assert_no_secret(exc: ConnectorError, fake: FakeGitHub, login: Login | None = None) -> None:
    """Issue 4: "no upstream secret, code or token ever appears in a log or page"."""
    text = f"{exc} {exc.message} {exc!r}"
    forbidden = [fake.client_secret, *fake.issued_codes, *fake.issued_tokens]
    if login is not None:
        forbidden += [login.code_verifier, login.state]
    for value in forbidden:
        assert value not in text


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now


# ---- start: the authorization request ----

def test_rfc6749_4_1_1_and_rfc7636_4_3_authorization_request(fake_github):
    """RFC 6749 §4.1.1 (client_id, redirect_uri, scope, state) and RFC 7636 §4.3
    (code_challenge, code_challenge_method=S256), plus GitHub's allow_signup=false; never the
    client secret in a URL the browser sees."""
    connector = connector_for(fake_github)
    url = connector.start(redirect_uri=CALLBACK, state="st", nonce="unused", code_challenge="ch")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == fake_github.url + "/login/oauth/authorize"
    assert dict(parse_qsl(parts.query)) == {
        "client_id": fake_github.client_id, "redirect_uri": CALLBACK, "scope": "read:user user:email",
        "state": "st", "code_challenge": "ch", "code_challenge_method": "S256", "allow_signup": "false"}
    assert fake_github.client_secret not in url


def test_rfc6749_4_1_2_the_callback_carries_code_and_the_same_state(fake_github):
    """RFC 6749 §4.1.2: the upstream returns the exact state it was given (checked by
    federation/state.py before finish)."""
    login = Login(connector_for(fake_github))
    assert login.params["state"] == login.state and login.params["code"]


# ---- finish: the happy paths ----

def test_github_web_flow_yields_the_identity(fake_github):
    """GitHub docs, web application flow steps 1-3: code -> token -> GET /user, /user/emails."""
    identity = Login(connector_for(fake_github)).finish()
    assert identity == Identity(provider="github", subject="583231", email="octocat@github.com",
                                email_verified=True, name="The Octocat", username="octocat", amr=(), acr=None)


def test_github_subject_is_the_numeric_id_never_the_login(fake_github):
    """GitHub logins can be renamed and re-registered by someone else; the id never changes."""
    first = Login(connector_for(fake_github)).finish()
    fake_github.user = {**fake_github.user, "login": "monalisa", "name": None}
    second = Login(connector_for(fake_github)).finish()
    assert (first.subject, second.subject) == ("583231", "583231")
    assert (second.username, second.name) == ("monalisa", None)


def test_github_no_verified_email_still_signs_in(fake_github):
    """Issue 4: the login "works when no verified email exists"; there is simply no email."""
    fake_github.emails = [{"email": "octocat@github.com", "primary": True, "verified": False, "visibility": None}]
    identity = Login(connector_for(fake_github)).finish()
    assert (identity.subject, identity.email, identity.email_verified) == ("583231", None, False)


def test_github_no_email_at_all_still_signs_in(fake_github):
    fake_github.emails = []
    identity = Login(connector_for(fake_github)).finish()
    assert (identity.email, identity.email_verified, identity.username) == (None, False, "octocat")


def test_github_a_verified_secondary_does_not_stand_in_for_an_unverified_primary(fake_github):
    """Only the primary AND verified address is the person's email."""
    fake_github.emails = [
        {"email": "octocat@github.com", "primary": True, "verified": False, "visibility": "public"},
        {"email": "boss@example.com", "primary": False, "verified": True, "visibility": None},
    ]
    identity = Login(connector_for(fake_github)).finish()
    assert (identity.email, identity.email_verified) == (None, False)


def test_github_primary_verified_email_is_found_among_several(fake_github):
    fake_github.emails = [
        {"email": "old@example.com", "primary": False, "verified": True, "visibility": None},
        {"email": "new@example.com", "primary": True, "verified": True, "visibility": "private"},
    ]
    identity = Login(connector_for(fake_github)).finish()
    assert (identity.email, identity.email_verified) == ("new@example.com", True)


# ---- the callback's error response ----

def test_rfc6749_4_1_2_1_access_denied(fake_github):
    """RFC 6749 §4.1.2.1 ``error=access_denied``: the person cancelled at GitHub."""
    fake_github.deny_with = "access_denied"
    login = Login(connector_for(fake_github))
    assert login.params["error"] == "access_denied" and login.params["state"] == login.state
    refused(login, "access_denied", fake_github)


def test_rfc6749_4_1_2_1_other_upstream_error(fake_github):
    """RFC 6749 §4.1.2.1 any other error code (GitHub: ``application_suspended``,
    ``redirect_uri_mismatch``) is an upstream refusal."""
    fake_github.deny_with = "application_suspended"
    refused(Login(connector_for(fake_github)), "upstream_error", fake_github)


@pytest.mark.parametrize("dropped", [("code",), ("code", "state")])
def test_rfc6749_4_1_2_callback_without_code(fake_github, dropped):
    """RFC 6749 §4.1.2: a success response MUST carry ``code``; without it (or without code
    and state) there is nothing to exchange. State itself is checked by federation/state.py."""
    login = Login(connector_for(fake_github))
    params = {k: v for k, v in login.params.items() if k not in dropped}
    refused(login, "missing_code", fake_github, params=params)
    assert login.finish().subject == "583231", "the untouched code still works: nothing was spent"


# ---- the token request ----

def test_github_token_exchange_refused_with_200_error(fake_github):
    """GitHub answers a refused token request with 200 and ``{"error": "bad_verification_code"}``
    (not RFC 6749 §5.2's 400): the connector reads the body, not only the status."""
    fake_github.fail_token = True
    refused(Login(connector_for(fake_github)), "token_exchange", fake_github)


def test_rfc6749_4_1_2_a_code_is_single_use(fake_github):
    """RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once"; a
    replay is refused by the upstream and reported as token_exchange."""
    login = Login(connector_for(fake_github))
    assert login.finish().subject == "583231"
    refused(login, "token_exchange", fake_github)


def test_rfc7636_4_6_wrong_code_verifier(fake_github):
    """RFC 7636 §4.6: the upstream refuses a verifier that does not hash to the challenge."""
    login = Login(connector_for(fake_github))
    refused(login, "token_exchange", fake_github, code_verifier=secrets.token_urlsafe(48))


def test_rfc6749_4_1_3_redirect_uri_must_match(fake_github):
    """RFC 6749 §4.1.3: redirect_uri in the token request must be identical to the one in the
    authorization request."""
    login = Login(connector_for(fake_github))
    refused(login, "token_exchange", fake_github, redirect_uri=CALLBACK + "/other")


def test_rfc6749_2_3_1_wrong_client_secret(fake_github):
    """RFC 6749 §2.3.1 client authentication fails (GitHub: ``incorrect_client_credentials``);
    neither secret appears in the message."""
    wrong = "not-the-secret-" + secrets.token_hex(8)
    login = Login(connector_for(fake_github, client_secret=wrong))
    exc = refused(login, "token_exchange", fake_github)
    assert wrong not in str(exc)


def test_rfc6749_7_1_unknown_token_type_is_not_used(fake_github):
    """RFC 6749 §7.1: "The client MUST NOT use an access token if it does not understand the
    token type"."""
    fake_github.token_type = "mac"
    refused(Login(connector_for(fake_github)), "token_exchange", fake_github)


@pytest.mark.parametrize("fault", ["500", "not_json"])
def test_github_token_endpoint_broken(fake_github, fault):
    fake_github.faults["token"] = fault
    refused(Login(connector_for(fake_github)), "token_exchange", fake_github)


# ---- GET /user and GET /user/emails ----

@pytest.mark.parametrize("fault", ["500", "not_json"])
def test_github_user_endpoint_broken(fake_github, fault):
    """GitHub REST ``GET /user`` answering 500 or an HTML page: a profile failure."""
    fake_github.faults["user"] = fault
    refused(Login(connector_for(fake_github)), "profile", fake_github)


@pytest.mark.parametrize("fault", ["500", "not_json"])
def test_github_emails_endpoint_broken(fake_github, fault):
    """GitHub REST ``GET /user/emails`` answering 500 or an HTML page: an email failure."""
    fake_github.faults["emails"] = fault
    refused(Login(connector_for(fake_github)), "email", fake_github)


def test_github_emails_need_the_user_email_scope(fake_github):
    """GitHub docs: /user/emails needs ``user:email`` (404 without it); a connector configured
    without that scope fails clearly instead of silently losing the email."""
    refused(Login(connector_for(fake_github, scopes="read:user")), "email", fake_github)


@pytest.mark.parametrize("user", [
    {"login": "octocat", "name": "x"},  # no id
    {"id": "583231", "login": "octocat"},  # id as a string
    {"id": True, "login": "octocat"},  # a bool is not an id
    {"id": 0, "login": "octocat"},
    {"id": 583231},  # no login
    {"id": 583231, "login": ""},
    {"id": 583231, "login": "o" * 40},
    {"id": 583231, "login": "octo\ncat"},
    {"id": 583231, "login": "octocat", "name": 7},
    {"id": 583231, "login": "octocat", "name": "n" * 256},
    ["not", "an", "object"],
])
def test_github_user_shape_is_validated(fake_github, user):
    fake_github.user = user
    refused(Login(connector_for(fake_github)), "profile", fake_github)


@pytest.mark.parametrize("emails", [
    {"email": "octocat@github.com", "primary": True, "verified": True},  # an object, not a list
    [{"email": "octocat@github.com", "primary": True}],  # no verified
    [{"email": "octocat@github.com", "primary": "yes", "verified": True}],
    [{"email": 5, "primary": True, "verified": True}],
    [{"email": "no-at-sign", "primary": True, "verified": True}],
    [{"email": "a" * 250 + "@x.io", "primary": True, "verified": True}],
    ["octocat@github.com"],
])
def test_github_emails_shape_is_validated(fake_github, emails):
    fake_github.emails = emails
    refused(Login(connector_for(fake_github)), "email", fake_github)


# ---- the network ----

def test_github_unreachable_token_endpoint(fake_github):
    """Nothing listening: unreachable, and no secret in the message."""
    login = Login(connector_for(fake_github))
    login.connector = connector_for(fake_github, github_url=closed_port_url())
    refused(login, "unreachable", fake_github)


def test_github_unreachable_api(fake_github):
    refused(Login(connector_for(fake_github, github_api_url=closed_port_url())), "unreachable", fake_github)
