"""The connector interface: ``start`` builds the upstream authorization URL; ``finish`` turns
the callback into a normalised ``Identity`` or raises ``ConnectorError``. Connectors talk to
the upstream with ``requests`` (a session injected, timeouts always set) and never log or
show a code, token or secret: ``ConnectorError`` messages are safe for a page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

from .config import ConnectorConfig

TIMEOUT = 10  # seconds, every upstream request


@dataclass(frozen=True)
class Identity:
    provider: str  # the connector's name
    subject: str  # the upstream's stable, never reassigned id for the person
    email: str | None
    email_verified: bool
    name: str | None
    username: str | None
    amr: tuple[str, ...] = field(default=())  # what the upstream says it used (OIDC), if anything
    acr: str | None = None


class ConnectorError(Exception):
    """The upstream login failed. ``reason`` is a code for the audit row (``access_denied``,
    ``missing_code``, ``token_exchange``, ``profile``, ``email``, ``id_token``, ``userinfo``,
    ``userinfo_encrypted``, ``unreachable``); ``message`` is for the person and names no secret."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class Connector:
    """Base class: configuration and the HTTP session. Subclasses implement start/finish."""

    kind = ""

    def __init__(self, config: ConnectorConfig, http: requests.Session | None = None):
        self.config = config
        self.http = http or requests.Session()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def display_name(self) -> str:
        return self.config.display_name

    @property
    def upstream(self) -> str:
        """Who issues the subjects: the OIDC issuer, or GitHub's URL. OIDC Core §5.7: only
        ``iss`` and ``sub`` together identify a person, so each link remembers it."""
        return (self.config.issuer or self.config.github_url).rstrip("/")

    def start(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        """The upstream authorization URL for this browser (PKCE S256 ``code_challenge``,
        ``nonce`` where the upstream speaks OIDC)."""
        raise NotImplementedError

    def finish(self, *, redirect_uri: str, params: Mapping[str, str], nonce: str, code_verifier: str) -> Identity:
        """The callback's query parameters (state already checked) to an Identity."""
        raise NotImplementedError

    # ---- helpers for subclasses ----
    @staticmethod
    def upstream_error(params: Mapping[str, str]) -> None:
        """RFC 6749 §4.1.2.1: the upstream's error response (the person said no, or the
        upstream refused) and a missing code, as ConnectorErrors."""
        if params.get("error"):
            if params["error"] == "access_denied":
                raise ConnectorError("access_denied", "You did not allow the sign-in at the other site.")
            raise ConnectorError("upstream_error", "The other site refused the sign-in.")
        if not params.get("code"):
            raise ConnectorError("missing_code", "The other site sent no sign-in code back.")

    def json_request(self, method: str, url: str, *, reason: str, **kwargs) -> dict | list:
        """One upstream call with a timeout; any failure (network, status, not JSON) is a
        ConnectorError with ``reason`` and no detail from the answer (it may hold secrets)."""
        # Never follow a redirect: a 307/308 would resend the client secret and code elsewhere.
        kwargs.setdefault("allow_redirects", False)
        try:
            response = self.http.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise ConnectorError("unreachable", "The other site could not be reached. Try again later.") from exc
        if response.status_code != 200:
            raise ConnectorError(reason, "The other site did not complete the sign-in. Try again later.")
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectorError(reason, "The other site sent an answer that could not be read.") from exc
