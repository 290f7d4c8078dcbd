"""Google as an upstream: an OpenID Connect provider (Google Identity, "OpenID Connect"
guide), so everything is the generic connector's, with one difference Google documents: "The
value of iss in the ID token is equal to https://accounts.google.com or accounts.google.com."
Both forms are accepted here, for Google only. And Google says an email is its to vouch for
only when it is a gmail.com address or the token carries ``hd`` (a Workspace domain): any other
"verified" address may since have changed hands, so it does not count as verified here."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from .config import GOOGLE_ISSUER
from .connector import Identity
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

    def identity(self, claims: dict) -> Identity:
        found = super().identity(claims)
        workspace = isinstance(claims.get("hd"), str) and bool(claims["hd"].strip())
        authoritative = bool(found.email) and (
            found.email.lower().endswith(("@gmail.com", "@googlemail.com")) or workspace)
        return found if authoritative else dataclasses.replace(found, email_verified=False)
