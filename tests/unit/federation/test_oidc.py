"""The generic OIDC and Google connectors (issue 4) against a fake Google over real HTTP on
127.0.0.1: OIDC Discovery 1.0 §4, the code flow with PKCE S256 and a nonce (OIDC Core §3.1.2.1,
RFC 7636), the RFC 9207 ``iss`` response parameter, and every ID token check of OIDC Core
§3.1.3.7, each defect refused by step number. No code, token or secret in any message."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import socket
import time

import pytest
import requests

from oidc_provider.federation.config import parse
from oidc_provider.federation.connector import ConnectorError
from oidc_provider.federation.google import GoogleConnector
from oidc_provider.federation.oidc import OidcConnector
from tests.fakes import google as fakes
from tests.helpers import query_of

REDIRECT_URI = fakes.REDIRECT_URI
fake_google = fakes.fake_google  # the fixture: a fresh fake Google on 127.0.0.1 per test


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def connector_for(fake, cls=GoogleConnector, clock=None, **table):
    kind = cls.kind
    configs, errors = parse(json.dumps({kind: {"kind": kind, "client_id": fake.client_id,
                                               "client_secret": fake.client_secret, "issuer": fake.issuer,
                                               **table}}))
    assert errors == []
    return cls(configs[kind], clock=clock) if clock else cls(configs[kind])


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize(connector) -> tuple[dict, str, str]:
    """start() and the browser's trip to the upstream; returns (callback params, nonce, verifier)."""
    state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    url = connector.start(redirect_uri=REDIRECT_URI, state=state, nonce=nonce, code_challenge=s256(verifier))
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(location)
    assert params["state"] == state
    return params, nonce, verifier


def sign_in(connector):
    params, nonce, verifier = authorize(connector)
    return connector.finish(redirect_uri=REDIRECT_URI, params=params, nonce=nonce, code_verifier=verifier)


def refused(connector) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        sign_in(connector)
    return caught.value


# ---- the happy path ----
@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_3_1_3_7_a_valid_id_token_becomes_the_identity(fake_google, alg):
    """OIDC Core §3.1.3.7 step 6: the signature is checked against the issuer's JWKS, with the
    algorithm the header names (RS256, ES256, EdDSA)."""
    fake_google.knobs.alg = alg
    identity = sign_in(connector_for(fake_google))
    assert (identity.provider, identity.subject, identity.email, identity.email_verified, identity.name) == (
        "google", fake_google.user.sub, "alice@example.com", True, "Alice Example")
    assert (identity.username, identity.amr, identity.acr) == (None, (), None)


def test_3_1_2_1_start_sends_code_pkce_s256_state_and_nonce(fake_google):
    """OIDC Core §3.1.2.1 (response_type=code, scope with openid, nonce) and RFC 7636 §4.3
    (code_challenge with code_challenge_method=S256)."""
    connector = connector_for(fake_google, OidcConnector, scopes="openid email")
    url = connector.start(redirect_uri=REDIRECT_URI, state="st", nonce="nn", code_challenge="cc")
    assert url.startswith(fake_google.url + "/o/oauth2/v2/auth?")
    assert query_of(url) == {"response_type": "code", "client_id": fake_google.client_id,
                             "redirect_uri": REDIRECT_URI, "scope": "openid email", "state": "st",
                             "nonce": "nn", "code_challenge": "cc", "code_challenge_method": "S256"}


def test_generic_connector_reads_identity_amr_acr_and_preferred_username(fake_google):
    """OIDC Core §2 (amr, acr) and §5.1 (preferred_username) come from the ID token."""
    fake_google.knobs.extra = {"amr": ["pwd", "otp"], "acr": "mfa", "preferred_username": "alice"}
    identity = sign_in(connector_for(fake_google, OidcConnector))
    assert (identity.provider, identity.amr, identity.acr, identity.username) == (
        "oidc", ("pwd", "otp"), "mfa", "alice")


def test_rfc6749_2_3_1_client_secret_basic_unless_only_post_is_listed(fake_google):
    """RFC 6749 §2.3.1: client_secret_basic is the default; an upstream whose discovery lists
    only client_secret_post gets the credentials in the body."""
    sign_in(connector_for(fake_google))
    fake_google.knobs.auth_methods = ["client_secret_post"]
    sign_in(connector_for(fake_google))
    assert fake_google.auth_used == ["client_secret_basic", "client_secret_post"]


@pytest.mark.parametrize("value", [None, False, "true"])
def test_5_1_email_verified_counts_only_when_true(fake_google, value):
    """OIDC Core §5.1: email_verified is a boolean; missing (Google omits it at times), false or
    a string is not verified."""
    if value is None:
        fake_google.knobs.omit = {"email_verified"}
    else:
        fake_google.knobs.extra = {"email_verified": value}
    identity = sign_in(connector_for(fake_google))
    assert (identity.email, identity.email_verified) == ("alice@example.com", False)


# ---- OIDC Discovery 1.0 ----
def test_discovery_4_document_is_cached_for_an_hour(fake_google):
    clock = Clock()
    connector = connector_for(fake_google, clock=clock)
    sign_in(connector)
    sign_in(connector)
    assert fake_google.hits("/.well-known/openid-configuration") == 1
    clock.now += 3601
    sign_in(connector)
    assert fake_google.hits("/.well-known/openid-configuration") == 2


def test_discovery_4_3_issuer_mismatch_is_refused(fake_google):
    """OIDC Discovery §4.3: "The issuer value returned MUST be identical to the Issuer URL that
    was used as the prefix to /.well-known/openid-configuration"."""
    fake_google.knobs.discovery_issuer = "https://accounts.google.com"
    connector = connector_for(fake_google, OidcConnector)
    with pytest.raises(ConnectorError) as caught:
        connector.start(redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge="c")
    assert caught.value.reason == "unreachable"


def test_discovery_4_endpoints_must_not_be_plain_http_elsewhere(fake_google):
    """Endpoints from discovery carry the client secret and codes: https, or http on loopback."""
    fake_google.knobs.metadata = {"token_endpoint": "http://token.example.com/token"}
    with pytest.raises(ConnectorError) as caught:
        connector_for(fake_google).start(redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge="c")
    assert caught.value.reason == "unreachable"


# ---- ID token validation, OIDC Core §3.1.3.7 ----
DEFECTS = {
    "step_2_iss_is_not_the_issuer": {"iss": "https://evil.example"},
    "step_3_aud_is_another_client": {"aud": "someone-else.apps.googleusercontent.com"},
    "step_3_aud_list_without_us": {"aud": ["someone-else"]},
    "step_3_untrusted_extra_audience": {"aud": [None, "not-trusted"]},
    "step_4_several_audiences_without_azp": {"aud": [None, "someone-else"], "omit": {"azp"}},
    "step_5_azp_is_another_client": {"azp": "someone-else"},
    "step_6_bad_signature": {"bad_signature": True},
    "step_6_kid_not_in_the_jwks": {"kid": "no-such-key"},
    "step_7_alg_none": {"alg": "none"},
    "step_8_hs256_is_never_accepted": {"alg": "HS256"},
    "step_9_expired": {"expired": True},
    "step_10_issued_in_the_future": {"iat_offset": 3600},
    "step_10_iat_missing": {"omit": {"iat"}},
    "step_11_nonce_differs": {"nonce": "another-nonce"},
    "step_11_nonce_missing": {"omit": {"nonce"}},
    "section_2_sub_missing": {"omit": {"sub"}},
    "section_3_1_3_3_no_id_token": {"no_id_token": True},
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_3_1_3_7_defective_id_token_is_refused(fake_google, defect):
    """OIDC Core §3.1.3.7: each MUST in the list of ID token checks, one defect at a time."""
    for knob, value in DEFECTS[defect].items():
        if knob == "aud":
            value = [fake_google.client_id if v is None else v for v in value] if isinstance(value, list) else value
        setattr(fake_google.knobs, knob, value)
    # "someone-else" is a trusted extra audience, so steps 4-5 are what refuses those cases.
    error = refused(connector_for(fake_google, OidcConnector, trusted_audiences=["someone-else"]))
    assert error.reason == "id_token"


def test_3_1_3_7_steps_4_5_several_audiences_with_our_azp_are_accepted_when_trusted(fake_google):
    """OIDC Core §3.1.3.7 steps 3-5: several audiences are fine when azp names us and every
    other audience is one the operator trusts (``trusted_audiences``)."""
    fake_google.knobs.aud = [fake_google.client_id, "another-audience"]
    connector = connector_for(fake_google, OidcConnector, trusted_audiences=["another-audience"])
    assert sign_in(connector).subject == fake_google.user.sub


@pytest.mark.parametrize("cls", [OidcConnector, GoogleConnector])
def test_3_1_3_7_step_3_untrusted_extra_audience_is_refused_even_with_our_azp(fake_google, cls):
    """OIDC Core §3.1.3.7 step 3: "The ID Token MUST be rejected if the ID Token does not list
    the Client as a valid audience, or if it contains additional audiences not trusted by the
    Client." azp naming us does not make an unknown audience trusted."""
    fake_google.knobs.aud = [fake_google.client_id, "another-audience"]
    assert refused(connector_for(fake_google, cls)).reason == "id_token"
    fake_google.knobs.aud = [fake_google.client_id, "another-audience", "a-third"]
    assert refused(connector_for(fake_google, cls, trusted_audiences=["another-audience"])).reason == "id_token"


def test_trusted_audiences_must_be_a_list_of_client_ids():
    for bad in ("one-string", [""], [3], {"a": 1}):
        _, errors = parse(json.dumps({"corp": {"kind": "oidc", "issuer": "https://sso.example", "client_id": "c",
                                               "client_secret": "s", "trusted_audiences": bad}}))
        assert errors == ["connector 'corp': trusted_audiences must be a list of client ids"], bad
    _, errors = parse(json.dumps({"gh": {"kind": "github", "client_id": "c", "client_secret": "s",
                                         "trusted_audiences": ["x"]}}))
    assert errors == ["connector 'gh': trusted_audiences applies to OpenID Connect upstreams only"]


# ---- the UserInfo endpoint, OIDC Core §5.3 ----
def test_5_3_claims_only_in_userinfo_are_read_from_it(fake_google):
    """OIDC Core §5.4: an upstream that issues an access token may return the profile and email
    claims from the UserInfo endpoint only (node oidc-provider's default); the connector asks
    it (§5.3.1, Bearer access token) when the ID token lacks them."""
    fake_google.knobs.claims_in_userinfo = True
    fake_google.knobs.extra = {"preferred_username": "alice"}
    identity = sign_in(connector_for(fake_google, OidcConnector))
    assert (identity.subject, identity.email, identity.email_verified, identity.name, identity.username) == (
        fake_google.user.sub, "alice@example.com", True, "Alice Example", "alice")
    assert fake_google.hits("/v1/userinfo") == 1


def test_5_3_userinfo_is_not_asked_when_the_id_token_has_the_claims(fake_google):
    identity = sign_in(connector_for(fake_google, OidcConnector))
    assert identity.email == "alice@example.com" and fake_google.hits("/v1/userinfo") == 0


def test_5_3_2_userinfo_sub_differing_from_the_id_tokens_is_refused(fake_google):
    """OIDC Core §5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly
    match the sub Claim in the ID Token; if they do not match, the UserInfo Response values
    MUST NOT be used." Here: the sign-in is refused."""
    fake_google.knobs.claims_in_userinfo = True
    fake_google.knobs.userinfo_sub = "someone-else"
    assert refused(connector_for(fake_google, OidcConnector)).reason == "userinfo"


def test_5_3_2_signed_userinfo_is_verified_with_the_upstreams_keys(fake_google):
    """OIDC Core §5.3.2: a signed answer (``application/jwt``) is verified with the upstream's
    published keys, its iss and aud checked; one with a forged signature is refused."""
    fake_google.knobs.claims_in_userinfo = True
    fake_google.knobs.userinfo_format = "jwt"
    assert sign_in(connector_for(fake_google, OidcConnector)).email == "alice@example.com"
    fake_google.knobs.userinfo_claims = {"aud": "another-client"}
    assert refused(connector_for(fake_google, OidcConnector)).reason == "userinfo"
    fake_google.knobs.userinfo_claims = {}
    fake_google.knobs.userinfo_format = "jwt-forged"  # the upstream's kid, another key
    assert refused(connector_for(fake_google, OidcConnector)).reason == "userinfo"


def test_5_3_2_encrypted_userinfo_is_refused_with_a_clear_reason(fake_google):
    """OIDC Core §5.3.2: an encrypted answer is a JWE; this provider registers no encryption
    key, so it says so instead of failing obscurely."""
    fake_google.knobs.claims_in_userinfo = True
    fake_google.knobs.userinfo_format = "jwe"
    error = refused(connector_for(fake_google, OidcConnector))
    assert error.reason == "userinfo_encrypted"
    assert "encrypted" in error.message and "operator" in error.message


def test_5_3_2_email_verified_never_crosses_sources(fake_google):
    """The ID token's email_verified vouches for the ID token's email only: with the address
    from userinfo, the flag must come from userinfo too."""
    fake_google.knobs.claims_in_userinfo = True
    fake_google.knobs.extra = {"email_verified": True}
    fake_google.user.email_verified = False
    identity = sign_in(connector_for(fake_google, OidcConnector))
    assert (identity.email, identity.email_verified) == ("alice@example.com", False)


def test_3_1_3_7_step_9_small_clock_skew_is_tolerated(fake_google):
    """Step 10 allows "a small leeway": an iat a few seconds ahead of our clock still passes."""
    fake_google.knobs.iat_offset = 20
    assert sign_in(connector_for(fake_google)).subject == fake_google.user.sub


def test_google_accepts_its_iss_without_scheme_and_the_generic_connector_does_not(fake_google):
    """Google: "The value of iss in the ID token is equal to https://accounts.google.com or
    accounts.google.com." Only the Google connector accepts the bare form."""
    fake_google.knobs.iss = fake_google.issuer.split("://", 1)[1]
    assert sign_in(connector_for(fake_google)).subject == fake_google.user.sub
    assert refused(connector_for(fake_google, OidcConnector)).reason == "id_token"


# ---- the upstream's keys ----
def test_3_1_3_7_step_6_key_rotation_refetches_the_jwks_once(fake_google):
    connector = connector_for(fake_google)
    sign_in(connector)
    assert fake_google.hits("/oauth2/v3/certs") == 1
    fake_google.rotate("RS256")
    assert sign_in(connector).subject == fake_google.user.sub
    sign_in(connector)
    assert fake_google.hits("/oauth2/v3/certs") == 2, "the new key is fetched once, then cached"


def test_3_1_3_7_step_6_unknown_kid_refetches_once_then_refuses(fake_google):
    connector = connector_for(fake_google)
    sign_in(connector)
    fake_google.knobs.kid = "never-published"
    assert refused(connector).reason == "id_token"
    assert fake_google.hits("/oauth2/v3/certs") == 2


# ---- RFC 9207 and errors at the callback ----
def test_rfc9207_2_4_callback_iss_mismatch_is_refused(fake_google):
    """RFC 9207 §2.4: clients "MUST compare the value of the iss parameter to the issuer
    identifier" and reject the response when they differ."""
    fake_google.knobs.callback_iss = "https://evil.example"
    error = refused(connector_for(fake_google, OidcConnector))
    assert error.reason == "upstream_error"
    assert fake_google.hits("/token") == 0, "the code never goes to the token endpoint"


def test_rfc9207_2_4_matching_callback_iss_is_accepted(fake_google):
    fake_google.knobs.callback_iss = fake_google.issuer
    assert sign_in(connector_for(fake_google, OidcConnector)).subject == fake_google.user.sub


def test_rfc9207_2_4_missing_iss_refused_when_the_upstream_says_it_sends_it(fake_google):
    """RFC 9207 §2.4: a client MUST reject an authorization response without iss from a server
    whose metadata sets authorization_response_iss_parameter_supported."""
    fake_google.knobs.metadata = {"authorization_response_iss_parameter_supported": True}
    assert refused(connector_for(fake_google, OidcConnector)).reason == "upstream_error"


def test_rfc6749_4_1_2_1_denied_consent_upstream(fake_google):
    fake_google.knobs.deny = True
    assert refused(connector_for(fake_google)).reason == "access_denied"


def test_rfc6749_4_1_2_1_callback_without_code(fake_google):
    connector = connector_for(fake_google)
    with pytest.raises(ConnectorError) as caught:
        connector.finish(redirect_uri=REDIRECT_URI, params={"state": "s"}, nonce="n", code_verifier="v")
    assert caught.value.reason == "missing_code"


@pytest.mark.parametrize("knob, value", [("token_error", "invalid_grant"), ("token_status", 500)])
def test_3_1_3_4_token_error_response_is_a_token_exchange_failure(fake_google, knob, value):
    setattr(fake_google.knobs, knob, value)
    assert refused(connector_for(fake_google)).reason == "token_exchange"


def test_rfc7636_4_6_wrong_verifier_and_replayed_code_fail_the_exchange(fake_google):
    connector = connector_for(fake_google)
    params, nonce, verifier = authorize(connector)
    with pytest.raises(ConnectorError) as caught:
        connector.finish(redirect_uri=REDIRECT_URI, params=params, nonce=nonce, code_verifier=verifier + "x")
    assert caught.value.reason == "token_exchange"
    params, nonce, verifier = authorize(connector)
    connector.finish(redirect_uri=REDIRECT_URI, params=params, nonce=nonce, code_verifier=verifier)
    with pytest.raises(ConnectorError) as caught:
        connector.finish(redirect_uri=REDIRECT_URI, params=params, nonce=nonce, code_verifier=verifier)
    assert caught.value.reason == "token_exchange", "RFC 6749 §4.1.2: a code is used once"


def test_unreachable_upstream():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening
        configs, _ = parse(json.dumps({"corp": {"kind": "oidc", "client_id": "c", "client_secret": "s",
                                                "issuer": closed}}))
        connector = OidcConnector(configs["corp"])
        with pytest.raises(ConnectorError) as caught:
            connector.start(redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge="c")
        assert caught.value.reason == "unreachable"
        with pytest.raises(ConnectorError) as caught:
            connector.finish(redirect_uri=REDIRECT_URI, params={"code": "c"}, nonce="n", code_verifier="v")
        assert caught.value.reason == "unreachable"


# ---- no secret, code or token in any message ----
FAILURES = [("token_error", "invalid_grant"), ("token_status", 500), ("bad_signature", True),
            ("nonce", "other"), ("aud", "other"), ("expired", True), ("callback_iss", "https://evil.example")]


def test_no_code_token_or_secret_in_messages_or_logs(fake_google, caplog):
    caplog.set_level(logging.DEBUG)
    errors = []
    for knob, value in FAILURES:
        fake_google.knobs = type(fake_google.knobs)()
        setattr(fake_google.knobs, knob, value)
        errors.append(refused(connector_for(fake_google, OidcConnector)))
    secrets_seen = [fake_google.client_secret, *fake_google.issued]
    assert len(fake_google.issued) >= 5
    for error in errors:
        text = " ".join([str(error), error.message, repr(error.args)])
        for secret in secrets_seen:
            assert secret not in text
    for secret in secrets_seen:
        assert secret not in caplog.text


@pytest.mark.parametrize("claims, verified", [
    ({"email": "a@gmail.com", "email_verified": True}, True),
    ({"email": "a@example.com", "email_verified": True, "hd": "example.com"}, True),
    ({"email": "a@example.com", "email_verified": True}, False),   # Google is not authoritative for it
    ({"email": "a@gmail.com", "email_verified": False}, False),
    ({"email": "a@example.com", "email_verified": True, "hd": ""}, False),
])
def test_google_vouches_only_for_gmail_or_workspace_addresses(claims, verified):
    """Google's "Authenticate with a backend server" guide: with email, email_verified and hd,
    Google is authoritative for gmail.com addresses and for a Workspace domain (hd)."""
    from oidc_provider.federation.config import ConnectorConfig
    from oidc_provider.federation.google import GoogleConnector

    config = ConnectorConfig(name="google", kind="google", client_id="c", client_secret="s", display_name="Google",
                             scopes="openid email", issuer="https://accounts.google.com")
    found = GoogleConnector(config).identity({"sub": "1", **claims})
    assert found.email_verified is verified
