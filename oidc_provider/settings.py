"""Settings: the only reader of ``os.environ`` and of the optional TOML file.

Every field below is documented in ``docs/configuration.md`` (a test keeps the two in step).
``Settings.load()`` reads ``OIDC_*`` variables (and ``OIDC_CONFIG_FILE``, a TOML file whose
keys are the field names) and notes where each value came from; an ``OIDC_*`` variable or a
TOML key that names no setting is refused with the closest valid name. ``from_env()`` raises
on anything unreadable; ``validate()`` reports *every* bad setting in one message.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from .access.forward_auth_rules import hostname as forward_auth_hostname
from .access.forward_auth_rules import parse as parse_forward_auth
from .access.forward_auth_rules import text_of as forward_auth_text
from .authn.attribute_policy import configuration_errors as attribute_levels_errors
from .authn.attribute_policy import overrides_text
from .authn.levels import ENROLLED_FACTORS_MODES, Ladder, LadderError
from .authn.password_policy import setting_errors as password_setting_errors
from .federation.config import parse as parse_connectors
from .federation.config import text_of as connectors_text

SIGNING_ALGS = ("RS256", "ES256", "EdDSA")
INTERNAL = ("extra", "connector_secrets")  # fields that are not settings
INVALID = "invalid configuration: "
# OIDC_* variables that are not fields but are allowed in the environment (docs/configuration.md).
NOT_SETTINGS = ("OIDC_CONFIG_FILE",)
RESERVED_PREFIXES = ("OIDC_TEST_",)  # the test suite's own variables (bin/test: OIDC_TEST_DATABASE_URL)
CONNECTOR_SECRET = re.compile(r"OIDC_CONNECTOR_[A-Z0-9_]+_CLIENT_SECRET")
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    """One or more settings are invalid; the message names each of them."""


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    issuer: str = ""
    """OIDC_ISSUER. The issuer URL, exactly as relying parties will see it (OIDC Discovery §3).
    Must be https, except on a loopback host (127.0.0.1, ::1, localhost)."""

    secret_key: str = field(default="", repr=False)
    """OIDC_SECRET_KEY. At least 32 bytes. Signs nothing public; derives the key that encrypts
    signing keys, TOTP secrets and database credentials at rest, and signs CSRF tokens. Change
    it with ``oidc-provider secret-key rotate`` (docs/operator-guide.md)."""

    secret_key_previous: str = field(default="", repr=False)
    """OIDC_SECRET_KEY_PREVIOUS. Only while OIDC_SECRET_KEY is being changed: the old key. Values
    sealed under it still open (the current key is tried first) and CSRF tokens it signed are
    still accepted; nothing new is sealed or signed with it. Empty (the default) otherwise."""

    database_url: str = field(default="sqlite:///instance/oidc-provider.db", repr=False)
    """OIDC_DATABASE_URL. SQLAlchemy URL: SQLite by default; PostgreSQL as
    ``postgresql+psycopg://user@host/db``. A relative SQLite path is relative to the working
    directory of the command (``sqlite:///instance/oidc-provider.db`` is ``./instance/...``)."""

    access_token_ttl: int = 900
    """OIDC_ACCESS_TOKEN_TTL. Seconds an access token (RFC 9068 JWT) is valid."""

    id_token_ttl: int = 900
    """OIDC_ID_TOKEN_TTL. Seconds an ID token is valid."""

    authorization_code_ttl: int = 60
    """OIDC_AUTHORIZATION_CODE_TTL. Seconds an authorization code may be redeemed (max 600)."""

    refresh_token_ttl: int = 30 * 86400
    """OIDC_REFRESH_TOKEN_TTL. Sliding lifetime of a refresh token in seconds; each rotation
    starts it again."""

    refresh_token_absolute_ttl: int = 90 * 86400
    """OIDC_REFRESH_TOKEN_ABSOLUTE_TTL. Absolute cap in seconds on a refresh-token family,
    counted from the original authorization."""

    refresh_reuse_grace_seconds: int = 30
    """OIDC_REFRESH_REUSE_GRACE_SECONDS. For this many seconds after a refresh token is rotated,
    presenting it again, while its successor has never been used, returns that same successor
    (and a new access token) instead of revoking the family: a client whose answer was lost
    can retry (RFC 9700 §4.14.2). 0 turns it off; at most 300. The successor's value is kept
    sealed at rest only for this window."""

    session_ttl: int = 12 * 3600
    """OIDC_SESSION_TTL. Seconds a browser session lasts after login."""

    require_pkce: bool = True
    """OIDC_REQUIRE_PKCE. Require PKCE (S256) from confidential clients too. Public clients
    always need it."""

    default_audience: str = ""
    """OIDC_DEFAULT_AUDIENCE. ``aud`` of access tokens when the client names no audience;
    empty means the issuer itself."""

    argon2_time_cost: int = 3
    """OIDC_ARGON2_TIME_COST. Argon2id iterations for password hashes (RFC 9106 §4)."""

    argon2_memory_cost: int = 65536
    """OIDC_ARGON2_MEMORY_COST. Argon2id memory in KiB."""

    argon2_parallelism: int = 4
    """OIDC_ARGON2_PARALLELISM. Argon2id lanes."""

    password_min_length: int = 15
    """OIDC_PASSWORD_MIN_LENGTH. Fewest characters a new password may have, 8 to 64. NIST SP
    800-63B rev 4 §3.1.1.2: 15 for a password that signs in alone (the default), at least 8 when
    every account also has a second factor (docs/security-model.md)."""

    password_min_score: int = 3
    """OIDC_PASSWORD_MIN_SCORE. Lowest zxcvbn guessability score (1-4) a new password may have;
    below it, a password is refused as common or easy to guess."""

    proxy_hops: int = 0
    """OIDC_PROXY_HOPS. How many reverse proxies in front set X-Forwarded-For/-Proto/-Host;
    0 trusts none of those headers."""

    serve_server: str = "granian"
    """OIDC_SERVE_SERVER. The HTTP server ``serve`` runs: ``granian`` (a Rust server, its WSGI
    interface) or ``gunicorn`` (its threaded worker); ``serve --server`` overrides it."""

    serve_threads: int = 8
    """OIDC_SERVE_THREADS. Requests each ``serve`` worker process runs at once, 1 to 64: the
    Python threads that run the app (granian's blocking threads, gunicorn's worker threads).
    Idle and kept-alive connections wait without a thread."""

    serve_request_timeout: int = 10
    """OIDC_SERVE_REQUEST_TIMEOUT. Seconds a client has to send a request: under gunicorn all of
    it from its first byte; under granian its head from when the connection is ready for it,
    then its body. A slower one is disconnected (with ``408 Request Timeout`` where the server
    can answer), so that slow clients cannot hold the server's threads (docs/operator-guide.md)."""

    serve_graceful_timeout: int = 30
    """OIDC_SERVE_GRACEFUL_TIMEOUT. Seconds ``serve`` gives, after SIGTERM, to the requests it has
    accepted (in flight or queued) before it stops; new connections are refused meanwhile."""

    hsts_max_age: int = 365 * 86400
    """OIDC_HSTS_MAX_AGE. ``max-age`` of the ``Strict-Transport-Security`` header sent on responses
    over https (RFC 6797 §6.1.1), in seconds; 0 sends none. Never sent over plain http (§7.2)."""

    audit_retention_days: int = 90
    """OIDC_AUDIT_RETENTION_DAYS. ``cleanup`` deletes audit rows older than this."""

    acr_levels: str = "pwd mfa phr"
    """OIDC_ACR_LEVELS. The acr ladder, lowest first: an ordered selection of ``pwd`` (password
    or upstream login) < ``mfa`` (plus a second factor) < ``phr`` (phishing-resistant passkey).
    Published as ``acr_values_supported``."""

    enrolled_factors: str = "always"
    """OIDC_ENROLLED_FACTORS. ``always``: a person who has a second factor (an authenticator
    app, a passkey; recovery codes as the fallback) is asked for it at every sign-in, whatever
    the application asks, and the ID token's ``acr``/``amr`` say so. ``when-asked``: a second
    factor is asked only when the application asks for a level (``acr_values``, an essential
    ``acr``) or its minimum (``--min-acr``, ``OIDC_MIN_ACR``) needs it; a password alone then
    signs an enrolled person in to the others (docs/authentication-levels.md, the trade-off)."""

    min_acr: str = ""
    """OIDC_MIN_ACR. A level of ``OIDC_ACR_LEVELS`` every sign-in must reach, for every client
    (as if each client had it as its minimum). Empty: no floor beyond each client's own."""

    account_reauth_seconds: int = 600
    """OIDC_ACCOUNT_REAUTH_SECONDS. How recent a sign-in must be, at the account's strongest
    enrolled level, to change the password, factors, recovery codes or personal access tokens on
    the account page; older, the page asks to confirm it is the person first."""

    attribute_levels: str = ""
    """OIDC_ATTRIBUTE_LEVELS. Per-attribute overrides of the levels the account attributes API
    needs: ``name=presence:LEVEL,read:LEVEL,update:LEVEL,max_age:SECONDS`` entries separated by
    ``;`` (in the TOML file also a table of such strings or tables). Levels must be on the
    ladder; empty keeps the defaults (docs/account-attributes.md)."""

    webauthn_rp_id: str = ""
    """OIDC_WEBAUTHN_RP_ID. The WebAuthn Relying Party ID passkeys are bound to (W3C WebAuthn L3
    §5.1.4): a domain equal to, or a registrable suffix of, the host of every allowed origin.
    Empty means the issuer's host. Passkeys are off when it would be an IP address."""

    webauthn_origins: str = ""
    """OIDC_WEBAUTHN_ORIGINS. Space-separated origins (``https://id.example.com``) whose pages may
    use passkeys (WebAuthn §7.1/§7.2 check clientDataJSON's origin). Empty means the issuer's
    origin. https only, except on a loopback host."""

    connectors: str = field(default="", repr=False)
    """OIDC_CONNECTORS. Upstream login: a ``[connectors.NAME]`` table per connector in the config
    file (or the same as JSON in the variable), each with ``kind`` (``github``, ``google`` or
    ``oidc``), ``client_id``, the secret (``client_secret``, or the variable
    ``OIDC_CONNECTOR_<NAME>_CLIENT_SECRET``), and optionally ``display_name``, ``scopes``,
    ``issuer`` (required for ``oidc``), ``match_email``, ``signup`` and ``trust_mfa``."""

    forward_auth: str = ""
    """OIDC_FORWARD_AUTH. The hosts a reverse proxy may ask ``/forward-auth`` about: a
    ``[forward_auth."app.example.com"]`` table per host in the config file (or the same as JSON
    in the variable), each with ``audience`` (whose statements apply) and ``action`` (what a
    request must be allowed to do, on its path). Keys are lowercase host names, optionally with
    ``:port``. A host not in the table is refused (docs/forward-auth.md)."""

    session_cookie_domain: str = ""
    """OIDC_SESSION_COOKIE_DOMAIN. The ``Domain`` of the session cookie, so that browsers send it
    to the apps behind forward-auth too (``example.com`` covers ``app.example.com``). Must
    contain the issuer's host and every forward-auth host. Empty means a host-only cookie."""

    site_name: str = "Single sign-on"
    """OIDC_SITE_NAME. Name shown on the login, consent and logout pages."""

    log_level: str = "INFO"
    """OIDC_LOG_LEVEL. Level of the provider's log lines (DEBUG, INFO, WARNING, ERROR); access and
    audit lines are INFO."""

    log_format: str = "text"
    """OIDC_LOG_FORMAT. ``text`` (one readable line per event, for a terminal) or ``json`` (one JSON
    object per line, for a log collector), for every log line of the process, gunicorn's too."""

    metrics: bool = False
    """OIDC_METRICS. Serve Prometheus metrics at ``/metrics`` (request counts and latency,
    tokens, logins, step-ups, upstream logins, database errors); off means ``/metrics`` is 404."""

    metrics_token: str = field(default="", repr=False)
    """OIDC_METRICS_TOKEN. If set, ``/metrics`` answers only requests with
    ``Authorization: Bearer <token>`` (at least 32 bytes); empty leaves it open to whoever can
    reach it, so restrict it at the proxy (docs/operator-guide.md, Metrics)."""

    jwks_uri_allow_loopback: bool = False
    """OIDC_JWKS_URI_ALLOW_LOOPBACK. Let a system account's ``jwks_uri`` resolve to a loopback
    address (127.0.0.1, ::1) when its keys are fetched. Off, any jwks_uri whose host resolves to
    a loopback, private, link-local or otherwise non-public address is refused at fetch time
    (server-side request forgery); turn it on only for tests or a key server on this machine."""

    extra: dict = field(default_factory=dict, compare=False, repr=False)
    # Not settings: the OIDC_CONNECTOR_<NAME>_CLIENT_SECRET variables found at load.
    connector_secrets: dict = field(default_factory=dict, compare=False, repr=False)

    # ---- derived ----
    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.issuer).scheme == "https"

    @property
    def ladder(self) -> Ladder:
        return Ladder.parse(self.acr_levels)

    @property
    def rp_id(self) -> str:
        """The WebAuthn RP ID in use: ``webauthn_rp_id`` or the issuer's host."""
        return (self.webauthn_rp_id or urlsplit(self.issuer).hostname or "").lower()

    @property
    def passkey_origins(self) -> list[str]:
        """The origins passkey ceremonies accept: ``webauthn_origins`` or the issuer's origin."""
        return [_origin(o) for o in self.webauthn_origins.split() or [self.issuer]]

    @property
    def passkeys_available(self) -> bool:
        """Browsers refuse WebAuthn on an IP address (the RP ID must be a domain): with the
        default RP ID of an issuer such as ``http://127.0.0.1:5000``, passkeys are off."""
        return _is_domain(self.rp_id)

    @property
    def connector_configs(self) -> dict:
        """The configured upstream connectors by name (``federation.config.ConnectorConfig``)."""
        return parse_connectors(self.connectors, self.connector_secrets)[0]

    @property
    def forward_auth_rules(self) -> dict:
        """The forward-auth table by host (``access.forward_auth_rules.Rule``)."""
        return parse_forward_auth(self.forward_auth)[0]

    @property
    def audience(self) -> str:
        return self.default_audience or self.issuer

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    # ---- loading ----
    @classmethod
    def from_env(cls, environ=None) -> Settings:
        """The settings from ``environ`` (default ``os.environ``); SettingsError names every
        value that cannot be read, and every rule ``validate()`` would refuse next."""
        loaded = cls.load(environ)
        if loaded.errors:
            raise SettingsError(INVALID + "; ".join(loaded.problems()))
        return loaded.settings

    @classmethod
    def load(cls, environ=None) -> Loaded:
        """Read the environment and the TOML file without raising: the settings made of every
        readable value, where each came from, and what could not be read."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        sources: dict[str, str] = {}
        errors: list[str] = []
        path = environ.get("OIDC_CONFIG_FILE")
        if path:
            path = os.path.abspath(path)
            try:
                with open(path, "rb") as fh:
                    values.update(tomllib.load(fh))
                sources.update(dict.fromkeys(values, "file"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                errors.append(f"OIDC_CONFIG_FILE: cannot read {path!r}: {exc}")
        names = setting_names()
        for var in sorted(environ):
            if var in names:
                values[names[var]] = environ[var]
                sources[names[var]] = "environment"
            elif var.startswith("OIDC_") and not _allowed_extra_variable(var):
                errors.append(f"unknown setting {var}{_did_you_mean(var, [*names, *NOT_SETTINGS])}")
        unreadable: set = set()
        settings = cls._coerce(values, errors, unreadable)
        for name in unreadable:
            sources.pop(name)  # the value given could not be read: the default applies
        settings = settings.replace(database_url=absolute_sqlite_url(settings.database_url), connector_secrets={
            k: v for k, v in environ.items() if CONNECTOR_SECRET.fullmatch(k)})
        return Loaded(settings, {name: sources.get(name, "default") for name in names.values()}, path, errors)

    @classmethod
    def _coerce(cls, values: dict, errors: list[str], unreadable: set) -> Settings:
        kwargs = {}
        known = {f.name: f for f in fields(cls) if f.name not in INTERNAL}
        for name, raw in values.items():
            f = known.get(name)
            if f is None:
                suggestion = _did_you_mean(name, list(known), quote=True)
                errors.append(f"unknown setting {name!r} in OIDC_CONFIG_FILE{suggestion}")
                continue
            default = f.default
            try:
                if name == "connectors" and isinstance(raw, dict):
                    kwargs[name] = connectors_text(raw)  # a TOML table
                elif name == "forward_auth" and isinstance(raw, dict):
                    kwargs[name] = forward_auth_text(raw)  # a TOML table
                elif name == "attribute_levels" and isinstance(raw, dict):
                    kwargs[name] = overrides_text(raw)  # a TOML table
                elif isinstance(default, bool):
                    kwargs[name] = _to_bool(raw)
                elif isinstance(default, int):
                    kwargs[name] = int(raw)
                else:
                    kwargs[name] = str(raw)
            except ValueError:
                errors.append(f"OIDC_{name.upper()}: {raw!r} is not a valid {type(default).__name__}")
                unreadable.add(name)
        return cls(**kwargs)

    def validate(self) -> Settings:
        """Check every setting; raise SettingsError naming all that are wrong."""
        errors = self.problems()
        if errors:
            raise SettingsError(INVALID + "; ".join(errors))
        return self

    def problems(self) -> list[str]:
        """Every broken rule, one message each (``validate()`` raises them together)."""
        errors = []
        parts = urlsplit(self.issuer)
        if not self.issuer:
            errors.append("OIDC_ISSUER is required")
        elif parts.scheme not in ("https", "http") or not parts.hostname:
            errors.append("OIDC_ISSUER must be an absolute http(s) URL")
        elif parts.query or parts.fragment:
            # OIDC Discovery §3: the issuer has no query or fragment components.
            errors.append("OIDC_ISSUER must not have a query or fragment")
        elif parts.scheme == "http" and not is_loopback_host(parts.hostname):
            errors.append("OIDC_ISSUER must use https unless the host is loopback")
        elif self.issuer.endswith("/"):
            errors.append("OIDC_ISSUER must not end with '/'")
        elif parts.path:
            # Endpoints are served at the root of the host; an issuer with a path would
            # advertise URLs that do not exist.
            errors.append("OIDC_ISSUER must not have a path (serve the provider at the root of its host)")
        if len(self.secret_key.encode()) < 32:
            errors.append("OIDC_SECRET_KEY must be at least 32 bytes")
        if self.secret_key_previous and len(self.secret_key_previous.encode()) < 32:
            errors.append("OIDC_SECRET_KEY_PREVIOUS must be at least 32 bytes (or empty)")
        elif self.secret_key_previous and self.secret_key_previous == self.secret_key:
            errors.append("OIDC_SECRET_KEY_PREVIOUS must differ from OIDC_SECRET_KEY")
        if not self.database_url.startswith(("sqlite:", "postgresql")):
            errors.append("OIDC_DATABASE_URL must be a sqlite: or postgresql URL")
        for name in ("access_token_ttl", "id_token_ttl", "authorization_code_ttl",
                     "refresh_token_ttl", "refresh_token_absolute_ttl", "session_ttl",
                     "argon2_time_cost", "argon2_memory_cost", "argon2_parallelism"):
            if getattr(self, name) <= 0:
                errors.append(f"OIDC_{name.upper()} must be positive")
        if self.authorization_code_ttl > 600:
            # RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is
            # RECOMMENDED."
            errors.append("OIDC_AUTHORIZATION_CODE_TTL must be at most 600 seconds")
        if not 0 <= self.refresh_reuse_grace_seconds <= 300:
            errors.append("OIDC_REFRESH_REUSE_GRACE_SECONDS must be 0 to 300")
        if self.refresh_token_absolute_ttl < self.refresh_token_ttl:
            errors.append("OIDC_REFRESH_TOKEN_ABSOLUTE_TTL must be >= OIDC_REFRESH_TOKEN_TTL")
        for name in ("serve_request_timeout", "serve_graceful_timeout"):
            if getattr(self, name) <= 0:
                errors.append(f"OIDC_{name.upper()} must be positive")
        if self.serve_server not in ("granian", "gunicorn"):
            errors.append("OIDC_SERVE_SERVER must be granian or gunicorn")
        if not 1 <= self.serve_threads <= 64:
            errors.append("OIDC_SERVE_THREADS must be between 1 and 64")
        if self.hsts_max_age < 0:
            errors.append("OIDC_HSTS_MAX_AGE must be 0 or more")
        if self.proxy_hops < 0:
            errors.append("OIDC_PROXY_HOPS must be 0 or more")
        try:
            Ladder.parse(self.acr_levels)
        except LadderError as exc:
            errors.append(f"OIDC_ACR_LEVELS: {exc}")
        errors.extend(attribute_levels_errors(self.acr_levels, self.attribute_levels))
        if self.enrolled_factors not in ENROLLED_FACTORS_MODES:
            errors.append(f"OIDC_ENROLLED_FACTORS: {self.enrolled_factors!r} is not one of "
                          f"{', '.join(ENROLLED_FACTORS_MODES)}")
        if self.min_acr and self.min_acr not in self.acr_levels.split():
            errors.append(f"OIDC_MIN_ACR: {self.min_acr!r} is not a level of OIDC_ACR_LEVELS "
                          f"({self.acr_levels})")
        if not 60 <= self.account_reauth_seconds <= 86400:
            errors.append("OIDC_ACCOUNT_REAUTH_SECONDS must be between 60 and 86400")
        errors.extend(password_setting_errors(self.password_min_length, self.password_min_score))
        errors.extend(parse_connectors(self.connectors, self.connector_secrets)[1])
        errors.extend(self._webauthn_errors())
        errors.extend(parse_forward_auth(self.forward_auth)[1])
        errors.extend(self._cookie_domain_errors())
        if self.metrics_token and len(self.metrics_token.encode()) < 32:
            errors.append("OIDC_METRICS_TOKEN must be at least 32 bytes")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            errors.append("OIDC_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        if self.log_format not in LOG_FORMATS:
            errors.append("OIDC_LOG_FORMAT must be text or json")
        return errors


    def _webauthn_errors(self) -> list[str]:
        """W3C WebAuthn L3 §7.1/§7.2: "Verify that the value of C.origin is an origin expected by
        the Relying Party", and §5.1.4.1: the RP ID must be "a registrable domain suffix of or
        is equal to" each origin's effective domain (HTML §7.1.3)."""
        if not (self.webauthn_rp_id or self.webauthn_origins):
            return []  # the issuer's own host and origin: consistent by construction
        errors = []
        rp_id_ok = _is_domain(self.rp_id)
        if not rp_id_ok:
            errors.append(f"OIDC_WEBAUTHN_RP_ID: {self.rp_id!r} is not a domain name such as example.com "
                          "(browsers refuse IP addresses and public suffixes)")
        for origin in self.passkey_origins:
            parts = urlsplit(origin)
            try:
                host = parts.hostname
                parts.port  # noqa: B018 (raises ValueError on a bad port)
            except ValueError:
                host = None
            if parts.scheme not in ("https", "http") or not host or parts.path or parts.query \
                    or parts.fragment or "@" in parts.netloc:
                errors.append(f"OIDC_WEBAUTHN_ORIGINS: {origin!r} is not an origin (scheme://host[:port])")
            elif parts.scheme == "http" and not is_loopback_host(host):
                errors.append(f"OIDC_WEBAUTHN_ORIGINS: {origin!r} must use https unless the host is loopback")
            elif rp_id_ok and not (host == self.rp_id or host.endswith("." + self.rp_id)):
                errors.append(f"OIDC_WEBAUTHN_RP_ID: {self.rp_id!r} is neither the host of {origin!r} nor a "
                              "domain suffix of it")
        return errors

    def _cookie_domain_errors(self) -> list[str]:
        """RFC 6265 §5.3 step 6: a browser ignores a cookie whose Domain does not domain-match
        the host that set it; and it sends the cookie only to hosts within that Domain."""
        domain = self.session_cookie_domain
        if not domain:
            return []
        if not _is_domain(domain):
            return [f"OIDC_SESSION_COOKIE_DOMAIN: {domain!r} is not a lowercase domain name such as example.com "
                    "(no leading dot, not an IP address, not a public suffix)"]
        errors = []
        issuer_host = urlsplit(self.issuer).hostname
        if issuer_host and not _within(issuer_host, domain):
            errors.append(f"OIDC_SESSION_COOKIE_DOMAIN: the issuer's host {issuer_host!r} is not within {domain!r} "
                          "(browsers would refuse the cookie)")
        for key in self.forward_auth_rules:
            if not _within(forward_auth_hostname(key), domain):
                errors.append(f"OIDC_FORWARD_AUTH: host {key!r} is not within OIDC_SESSION_COOKIE_DOMAIN "
                              f"{domain!r} (browsers would never send the session cookie there)")
        return errors


@dataclass(frozen=True)
class Loaded:
    """What ``Settings.load`` read: ``sources`` maps each field to ``default``, ``environment``
    or ``file``; ``errors`` are the values that could not be read (unknown names, bad types)."""

    settings: Settings
    sources: dict
    config_file: str | None
    errors: list

    def problems(self) -> list[str]:
        """Every problem at once: what could not be read, then every rule ``validate()`` refuses."""
        return [*self.errors, *self.settings.problems()]


def setting_names() -> dict[str, str]:
    """Each setting's variable (``OIDC_ISSUER``) -> its field (``issuer``)."""
    return {"OIDC_" + f.name.upper(): f.name for f in fields(Settings) if f.name not in INTERNAL}


def _allowed_extra_variable(var: str) -> bool:
    return var in NOT_SETTINGS or var.startswith(RESERVED_PREFIXES) or bool(CONNECTOR_SECRET.fullmatch(var))


def _did_you_mean(name: str, candidates: list[str], *, quote: bool = False) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quote else f" (did you mean {close[0]}?)"


def export(variable: str, value: str) -> None:
    """Set a variable for a library that reads it from the environment of this process and of
    the processes it forks (prometheus_client's ``PROMETHEUS_MULTIPROC_DIR``, ``metrics.py``),
    so that this module stays the only one that touches ``os.environ``."""
    os.environ[variable] = value


def absolute_sqlite_url(url: str, base=None) -> str:
    """A relative SQLite path made absolute against ``base`` (the working directory), so that
    ``dev``, every CLI command and ``serve`` open the same file; Flask-SQLAlchemy would
    otherwise resolve it inside the package's instance folder."""
    from pathlib import Path

    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path, _, query = url[len(prefix):].partition("?")
    if not path or path == ":memory:" or path.startswith("/") or path.startswith("file:"):
        return url
    absolute = (Path(base) if base is not None else Path.cwd()) / path
    return prefix + str(absolute) + ("?" + query if query else "")


def _within(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _is_domain(host: str) -> bool:
    """A domain a browser accepts as an RP ID: lowercase DNS labels, not an IP address, and not a
    single label other than ``localhost`` (a crude public-suffix guard: ``com`` is refused)."""
    if not host or host != host.lower() or len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) == 1 and host != "localhost":
        return False
    return all(0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
               and not label.startswith("-") and not label.endswith("-") for label in labels)


def _origin(url: str) -> str:
    """An origin as browsers serialize it in clientDataJSON (HTML §7.5): lowercase, no default
    port, no trailing slash."""
    url = url.rstrip("/").lower()
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if url.startswith(scheme) and url.endswith(port):
            return url[: -len(port)]
    return url


def _to_bool(raw) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def dev_environment(instance_dir, environ=None) -> dict:
    """The environment ``oidc-provider dev`` runs with: ``environ`` (default ``os.environ``)
    with the development defaults filled in where it leaves them unset."""
    import secrets as _secrets
    from pathlib import Path

    environ = dict(os.environ if environ is None else environ)
    instance = Path(instance_dir).resolve()
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)  # secret key, database, demo credentials
    key_file = instance / "secret_key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(_secrets.token_urlsafe(48))
    environ.setdefault("OIDC_SECRET_KEY", key_file.read_text().strip())
    environ.setdefault("OIDC_ISSUER", "http://127.0.0.1:5000")
    environ.setdefault("OIDC_DATABASE_URL", f"sqlite:///{instance / 'oidc-provider.db'}")
    environ.setdefault("OIDC_SITE_NAME", "OIDC provider (development)")
    return environ
