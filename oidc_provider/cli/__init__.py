"""``oidc-provider``: one command for everything an operator does. Every error is one line
and a non-zero exit; commands that create or show something take ``--json``."""

import click

from . import audit, client, config, connector, keys, lifecycle, role, secret_key, service, token, user
from .data import COMMANDS as DATA_COMMANDS
from .remote import target_from


@click.group()
@click.version_option(package_name="oidc-provider")
@click.option("--server", metavar="URL", help="Act through the admin API of the provider at this issuer URL "
              "instead of on the local database (user, role, token, service and audit commands).")
@click.option("--token-file", type=click.Path(dir_okay=False), help="File holding the bearer token for --server "
              "(a personal access token for the issuer with an admin role).")
@click.option("--token", help="The bearer token itself (prefer --token-file: command lines are visible to others).")
@click.pass_context
def main(ctx, server, token_file, token):
    """A small, strict OpenID Connect provider."""
    ctx.obj = target_from(server, token, token_file)


for command in (*lifecycle.COMMANDS, user.group, client.group, service.group, keys.group, connector.group,
                role.group, token.group, audit.group, config.group, secret_key.group):
    main.add_command(command)
for command in DATA_COMMANDS:  # export, import, copy-database, backup
    main.add_command(command)

# Linked upstream identities are part of a person's account.
user.group.add_command(connector.links)
user.group.add_command(connector.unlink)
