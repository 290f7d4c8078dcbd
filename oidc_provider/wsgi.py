"""WSGI entry point for any server: ``gunicorn oidc_provider.wsgi:app``. Settings come from
``OIDC_*`` (and ``OIDC_CONFIG_FILE``); run ``oidc-provider init`` first to apply migrations."""

from oidc_provider.serving import worker_app

app = worker_app()  # signing keys imported before the first request (serving.warm)
