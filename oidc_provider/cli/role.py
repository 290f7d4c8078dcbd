"""``oidc-provider role ...``: roles, each a set of statements {audience, actions, resources}."""

from __future__ import annotations

import json

import click

from .common import emit, execute, json_option


@click.group("role")
def group():
    """Define roles (statements per audience) that accounts and personal tokens hold."""


def _statements(audience, actions, resources, statements_file):
    if statements_file:
        if audience or actions or resources:
            raise click.UsageError("use either --statements-file or --audience/--action/--resource")
        try:
            with open(statements_file) as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot read statements from {statements_file}: {exc}") from None
        return data if isinstance(data, list) else [data]
    if not (audience and actions):
        raise click.UsageError("give --audience and at least one --action (and --resource, default '*'), "
                               "or --statements-file")
    return [{"audience": audience, "actions": list(actions), "resources": list(resources) or ["*"]}]


def _text(view: dict) -> str:
    lines = [f"role: {view['name']}"]
    if view.get("description"):
        lines.append(f"description: {view['description']}")
    for s in view["statements"]:
        lines.append(f"  at {s['audience']}: {', '.join(s['actions'])} on {', '.join(s['resources'])}")
    if "granted_to" in view:
        lines.append("granted to: " + (", ".join(view["granted_to"]) or "nobody"))
    return "\n".join(lines)


@group.command("define")
@click.argument("name")
@click.option("--audience", help="The app (audience) the statement is for.")
@click.option("--action", "actions", multiple=True, help="An action or pattern (repeat): read, priority:*, *.")
@click.option("--resource", "resources", multiple=True, help="A resource or pattern (repeat); default '*'.")
@click.option("--statements-file", type=click.Path(dir_okay=False),
              help="A JSON list of {audience, actions, resources} objects, for several statements.")
@click.option("--description", help="What the role is for.")
@json_option
def define(name, audience, actions, resources, statements_file, description, as_json):
    """Create a role, or replace the statements of an existing one."""
    view = execute("roles.define", name=name, description=description,
                   statements=_statements(audience, actions, resources, statements_file))
    emit(view, as_json, ("created " if view["created"] else "updated ") + _text(view))


@group.command("list")
@json_option
def list_(as_json):
    """List roles."""
    views = execute("roles.list")
    emit(views, as_json, "\n".join(_text(v) for v in views) or "(no roles)")


@group.command("show")
@click.argument("name")
@json_option
def show(name, as_json):
    """Show a role's statements and who holds it."""
    view = execute("roles.show", name=name)
    emit(view, as_json, _text(view))


@group.command("remove")
@click.argument("name")
def remove(name):
    """Remove a role (refused while any account holds it)."""
    execute("roles.remove", name=name)
    click.echo(f"removed role {name}")
