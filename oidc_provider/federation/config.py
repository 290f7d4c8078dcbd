"""Connector configuration, pure: parsed from the ``connectors`` setting (a TOML table, or JSON
in ``OIDC_CONNECTORS``) with the client secret from the table or from
``OIDC_CONNECTOR_<NAME>_CLIENT_SECRET``. ``parse`` names every problem at once."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

KINDS = ("github", "google", "oidc")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
GOOGLE_ISSUER = "https://accounts.google.com"
DEFAULTS = {
    # kind: display name, scopes, email matching
    "github": ("GitHub", "read:user user:email", False),
    "google": ("Google", "openid email profile", True),
    "oidc": ("Single sign-on", "openid email profile", False),
}
KEYS = {"kind", "client_id", "client_secret", "display_name", "scopes", "issuer", "match_email", "signup",
        "trust_mfa", "github_url", "github_api_url", "trusted_audiences"}


@dataclass(frozen=True)
class ConnectorConfig:
    name: str  # also the `provider` of the identities it yields
    kind: str
    client_id: str
    client_secret: str = field(repr=False)
    display_name: str
    scopes: str
    issuer: str = ""  # google and oidc: where the discovery document is
    match_email: bool = False  # linking rule 2: a verified email may link to a local account
    signup: bool = False  # linking rule 3: an unknown identity may create an account
    trust_mfa: bool = False  # an upstream that says it did MFA reaches mfa here
    github_url: str = "https://github.com"  # GitHub Enterprise (or a test server)
    github_api_url: str = "https://api.github.com"
    # OIDC Core §3.1.3.7 step 3: audiences besides our client_id an upstream ID token may name
    # (its other clients that we trust); any other extra audience is refused.
    trusted_audiences: tuple[str, ...] = ()


def secret_variable(name: str) -> str:
    return "OIDC_CONNECTOR_" + name.upper().replace("-", "_") + "_CLIENT_SECRET"


def text_of(table: dict) -> str:
    """The setting's text for a TOML table (``[connectors.github] ...``)."""
    return json.dumps(table, sort_keys=True)


def parse(text: str, secrets: dict[str, str] | None = None) -> tuple[dict[str, ConnectorConfig], list[str]]:
    """(connectors by name, errors). ``secrets``: environment values by variable name."""
    if not text.strip():
        return {}, []
    try:
        table = json.loads(text)
    except ValueError:
        return {}, ["OIDC_CONNECTORS: not valid JSON (or use a [connectors.NAME] table in the config file)"]
    if not isinstance(table, dict):
        return {}, ["OIDC_CONNECTORS: must map connector names to tables"]
    found, errors = {}, []
    for name, raw in table.items():
        where = f"connector {name!r}"
        if not isinstance(name, str) or not NAME.match(name):
            errors.append(f"{where}: a name is 1 to 32 lowercase letters, digits or '-', starting with a letter")
            continue
        if not isinstance(raw, dict):
            errors.append(f"{where}: must be a table")
            continue
        unknown = sorted(set(raw) - KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        kind = raw.get("kind")
        if kind not in KINDS:
            errors.append(f"{where}: kind must be one of {', '.join(KINDS)}")
            continue
        display, scopes, match_email = DEFAULTS[kind]
        secret = (secrets or {}).get(secret_variable(name)) or raw.get("client_secret") or ""
        values = {
            "client_id": raw.get("client_id"), "client_secret": secret,
            "display_name": raw.get("display_name", display), "scopes": raw.get("scopes", scopes),
            "issuer": raw.get("issuer", GOOGLE_ISSUER if kind == "google" else ""),
            "github_url": raw.get("github_url", "https://github.com"),
            "github_api_url": raw.get("github_api_url", "https://api.github.com"),
        }
        for key, value in values.items():
            if not isinstance(value, str):
                errors.append(f"{where}: {key} must be a string")
        flags = {"match_email": raw.get("match_email", match_email), "signup": raw.get("signup", False),
                 "trust_mfa": raw.get("trust_mfa", False)}
        for key, value in flags.items():
            if not isinstance(value, bool):
                errors.append(f"{where}: {key} must be true or false")
        if any(not isinstance(v, str) for v in values.values()) or any(not isinstance(v, bool) for v in flags.values()):
            continue
        if not values["client_id"]:
            errors.append(f"{where}: client_id is required")
        if not values["client_secret"]:
            errors.append(f"{where}: a client secret is required (client_secret, or {secret_variable(name)})")
        if not values["display_name"].strip() or len(values["display_name"]) > 40:
            errors.append(f"{where}: display_name must be 1 to 40 characters")
        if kind == "oidc" and not values["issuer"]:
            errors.append(f"{where}: issuer is required for kind 'oidc'")
        for key in ("issuer", "github_url", "github_api_url"):
            if values[key] and not _http_url(values[key]):
                errors.append(f"{where}: {key} must be an https URL (http only on a loopback host)")
        if kind in ("google", "oidc") and "openid" not in values["scopes"].split():
            errors.append(f"{where}: scopes must include 'openid'")
        audiences = raw.get("trusted_audiences", [])
        if not isinstance(audiences, list) or not all(isinstance(a, str) and a.strip() for a in audiences):
            errors.append(f"{where}: trusted_audiences must be a list of client ids")
            continue
        if kind == "github" and audiences:
            errors.append(f"{where}: trusted_audiences applies to OpenID Connect upstreams only")
        found[name] = ConnectorConfig(name=name, kind=kind, **values, **flags, trusted_audiences=tuple(audiences))
    return ({} if errors else found), errors


def _http_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
