"""WSGI entry point from a source checkout (``gunicorn wsgi:app``); an installed package has
the same one as ``oidc_provider.wsgi:app``."""

from oidc_provider.wsgi import app  # noqa: F401
