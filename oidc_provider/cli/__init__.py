"""``oidc-provider``: one command for everything an operator does. Every error is one line
and a non-zero exit; commands that create or show something take ``--json``."""

import click

from . import client, connector, keys, lifecycle, service, user


@click.group()
@click.version_option(package_name="oidc-provider")
def main():
    """A small, strict OpenID Connect provider."""


for command in (*lifecycle.COMMANDS, user.group, client.group, service.group, keys.group, connector.group):
    main.add_command(command)

# Linked upstream identities are part of a person's account.
user.group.add_command(connector.links)
user.group.add_command(connector.unlink)
