"""OAuth 2.0 / OpenID Connect plumbing: the only importer of ``authlib.oauth2`` and
``authlib.oidc``."""

from authlib.oauth2 import OAuth2Error

__all__ = ["OAuth2Error"]
