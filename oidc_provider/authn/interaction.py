"""What an authorization request needs before a code can be issued: a pure function.

Authlib enforces neither ``max_age`` nor ``id_token_hint`` and never answers
``consent_required`` under ``prompt=none``; this module decides, and ``web/authorize.py``
acts on the answer. No Flask, SQLAlchemy or Authlib here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .levels import Ladder, Requirement, with_floor

PROMPTS = frozenset({"none", "login", "consent", "select_account"})


@dataclass(frozen=True)
class Proceed:
    """Issue the code."""


@dataclass(frozen=True)
class Login:
    reason: str  # "no_session", "prompt_login", "max_age", "id_token_hint", "select_account"


@dataclass(frozen=True)
class Consent:
    reason: str  # "not_granted", "prompt_consent"


@dataclass(frozen=True)
class StepUp:
    """Ask the signed-in person for the factor that reaches ``level`` (not a whole login)."""

    level: str
    reason: str  # "acr_values", "essential_acr", "client_min_acr", "min_acr", "enrolled_factors"


@dataclass(frozen=True)
class Enroll:
    """Lead the person through enrolling a factor that reaches ``level``, saying why."""

    level: str
    reason: str


@dataclass(frozen=True)
class Refuse:
    error: str
    description: str


Step = Proceed | Login | Consent | StepUp | Enroll | Refuse


@dataclass(frozen=True)
class Situation:
    prompt: frozenset[str]
    max_age: int | None
    logged_in: bool
    auth_time: int | None
    hint_matches: bool | None  # None: no id_token_hint; else whether its sub is the session's
    interaction_started: int | None  # when this request first needed interaction (epoch)
    client_trusted: bool
    consent_covers: bool
    consent_decision: str | None  # "granted" / "denied" during this request
    ladder: Ladder = field(default_factory=Ladder)
    required: Requirement | None = None  # the level asked for (levels.requirement)
    session_acr: str | None = None  # the level the session reached
    reachable: str | None = None  # the highest level the account's enrolled factors reach
    enrollable: str | None = None  # the highest level enrolling a factor here would reach
    declined: str | None = None  # the level the person declined ("Not now" / "Cancel") on a step-up page
    # The session's account signed in for this very request (its login page, passkey or
    # upstream), not for another request in another tab.
    authenticated_for_request: bool = False
    # OIDC_ENROLLED_FACTORS=always: the level the account's enrolled second factors make every
    # sign-in reach (levels.enrolled_level); None in when-asked mode or without a second factor.
    enrolled: str | None = None
    min_acr: str | None = None  # OIDC_MIN_ACR: the operator's floor for every client


def parse_prompt(raw: str | None) -> frozenset[str]:
    """OIDC Core §3.1.2.1: prompt is a space-delimited list; "If this parameter contains none
    with any other value, an error is returned." Raises ValueError."""
    values = frozenset((raw or "").split())
    if not values <= PROMPTS:
        raise ValueError("unsupported 'prompt' value")
    if "none" in values and len(values) > 1:
        raise ValueError("'prompt=none' cannot be combined with other values")
    return values


def parse_max_age(raw: str | None) -> int | None:
    """OIDC Core §3.1.2.1: max_age is a non-negative number of seconds. Raises ValueError."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise ValueError("'max_age' must be a non-negative integer")
    return int(raw)


def next_step(s: Situation, *, now: int) -> Step:
    silent = "none" in s.prompt
    # A sign-in done for this request satisfies its prompt=login and max_age (OIDC Core
    # §3.1.2.1); one done for another request, or a step-up that proved only a second factor,
    # does not, however recent.
    fresh = (s.logged_in and s.authenticated_for_request and s.interaction_started is not None
             and s.auth_time is not None and s.auth_time >= s.interaction_started)
    reason = None
    if not s.logged_in:
        reason = "no_session"
    elif s.hint_matches is False:
        reason = "id_token_hint"
    elif not fresh and "login" in s.prompt:
        reason = "prompt_login"
    elif not fresh and "select_account" in s.prompt:
        reason = "select_account"
    elif not fresh and s.max_age is not None and (
        s.auth_time is None or s.max_age == 0 or now - s.auth_time > s.max_age
    ):
        # OIDC Core §3.1.2.1 max_age: "If the elapsed time is greater than this value, the OP
        # MUST attempt to actively re-authenticate the End-User." and "max_age=0 is
        # equivalent to prompt=login" (auth_time has whole seconds, so elapsed may be 0).
        reason = "max_age"
    if reason is not None:
        if silent:
            # OIDC Core §3.1.2.6: login_required when the OP requires authentication and
            # prompt=none forbids showing a page.
            return Refuse("login_required", "The end-user must sign in.")
        return Login(reason)
    refused = _level_check(s, silent)
    if refused is not None:
        return refused
    if s.consent_decision == "denied":
        return Refuse("access_denied", "The end-user denied the request.")
    if s.consent_decision == "granted" or s.client_trusted:
        return Proceed()
    if "consent" in s.prompt:
        return Consent("prompt_consent")
    if not s.consent_covers:
        if silent:
            return Refuse("consent_required", "The end-user must consent to this request.")
        return Consent("not_granted")
    return Proceed()


def _level_check(s: Situation, silent: bool) -> StepUp | Enroll | Refuse | None:
    """The session's level against what the request asks (DESIGN "Levels of authentication"):
    step up with a factor the person has, else lead them through enrolling one, else refuse a
    binding level (OIDC Core §5.5.1.1: a failed authentication, access_denied) or carry on at
    the level reached when only ``acr_values`` (voluntary) asked for more. Under prompt=none an
    insufficient session is interaction_required, never a silent downgrade."""
    need = with_floor(s.ladder, with_floor(s.ladder, s.required, s.min_acr, "min_acr"),
                      s.enrolled, "enrolled_factors")
    if need is None or s.ladder.satisfies(s.session_acr, need.level):
        return None
    if silent:
        return Refuse("interaction_required", f"The request needs authentication at level '{need.level}'.")
    asks = [(need.level, need.reason)]
    if need.floor is not None and need.floor != need.level:
        asks.append((need.floor, need.floor_reason or need.reason))
    if s.declined is not None:
        # Declining a voluntary level falls back to the binding one; declining that refuses.
        asks = [(level, why) for level, why in asks if s.ladder.rank(level) < s.ladder.rank(s.declined)]
    for level, why in asks:
        if s.ladder.satisfies(s.session_acr, level):
            return None
        if s.ladder.satisfies(s.reachable, level):
            return StepUp(level, why)
        if s.ladder.satisfies(s.enrollable, level):
            if s.ladder.rank(s.reachable) > s.ladder.rank(s.session_acr):
                # Prove the factors the account has before adding one (a password alone must
                # not be enough to enrol a second factor beside an existing one).
                return StepUp(s.reachable, why)
            return Enroll(level, why)
    if need.floor is not None and not s.ladder.satisfies(s.session_acr, need.floor):
        if s.declined is not None:
            return Refuse("access_denied", f"The end-user did not authenticate at level '{need.floor}'.")
        return Refuse("access_denied", f"This application requires authentication at level "
                                       f"'{need.floor}', which this account cannot reach.")
    return None
