"""An end-to-end relying-party check (issue 3) with a real client library, Authlib's
``OAuth2Session``, against a live ``oidc-provider serve`` driven over HTTP by ``requests``:

1. the RP asks for ``acr_values=mfa`` (OIDC Core §3.1.2.1); the person, who has no second factor,
   signs in, enrols TOTP on the page that says why, and the RP receives ``acr=mfa``;
2. later, signed in with a password only, the RP's ``pwd`` token is refused by the attributes
   API with RFC 9470 §3's challenge; the RP asks again with the challenge's ``acr_values``
   (§4), the person proves only the missing factor, and the retry with the new token succeeds.

This module starts its own server (a user and a client allowed the ``phone`` and ``address``
scopes, which the shared ``live_server`` lacks) and talks to nothing but 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from html import unescape
from urllib.parse import urljoin

import pyotp
import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet
from live import LiveServer
from werkzeug.datastructures import WWWAuthenticate

from .conftest import REDIRECT_URI, TIMEOUT, Live, LiveBrowser, _form_action, _hidden_fields

pytestmark = pytest.mark.e2e
SCOPE = "openid profile phone address"
PHONE = "+441632960000"


@pytest.fixture(scope="module")
def server():
    # OIDC_ENROLLED_FACTORS=when-asked: the RFC 9470 loop starts from a pwd token of a person who
    # has a second factor, which only that mode issues (always: every such sign-in reaches mfa).
    live = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"),
                      env_overrides={"OIDC_ENROLLED_FACTORS": "when-asked"})
    try:
        live.prepare()
        password = secrets.token_urlsafe(18)
        live.create_user("carol", password, name="Carol Example")
        client = live.create_client("E2E step-up RP", [REDIRECT_URI], extra=["--scope", SCOPE])
        live.start()
        yield Live(issuer=live.issuer, user="carol", password=password, clients={"rp": client})
    finally:
        live.stop()


@pytest.fixture(scope="module")
def metadata(server):
    return server.metadata()


class Person(LiveBrowser):
    """A browser that also answers the enrolment and step-up pages with an authenticator app."""

    totp: pyotp.TOTP | None = None
    last_step: int = -1

    def code(self) -> str:
        # RFC 6238 §5.2: a code is accepted once; one step of drift is allowed, so after the
        # enrolment's code the next step's code is good at once (no waiting 30 seconds).
        step = max(int(time.time() // 30), self.last_step + 1)
        self.last_step = step
        return self.totp.at(step * 30)

    def authorize(self, url: str) -> str:
        response = self.go(url)
        for _ in range(3):
            if response.is_redirect:
                break
            html = response.text
            data = _hidden_fields(html)
            if 'id="totp-secret"' in html:
                self.pages_seen.append("enroll")
                self.totp = pyotp.TOTP(re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1))
                data["code"] = self.code()
                shown = self.http.post(_form_action(html, response.url), data=data, allow_redirects=False,
                                       timeout=TIMEOUT)
                assert shown.status_code == 200 and 'id="recovery-codes"' in shown.text, shown.status_code
                following = unescape(re.search(r'href="([^"]+)"[^>]*id="continue"', shown.text).group(1))
                response = self.go(urljoin(shown.url, following))
            elif 'name="code"' in html:
                self.pages_seen.append("step-up")
                data.update(code=self.code(), kind="totp")
                posted = self.http.post(_form_action(html, response.url), data=data, allow_redirects=False,
                                        timeout=TIMEOUT)
                assert posted.is_redirect, (posted.status_code, posted.text[:300])
                response = self.go(urljoin(posted.url, posted.headers["Location"]))
            else:
                raise AssertionError(f"unexpected page: {html[:300]}")
        location = response.headers["Location"]
        assert location.startswith(self.live.redirect_uri + "?"), location
        return location


def sign_in(server, metadata, person, **extra):
    """The RP sends the person to the provider and redeems the code; returns (rp, token, claims)."""
    client = server.clients["rp"]
    rp = OAuth2Session(client["client_id"], client["client_secret"], scope=SCOPE, redirect_uri=server.redirect_uri,
                       code_challenge_method="S256")
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                         nonce=generate_token(20), **extra)
    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=person.authorize(url),
                           code_verifier=verifier)
    jwks = KeySet.import_key_set(rp.get(metadata["jwks_uri"], timeout=TIMEOUT).json())
    return rp, token, dict(jwt.decode(token["id_token"], jwks).claims)


def test_rfc9470_step_up_loop_with_authlib(server, metadata):
    """Issue 3: "ask for acr_values=mfa, receive it, call the attributes API with a pwd token and
    get the RFC 9470 challenge, step up, retry, succeed"."""
    api = server.issuer + "/api/account/attributes"
    first = Person(server)
    rp, token, claims = sign_in(server, metadata, first, acr_values="mfa")
    assert first.pages_seen == ["login", "enroll", "consent"]
    assert claims["acr"] == "mfa" and {"pwd", "otp"} <= set(claims["amr"])
    assert rp.get(api + "/phone_number", timeout=TIMEOUT).status_code == 404  # allowed, not set yet

    # Another day, another browser: signed in with a password only.
    person = Person(server)
    person.totp, person.last_step = first.totp, first.last_step
    rp, token, claims = sign_in(server, metadata, person)
    assert claims["acr"] == "pwd"
    refused = rp.put(api + "/phone_number", json={"value": PHONE}, timeout=TIMEOUT)
    assert refused.status_code == 401
    challenge = WWWAuthenticate.from_header(refused.headers["WWW-Authenticate"])
    assert (challenge.type, challenge["error"], challenge["acr_values"]) == \
        ("bearer", "insufficient_user_authentication", "mfa")
    assert refused.json()["acr_values"] == "mfa"

    rp, token, claims = sign_in(server, metadata, person, acr_values=challenge["acr_values"])
    assert person.pages_seen == ["login", "step-up"], "only the missing factor, not the password again"
    assert claims["acr"] == "mfa"
    retried = rp.put(api + "/phone_number", json={"value": PHONE}, timeout=TIMEOUT)
    assert (retried.status_code, retried.json()) == (200, {"name": "phone_number", "value": PHONE})
    assert rp.get(api, timeout=TIMEOUT).json() == {"attributes": {"phone_number": PHONE}}
