"""RP-Initiated Logout 1.0: the end-session endpoint.

§2: with a valid ``id_token_hint`` naming the signed-in person, the session ends and the
browser goes to the registered ``post_logout_redirect_uri`` (exact match, §3) with ``state``.
Without a valid hint, the person confirms on a page first. An invalid hint or an unregistered
URI never redirects: it shows an error page.
"""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, current_app, redirect, render_template, request, session
from sqlalchemy import select

from ..audit import Event, record
from ..authn.sessions import current_login, log_out
from ..errors import error_page
from ..extensions import csrf, db
from ..keys.store import InvalidSignature
from ..models import Client

bp = Blueprint("logout", __name__)


class LogoutRequestError(Exception):
    pass


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt
def end_session():
    values = request.args if request.method == "GET" else request.form
    for key in ("id_token_hint", "client_id", "post_logout_redirect_uri", "state"):
        if len(values.getlist(key)) > 1 or len(values.get(key, "")) > 4096:
            return error_page("Logout request not valid", f"The '{key}' parameter is invalid.", 400)
    try:
        hint_sub, target = _validate(values)
    except LogoutRequestError as exc:
        return error_page("Logout request not valid", str(exc), 400)
    login = current_login(session)
    if hint_sub is not None and (login is None or login[0].subject == hint_sub):
        return _finish(target, login)
    session["logout"] = target
    return render_template("logout/confirm.html", account=login[0] if login else None)


@bp.post("/logout/confirm")
def confirm():
    target = session.get("logout") or {}
    if request.form.get("confirm") != "yes":
        session.pop("logout", None)
        return render_template("logout/cancelled.html")
    return _finish(target, current_login(session))


def _finish(target: dict, login):
    if login is not None:
        record(Event.LOGOUT, account=login[0], client=target.get("client_id"))
    log_out(session)
    uri = target.get("redirect_uri")
    if uri:
        if target.get("state"):
            parts = urlsplit(uri)
            query = parse_qsl(parts.query, keep_blank_values=True) + [("state", target["state"])]
            uri = urlunsplit(parts._replace(query=urlencode(query)))
        return redirect(uri)
    return render_template("logout/done.html")


def _validate(values) -> tuple[str | None, dict]:
    keys = current_app.extensions["oidc_server"].policy.keys
    issuer = current_app.extensions["oidc_server"].policy.settings.issuer
    hint_sub, client_id = None, values.get("client_id")
    if values.get("id_token_hint"):
        try:
            header, claims = keys.verify(values["id_token_hint"])  # expired hints are acceptable
        except InvalidSignature:
            raise LogoutRequestError("The id_token_hint is not an ID token issued here.") from None
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if claims.get("iss") != issuer or not isinstance(claims.get("sub"), str) or not auds \
                or header.get("typ") == "at+jwt":
            raise LogoutRequestError("The id_token_hint is not an ID token issued here.")
        # §2: "If both client_id and id_token_hint are present, the OP MUST verify that the
        # Client Identifier matches the one used when issuing the ID Token."
        if client_id and client_id not in auds:
            raise LogoutRequestError("The client_id does not match the id_token_hint.")
        client_id, hint_sub = client_id or auds[0], claims["sub"]
    client = None
    if isinstance(client_id, str) and client_id:
        client = db.session.scalar(select(Client).where(Client.client_id == client_id[:64]))
    uri = values.get("post_logout_redirect_uri")
    if uri:
        if client is None:
            raise LogoutRequestError("A post_logout_redirect_uri needs an id_token_hint or a client_id.")
        # §3: "The OP MUST NOT perform post-logout redirection if the
        # post_logout_redirect_uri value supplied does not exactly match one of the previously
        # registered post_logout_redirect_uris values."
        if uri not in (client.post_logout_redirect_uris or []):
            raise LogoutRequestError("The post_logout_redirect_uri is not registered for this application.")
    return hint_sub, {
        "redirect_uri": uri or None, "state": values.get("state") if uri else None,
        "client_id": client.client_id if client else None,
    }
