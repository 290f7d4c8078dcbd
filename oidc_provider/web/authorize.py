"""The authorization endpoint (OIDC Core §3.1.2): the dispatcher that owns the journey.

Authlib validates the client, redirect URI, response type, scope and PKCE; this module then
checks what Authlib does not (``request``/``request_uri``, ``response_mode``, ``prompt``,
``max_age``, ``id_token_hint``, ``claims``), asks ``authn.interaction.next_step`` what is
missing (including, under ``OIDC_ENROLLED_FACTORS=always``, the second factor an enrolled person
has, and ``OIDC_MIN_ACR``), and sends the browser to login or consent. Each of those steps comes back here
(``/authorize/continue/<id>``) and never goes to another step.

Errors are redirected to the client only after the client and its redirect URI are validated
(RFC 6749 §4.1.2.1); before that, an HTML page. That includes ``invalid_target`` for a
``resource`` (RFC 8707 §2) the client may not ask for.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, redirect, request, session, url_for
from werkzeug.datastructures import MultiDict

from ..audit import Event, record
from ..authn import interaction, levels, pending
from ..authn.sessions import login_snapshot
from ..authn.subject import AuthenticatedSubject
from ..errors import error_page, redirect_error
from ..extensions import csrf
from ..keys.store import InvalidSignature
from ..oauth import OAuth2Error, consents
from ..oauth.claims import (
    ClaimsRequestError,
    consented_scopes,
    essential_acr_values,
    parse_claims_request,
    requested_sub,
    restrict_claims_request,
)
from ..oauth.requests import ProviderRequest
from ..oauth.resources import InvalidTargetError, for_authorization
from .input_guard import BadInput, clean
from .responses import RESPONSE_MODES, authorization_response

bp = Blueprint("authorize", __name__)

MAX_PARAM_LENGTH = 4096
MAX_NONCE_LENGTH = 512  # stored with the code
SINGLE_VALUED = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                 "response_mode", "prompt", "max_age", "id_token_hint", "login_hint",
                 "claims", "code_challenge", "code_challenge_method", "display", "acr_values",
                 "ui_locales", "claims_locales", "request", "request_uri")


class AuthorizeError(Exception):
    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error, self.description = error, description


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    # OIDC Core §3.1.2.1: "Authorization Servers MUST support the use of the HTTP GET and POST
    # methods"; POST parameters are form-serialized.
    values = request.args if request.method == "GET" else request.form
    return dispatch(MultiDict(values.items(multi=True)))


@bp.errorhandler(BadInput)
def bad_input(exc: BadInput):
    """The input guard refused the request (a control character, a value too long, bytes that
    are not UTF-8). OIDC Core §3.1.2.6 / RFC 6749 §4.1.2.1: ``invalid_request`` at the redirect
    URI when ``client_id`` and ``redirect_uri`` are themselves clean and valid, else the page.
    Only what the guard lets through is read (Werkzeug's lenient decoding of the rest)."""
    try:
        values = request.args if request.method == "GET" else request.form
        sent = MultiDict((k, v) for k, v in values.items(multi=True)
                         if k in ("client_id", "redirect_uri", "state", "response_mode") and clean(v))
    except UnicodeDecodeError:  # a raw query string that is not UTF-8: nothing can be trusted
        sent = MultiDict()
    redirect_uri = _validated_redirect_uri(current_app.extensions["oidc_server"], sent) \
        if request.endpoint == "authorize.authorize" else None
    return _refuse("invalid_request", exc.description, redirect_uri, sent,
                   client=sent.get("client_id") if redirect_uri else None)


@bp.get("/authorize/continue/<pid>")
def resume(pid):
    entry = pending.load(session, pid)
    if entry is None:
        return _expired()
    return dispatch(MultiDict(entry["params"]), pid=pid, entry=entry)


def _expired():
    return error_page("Sign-in request expired",
                      "This sign-in request has expired or was already completed. "
                      "Go back to the application and start again.", 400)


def dispatch(values: MultiDict, pid: str | None = None, entry: dict | None = None):
    server = current_app.extensions["oidc_server"]
    settings = server.policy.settings
    oauth_request = ProviderRequest(request, settings.issuer, values)
    login = login_snapshot(session)
    try:
        _check_shape(values)
        grant = server.get_consent_grant(request=oauth_request, end_user=None)
    except ValueError:
        # Authlib quotes the request's values in its error descriptions and refuses characters
        # RFC 6749 §5.2 forbids there ('"', '\\', non-ASCII): such a request is invalid, and
        # with an unvalidated redirect URI it gets the error page.
        return _refuse("invalid_request", "The request contains characters that are not allowed.",
                       None, values, client=values.get("client_id"))
    except OAuth2Error as error:
        return _refuse(error.error, error.get_error_description(), getattr(error, "redirect_uri", None),
                       values, client=values.get("client_id"))
    except AuthorizeError as error:
        return _refuse(error.error, error.description, _validated_redirect_uri(server, values), values,
                       client=values.get("client_id"))

    redirect_uri = grant.redirect_uri
    client = grant.client
    try:
        checked = _check_openid_parameters(values, server.policy)
        # RFC 8707 §2.1: every resource named must be one this client may ask for.
        checked["resources"] = for_authorization(values.getlist("resource"), client, settings)
    except (AuthorizeError, InvalidTargetError) as error:
        return _refuse(error.error, error.description, redirect_uri, values, client=client)

    subject = _subject(login)
    generation = consented = None
    if subject is not None:
        # The generation locked until the code is stored, then the consent (oauth/consents.py):
        # a withdrawal cannot fall between this consent read and the code.
        generation, consented = consents.current_state(subject.account.id, client)
    scopes = set(consented_scopes(client, grant.request.scope, checked["claims"]))
    checked["claims"] = restrict_claims_request(checked["claims"], list(scopes))
    situation = _situation(subject, checked, client, scopes, consented, entry, values, settings.ladder)
    step = interaction.next_step(situation, now=int(time.time()))

    if isinstance(step, interaction.Refuse):
        if pid:
            pending.finish(session, pid)
        return _refuse(step.error, step.description, redirect_uri, values, client=client)
    if isinstance(step, (interaction.Login, interaction.Consent, interaction.StepUp, interaction.Enroll)):
        pid = pid or pending.create(session, list(values.items(multi=True)))
        if isinstance(step, interaction.Login):
            return redirect(url_for("login.login", p=pid))
        if isinstance(step, interaction.Consent):
            return redirect(url_for("consent.consent", pid=pid))
        kind = "step_up" if isinstance(step, interaction.StepUp) else "enroll"
        # The page checks it was sent there: /enroll is never a way around /step-up.
        pending.update(session, pid, level=step.level, reason=step.reason, step=kind)
        page = f"step_up.{kind}"
        return redirect(url_for(page, pid=pid))

    if pid and not pending.finish(session, pid):
        # Completed already (a double click, or another tab racing this one): once only.
        return _expired()
    code = grant.issue_code(subject, checked["claims"], checked["resources"], generation)
    # The code and its audit row commit together.
    record(Event.CODE_ISSUED, account=subject.account, client=client, detail={"scope": grant.request.scope})
    params = [("code", code)]
    if values.get("state"):
        params.append(("state", values["state"]))
    return authorization_response(redirect_uri, params, values.get("response_mode"), settings.issuer)


def _subject(login) -> AuthenticatedSubject | None:
    if login is None:
        return None
    account, facts = login
    return AuthenticatedSubject(account=account, acr=facts["acr"], amr=facts["amr"],
                                auth_time=facts["auth_time"], session_id=facts["sid"])


def _situation(subject, checked: dict, client, scopes: set[str], consented: frozenset[str] | None,
               entry: dict | None, values: MultiDict, ladder) -> interaction.Situation:
    """What ``interaction.next_step`` needs to know, read from the request, the session and
    the database."""
    required = levels.requirement(ladder, acr_values=values.get("acr_values"),
                                  essential_acr=essential_acr_values(checked["claims"]),
                                  client_min_acr=client.min_acr)
    settings = current_app.extensions["oidc_settings"]
    reachable = enrollable = enrolled = None
    if subject is not None:
        # The account's factors: what it can reach, and (OIDC_ENROLLED_FACTORS=always) what
        # every one of its sign-ins must reach.
        factors = current_app.extensions["oidc_second_factors"]
        methods = list(subject.account.methods)
        reachable = ladder.level_of(methods)
        enrollable = ladder.level_of([*methods, *factors.enrollable_methods()])
        enrolled = levels.enrolled_level(ladder, methods, settings.enrolled_factors)
    hint_matches = None
    if subject is not None and checked["hint_sub"] is not None:
        hint_matches = checked["hint_sub"] == subject.account.subject
    return interaction.Situation(
        prompt=checked["prompt"], max_age=checked["max_age"], logged_in=subject is not None,
        auth_time=subject.auth_time if subject else None, hint_matches=hint_matches,
        interaction_started=entry["created"] if entry else None,
        authenticated_for_request=bool(entry and entry["authenticated"]), client_trusted=client.trusted,
        consent_covers=consented is not None and scopes <= consented,
        consent_decision=entry.get("consent") if entry else None,
        ladder=ladder, session_acr=subject.acr if subject else None,
        reachable=reachable, enrollable=enrollable, required=required,
        declined=entry.get("declined") if entry else None,
        enrolled=enrolled, min_acr=settings.min_acr or None,
    )


def _check_shape(values: MultiDict) -> None:
    """RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    Oversized values are refused before anything else reads them."""
    for key in SINGLE_VALUED:
        if len(values.getlist(key)) > 1:
            raise AuthorizeError("invalid_request", f"The '{key}' parameter is repeated.")
    for key, value in values.items(multi=True):
        if len(value) > MAX_PARAM_LENGTH or len(key) > 128:
            raise AuthorizeError("invalid_request", "A parameter is too long.")
    if len(values.get("nonce") or "") > MAX_NONCE_LENGTH:
        raise AuthorizeError("invalid_request", f"The 'nonce' is longer than {MAX_NONCE_LENGTH} characters.")
    if "response_type" not in values:
        # RFC 6749 §4.1.2.1 invalid_request: "The request is missing a required parameter".
        raise AuthorizeError("invalid_request", "The 'response_type' parameter is required.")
    if values["response_type"] != "code":
        # OIDC Core §3.1.2.1 / RFC 6749 §4.1.2.1: only the code flow is offered.
        raise AuthorizeError("unsupported_response_type", "Only response_type=code is supported.")


def _validated_redirect_uri(server, values: MultiDict) -> str | None:
    """RFC 6749 §4.1.2.1: a request that fails "for reasons other than a missing or invalid
    redirection URI" is answered at the redirect URI, once client and URI are validated."""
    if len(values.getlist("client_id")) != 1 or len(values.getlist("redirect_uri")) != 1:
        return None
    client = server.query_client(values["client_id"])
    if client is None or not client.check_redirect_uri(values["redirect_uri"]):
        return None
    return values["redirect_uri"]


def _check_openid_parameters(values: MultiDict, policy) -> dict:
    # OIDC Core §6.1/§6.2: an OP that does not support request objects MUST answer
    # request_not_supported / request_uri_not_supported.
    if "request" in values:
        raise AuthorizeError("request_not_supported", "Request objects are not supported.")
    if "request_uri" in values:
        raise AuthorizeError("request_uri_not_supported", "The request_uri parameter is not supported.")
    if values.get("response_mode") not in (None, *RESPONSE_MODES):
        raise AuthorizeError("invalid_request", "Unsupported 'response_mode'; use query or form_post.")
    try:
        prompt = interaction.parse_prompt(values.get("prompt"))
        max_age = interaction.parse_max_age(values.get("max_age"))
    except ValueError as exc:
        raise AuthorizeError("invalid_request", str(exc)) from exc
    try:
        claims = parse_claims_request(values.get("claims"))
        claims_sub = requested_sub(claims)
    except ClaimsRequestError as exc:
        raise AuthorizeError("invalid_request", str(exc)) from exc
    hint_sub = None
    if values.get("id_token_hint"):
        # OIDC Core §3.1.2.1: id_token_hint is an ID Token we issued; expired ones are fine.
        try:
            header, hint = policy.keys.verify(values["id_token_hint"])
        except InvalidSignature as exc:
            raise AuthorizeError("invalid_request", "The 'id_token_hint' is not a valid ID token.") from exc
        if hint.get("iss") != policy.settings.issuer or not isinstance(hint.get("sub"), str) \
                or header.get("typ") == "at+jwt":
            raise AuthorizeError("invalid_request", "The 'id_token_hint' is not an ID token issued here.")
        hint_sub = hint["sub"]
    if claims_sub is not None:
        # OIDC Core §3.1.2.2: "The Authorization Server MUST NOT reply with an ID Token or
        # Access Token for a different user": treated like id_token_hint.
        if hint_sub is not None and hint_sub != claims_sub:
            raise AuthorizeError("invalid_request", "'id_token_hint' and 'claims' name different users.")
        hint_sub = claims_sub
    return {"prompt": prompt, "max_age": max_age, "claims": claims, "hint_sub": hint_sub}


def _refuse(error: str, description: str, redirect_uri: str | None, values: MultiDict, *, client=None):
    issuer = current_app.extensions["oidc_server"].policy.settings.issuer
    record(Event.AUTHORIZE_ERROR, outcome="failure", reason=error, client=client,
           detail={"redirected": bool(redirect_uri)})
    if redirect_uri:
        mode = values.get("response_mode")
        return redirect_error(redirect_uri=redirect_uri, error=error, description=description,
                              state=_echoable(values.get("state")),
                              response_mode=mode if mode in RESPONSE_MODES else None, issuer=issuer)
    return error_page("This sign-in request is not valid",
                      f"The application sent an invalid request ({error}): {description}", 400)


def _echoable(state: str | None) -> str | None:
    """``state`` goes back verbatim (RFC 6749 §4.1.2.1), unless it is the oversized value that
    caused the error."""
    return state if state is not None and len(state) <= MAX_PARAM_LENGTH else None
