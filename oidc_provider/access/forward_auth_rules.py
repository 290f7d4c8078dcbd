"""Forward-auth rules, pure: the ``forward_auth`` setting (a ``[forward_auth."app.example.com"]``
table per host in the TOML file, or the same as JSON in ``OIDC_FORWARD_AUTH``), the host lookup
the endpoint does with ``X-Forwarded-Host``, the resource a forwarded URI names, and the
return-URL allow-list the login page applies to ``next`` (RFC 9700 §4.11: no open redirect).

``parse`` names every problem at once; nothing here imports Flask or the database.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# A lowercase host name (or IPv4 address), optionally with a port: the keys of the table.
HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::(?P<port>[0-9]{{1,5}}))?$")
KEYS = {"audience", "action"}
MAX_VALUE = 200
MAX_URL = 4096
DEFAULT_PORTS = {"https": "443", "http": "80"}


@dataclass(frozen=True)
class Rule:
    """What a request to ``host`` needs: a statement allowing ``action`` at ``audience``."""

    host: str
    audience: str
    action: str


def text_of(table: dict) -> str:
    """The setting's text for a TOML table (``[forward_auth."app.example.com"] ...``)."""
    return json.dumps(table, sort_keys=True)


def parse(text: str) -> tuple[dict[str, Rule], list[str]]:
    """(rules by host, errors)."""
    if not text.strip():
        return {}, []
    try:
        table = json.loads(text)
    except ValueError:
        return {}, ['OIDC_FORWARD_AUTH: not valid JSON (or use a [forward_auth."HOST"] table in the config file)']
    if not isinstance(table, dict):
        return {}, ["OIDC_FORWARD_AUTH: must map host names to tables"]
    found, errors = {}, []
    for host, raw in table.items():
        where = f"OIDC_FORWARD_AUTH: host {host!r}"
        match = HOST.match(host)
        if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
            errors.append(f"{where}: a key is a lowercase host name, optionally with :port")
            continue
        if not isinstance(raw, dict):
            errors.append(f"{where}: must be a table with audience and action")
            continue
        unknown = sorted(set(raw) - KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        problems = [f"{where}: {key} {problem}" for key in sorted(KEYS) if (problem := _value_problem(raw.get(key)))]
        errors.extend(problems)
        if not problems:
            found[host] = Rule(host=host, audience=raw["audience"], action=raw["action"])
    return ({} if errors else found), errors


def _value_problem(value) -> str | None:
    if value is None:
        return "is required"
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE:
        return f"must be a string of 1-{MAX_VALUE} characters"
    if any(c.isspace() or not c.isprintable() for c in value) or "*" in value:
        return "must not contain spaces, control characters or '*'"
    return None


def hostname(key: str) -> str:
    """A table key without its port."""
    return key.rsplit(":", 1)[0] if ":" in key else key


def rule_for(rules: dict[str, Rule], host: str | None, scheme: str) -> Rule | None:
    """The rule for a request's host (as ``X-Forwarded-Host`` or a URL's authority gives it):
    an exact match, ignoring case and the scheme's default port. Anything else has no rule."""
    if not isinstance(host, str) or not host or len(host) > 300:
        return None
    host = host.lower()
    rule = rules.get(host)
    if rule is None and host.endswith(":" + DEFAULT_PORTS.get(scheme, "-")):
        rule = rules.get(host.rsplit(":", 1)[0])
    return rule


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def resource_of(uri: str) -> str | None:
    """The resource a forwarded request-target names: its path, percent-decoded, without the
    query. None when the path is ambiguous, so that no app could read it as another path than
    the one checked: dot segments (RFC 3986 §5.2.4 would remove them), path parameters (``;``),
    an encoded ``/`` or ``\\``, a backslash, control characters, or bytes that are not UTF-8."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URL:
        return None
    if uri.lower().startswith(("http://", "https://")):
        try:
            uri = urlsplit(uri).path or "/"  # absolute-form (RFC 9112 §3.2.2)
        except ValueError:
            return None  # e.g. an unclosed IPv6 bracket
    if not uri.startswith("/"):
        return None
    path = uri.split("?", 1)[0].split("#", 1)[0]
    if re.search(r"%(2f|5c)", path, re.IGNORECASE) or "\\" in path:
        return None
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if any(not c.isprintable() for c in decoded):
        return None
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return None
    if ";" in decoded:
        # Path parameters: Tomcat, Jetty and Spring read "/public/..;/admin" as "/admin".
        return None
    return decoded


def return_url(value, rules: dict[str, Rule]) -> str | None:
    """Where the login page may send the browser afterwards (``next``), or None.

    A local path (one leading ``/``, never ``//``, which browsers read as another host), or an
    absolute URL on a host of the forward-auth table, https unless that host is loopback.
    RFC 9700 §4.11.1: an open redirector lets attackers use the provider's reputation to send
    people anywhere; so anything else is ignored."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return None
    if "\\" in value or any(c.isspace() or not c.isprintable() for c in value):
        return None  # browsers read "\" as "/" and drop tabs and newlines: "/\evil", "/\t/evil"
    if value.startswith("/"):
        return None if value.startswith("//") else value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return None  # an unclosed IPv6 bracket, a bad port
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return None
    return value if rule_for(rules, parts.netloc, parts.scheme) is not None else None
