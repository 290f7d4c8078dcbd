"""Discovery (OIDC Discovery 1.0 §3, RFC 8414 §2) and the JWKS (RFC 7517 §5).

The metadata is complete and true: every endpoint this provider has and nothing it lacks.
Responses are cacheable, with a strong ETag honoured on If-None-Match."""

import hashlib
import json

from flask import Blueprint, Response, current_app, request
from werkzeug.http import http_date, quote_etag

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


class Document:
    """A JSON document served as it was serialized once: its bytes, strong ETag and headers, so
    that a request does no JSON, hashing or settings work (DESIGN: speed)."""

    __slots__ = ("body", "etag", "headers", "source")

    def __init__(self, document: dict, max_age: int, source=None):
        self.body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        self.etag = hashlib.sha256(self.body).hexdigest()[:32]
        self.headers = (("Content-Type", "application/json"), ("ETag", quote_etag(self.etag)),
                        ("Cache-Control", f"public, max-age={max_age}"), ("Access-Control-Allow-Origin", "*"))
        self.source = source  # what it was made from: another source means another document


def _cacheable(document: Document) -> Response:
    response = Response(document.body, headers=document.headers)
    if "HTTP_IF_NONE_MATCH" in request.environ or "HTTP_IF_MODIFIED_SINCE" in request.environ:
        # RFC 9110 §13.1.2: a request whose If-None-Match names this ETag gets 304.
        return response.make_conditional(request)
    response.headers["Date"] = http_date()  # as make_conditional sets it
    return response


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def configuration():
    return _cacheable(metadata_document(current_app.extensions))


def metadata_document(extensions) -> Document:
    """The app's metadata (``extensions["oidc_metadata"]``) as served, made again when it was
    replaced."""
    document = extensions.get("oidc_metadata_document")
    if document is None or document.source is not extensions["oidc_metadata"]:
        metadata_ = extensions["oidc_metadata"]
        document = extensions["oidc_metadata_document"] = Document(metadata_, 3600, metadata_)
    return document


@bp.get("/jwks.json")
def jwks():
    # Short max-age: after a rotation, relying parties must see the new key soon.
    keys = current_app.extensions["oidc_server"].policy.keys
    return _cacheable(keys.jwks_document(lambda jwks_: Document(jwks_, 300)))
