"""``grant_type=refresh_token`` (RFC 6749 §6) with rotation and reuse detection
(RFC 9700 §4.14.2) and its bounded grace for a retried request, a fresh ID token when
``openid`` was granted (OIDC Core §12.2), and the authorization's resources carried across
rotations (RFC 8707 §2.2)."""

from authlib.oauth2.rfc6749 import grants

from .authorization_code import AUTH_METHODS
from .target import TargetMixin


class RefreshTokenGrant(TargetMixin, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def __init__(self, request, server):
        super().__init__(request, server)
        self.policy = server.policy
        self.register_hook("after_create_token_response", self._add_id_token)

    def authenticate_refresh_token(self, refresh_token):
        # RFC 6749 §6: "ensure that the refresh token was issued to the authenticated client"
        # and that the scope was granted, before the token is used up by the rotation.
        found = self.policy.tokens.find_refresh_token(refresh_token)
        if found is None or not found.check_client(self.request.client):
            return None
        if found.rotated_at is None:
            # A rotated token goes straight to reuse detection below, whatever scope it asks.
            self._validate_token_scope(found)
            subject = self.policy.tokens.subject_of(found)
            if subject is not None:
                # RFC 8707 too before the rotation: a refused resource leaves the refresh
                # token usable (and a retry is not mistaken for reuse).
                self.resolve_target(granted=found.resources, account=subject.account)
        claimed = self.policy.tokens.claim_refresh_token(refresh_token, scope=self.request.payload.scope)
        # A disabled or deleted account's refresh tokens are invalid_grant (RFC 6749 §5.2),
        # not Authlib's "no user" invalid_request.
        subject = self.policy.tokens.subject_of(claimed[0]) if claimed is not None else None
        if subject is None:
            return None
        row, self.request.reissued_refresh_token = claimed
        if self.request.reissued_refresh_token is not None:
            # A retry within the grace window: answered from the successor it was given before.
            self.resolve_target(granted=row.resources, account=subject.account)
        return row

    def issue_token(self, user, refresh_token):
        token = super().issue_token(user, refresh_token)
        if self.request.reissued_refresh_token is not None:
            token["refresh_token"] = self.request.reissued_refresh_token
        return token

    def authenticate_user(self, refresh_token):
        return self.policy.tokens.subject_of(refresh_token)

    def revoke_old_credential(self, refresh_token):
        """Nothing to do: ``claim_refresh_token`` rotated it atomically before issuing."""

    def _add_id_token(self, grant, response):
        _, token, _ = response
        if "openid" in (token.get("scope") or "").split():
            # OIDC Core §12.2: the refreshed ID token has no nonce, and keeps auth_time.
            token["id_token"] = self.policy.tokens.id_token(
                client=self.request.client, subject=self.request.user, scope=token["scope"],
                nonce=None, claims_request=self.request.refresh_token.claims,
                access_token=token["access_token"], target=self.request.target,
            )
