"""``grant_type=client_credentials`` (RFC 6749 §4.4) for system accounts: no ID token and,
per §4.4.3, "A refresh token SHOULD NOT be included". The ``resource`` (RFC 8707 §2) must be
one the client may ask for; the token's slice is the system account's."""

from authlib.oauth2.rfc6749 import grants

from .authorization_code import AUTH_METHODS
from .target import TargetMixin


class ClientCredentialsGrant(TargetMixin, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [m for m in AUTH_METHODS if m != "none"]

    def validate_token_request(self):
        super().validate_token_request()
        self.resolve_target(granted=None, account=self.request.client.account)

    def generate_token(self, user=None, scope=None, **kwargs):
        # RFC 6749 §3.3: the server "MAY fully or partially ignore the scope requested by the
        # client"; a system account gets only the scopes registered for it.
        return super().generate_token(user=user, scope=self.request.client.get_allowed_scope(scope), **kwargs)
