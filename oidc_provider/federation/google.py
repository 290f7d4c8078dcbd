"""Google as an upstream: an OpenID Connect provider (Google Identity, "OpenID Connect"
guide), so everything is the generic connector's, with one difference Google documents: "The
value of iss in the ID token is equal to https://accounts.google.com or accounts.google.com."
Both forms are accepted here, for Google only. ``hd`` (Workspace domain) is left alone: it is
not an identity claim and linking never reads it."""

from __future__ import annotations

from urllib.parse import urlsplit

from .config import GOOGLE_ISSUER
from .oidc import OidcConnector


class GoogleConnector(OidcConnector):
    kind = "google"

    @property
    def issuer(self) -> str:
        return self.config.issuer or GOOGLE_ISSUER

    def accepted_issuers(self) -> tuple[str, ...]:
        """The issuer, and the same without its scheme (``accounts.google.com``)."""
        parts = urlsplit(self.issuer)
        return (self.issuer, parts.netloc + parts.path)
