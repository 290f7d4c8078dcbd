"""``oidc-provider keys ...``: signing keys."""

import click
from flask import current_app
from sqlalchemy import select

from ..audit import Event, record
from ..extensions import db
from ..models import SigningKey
from .common import app_context, emit, json_option


@click.group("keys")
def group():
    """Manage signing keys."""


def _view(row):
    return {"kid": row.kid, "alg": row.alg, "state": row.state,
            "created_at": row.created_at, "publish_until": row.publish_until}


@group.command("list")
@json_option
def list_(as_json):
    """List signing keys and their states."""
    with app_context():
        rows = db.session.scalars(select(SigningKey).order_by(SigningKey.alg, SigningKey.id))
        views = [_view(r) for r in rows]
        emit(views, as_json, "\n".join(f"{v['alg']}\t{v['state']}\t{v['kid']}" for v in views) or "(no keys)")


@group.command("rotate")
@json_option
def rotate(as_json):
    """Make the next key of each algorithm active; the old one stays published until every
    token it signed has expired."""
    with app_context():
        keys = current_app.extensions["oidc_server"].policy.keys
        promoted = keys.rotate()
        record(Event.KEYS_ROTATED, detail={"active": [r.kid for r in promoted]})
        emit([_view(r) for r in promoted], as_json,
             "\n".join(f"{r.alg}: now signing with {r.kid}" for r in promoted))
