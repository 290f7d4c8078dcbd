"""``oidc-provider client ...``: relying parties."""

import json

import click

from ..admin import clients as admin_clients
from ..authn.levels import KNOWN_LEVELS
from ..settings import SIGNING_ALGS
from .common import emit, execute, json_option


def _read_jwks(path):
    if path is None:
        return None
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read JWKS from {path}: {exc}") from None
    if isinstance(data, dict) and "keys" not in data:
        data = {"keys": [data]}
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise click.ClickException(f"{path} is not a JWK or JWK set")
    for key in data["keys"]:
        if not isinstance(key, dict) or any(k in key for k in ("d", "p", "q", "k")):
            raise click.ClickException(f"{path} must hold public keys only")
    return data


@click.group("client")
def group():
    """Manage relying parties (apps that sign people in)."""


@group.command("create")
@click.option("--name", required=True, help="Name shown on the consent page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Registered redirect URI (repeat).")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True, help="Allowed after logout (repeat).")
@click.option("--public", is_flag=True, help="A public client (SPA, native app): no secret, PKCE.")
@click.option("--trusted", is_flag=True, help="Skip the consent page for this client.")
@click.option("--scope", help="Space-separated scopes the client may ask for.")
@click.option("--grant", "grants", multiple=True, help="Extra grant: refresh_token (repeat).")
@click.option("--auth-method", type=click.Choice(admin_clients.AUTH_METHODS), help="Token endpoint auth method.")
@click.option("--jwks", "jwks_file", type=click.Path(dir_okay=False), help="Public JWK(S) for private_key_jwt.")
@click.option("--id-token-alg", type=click.Choice(SIGNING_ALGS), default="RS256", show_default=True)
@click.option("--pkce/--no-pkce", "require_pkce", default=None,
              help="Require PKCE from this confidential client (default: OIDC_REQUIRE_PKCE).")
@click.option("--min-acr", type=click.Choice(KNOWN_LEVELS), help="Lowest authentication level accepted.")
@click.option("--audience", help="aud of its access tokens when it names no resource (default: OIDC_DEFAULT_AUDIENCE).")
@click.option("--resource", "resources", multiple=True, help="Another resource (RFC 8707) it may ask for (repeat).")
@click.option("--require-grant/--no-require-grant", default=False,
              help="Refuse a token for an audience on which the person holds no role.")
@json_option
def create(name, redirect_uris, logout_uris, public, trusted, scope, grants, auth_method, jwks_file,
           id_token_alg, require_pkce, min_acr, audience, resources, require_grant, as_json):
    """Register a client; prints client_id and, for confidential clients, the secret once."""
    data = execute("clients.create", name=name, redirect_uris=list(redirect_uris), public=public, trusted=trusted,
                   post_logout_redirect_uris=list(logout_uris), scope=scope, grants=list(grants),
                   auth_method=auth_method, id_token_alg=id_token_alg, jwks=_read_jwks(jwks_file),
                   require_pkce=require_pkce, min_acr=min_acr, audience=audience, resources=list(resources),
                   require_grant=require_grant)
    text = f"client_id: {data['client_id']}"
    if data.get("client_secret"):
        text += f"\nclient_secret: {data['client_secret']}\n(shown once: store it now)"
    emit(data, as_json, text)


@group.command("list")
@json_option
def list_(as_json):
    """List clients."""
    views = execute("clients.list")
    emit(views, as_json, "\n".join(f"{v['client_id']}\t{v['name']}" for v in views) or "(no clients)")


@group.command("show")
@click.argument("client_id")
@json_option
def show(client_id, as_json):
    """Show one client."""
    emit(execute("clients.show", client_id=client_id), as_json)


@group.command("update")
@click.argument("client_id")
@click.option("--name")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Replaces the redirect URIs.")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True, help="Replaces them.")
@click.option("--trusted/--untrusted", default=None)
@click.option("--scope")
@click.option("--id-token-alg", type=click.Choice(SIGNING_ALGS))
@click.option("--pkce/--no-pkce", "require_pkce", default=None,
              help="Require PKCE from this confidential client (public clients always do).")
@click.option("--min-acr", type=click.Choice([*KNOWN_LEVELS, "none"]),
              help="Lowest authentication level accepted ('none' removes the minimum).")
@click.option("--audience", help="Default aud of its access tokens ('none': OIDC_DEFAULT_AUDIENCE).")
@click.option("--resource", "resources", multiple=True, help="Replaces the resources it may ask for (repeat).")
@click.option("--no-resources", is_flag=True, help="Remove every resource.")
@click.option("--require-grant/--no-require-grant", default=None,
              help="Refuse a token for an audience on which the person holds no role.")
@json_option
def update(client_id, name, redirect_uris, logout_uris, trusted, scope, id_token_alg, require_pkce, min_acr,
           audience, resources, no_resources, require_grant, as_json):
    """Change a client's settings."""
    if no_resources and resources:
        raise click.UsageError("--resource and --no-resources together make no sense")
    view = execute("clients.update", client_id=client_id, name=name, redirect_uris=list(redirect_uris) or None,
                   post_logout_redirect_uris=list(logout_uris) or None, trusted=trusted, scope=scope,
                   id_token_alg=id_token_alg, require_pkce=require_pkce, min_acr=min_acr,
                   audience=None if audience == "none" else audience, clear_audience=audience == "none" or None,
                   resources=[] if no_resources else list(resources) or None, require_grant=require_grant)
    emit(view, as_json)


@group.command("rotate-secret")
@click.argument("client_id")
@json_option
def rotate_secret(client_id, as_json):
    """Issue a new client secret; the old one stops working at once."""
    data = execute("clients.rotate-secret", client_id=client_id)
    emit(data, as_json, f"client_secret: {data['client_secret']}\n(shown once: store it now)")


@group.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(client_id, yes):
    """Delete a client with its consents; its tokens stop working."""
    if not yes:
        click.confirm(f"Delete client {client_id}?", abort=True)
    execute("clients.delete", client_id=client_id)
    click.echo(f"deleted {client_id}")
