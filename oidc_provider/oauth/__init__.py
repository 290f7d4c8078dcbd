"""OAuth 2.0 / OpenID Connect plumbing: the only importer of ``authlib.oauth2`` and
``authlib.oidc``."""
