"""The OpenID Connect extension of the code grant (OIDC Core §3.1): ID tokens signed with the
client's algorithm by the one active key, carrying the session's ``acr``, ``amr`` and
``auth_time`` from the code."""

from authlib.oidc.core import OpenIDCode as _OpenIDCode


class OpenIDCode(_OpenIDCode):
    def __init__(self, tokens):
        super().__init__(require_nonce=False)
        self.tokens = tokens

    def __call__(self, grant):
        # Only the ID token hook: prompt handling is ours (authn/interaction.py), because
        # Authlib's ignores max_age, id_token_hint and consent_required.
        grant.register_hook("after_create_token_response", self.process_token)
        if "openid" in (grant.request.payload.scope or "").split():
            grant.register_hook("after_validate_authorization_request_payload",
                                self.validate_openid_authorization_request)

    def exists_nonce(self, nonce, request):
        # The nonce binds an ID token to the RP's session; detecting its replay is the RP's job
        # (OIDC Core §3.1.3.7, item 11). Refusing repeats here would break legitimate retries.
        return False

    def encode_id_token(self, token, request):
        code = request.authorization_code
        return self.tokens.id_token(
            client=request.client, subject=request.user, scope=token.get("scope", ""),
            nonce=code.nonce, claims_request=code.claims, access_token=token.get("access_token"),
            target=request.target,
        )
