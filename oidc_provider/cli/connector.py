"""``oidc-provider connector ...``: the configured upstream connectors (read-only: they are
configured in the settings), and ``user links`` / ``user unlink`` for the identities linked to
an account. A client secret is never shown, only whether one is set."""

from __future__ import annotations

import click
from sqlalchemy import select

from ..admin import accounts as admin_accounts
from ..extensions import db
from ..federation import service
from ..federation.registry import callback_url
from ..models import FederatedIdentity
from ..problems import Problem
from .common import app_context, emit, json_option


@click.group("connector")
def group():
    """Show the upstream sign-in connectors (GitHub, Google, OIDC)."""


def _view(config, issuer: str) -> dict:
    view = {
        "name": config.name, "kind": config.kind, "display_name": config.display_name,
        "client_id": config.client_id, "client_secret": "set" if config.client_secret else "missing",
        "scopes": config.scopes, "match_email": config.match_email, "signup": config.signup,
        "trust_mfa": config.trust_mfa, "callback_url": callback_url(issuer, config.name),
    }
    if config.kind == "github":
        view.update(github_url=config.github_url, github_api_url=config.github_api_url)
    else:
        view["issuer"] = config.issuer
    return view


@group.command("list")
@json_option
def list_(as_json):
    """List the configured connectors."""
    with app_context() as app:
        settings = app.extensions["oidc_settings"]
        views = [_view(c, settings.issuer) for _, c in sorted(settings.connector_configs.items())]
        emit(views, as_json, "\n".join(f"{v['name']}\t{v['kind']}\t{v['display_name']}" for v in views)
             or "(no connectors)")


@group.command("show")
@click.argument("name")
@json_option
def show(name, as_json):
    """Show one connector's settings (never its secret) and the callback URL to register."""
    with app_context() as app:
        settings = app.extensions["oidc_settings"]
        config = settings.connector_configs.get(name)
        if config is None:
            raise Problem(f"no connector named {name!r}")
        emit(_view(config, settings.issuer), as_json)


def _link_view(link: FederatedIdentity) -> dict:
    return {"id": link.id, "provider": link.provider, "subject": link.subject, "email": link.email,
            "username": link.username, "linked_at": link.linked_at, "last_login_at": link.last_login_at}


@click.command("links")
@click.argument("username")
@json_option
def links(username, as_json):
    """List the upstream identities linked to an account."""
    with app_context():
        views = [_link_view(link) for link in service.links_of(admin_accounts.find_account(username))]
        emit(views, as_json, "\n".join(
            f"{v['provider']}\t{v['subject']}\t{v['username'] or v['email'] or '-'}" for v in views)
            or "(no linked identities)")


@click.command("unlink")
@click.argument("username")
@click.argument("provider")
@click.option("--force", is_flag=True, help="Unlink even when it is the account's last way to sign in.")
def unlink(username, provider, force):
    """Remove an account's linked identity at PROVIDER (a connector name). Audited."""
    with app_context():
        account = admin_accounts.find_account(username)
        rows = db.session.scalars(select(FederatedIdentity).where(
            FederatedIdentity.account_id == account.id, FederatedIdentity.provider == provider)).all()
        if not rows:
            raise Problem(f"{username} has no identity linked at {provider!r}")
        for row in rows:
            try:
                service.unlink(account, row, by="admin", force=force)
            except service.Refused:
                raise Problem(f"{provider} is the last way {username} can sign in (no password, passkey or "
                                  "other linked identity); set a password first, or use --force") from None
        click.echo(f"unlinked {provider} from {username}")
