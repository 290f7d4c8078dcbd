"""``grant_type=authorization_code`` (RFC 6749 §4.1, OIDC Core §3.1), with the resources of
the authorization request (RFC 8707 §2.1) kept on the code."""

from authlib.oauth2.rfc6749 import InvalidGrantError, grants

from ...authn.subject import AuthenticatedSubject
from .. import codes
from .target import TargetMixin

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class AuthorizationCodeGrant(TargetMixin, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def __init__(self, request, server):
        super().__init__(request, server)
        self.policy = server.policy

    def client_requires_pkce(self, default: bool) -> bool:
        return self.request.client.pkce_required(default)

    def issue_code(self, subject: AuthenticatedSubject, claims_request: dict | None,
                   resources: list[str] | None = None, generation: int | None = None) -> str:
        """Make and store a code for a request the dispatcher has approved, under the consent
        ``generation`` it read; the dispatcher commits."""
        self.request.user = subject
        self.request.claims_request = claims_request
        self.request.resources = resources
        self.request.consent_generation = generation
        code = self.generate_authorization_code()
        self.save_authorization_code(code, self.request)
        return code

    def save_authorization_code(self, code, request):
        codes.save(code, request, ttl=self.policy.settings.authorization_code_ttl,
                   claims=getattr(request, "claims_request", None), resources=getattr(request, "resources", None),
                   generation=getattr(request, "consent_generation", None))

    def validate_token_request(self):
        # The code is used up by now (codes.redeem): a refused resource does not give it back.
        super().validate_token_request()
        code = self.request.authorization_code
        subject = self.policy.tokens.subject_of(code)
        if subject is None:
            raise InvalidGrantError("There is no 'user' for this code.")
        self.resolve_target(granted=code.resources, account=subject.account)
        self._subject = subject

    def query_authorization_code(self, code, client):
        return codes.redeem(code, client, self.policy.tokens.revoke_family)

    def delete_authorization_code(self, authorization_code):
        """Nothing to do: ``codes.redeem`` consumed the code before any token was made."""

    def authenticate_user(self, authorization_code):
        subject = getattr(self, "_subject", None) or self.policy.tokens.subject_of(authorization_code)
        if subject is None:
            return None
        return AuthenticatedSubject(
            account=subject.account, acr=subject.acr, amr=subject.amr,
            auth_time=subject.auth_time, session_id=authorization_code.session_id,
        )
