"""The configured connectors, built once per app (``create_app`` keeps them in
``app.extensions["oidc_connectors"]``): connector kind -> class. The connector modules are
imported only when a connector of their kind is configured."""

from __future__ import annotations

import importlib

import requests

from .connector import Connector

CLASSES = {
    # kind: (module, class)
    "github": ("oidc_provider.federation.github", "GitHubConnector"),
    "google": ("oidc_provider.federation.google", "GoogleConnector"),
    "oidc": ("oidc_provider.federation.oidc", "OidcConnector"),
}


def connector_class(kind: str) -> type[Connector]:
    module, name = CLASSES[kind]
    return getattr(importlib.import_module(module), name)


def build_connectors(settings, http: requests.Session | None = None) -> dict[str, Connector]:
    """One connector per ``[connectors.NAME]`` table, by name (settings are validated first,
    so every kind is known). ``http``: the session connectors share (tests inject one)."""
    return {name: connector_class(config.kind)(config, http=http)
            for name, config in settings.connector_configs.items()}


def callback_url(issuer: str, name: str) -> str:
    """The redirect URI registered at the upstream for connector ``name`` (RFC 6749 §3.1.2)."""
    return f"{issuer.rstrip('/')}/federation/{name}/callback"
