"""``oidc-provider token ...``: personal access tokens."""

from __future__ import annotations

import click

from .common import emit, execute, json_option


@click.group("token")
def group():
    """Personal access tokens for people who script against their apps."""


def _line(v: dict) -> str:
    roles = ",".join(v["roles"]) if v["roles"] is not None else "all roles"
    return f"{v['id']}\t{v['user']}\t{v['audience']}\t{roles}\t{v['state']}\texpires {v['expires_at']}\t{v['name']}"


@group.command("create")
@click.option("--user", required=True, help="The person the token acts for.")
@click.option("--audience", required=True, help="The app (audience) the token is for.")
@click.option("--grant", "grants", multiple=True, help="Narrow the token to this of the person's roles (repeat); "
              "default: every role they hold at each use.")
@click.option("--expires", default="30d", show_default=True, help="Lifetime: 12h, 30d, 2w (at most 366d).")
@click.option("--name", default="", help="What the token is for.")
@json_option
def create(user, audience, grants, expires, name, as_json):
    """Issue a personal access token; prints it once."""
    view = execute("tokens.create", user=user, audience=audience, roles=list(grants) or None, expires=expires,
                   name=name)
    emit(view, as_json, f"id: {view['id']}\ntoken: {view['token']}\nexpires: {view['expires_at']}\n"
                        "(shown once: store it now)")


@group.command("list")
@click.option("--user", help="Only this person's tokens.")
@json_option
def list_(user, as_json):
    """List personal access tokens (never the tokens themselves)."""
    views = execute("tokens.list", user=user)
    emit(views, as_json, "\n".join(_line(v) for v in views) or "(no tokens)")


@group.command("revoke")
@click.argument("token_id")
def revoke(token_id):
    """Revoke a personal access token by its id (from `token list`)."""
    view = execute("tokens.revoke", id=token_id)
    click.echo(f"revoked {token_id}" if view["changed"] else f"{token_id} was already revoked")
