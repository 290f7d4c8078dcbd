"""The acr ladder: levels of authentication, which methods reach which level, and the RFC 8176
``amr`` values. Pure: no Flask, SQLAlchemy or Authlib.

Levels form a total order (DESIGN, "Levels of authentication"); the default ladder is
``pwd`` < ``mfa`` < ``phr``:

- ``pwd``: a password, or an upstream login;
- ``mfa``: a password plus a second factor (a TOTP code or a passkey);
- ``phr``: a phishing-resistant passkey with user verification (alone enough).

An operator may configure a shorter ladder (``OIDC_ACR_LEVELS="pwd mfa"``); the names keep
their meaning and their order.
"""

from __future__ import annotations

from dataclasses import dataclass

KNOWN_LEVELS = ("pwd", "mfa", "phr")

# RFC 8176 §2 Authentication Method Reference values used here.
AMR_PASSWORD = "pwd"
AMR_OTP = "otp"
AMR_HARDWARE_KEY = "hwk"
AMR_SOFTWARE_KEY = "swk"
AMR_USER_PRESENCE_VERIFIED = "user"
AMR_MULTIPLE_FACTORS = "mfa"
AMR_FEDERATED = "fed"
SECOND_FACTORS = frozenset({AMR_OTP, AMR_HARDWARE_KEY, AMR_SOFTWARE_KEY})
KEYS = frozenset({AMR_HARDWARE_KEY, AMR_SOFTWARE_KEY})


class LadderError(ValueError):
    """A configured ladder that is not an ordered selection of the known levels."""


@dataclass(frozen=True)
class Ladder:
    levels: tuple[str, ...] = KNOWN_LEVELS

    @classmethod
    def parse(cls, text: str) -> Ladder:
        """``"pwd mfa phr"`` -> Ladder. Names must be known, start with ``pwd`` and keep the
        known order (a level's meaning is fixed; an operator may only leave levels out)."""
        names = tuple(text.split())
        if not names or names[0] != "pwd":
            raise LadderError("the ladder must start with 'pwd'")
        unknown = [n for n in names if n not in KNOWN_LEVELS]
        if unknown:
            raise LadderError(f"unknown level(s) {', '.join(unknown)}; known: {' '.join(KNOWN_LEVELS)}")
        if list(names) != sorted(set(names), key=KNOWN_LEVELS.index):
            raise LadderError("levels must be distinct and in the order pwd < mfa < phr")
        return cls(names)

    def rank(self, level: str | None) -> int:
        """Position on the ladder; -1 for no or an unknown level."""
        return self.levels.index(level) if level in self.levels else -1

    def satisfies(self, have: str | None, need: str | None) -> bool:
        return need is None or self.rank(have) >= self.rank(need) >= 0

    def level_of(self, amr: list[str] | frozenset[str]) -> str | None:
        """The highest level on this ladder that the methods used reach."""
        reached = [level for level in self.levels if _reaches(frozenset(amr), level)]
        return reached[-1] if reached else None

    def lowest_satisfying(self, values: list[str]) -> str | None:
        """Of requested values, the lowest known one (a request for several accepts any)."""
        known = [v for v in values if v in self.levels]
        return min(known, key=self.rank) if known else None


def _reaches(amr: frozenset[str], level: str) -> bool:
    if level == "pwd":
        return bool(amr & {AMR_PASSWORD, AMR_FEDERATED} or amr & KEYS)
    if level == "mfa":
        first = bool(amr & {AMR_PASSWORD, AMR_FEDERATED})
        # An upstream the operator trusts for MFA (``trust_mfa``) that said it used several
        # factors: the session holds ``fed`` with ``mfa`` and no factor of ours.
        trusted_upstream_mfa = AMR_FEDERATED in amr and AMR_MULTIPLE_FACTORS in amr
        return (first and bool(amr & SECOND_FACTORS)) or trusted_upstream_mfa or _reaches(amr, "phr")
    if level == "phr":
        # A passkey with user verification is two factors in one (possession + inherence or
        # knowledge) and resists phishing: it alone reaches phr.
        return bool(amr & KEYS) and AMR_USER_PRESENCE_VERIFIED in amr
    return False


def amr_with_mfa(amr: list[str]) -> list[str]:
    """RFC 8176 §2 ``mfa``: "Multiple-factor authentication" — added when two distinct
    factors were used."""
    methods = list(dict.fromkeys(m for m in amr if m != AMR_MULTIPLE_FACTORS))
    factors = {AMR_PASSWORD in methods or AMR_FEDERATED in methods, bool(set(methods) & SECOND_FACTORS)}
    if factors == {True} and len(methods) > 1:
        methods.append(AMR_MULTIPLE_FACTORS)
    return methods


@dataclass(frozen=True)
class Requirement:
    """The level a request asks for (``level``), the part of it that is binding (``floor``:
    the essential ``acr`` or the client's minimum; None when only ``acr_values`` asked), and
    why (``"acr_values"``, ``"essential_acr"``, ``"client_min_acr"``)."""

    level: str
    floor: str | None
    reason: str
    floor_reason: str | None = None  # why the floor binds, when ``level`` is a voluntary one above it

    @property
    def essential(self) -> bool:
        return self.floor == self.level


def requirement(ladder: Ladder, *, acr_values: str | None, essential_acr: list[str] | None,
                client_min_acr: str | None) -> Requirement | None:
    """What the request asks for. An essential ``acr`` from the claims parameter and the
    client's minimum are binding; ``acr_values`` is voluntary (OIDC Core §3.1.2.1: "The acr
    Claim is requested as a Voluntary Claim by this parameter") and counts when it asks for
    more than the binding part."""
    if client_min_acr and client_min_acr not in ladder.levels:
        # Fail closed: a minimum the configured ladder does not have can never be met.
        return Requirement(client_min_acr, client_min_acr, "client_min_acr")
    binding = []
    if essential_acr:
        level = ladder.lowest_satisfying(essential_acr)
        if level is None:
            # §5.5.1.1: an essential acr none of whose values this ladder has cannot be met.
            return Requirement(essential_acr[0], essential_acr[0], "essential_acr")
        binding.append((level, "essential_acr"))
    if client_min_acr:
        binding.append((client_min_acr, "client_min_acr"))
    floor, reason = max(binding, key=lambda b: ladder.rank(b[0])) if binding else (None, None)
    voluntary = ladder.lowest_satisfying((acr_values or "").split())
    if voluntary is not None and ladder.rank(voluntary) > ladder.rank(floor):
        return Requirement(voluntary, floor, "acr_values", floor_reason=reason)
    return Requirement(floor, floor, reason) if floor else None


# OIDC_ENROLLED_FACTORS: "always" asks an enrolled second factor at every sign-in; "when-asked"
# only when the application's request or minimum needs the level it gives.
ALWAYS = "always"
WHEN_ASKED = "when-asked"
ENROLLED_FACTORS_MODES = (ALWAYS, WHEN_ASKED)


def enrolled_level(ladder: Ladder, methods: list[str] | frozenset[str], mode: str) -> str | None:
    """The level every sign-in of an account with these factors must reach under ``mode``: in
    ``always``, what a first factor plus the account's second factors reach (``mfa`` for an
    authenticator app or a passkey; a verified passkey alone reaches it too, OIDC Core §2
    ``acr``); None when the account has no second factor, in ``when-asked``, or when the ladder
    has no level above ``pwd`` for it."""
    if mode != ALWAYS:
        return None
    seconds = [m for m in methods if m in SECOND_FACTORS]
    if not seconds:
        return None
    level = ladder.level_of([AMR_PASSWORD, *seconds])
    return level if ladder.rank(level) > ladder.rank(AMR_PASSWORD) else None


def strongest_level(ladder: Ladder, methods: list[str] | frozenset[str]) -> str:
    """The highest level the account's enrolled factors reach (at least the ladder's lowest): what
    a change to the account's own credentials asks for."""
    return ladder.level_of(list(methods)) or ladder.levels[0]


def with_floor(ladder: Ladder, need: Requirement | None, level: str | None, reason: str) -> Requirement | None:
    """``need`` with a binding ``level`` added (the enrolled factors', the operator's minimum):
    the floor is the stricter of the two; a voluntary level above both stays asked for."""
    if level is None:
        return need
    if need is None:
        return Requirement(level, level, reason)
    if need.floor is not None and (need.floor not in ladder.levels or ladder.rank(need.floor) >= ladder.rank(level)):
        return need  # already as strict (a floor the ladder lacks is unmeetable: kept, fail closed)
    if ladder.rank(need.level) > ladder.rank(level):
        return Requirement(need.level, level, need.reason, floor_reason=reason)
    return Requirement(level, level, reason)


# How recent an authentication must be to remove a factor or regenerate recovery codes (the
# account page reads OIDC_ACCOUNT_REAUTH_SECONDS; this is its default).
REAUTHENTICATION_WINDOW = 10 * 60


def fresh_enough(ladder: Ladder, *, proven: dict[str, int], level: str, now: int,
                 window: int = REAUTHENTICATION_WINDOW) -> bool:
    """Issue 3: "Removing a factor requires a fresh authentication at the level that factor
    gives": the methods proven within the last ``window`` seconds (``proven``: method -> when)
    reach ``level`` by themselves; an older proof does not count, whatever the session reached."""
    recent = [method for method, when in proven.items() if isinstance(when, int) and 0 <= now - when <= window]
    # amr_with_mfa derives "mfa" from local factors; a "mfa" proven as such (a trusted upstream
    # at login) counts as well.
    return ladder.satisfies(ladder.level_of(list(dict.fromkeys([*amr_with_mfa(recent), *recent]))), level)
