"""``oidc-provider service ...``: system accounts (client_credentials), their one live
credential, their roles and the database credentials kept for them."""

from __future__ import annotations

import json
import sys

import click

from .common import emit, execute, json_option, read_password


@click.group("service")
def group():
    """Manage system accounts for daemons and jobs."""


def _text(view: dict) -> str:
    how = view["token_endpoint_auth_method"] if view["has_credential"] else "no live credential"
    lines = [f"name: {view['name']}", f"client_id: {view['client_id']}", f"authenticates with: {how}"]
    if view["jwks_uri"]:
        lines.append(f"jwks_uri: {view['jwks_uri']}")
    if view["key_ids"]:
        lines.append("key ids: " + ", ".join(view["key_ids"]))
    lines += [f"scope: {view['scope'] or '(none)'}", f"audience: {view['audience'] or '(default)'}",
              "resources: " + (", ".join(view["resources"]) or "none"), f"disabled: {view['disabled']}",
              "roles: " + (", ".join(view["roles"]) or "none"),
              f"database credentials: {'stored' if view['has_database_credentials'] else 'none'}"]
    return "\n".join(lines)


def _secret_text(view: dict, note: str) -> str:
    return f"client_id: {view['client_id']}\nclient_secret: {view['client_secret']}\n(shown once: store it now{note})"


AUDIENCE_HELP = ("aud of its access tokens (default: OIDC_DEFAULT_AUDIENCE); as a resource server it may "
                 "introspect tokens for this audience.")
RESOURCE_HELP = "Another resource (RFC 8707) it may ask for and introspect tokens of (repeat)."


@group.command("create")
@click.argument("name")
@click.option("--scope", default="", help="Space-separated scopes the service may request.")
@click.option("--audience", help=AUDIENCE_HELP)
@click.option("--resource", "resources", multiple=True, help=RESOURCE_HELP)
@json_option
def create(name, scope, audience, resources, as_json):
    """Create a system account; prints client_id and client_secret once."""
    view = execute("services.create", name=name, scope=scope, audience=audience, resources=list(resources) or None)
    emit(view, as_json, _secret_text(view, ""))


@group.command("update")
@click.argument("name")
@click.option("--scope", help="Replaces the scopes it may request ('' for none).")
@click.option("--audience", help=AUDIENCE_HELP + " 'none': back to the default.")
@click.option("--resource", "resources", multiple=True, help="Replaces its resources (repeat).")
@click.option("--no-resources", is_flag=True, help="Remove every resource.")
@click.option("--require-grant/--no-require-grant", default=None,
              help="Refuse a token for an audience on which it holds no role.")
@json_option
def update(name, scope, audience, resources, no_resources, require_grant, as_json):
    """Change a system account's scope, audience or resources; its credential is unchanged."""
    if no_resources and resources:
        raise click.UsageError("--resource and --no-resources together make no sense")
    view = execute("services.update", name=name, scope=scope, audience=None if audience == "none" else audience,
                   clear_audience=audience == "none" or None, require_grant=require_grant,
                   resources=[] if no_resources else list(resources) or None)
    emit(view, as_json, _text(view))


@group.command("list")
@json_option
def list_(as_json):
    """List system accounts."""
    views = execute("services.list")
    emit(views, as_json, "\n".join(
        f"{v['name']}\t{v['client_id']}\t{v['token_endpoint_auth_method'] if v['has_credential'] else 'no credential'}"
        f"\t{'disabled' if v['disabled'] else 'active'}" for v in views) or "(no system accounts)")


@group.command("show")
@click.argument("name")
@json_option
def show(name, as_json):
    """Show a system account (never its secret or keys' private parts)."""
    view = execute("services.show", name=name)
    emit(view, as_json, _text(view))


@group.command("rotate")
@click.argument("name")
@json_option
def rotate(name, as_json):
    """Issue a new secret; the old secret or keys, and every access token they obtained, stop working."""
    view = execute("services.rotate", name=name)
    emit(view, as_json, _secret_text(view, "; the old credential and its tokens no longer work"))


def _read_jwk(path: str) -> dict:
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read a JWK from {path}: {exc}") from None


@group.command("set-key")
@click.argument("name")
@click.option("--jwk", "jwk_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="A public JWK or JWK set (file, or - for standard input).")
@click.option("--jwks-uri", help="An https URL publishing the JWK set (http on loopback only).")
@json_option
def set_key(name, jwk_file, jwks_uri, as_json):
    """Authenticate with private_key_jwt from now on; the secret and its tokens stop working."""
    if bool(jwk_file) == bool(jwks_uri):
        raise click.UsageError("give exactly one of --jwk FILE and --jwks-uri URL")
    view = execute("services.set-key", name=name, jwks=_read_jwk(jwk_file) if jwk_file else None,
                   jwks_uri=jwks_uri)
    emit(view, as_json, _text(view))


@group.command("revoke")
@click.argument("name")
@click.argument("role", required=False)
@json_option
def revoke(name, role, as_json):
    """Revoke the system account's credential (no secret, no keys, no token left); with ROLE,
    take that role back instead."""
    if role is not None:
        execute("services.show", name=name)  # a system account, not a person
        execute("accounts.revoke", username=name, role=role)
        click.echo(f"{name} no longer holds {role}")
        return
    view = execute("services.revoke", name=name)
    emit(view, as_json, f"{name}: no live credential; `service rotate` or `service set-key` issues a new one")


def _switch(name: str, operation: str, word: str, as_json: bool) -> None:
    view = execute(operation, name=name)
    emit(view, as_json, f"{name} {word}" + ("" if view.get("changed", True) else " (already was)"))


@group.command("disable")
@click.argument("name")
@json_option
def disable(name, as_json):
    """Disable a system account: it cannot authenticate and its tokens are revoked."""
    _switch(name, "services.disable", "disabled", as_json)


@group.command("enable")
@click.argument("name")
@json_option
def enable(name, as_json):
    """Enable a disabled system account (revoked tokens stay revoked)."""
    _switch(name, "services.enable", "enabled", as_json)


@group.command("grant")
@click.argument("name")
@click.argument("role")
def grant(name, role):
    """Give a role to a system account (its tokens carry the role's statements)."""
    execute("services.show", name=name)  # a system account, not a person
    view = execute("accounts.grant", username=name, role=role)
    click.echo(f"{name} holds {role}" + ("" if view["changed"] else " (already did)"))


@group.group("db-credentials")
def db_credentials():
    """PostgreSQL credentials kept for a system account, encrypted at rest."""


@db_credentials.command("set")
@click.argument("name")
@click.option("--dsn", required=True, help="postgresql://user@host:5432/db or 'host=... user=... dbname=...', "
              "without the password.")
@click.option("--password-stdin", is_flag=True, help="Read the database password from standard input.")
@json_option
def set_db_credentials(name, dsn, password_stdin, as_json):
    """Store (or replace) the system account's PostgreSQL DSN and password, sealed."""
    password = read_password(password_stdin, prompt=True)
    if not password:
        raise click.ClickException("give the database password with --password-stdin")
    view = execute("services.set-database-credentials", name=name, dsn=dsn, password=password)
    emit(view, as_json, f"database credentials {'replaced' if view.get('replaced') else 'stored'} for {name}; "
                        f"fetch them at GET /api/service-accounts/{name}/database-credentials")
