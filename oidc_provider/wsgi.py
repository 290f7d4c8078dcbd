"""WSGI entry point for any server: ``gunicorn oidc_provider.wsgi:app``. Settings come from
``OIDC_*`` (and ``OIDC_CONFIG_FILE``); run ``oidc-provider init`` first to apply migrations."""

from oidc_provider import create_app

app = create_app()
