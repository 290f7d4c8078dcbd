"""WSGI entry point for any server: ``gunicorn wsgi:app``. Settings come from OIDC_*."""

from oidc_provider import create_app

app = create_app()
