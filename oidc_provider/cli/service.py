"""``oidc-provider service ...``: system accounts (client_credentials)."""

import click

from .. import manage
from .common import app_context, emit, json_option


@click.group("service")
def group():
    """Manage system accounts for daemons and jobs."""


@group.command("create")
@click.argument("name")
@click.option("--scope", default="", help="Space-separated scopes the service may request.")
@json_option
def create(name, scope, as_json):
    """Create a system account; prints client_id and client_secret once."""
    with app_context():
        client, secret = manage.create_service(name=name, scope=scope)
        emit({"name": name, "client_id": client.client_id, "client_secret": secret}, as_json,
             f"client_id: {client.client_id}\nclient_secret: {secret}\n(shown once: store it now)")
