"""Account attributes: which OIDC scope and which level of authentication each attribute needs
to check its presence (HEAD), read it (GET) and update it (PUT, DELETE), how fresh the sign-in
must be for an update, and what a valid value is. Pure: no Flask, SQLAlchemy or Authlib.

A decision is ``Allow``, ``UnknownAttribute`` (404), ``InsufficientScope`` (RFC 6750 §3.1,
403) or ``InsufficientUserAuthentication`` (RFC 9470 §3, 401 naming ``acr_values`` and, where
freshness matters, ``max_age``). The operator may override the levels per attribute with
``OIDC_ATTRIBUTE_LEVELS`` (``parse_overrides``), checked at start against the acr ladder.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from .levels import KNOWN_LEVELS, Ladder, LadderError


class Action(StrEnum):
    PRESENCE = "presence"  # HEAD
    READ = "read"  # GET
    UPDATE = "update"  # PUT and DELETE


@dataclass(frozen=True)
class Rule:
    """The scope an attribute belongs to, the minimum level per action, and ``max_age``: how
    many seconds after ``auth_time`` an update may still be made (None: no limit)."""

    scope: str
    presence: str
    read: str
    update: str
    max_age: int | None = None

    def level(self, action: Action) -> str:
        return getattr(self, action.value)


# ---- values ----

def _no_controls(multiline: bool) -> str:
    """Any text without control characters; OIDC Core §5.1.1: "formatted" and "street_address"
    MAY contain newlines ("\\r\\n" or "\\n")."""
    controls = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f" if multiline else r"\u0000-\u001f\u007f"
    return f"[^{controls}]*"


PHONE = r"\+[1-9][0-9]{3,18}"  # E.164-ish: "+", a country code not starting with 0, at most 20 characters
LOCALE = r"[A-Za-z]{2,3}(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|[0-9]{3}))?(-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
ZONE = r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*"
# OIDC Core §5.1.1 Address Claim members, each a string, with the most characters kept.
ADDRESS_MEMBERS = {"formatted": 500, "street_address": 300, "locality": 100, "region": 100,
                   "postal_code": 20, "country": 100}
MULTILINE_MEMBERS = {"formatted", "street_address"}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_phone(value) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(PHONE, value):
        return "phone_number must be '+' and 4 to 19 digits (E.164), for example +441632960000."
    return None


def _check_address(value) -> str | None:
    if not isinstance(value, dict) or not value:
        return "address must be a non-empty JSON object (OIDC Core §5.1.1)."
    unknown = sorted(set(value) - set(ADDRESS_MEMBERS))
    if unknown:
        return f"address has unknown members: {', '.join(unknown)[:200]}."
    for member, text in value.items():
        if not isinstance(text, str) or not 1 <= len(text) <= ADDRESS_MEMBERS[member]:
            return f"address.{member} must be a string of 1 to {ADDRESS_MEMBERS[member]} characters."
        if not re.fullmatch(_no_controls(member in MULTILINE_MEMBERS), text):
            return f"address.{member} must not contain control characters."
    return None


def _check_locale(value) -> str | None:
    if not isinstance(value, str) or len(value) > 35 or not re.fullmatch(LOCALE, value):
        return "locale must be a BCP 47 language tag such as en-US or fr-CA."
    return None


def _check_zoneinfo(value) -> str | None:
    if not isinstance(value, str) or len(value) > 64 or not re.fullmatch(ZONE, value) or value not in _zones():
        return "zoneinfo must be a time zone name from the IANA database, such as Europe/Paris."
    return None


def _address_schema() -> dict:
    return {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {
            member: {"type": "string", "minLength": 1, "maxLength": limit,
                     "pattern": f"^{_no_controls(member in MULTILINE_MEMBERS)}$"}
            for member, limit in ADDRESS_MEMBERS.items()
        },
    }


@dataclass(frozen=True)
class Attribute:
    """One attribute: its default rule, its value check, and the JSON Schema (2020-12) of its
    value as the OpenAPI description publishes it (the check is at least as strict)."""

    name: str
    rule: Rule
    check: Callable[[object], str | None]
    schema: dict
    description: str


ATTRIBUTES: dict[str, Attribute] = {a.name: a for a in (
    Attribute("phone_number", Rule("phone", presence="pwd", read="pwd", update="mfa"), _check_phone,
              {"type": "string", "maxLength": 20, "pattern": f"^{PHONE}$"},
              "OIDC Core §5.1 phone_number, in E.164 form."),
    Attribute("address", Rule("address", presence="pwd", read="mfa", update="mfa", max_age=900), _check_address,
              _address_schema(), "OIDC Core §5.1.1 address: an object of string members."),
    Attribute("locale", Rule("profile", presence="pwd", read="pwd", update="pwd"), _check_locale,
              {"type": "string", "maxLength": 35, "pattern": f"^{LOCALE}$"},
              "OIDC Core §5.1 locale: a BCP 47 language tag (a preference)."),
    Attribute("zoneinfo", Rule("profile", presence="pwd", read="pwd", update="pwd"), _check_zoneinfo,
              {"type": "string", "maxLength": 64, "pattern": f"^{ZONE}$"},
              "OIDC Core §5.1 zoneinfo: an IANA time zone name (a preference)."),
)}


def check_value(name: str, value) -> str | None:
    """None when ``value`` is valid for attribute ``name``, else what is wrong with it."""
    return ATTRIBUTES[name].check(value)


# ---- decisions ----

@dataclass(frozen=True)
class Allow:
    pass


@dataclass(frozen=True)
class UnknownAttribute:
    name: str


@dataclass(frozen=True)
class InsufficientScope:
    """RFC 6750 §3.1 ``insufficient_scope``: the token lacks ``scope``."""

    scope: str


@dataclass(frozen=True)
class InsufficientUserAuthentication:
    """RFC 9470 §3: the authentication behind the token is too weak (``reason="acr"``) or too
    old (``reason="max_age"``); a new token at ``acr_values``, within ``max_age``, would do."""

    acr_values: str
    max_age: int | None
    reason: str
    description: str


Decision = Allow | UnknownAttribute | InsufficientScope | InsufficientUserAuthentication

VERBS = {Action.PRESENCE: "Checking", Action.READ: "Reading", Action.UPDATE: "Changing"}


@dataclass(frozen=True)
class AttributePolicy:
    ladder: Ladder
    rules: Mapping[str, Rule]

    @classmethod
    def build(cls, ladder: Ladder, overrides: str = "") -> AttributePolicy:
        """The defaults with the operator's overrides; ``AttributeLevelsError`` names every
        problem."""
        rules, errors = effective_rules(ladder, overrides)
        if errors:
            raise AttributeLevelsError(errors)
        return cls(ladder, rules)

    def decide(self, name: str, action: Action, *, scopes: set[str] | frozenset[str], acr: str | None,
               auth_time: int | None, now: int) -> Decision:
        rule = self.rules.get(name)
        if rule is None:
            return UnknownAttribute(name)
        if rule.scope not in scopes:
            return InsufficientScope(rule.scope)
        need = rule.level(action)
        max_age = rule.max_age if action is Action.UPDATE else None
        verb = VERBS[action]
        if not self.ladder.satisfies(acr, need):
            # RFC 9470 §3: acr_values "listing the authentication context class reference
            # values"; max_age too when the update also needs a recent sign-in, so that one
            # new authorization meets both.
            return InsufficientUserAuthentication(
                need, max_age, "acr", f"{verb} {name} needs a sign-in at level {need} or higher.")
        if max_age is not None and (auth_time is None or now - auth_time > max_age):
            # RFC 9470 §3 max_age: "the allowable elapsed time in seconds since the last active
            # authentication event associated with the access token".
            return InsufficientUserAuthentication(
                need, max_age, "max_age", f"{verb} {name} needs a sign-in within the last {max_age} seconds.")
        return Allow()


# ---- configuration: OIDC_ATTRIBUTE_LEVELS ----

SETTING = "OIDC_ATTRIBUTE_LEVELS"
KEYS = ("presence", "read", "update", "max_age")


class AttributeLevelsError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def overrides_text(table: Mapping) -> str:
    """A TOML table (``phone_number = "read:mfa"`` or ``phone_number = {read = "mfa"}``) in the
    environment variable's syntax; anything malformed is left for ``parse_overrides`` to name."""
    entries = []
    for name, value in table.items():
        if isinstance(value, Mapping):
            value = ",".join(f"{key}:{item}" for key, item in value.items())
        entries.append(f"{name}={value}")
    return "; ".join(entries)


def parse_overrides(text: str) -> tuple[dict[str, dict[str, str | int | None]], list[str]]:
    """``name=key:value,key:value; name=...`` -> ({name: {key: value}}, errors). Keys are
    ``presence``, ``read``, ``update`` (a level) and ``max_age`` (seconds, or ``none``)."""
    out: dict[str, dict[str, str | int | None]] = {}
    errors: list[str] = []
    for entry in (e.strip() for e in (text or "").split(";")):
        if not entry:
            continue
        name, equals, body = (part.strip() for part in entry.partition("="))
        if not equals or not name or not body:
            errors.append(f"{entry[:60]!r} is not of the form name=key:value,...")
            continue
        if name not in ATTRIBUTES:
            errors.append(f"unknown attribute {name[:60]!r} (known: {', '.join(ATTRIBUTES)})")
            continue
        if name in out:
            errors.append(f"{name} is given twice")
            continue
        out[name] = {}
        for pair in (p.strip() for p in body.split(",")):
            key, colon, value = (part.strip() for part in pair.partition(":"))
            if key not in KEYS or not colon:
                errors.append(f"{name}: {pair[:60]!r} is not key:value with key one of {', '.join(KEYS)}")
            elif key in out[name]:
                errors.append(f"{name}: {key} is given twice")
            elif key == "max_age":
                if value.lower() == "none":
                    out[name][key] = None
                elif value.isascii() and value.isdigit() and int(value) > 0:
                    out[name][key] = int(value)
                else:
                    errors.append(f"{name}: max_age must be a positive number of seconds or 'none', not {value[:20]!r}")
            else:
                out[name][key] = value
    return out, errors


def _at_least(ladder: Ladder, level: str) -> str | None:
    """The lowest level on ``ladder`` at least as strong as ``level`` (never weaker: a default of
    ``mfa`` on a ``pwd phr`` ladder becomes ``phr``)."""
    return next((lv for lv in ladder.levels if KNOWN_LEVELS.index(lv) >= KNOWN_LEVELS.index(level)), None)


def effective_rules(ladder: Ladder, text: str) -> tuple[dict[str, Rule], list[str]]:
    overrides, errors = parse_overrides(text)
    rules = {}
    on_ladder = " ".join(ladder.levels)
    for name, attribute in ATTRIBUTES.items():
        given = overrides.get(name, {})
        levels = {}
        for action in Action:
            if action.value in given:
                level = given[action.value]
                if level not in ladder.levels:
                    errors.append(f"{name} {action.value}: {str(level)[:20]!r} is not a level of the ladder "
                                  f"({on_ladder})")
                    continue
            else:
                level = _at_least(ladder, attribute.rule.level(action))
                if level is None:
                    errors.append(f"{name} {action.value}: the default {attribute.rule.level(action)} is above "
                                  f"the ladder ({on_ladder}); set {name}={action.value}:LEVEL")
                    continue
            levels[action.value] = level
        if len(levels) < len(Action):
            continue
        rank = ladder.rank
        for action in (Action.READ, Action.UPDATE):
            # Reading or changing a value tells whether it is there: never easier than presence.
            if rank(levels[action.value]) < rank(levels["presence"]):
                errors.append(f"{name}: {action.value} ({levels[action.value]}) must be at least presence "
                              f"({levels['presence']})")
        max_age = given["max_age"] if "max_age" in given else attribute.rule.max_age
        rules[name] = Rule(attribute.rule.scope, max_age=max_age, **levels)
    return rules, errors


def configuration_errors(acr_levels: str, text: str) -> list[str]:
    """Every problem with ``OIDC_ATTRIBUTE_LEVELS`` against the configured ladder (a broken
    ladder is reported on its own; the attributes are then checked against the default)."""
    try:
        ladder = Ladder.parse(acr_levels)
    except LadderError:
        ladder = Ladder()
    return [f"{SETTING}: {error}" for error in effective_rules(ladder, text)[1]]
