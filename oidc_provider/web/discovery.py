"""Discovery (OIDC Discovery 1.0 §3, RFC 8414 §2) and the JWKS (RFC 7517 §5).

The metadata is complete and true: every endpoint this provider has and nothing it lacks.
Responses are cacheable, with a strong ETag honoured on If-None-Match."""

import hashlib
import json

from flask import Blueprint, Response, current_app, request

from ..oauth.claims import CLAIMS_SUPPORTED, SCOPES_SUPPORTED
from ..oauth.grants.authorization_code import AUTH_METHODS
from ..settings import SIGNING_ALGS

bp = Blueprint("discovery", __name__)


def metadata(settings) -> dict:
    iss = settings.issuer
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks.json",
        "revocation_endpoint": f"{iss}/revoke",
        "introspection_endpoint": f"{iss}/introspect",
        "end_session_endpoint": f"{iss}/logout",
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SIGNING_ALGS),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGS),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": [m for m in AUTH_METHODS if m != "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "acr_values_supported": list(settings.ladder.levels),
        "claim_types_supported": ["normal"],
        "display_values_supported": ["page", "popup"],
    }


def _cacheable(document: dict, max_age: int) -> Response:
    body = json.dumps(document, sort_keys=True, separators=(",", ":"))
    etag = hashlib.sha256(body.encode()).hexdigest()[:32]
    response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def configuration():
    return _cacheable(current_app.extensions["oidc_metadata"], 3600)


@bp.get("/jwks.json")
def jwks():
    # Short max-age: after a rotation, relying parties must see the new key soon.
    return _cacheable(current_app.extensions["oidc_server"].policy.keys.jwks(), 300)
