"""PKCE, S256 only (RFC 7636; RFC 9700 §2.1.1).

Authlib's ``CodeChallenge(required=True)`` still accepts an authorization request without
``code_challenge`` and accepts ``plain``; this subclass refuses both at the authorization
endpoint.
"""

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge


class S256CodeChallenge(CodeChallenge):
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def __init__(self, require_by_default: bool):
        super().__init__(required=True)
        self.require_by_default = require_by_default

    def validate_code_challenge(self, grant, redirect_uri):
        request = grant.request
        challenge = request.payload.data.get("code_challenge")
        method = request.payload.data.get("code_challenge_method")
        if not challenge and grant.client_requires_pkce(self.require_by_default):
            # RFC 7636 §4.4.1: "If the server requires Proof Key for Code Exchange (PKCE) by
            # OAuth public clients and the client does not send the "code_challenge" in the
            # request, the authorization endpoint MUST return the authorization error response
            # with the "error" value set to "invalid_request"."
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required.",
                                      redirect_uri=redirect_uri)
        if challenge and method != "S256":
            # RFC 7636 §4.3: an absent method means "plain", which this server does not support.
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.", redirect_uri=redirect_uri)
        try:
            super().validate_code_challenge(grant, redirect_uri)
        except InvalidRequestError as error:
            error.redirect_uri = redirect_uri
            raise
