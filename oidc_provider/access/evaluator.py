"""Statements, and the one rule that reads them: ``allows(statements, action, resource)``.

This module is the reference for relying parties (docs/authorization.md): it imports nothing
from ``oidc_provider`` and nothing outside the standard library, so an app may copy it as is and
evaluate the ``resource_access`` slice of a token exactly as the provider does.

A statement says "these actions on these resources, at this audience":
``{"audience": "https://grafana.example.com", "actions": ["dashboards:read"],
"resources": ["team:*"]}``. A pattern is either a literal, ``*`` (anything), or a prefix
followed by one trailing ``*`` (``priority:*`` matches ``priority:high``). There are only allow
statements: access is denied unless a statement allows it (deny by default), so removing a
statement can never allow more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Decision", "Statement", "StatementError", "allows", "matches"]

MAX_LENGTH = 200
MAX_ITEMS = 50
SLICE = "(slice)"  # the audience of a statement read from a token's slice, which names none


class StatementError(ValueError):
    """A statement that is not well formed; the message says which part and why."""


def matches(pattern: str, value: str) -> bool:
    """``*`` matches anything; ``prefix*`` matches values starting with prefix; anything else
    matches itself only. Comparison is exact (case-sensitive)."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


@dataclass(frozen=True)
class Statement:
    audience: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def __post_init__(self):
        _check_text("audience", self.audience, wildcard=False)
        for name in ("actions", "resources"):
            values = getattr(self, name)
            if isinstance(values, str) or not isinstance(values, tuple | list) or not values:
                raise StatementError(f"{name} must be a non-empty list of patterns")
            if len(values) > MAX_ITEMS:
                raise StatementError(f"{name} may hold at most {MAX_ITEMS} patterns")
            for value in values:
                _check_text(name, value, wildcard=True)
            object.__setattr__(self, name, tuple(values))

    @classmethod
    def from_dict(cls, data: Mapping, *, audience: str | None = None) -> Statement:
        """Read a statement as JSON carries it. ``audience`` fills in a missing ``audience``
        (a token's slice leaves it out: the slice is already one audience's)."""
        if not isinstance(data, Mapping):
            raise StatementError("a statement must be an object with audience, actions and resources")
        unknown = set(data) - {"audience", "actions", "resources"}
        if unknown:
            raise StatementError(f"unknown member(s) {', '.join(sorted(map(str, unknown)))}")
        return cls(audience=data.get("audience", audience), actions=_as_tuple(data.get("actions"), "actions"),
                   resources=_as_tuple(data.get("resources"), "resources"))

    def to_dict(self, *, with_audience: bool = True) -> dict:
        out = {"actions": list(self.actions), "resources": list(self.resources)}
        return {"audience": self.audience, **out} if with_audience else out

    def allows(self, action: str, resource: str) -> bool:
        return any(matches(p, action) for p in self.actions) and any(matches(p, resource) for p in self.resources)


@dataclass(frozen=True)
class Decision:
    """The answer, with its reason: the statement that allowed, or why nothing did."""

    allowed: bool
    reason: str
    statement: Statement | None = None

    def __bool__(self) -> bool:
        return self.allowed


def allows(statements: Iterable[Statement | Mapping], action: str, resource: str, *,
           audience: str | None = None) -> Decision:
    """Whether any statement allows ``action`` on ``resource``. Deny by default.

    ``statements`` may be ``Statement`` values or the plain objects of a token's
    ``resource_access[audience].statements``. With ``audience``, statements for another
    audience are ignored. A malformed statement allows nothing (it never raises on one), and
    an action or resource that is not a non-empty string is denied.
    """
    if not isinstance(action, str) or not action or not isinstance(resource, str) or not resource:
        return Decision(False, "the action and the resource must be non-empty strings")
    for item in statements or ():
        statement = _read(item, audience)
        if statement is not None and statement.allows(action, resource):
            return Decision(True, "allowed by a statement", statement)
    return Decision(False, f"no statement allows {action!r} on {resource!r}")


def _read(item, audience: str | None) -> Statement | None:
    """The statement if it is well formed and for ``audience`` (any, when None)."""
    if isinstance(item, Statement):
        return item if audience is None or item.audience == audience else None
    if not isinstance(item, Mapping):
        return None
    named = item.get("audience")
    if audience is not None and named is not None and named != audience:
        return None
    try:
        # A slice's statements leave the audience out: they are that audience's already.
        return Statement.from_dict(item, audience=named or audience or SLICE)
    except StatementError:
        return None


def _as_tuple(value, name: str) -> tuple:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise StatementError(f"{name} must be a non-empty list of patterns")
    return tuple(value)


def _check_text(name: str, value, *, wildcard: bool) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        raise StatementError(f"{name}: each value must be a string of 1-{MAX_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise StatementError(f"{name}: {value!r} must not contain spaces or control characters")
    star = value.find("*")
    if star != -1 and (not wildcard or star != len(value) - 1):
        where = "a trailing '*' only" if wildcard else "no '*'"
        raise StatementError(f"{name}: {value!r} may have {where}")
