"""Resource indicators (RFC 8707): which audience an access token is for, and the subject's
``resource_access`` slice there.

The audience is the ``resource`` the client named, else the client's own audience, else
OIDC_DEFAULT_AUDIENCE (the issuer when unset). A client may name only its default audience or
one of the resources registered for it; anything else is ``invalid_target`` (RFC 8707 §2),
and so is a value that is not an absolute URI without a fragment.

The slice is the one audience's part of the subject's roles (``access.roles.access_slice``),
read when the token is made: a relying party sees a revoked grant at its next token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error

from ..access import roles as role_service

# The audience is stored (access_token.audience) and compared with statements' audiences,
# both at most 200 characters.
MAX_RESOURCE_LENGTH = 200
# An audience an operator registers (a client's, a system account's, a personal token's): 1-200
# visible ASCII characters, no space or control. Also the admin API's pattern for it.
AUDIENCE_PATTERN = r"^[!-~]{1,200}$"
AUDIENCE = re.compile(AUDIENCE_PATTERN)
AUDIENCE_MISMATCH = "audience must be 1-200 printable characters without spaces (visible ASCII)"
# An absolute URI (RFC 3986 §4.3) as we take one: a scheme, then visible ASCII without "#" (no
# fragment); http and https name a host. The admin API's pattern for resources and redirect
# URIs (``resource_problem`` and ``admin.clients`` check the same, and a little more: the port).
# "\x24" is "$": the patterns keep "$" for the end of the text.
RESOURCE_MISMATCH = "resource must be an absolute URI of visible ASCII characters without a fragment"
ABSOLUTE_URI_PATTERN = r"^(?![hH][tT][tT][pP][sS]?:(?!//[^/?#:@]))[A-Za-z][A-Za-z0-9+.-]*:[!\"\x24-~]*$"
MAX_RESOURCES_PER_REQUEST = 10
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed"."""

    error = "invalid_target"
    status_code = 400


@dataclass(frozen=True)
class Target:
    """What an access token is for: its ``aud`` and the subject's slice there (None: the
    subject's roles say nothing about that audience)."""

    audience: str
    access: dict | None


def resource_problem(value) -> str | None:
    """Why ``value`` cannot be a resource indicator, or None when it can. RFC 8707 §2: "Its
    value MUST be an absolute URI, as specified by Section 4.3 of [RFC3986]. The URI MUST NOT
    include a fragment component." Also used to check resources registered for a client."""
    if not isinstance(value, str) or not value:
        return "a resource must be an absolute URI"
    if len(value) > MAX_RESOURCE_LENGTH:
        return f"a resource is at most {MAX_RESOURCE_LENGTH} characters"
    # A URI is ASCII without spaces (RFC 3986 §2); refusing the rest also keeps the value out
    # of urlsplit's silent stripping of tabs and newlines.
    if not value.isascii() or any(c.isspace() or not c.isprintable() for c in value):
        return "a resource must be an absolute URI without spaces or control characters"
    if "#" in value:
        return "a resource must not include a fragment"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "a resource must be an absolute URI"
    if not _SCHEME.match(parts.scheme or "") or (parts.scheme.lower() in ("http", "https") and not parts.hostname):
        return "a resource must be an absolute URI"
    return None


def default_audience(client, settings) -> str:
    """``aud`` when the client names no resource: its own audience, else the provider's."""
    return client.audience or settings.audience


def served_by(client, settings) -> set[str]:
    """The audiences ``client`` (a relying party or a system account's client) is registered
    for, and so may learn about tokens for by introspection (RFC 7662 §2.1, §4): its own
    ``audience`` and its RFC 8707 ``resources``. Only what an operator registered counts (not
    the OIDC_DEFAULT_AUDIENCE fallback every client shares), and never the issuer: a token for
    the provider itself (userinfo, the admin API) is nobody else's business."""
    return {a for a in (client.audience, *(client.resources or ())) if a and a != settings.issuer}


def allowed(client, settings) -> list[str]:
    return [default_audience(client, settings), *(client.resources or [])]


def _checked(values: list[str], client, settings) -> list[str]:
    for value in values:
        problem = resource_problem(value)
        if problem:
            raise InvalidTargetError(problem[0].upper() + problem[1:] + ".")
    permitted = allowed(client, settings)
    if any(value not in permitted for value in values):
        raise InvalidTargetError("The client may not ask for this resource.")
    return values


def for_authorization(values: list[str], client, settings) -> list[str] | None:
    """RFC 8707 §2.1: the resources named in an authorization request (the parameter may be
    repeated), all allowed for the client; stored on the code. None when none was named."""
    if not values:
        return None
    if len(values) > MAX_RESOURCES_PER_REQUEST:
        raise InvalidTargetError(f"At most {MAX_RESOURCES_PER_REQUEST} resources per request.")
    return list(dict.fromkeys(_checked(values, client, settings)))


def for_token(values: list[str], client, settings, granted: list[str] | None) -> str:
    """The audience of the access token a token request asks for (every grant).

    RFC 8707 §2.2: with an authorization code or a refresh token, a ``resource`` must be one
    the authorization named, when it named any. One token is for one audience: a request
    naming several is refused rather than given a token with several. With no ``resource``,
    the authorization's single resource, else the client's default audience.
    """
    if len(values) > 1:
        raise InvalidTargetError("one resource per token request")
    if values:
        audience = _checked(values, client, settings)[0]
        if granted and audience not in granted:
            raise InvalidTargetError("The resource was not named in the authorization request.")
        return audience
    if granted and len(granted) == 1:
        # Still allowed for the client: an operator may have taken it away since.
        return _checked(list(granted), client, settings)[0]
    return default_audience(client, settings)


def target_for(client, account, audience: str, settings) -> Target:
    """The token's target, with ``account``'s slice of ``resource_access`` for ``audience``.
    A client registered with ``require_grant`` gets no token for a subject without one."""
    access = slice_now(account, audience, settings)
    if access is None and client.require_grant:
        raise InvalidTargetError("the subject holds no grant on this resource")
    return Target(audience=audience, access=access)


def slice_now(account, audience: str, settings, *, client_id: str | None = None) -> dict | None:
    """``account``'s slice for ``audience`` as its roles are now (userinfo, introspection); with
    no account, that of the system account of the client ``client_id`` (its own token).

    Statements at the issuer's own audience (what a person may do *at the provider*: the admin
    API) are never published: they are read live by the provider, and an app that received a
    token for the issuer's audience would otherwise learn its user's administrative powers."""
    if not audience or audience == settings.issuer:
        return None
    if account is not None:
        held = role_service.held_now(account_id=account.id)
    elif client_id is not None:
        held = role_service.held_now(client_id=client_id)
    else:
        return None
    return role_service.access_slice(held, audience)
