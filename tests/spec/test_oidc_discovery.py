"""OpenID Connect Discovery 1.0 §3, §4 and RFC 8414 §2, §3: the provider metadata document."""

import re

import pytest

from ._tokens import ISSUER_BASE, path_of

WELL_KNOWN = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
ENDPOINTS = ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
             "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"]


@pytest.fixture
def metadata(app):
    response = app.test_client().get(WELL_KNOWN[0], **ISSUER_BASE)
    assert response.status_code == 200
    return response.json


def test_4_2_well_known_is_200_json(app):
    """Discovery §4.2: "A successful response MUST use the 200 OK HTTP status code and return a
    JSON object using the application/json content type"; RFC 8414 §3.2 likewise."""
    for path in WELL_KNOWN:
        response = app.test_client().get(path, **ISSUER_BASE)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert isinstance(response.json, dict)


def test_rfc8414_3_both_documents_agree(app):
    """RFC 8414 §3: the same authorization server metadata at its own well-known URI."""
    http = app.test_client()
    first, second = (http.get(p, **ISSUER_BASE).json for p in WELL_KNOWN)
    assert first == second


def test_4_3_issuer_is_identical_to_configured_issuer(app):
    """Discovery §4.3: "The issuer value returned MUST be identical to the Issuer URL that was
    used as the prefix to /.well-known/openid-configuration"; RFC 8414 §3.3 likewise."""
    for path in WELL_KNOWN:
        body = app.test_client().get(path, **ISSUER_BASE).json
        assert body["issuer"] == app.extensions["oidc_settings"].issuer == "http://127.0.0.1:5000"


def test_4_3_issuer_follows_configuration(app_factory):
    """Discovery §3 ``issuer``: "URL using the https scheme with no query or fragment
    components that the OP asserts as its Issuer Identifier"."""
    app = app_factory(issuer="http://localhost:8443")
    body = app.test_client().get(WELL_KNOWN[0]).json
    assert body["issuer"] == "http://localhost:8443"
    assert all(body[name].startswith("http://localhost:8443/") for name in ENDPOINTS)


def test_3_every_advertised_endpoint_exists(app, metadata):
    """Discovery §3: endpoint metadata names the OP's real endpoints (``authorization_endpoint``
    REQUIRED, ``token_endpoint`` REQUIRED, ``jwks_uri`` REQUIRED, ``userinfo_endpoint``
    RECOMMENDED); each is served by this issuer."""
    http = app.test_client()
    for name in ENDPOINTS:
        url = metadata[name]
        assert url.startswith(metadata["issuer"] + "/"), name
        statuses = {http.get(path_of(url)).status_code, http.post(path_of(url)).status_code}
        assert 404 not in statuses, name
        assert max(statuses) < 500, (name, statuses)


def test_3_response_types_supported_is_code_only(metadata):
    """Discovery §3 ``response_types_supported``: "REQUIRED. JSON array containing a list of the
    OAuth 2.0 response_type values that this OP supports"; we support only ``code``."""
    assert metadata["response_types_supported"] == ["code"]


def test_3_response_modes_supported(metadata):
    """Discovery §3 ``response_modes_supported``: the response modes the OP supports."""
    assert metadata["response_modes_supported"] == ["query", "form_post"]


def test_3_grant_types_supported(metadata):
    """Discovery §3 ``grant_types_supported``: "Dynamic OpenID Providers MUST support the
    authorization_code and implicit Grant Type values"; we list the grants we serve."""
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]


def test_3_subject_types_supported(metadata):
    """Discovery §3 ``subject_types_supported``: "REQUIRED. ... Valid types include pairwise and
    public"."""
    assert metadata["subject_types_supported"] == ["public"]


def test_3_id_token_signing_algs_include_rs256_es256_eddsa(metadata):
    """Discovery §3 ``id_token_signing_alg_values_supported``: "REQUIRED ... The algorithm RS256
    MUST be included"."""
    assert {"RS256", "ES256", "EdDSA"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert "none" not in metadata["id_token_signing_alg_values_supported"]


def test_3_token_endpoint_auth_methods_supported(metadata):
    """Discovery §3 ``token_endpoint_auth_methods_supported``: the client authentication methods
    of OIDC Core §9."""
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert "RS256" in metadata["token_endpoint_auth_signing_alg_values_supported"]


def test_rfc8414_2_code_challenge_methods_supported_is_s256(metadata):
    """RFC 8414 §2 ``code_challenge_methods_supported``: "JSON array containing a list of
    Proof Key for Code Exchange (PKCE) code challenge methods supported"; S256 only."""
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_3_scopes_supported_contains_openid(metadata):
    """Discovery §3 ``scopes_supported``: "The server MUST support the openid scope value"."""
    assert "openid" in metadata["scopes_supported"]
    assert {"profile", "email"} <= set(metadata["scopes_supported"])


def test_3_claims_supported(metadata):
    """Discovery §3 ``claims_supported``: "JSON array containing a list of the Claim Names of
    the Claims that the OpenID Provider MAY be able to supply values for"."""
    assert {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "name",
            "preferred_username", "email", "email_verified"} <= set(metadata["claims_supported"])


def test_3_claims_and_request_parameter_support(metadata):
    """Discovery §3: ``claims_parameter_supported`` is true (we honour §5.5);
    ``request_parameter_supported`` is false (we do not process request objects)."""
    assert metadata["claims_parameter_supported"] is True
    assert metadata["request_parameter_supported"] is False
    assert metadata["request_uri_parameter_supported"] is False


def test_rfc9207_3_authorization_response_iss_parameter_supported(metadata):
    """RFC 9207 §3: ``authorization_response_iss_parameter_supported`` "indicating whether the
    authorization server provides the iss parameter in the authorization response"."""
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_3_revocation_introspection_userinfo_end_session_advertised(metadata):
    """RFC 8414 §2 ``revocation_endpoint``, ``introspection_endpoint``; Discovery §3
    ``userinfo_endpoint``; RP-Initiated Logout §2.1 ``end_session_endpoint``."""
    issuer = metadata["issuer"]
    assert metadata["revocation_endpoint"] == f"{issuer}/revoke"
    assert metadata["introspection_endpoint"] == f"{issuer}/introspect"
    assert metadata["userinfo_endpoint"] == f"{issuer}/userinfo"
    assert metadata["end_session_endpoint"] == f"{issuer}/logout"
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]


def test_4_2_cacheable_with_etag_and_304(app):
    """Discovery §4.2 and RFC 9111/9110: the documents (and the JWKS) are cacheable
    (``Cache-Control: max-age``) and carry an ETag; a conditional request with that ETag gets
    304 Not Modified."""
    http = app.test_client()
    for path in [*WELL_KNOWN, "/jwks.json"]:
        response = http.get(path, **ISSUER_BASE)
        assert response.status_code == 200
        assert re.search(r"\bmax-age=[1-9][0-9]*\b", response.headers["Cache-Control"]), path
        etag = response.headers["ETag"]
        assert etag
        again = http.get(path, headers={"If-None-Match": etag}, **ISSUER_BASE)
        assert again.status_code == 304
        assert again.data == b""
        other = http.get(path, headers={"If-None-Match": '"something-else"'}, **ISSUER_BASE)
        assert other.status_code == 200
