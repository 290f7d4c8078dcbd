"""Personal access tokens on the account page (issue 5): "a token's grants are always a subset
of its owner's; a grant its owner no longer holds stops applying at once. Stored as digests;
shown once." The rules live in ``access.personal_tokens``; these views parse a form, call it and
render.

- Creating one needs a recent sign-in at the level the account's own factors reach
  (``account_guard``, like changing a factor): a token is a standing credential that skips them.
- The token is in the one answer to the create form (``Cache-Control: no-store``), never in the
  session, a redirect or a log line; afterwards only its public id and digest remain.
- Revoking needs only the signed-in session (at its enrolled level): it takes power away.

A blueprint of its own, guarded like every account view (``account_guard.signed_in``).
"""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from ..access import personal_tokens
from ..access import roles as role_service
from ..errors import error_page
from ..extensions import db
from ..problems import NotFound, Problem
from .account_guard import signed_in

bp = Blueprint("account_tokens", __name__)

WHY = "personal-token"
# What the form offers; the service would take any duration up to 366 days, the page keeps to these.
LIFETIMES = {"7d": "7 days", "30d": "30 days", "90d": "90 days", "366d": "366 days"}
DEFAULT_LIFETIME = "30d"


def _audiences(roles) -> list[str]:
    """The audiences the person's roles say something about: what the form's list offers."""
    return sorted({s.get("audience") for r in roles for s in r.statements or ()
                   if isinstance(s, dict) and isinstance(s.get("audience"), str)})


def _form(account, *, error: str | None = None, values: dict | None = None, status: int = 200):
    roles = role_service.roles_of(account.id)
    values = values or {"roles": []}
    if values.get("lifetime") not in LIFETIMES:
        values = {**values, "lifetime": DEFAULT_LIFETIME}
    return render_template("account/token_new.html", error=error, values=values, roles=roles,
                           audiences=_audiences(roles), lifetimes=LIFETIMES,
                           confirmed=request.args.get("done") == "confirmed"), status


def _submitted() -> dict:
    form = request.form
    chosen = (form.get("audience") or "").strip()
    typed = (form.get("audience_other") or "").strip()
    return {"name": (form.get("name") or "").strip(), "audience": typed or chosen, "audience_chosen": chosen,
            "audience_other": typed, "roles": form.getlist("roles"), "lifetime": form.get("lifetime") or ""}


@bp.get("/account/tokens/new")
@signed_in(recent=WHY)
def new_token(account, facts):
    return _form(account)


@bp.post("/account/tokens")
@signed_in(recent=WHY)
def create_token(account, facts):
    values = _submitted()
    try:
        if values["lifetime"] not in LIFETIMES:
            raise Problem("Choose one of the lifetimes offered.")
        if not values["audience"]:
            raise Problem("Choose or type the audience (the app) the token is for.")
        # No role checked: the token uses whatever its owner holds at each use.
        row, token = personal_tokens.create(
            account, audience=values["audience"], roles=values["roles"] or None, name=values["name"],
            lifetime=personal_tokens.parse_lifetime(values["lifetime"]), actor=account.username)
    except Problem as exc:
        db.session.rollback()
        return _form(account, error=str(exc), values=values, status=400)
    db.session.commit()
    response = make_response(render_template("account/token_created.html", token=token,
                                              view=personal_tokens.view(row)))
    # Shown once: no cache (browser or proxy) may keep the one page that holds it.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/tokens/<public_id>/revoke")
@signed_in()
def revoke_token(account, facts, public_id):
    try:
        # Only one's own: another person's token id is as unknown as a made-up one.
        row = personal_tokens.find(public_id, account=account)
    except NotFound:
        return error_page("No such token", "You have no personal access token with that id.", 404)
    personal_tokens.revoke(row, actor=account.username)
    db.session.commit()
    return redirect(url_for("account.home", done="token-revoked"))


@bp.app_context_processor
def _section():
    """For the account page's section (``account/_tokens.html``): the person's tokens, never the
    tokens themselves, and the roles they hold now, to mark a narrowing to a role since lost."""

    def personal_tokens_of(account) -> dict:
        return {"tokens": [personal_tokens.view(row) for row in personal_tokens.list_for(account)],
                "held_roles": {r.name for r in role_service.roles_of(account.id)}}

    return {"personal_tokens_of": personal_tokens_of}
