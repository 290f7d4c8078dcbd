"""``oidc-provider keys ...``: signing keys."""

import click
from flask import current_app
from sqlalchemy import select

from ..audit import Event, record
from ..extensions import db
from ..keys.rekey import unreadable
from ..keys.store import KeysUnreadable
from ..models import SigningKey
from .common import app_context, emit, json_option


@click.group("keys")
def group():
    """Manage signing keys."""


def _view(row, readable=None):
    view = {"kid": row.kid, "alg": row.alg, "state": row.state,
            "created_at": row.created_at, "publish_until": row.publish_until}
    if readable is not None:
        view["readable"] = readable
    return view


def _keys():
    return current_app.extensions["oidc_server"].policy.keys


@group.command("list")
@json_option
def list_(as_json):
    """List signing keys, their states, and any that OIDC_SECRET_KEY does not open."""
    with app_context():
        keys = _keys()
        rows = db.session.scalars(select(SigningKey).order_by(SigningKey.alg, SigningKey.id))
        views = [_view(r, r.state == "revoked" or keys.readable(r)) for r in rows]
        emit(views, as_json, "\n".join(
            f"{v['alg']}\t{v['state']}\t{v['kid']}" + ("" if v["readable"] else "\tUNREADABLE (another key)")
            for v in views) or "(no keys)")


@group.command("rotate")
@json_option
def rotate(as_json):
    """Make the next key of each algorithm active; the old one stays published until every
    token it signed has expired."""
    with app_context():
        try:
            promoted = _keys().rotate()
        except KeysUnreadable as exc:
            raise click.ClickException(str(exc)) from None
        record(Event.KEYS_ROTATED, detail={"active": [r.kid for r in promoted]})
        emit([_view(r) for r in promoted], as_json,
             "\n".join(f"{r.alg}: now signing with {r.kid}" for r in promoted))


# A kid is an RFC 7638 thumbprint (base64url), so it may begin with "-": such words are kids,
# not unknown options.
@group.command("revoke", context_settings={"ignore_unknown_options": True})
@click.argument("kids", metavar="KID...", nargs=-1, required=True)
@json_option
def revoke(kids, as_json):
    """Withdraw compromised keys at once: no longer published, and tokens they signed are
    refused. A revoked active key is replaced by its algorithm's next key."""
    with app_context() as app:
        _require_other_values_open(app.extensions["oidc_settings"])
        try:
            promoted = _keys().revoke(list(dict.fromkeys(kids)))
        except (KeysUnreadable, LookupError) as exc:
            raise click.ClickException(str(exc).strip("'\"")) from None
        record(Event.KEYS_REVOKED, detail={"revoked": list(kids), "active": [r.kid for r in promoted]})
        emit({"revoked": list(kids), "now_active": [_view(r) for r in promoted]}, as_json,
             "\n".join([f"revoked {kid}" for kid in kids]
                       + [f"{r.alg}: now signing with {r.kid}" for r in promoted]))


def _require_other_values_open(settings) -> None:
    """Revoking keys a secret does not open is how a database with keys sealed under two
    secrets is repaired; TOTP secrets and database credentials tell which secret is the right
    one, so a wrong OIDC_SECRET_KEY cannot withdraw the good keys."""
    bad = [value for value in unreadable(settings) if value.kind != "signing key"]
    if bad:
        raise click.ClickException(
            f"OIDC_SECRET_KEY does not open the {bad[0].kind} of {bad[0].name}"
            + (f" and {len(bad) - 1} more stored value(s)" if len(bad) > 1 else "")
            + " either: it is not the key this database was sealed with; nothing was changed")
