"""``oidc-provider``: one command for everything an operator does. Every error is one line
and a non-zero exit; commands that create or show something take ``--json``."""

import click

from . import client, keys, lifecycle, service, user


@click.group()
@click.version_option(package_name="oidc-provider")
def main():
    """A small, strict OpenID Connect provider."""


for command in (*lifecycle.COMMANDS, user.group, client.group, service.group, keys.group):
    main.add_command(command)
