"""The operation registry. An ``Operation`` names its HTTP method and path under
``/api/admin``, its parameters (validated the same way for every caller), the permission and
resource its caller needs (``access.evaluator`` decides, at the issuer's audience), and an
optional delegation rule (a user holding the role named like a system account may manage that
account's credential). ``run`` executes it; the caller commits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..problems import Problem


class Permission(StrEnum):
    """``scope:resource:action`` (STYLE rule 8): the actions of admin role statements."""

    ACCOUNTS_READ = "admin:accounts:read"
    ACCOUNTS_WRITE = "admin:accounts:write"
    CLIENTS_READ = "admin:clients:read"
    CLIENTS_WRITE = "admin:clients:write"
    SERVICES_READ = "admin:services:read"
    SERVICES_WRITE = "admin:services:write"
    SERVICE_CREDENTIALS = "admin:services:credentials"
    ROLES_READ = "admin:roles:read"
    ROLES_WRITE = "admin:roles:write"
    GRANTS_WRITE = "admin:grants:write"
    TOKENS_READ = "admin:tokens:read"
    TOKENS_WRITE = "admin:tokens:write"
    AUDIT_READ = "admin:audit:read"


TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}
# JSON can carry an unpaired surrogate ("\ud800"): RFC 8259 §8.2, "the behavior of software that
# receives JSON texts containing such values is unpredictable". No database or password hash
# takes it as UTF-8, so it is refused here, like NUL, rather than failing deep inside.
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


@functools.cache
def _compiled(pattern: str) -> re.Pattern:
    # JSON Schema's ``pattern`` is searched, not anchored (our patterns anchor themselves); its
    # ``$`` is the end of the text, which Python spells ``\Z``.
    return re.compile(pattern.replace("$", r"\Z"))


def pattern_matches(pattern: str, value: str) -> bool:
    """``value`` matches ``pattern`` as JSON Schema reads it (ECMA-262: searched, ``$`` = end)."""
    return _compiled(pattern).search(value) is not None


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"  # string, integer, boolean, array (of strings), object, statements
    required: bool = False
    where: str = "body"  # path, query or body
    help: str = ""
    max_length: int = 200
    enum: tuple[str, ...] = ()
    secret: bool = False  # write-only: never echoed, never audited
    minimum: int | None = None
    maximum: int | None = None
    # A regular expression every string (or every item of an array) must match, shared with the
    # domain check it stands for and published as the OpenAPI ``pattern``, so the description
    # refuses what the server refuses. Written in the common subset of ECMA-262 (JSON Schema's
    # dialect) and Python's ``re``; ``$`` means the end of the text, never before a newline.
    pattern: str | None = None
    mismatch: str = ""  # the refusal when the pattern does not match: the domain check's words

    def matches(self, value: str) -> bool:
        return pattern_matches(self.pattern, value) if self.pattern else True

    def check(self, value) -> Any:
        """The value converted and checked, or Problem naming the parameter."""
        if self.type == "statements":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise Problem(f"{self.name} must be a list of objects")
            return value
        if self.type == "array":
            if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= self.max_length
                                                      and not _NOT_TEXT.search(v) for v in value) or len(value) > 100:
                raise Problem(f"{self.name} must be a list of at most 100 strings of 1-{self.max_length} characters")
            if bad := next((v for v in value if not self.matches(v)), None):
                raise Problem(f"{self.pattern_problem()} (not {bad[:200]!r})")
            return value
        expected = TYPES[self.type]
        if self.type == "integer" and isinstance(value, bool) or not isinstance(value, expected):
            raise Problem(f"{self.name} must be a {self.type}")
        if self.type == "string":
            if len(value) > self.max_length:
                raise Problem(f"{self.name} must be at most {self.max_length} characters")
            if _NOT_TEXT.search(value):
                raise Problem(f"{self.name} must be text without NUL or unpaired surrogates")
            if self.enum and value not in self.enum:
                raise Problem(f"{self.name} must be one of {', '.join(self.enum)}")
            if not self.matches(value):
                raise Problem(self.pattern_problem())
        if self.type == "integer" and (self.minimum is not None and value < self.minimum
                                       or self.maximum is not None and value > self.maximum):
            raise Problem(f"{self.name} must be between {self.minimum} and {self.maximum}")
        return value

    def pattern_problem(self) -> str:
        return self.mismatch or f"{self.name} must match {self.pattern}"

    def from_text(self, text: str) -> Any:
        """A query-string value."""
        if self.type == "integer":
            if not re.fullmatch(r"-?\d{1,12}", text):
                raise Problem(f"{self.name} must be an integer")
            return self.check(int(text))
        if self.type == "boolean":
            if text not in ("true", "false"):
                raise Problem(f"{self.name} must be true or false")
            return text == "true"
        return self.check(text)


@dataclass(frozen=True)
class Caller:
    """Who runs an operation: the operator on the server (``principal`` None) or an admin API
    caller. ``name`` goes into the audit trail as the actor."""

    name: str
    principal: Any = None


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    summary: str
    permission: Permission
    resource: str  # a format string over the parameters, e.g. "role:{name}"
    handler: Callable[..., Any]
    params: tuple[Param, ...] = ()
    delegate: Callable[[Any, dict], bool] | None = None
    status: int = 200
    delegation: str = ""  # the delegation rule in words, for the API description

    def parse(self, values: dict) -> dict:
        """Check every parameter: unknown ones and missing required ones are refused."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise Problem(f"unknown parameter(s): {', '.join(map(str, unknown))[:200]}")
        out = {}
        for param in self.params:
            if param.name in values and values[param.name] is not None:
                out[param.name] = param.check(values[param.name])
            elif param.required:
                raise Problem(f"{param.name} is required")
        return out

    def resource_for(self, params: dict) -> str:
        return self.resource.format(**{p.name: params.get(p.name, "*") for p in self.params})


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, method: str, path: str, *, summary: str, permission: Permission, resource: str,
              params: tuple[Param, ...] = (), delegate=None, delegation: str = "", status: int = 200):
    """Register the decorated function ``handler(caller, **params)`` as an operation."""
    def register(handler):
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} registered twice")
        OPERATIONS[name] = Operation(name=name, method=method, path=path, summary=summary,
                                     permission=permission, resource=resource, handler=handler,
                                     params=params, delegate=delegate, delegation=delegation, status=status)
        return handler
    return register


def run(name: str, caller: Caller, values: dict) -> Any:
    op = OPERATIONS[name]
    return op.handler(caller, **op.parse(values))


def iso(when) -> str | None:
    return when.isoformat() + "Z" if when else None
