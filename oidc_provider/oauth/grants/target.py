"""The step every grant shares (RFC 8707 §2.2): settle the access token's audience and the
subject's ``resource_access`` slice there *before* anything is issued, so that a refused
``resource`` (``invalid_target``) leaves no token behind."""

from __future__ import annotations

from .. import resources
from ..tokens import Binding


class TargetMixin:
    def resolve_target(self, *, granted: list[str] | None, account) -> None:
        """``granted``: the resources of the authorization (code or refresh token), if any;
        ``account``: the subject (a person, or a client_credentials client's system account)."""
        client = self.request.client
        settings = self.server.policy.settings
        asked = self.request.payload.datalist.get("resource") or []
        audience = resources.for_token(asked, client, settings, granted)
        self.request.target = resources.target_for(client, account, audience, settings)

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                       include_refresh_token=True):
        # Authlib's server-level generator has no way to receive the target; call ours.
        return self.server.policy.tokens.generate(
            grant_type or self.GRANT_TYPE, self.request.client, user=user, scope=scope,
            expires_in=expires_in, include_refresh_token=include_refresh_token,
            target=self.request.target, binding=self._binding(),
        )

    def _binding(self) -> Binding:
        """What revokes the access token about to be issued (oauth/tokens.Binding): the
        authorization's family and consent generation for a code or a refresh token, else the
        client's credential generation as read when the client authenticated."""
        request = self.request
        source = getattr(request, "authorization_code", None) or getattr(request, "refresh_token", None)
        if source is not None:
            binding = Binding(family=source.family, generation=source.generation, claims=source.claims)
        else:
            binding = Binding(family=None, generation=request.client.token_generation, claims=None)
        request.binding = binding  # TokenService.save stores what it issued under the same family
        return binding
