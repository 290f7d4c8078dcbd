"""GitHub as an upstream: OAuth 2.0's authorization code grant (RFC 6749 §4.1) with PKCE
(RFC 7636, S256 only), then GitHub's REST API for who the person is.

GitHub speaks OAuth 2.0, not OpenID Connect: there is no ID token, so the identity comes from
``GET /user`` (the numeric ``id``: stable and never reassigned, unlike ``login``, which the
person can change and someone else can then take) and ``GET /user/emails`` (an email counts
only when it is the primary address AND GitHub has verified it; when none is, the login still
works, with no email).

GitHub docs: "Authorizing OAuth apps" (web application flow: ``/login/oauth/authorize``,
``/login/oauth/access_token``, which answers errors with 200 and ``{"error": ...}`` rather than
RFC 6749 §5.2's 400), REST "Users" (``GET /user``) and "Emails" (``GET /user/emails``, needs the
``user:email`` scope), with ``X-GitHub-Api-Version: 2022-11-28``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from .connector import Connector, ConnectorError, Identity

API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
MAX_LOGIN = 39  # GitHub's own limit on usernames
MAX_NAME = 255
MAX_EMAIL = 254  # RFC 5321 §4.5.3.1.3 path length, less the angle brackets
MAX_EMAILS = 100  # per_page's maximum; one page is plenty for a person

PROFILE_UNREADABLE = "GitHub sent a profile that could not be read. Try again later."
EMAILS_UNREADABLE = "GitHub sent email addresses that could not be read. Try again later."


class GitHubConnector(Connector):
    kind = "github"

    def start(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        """RFC 6749 §4.1.1 authorization request, RFC 7636 §4.3 ``code_challenge`` (S256).
        ``nonce`` is unused: GitHub issues no ID token. ``allow_signup=false``: someone without
        a GitHub account is not sent through GitHub's sign-up in the middle of ours."""
        query = {
            "client_id": self.config.client_id, "redirect_uri": redirect_uri, "scope": self.config.scopes,
            "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256",
            "allow_signup": "false",
        }
        return f"{self.config.github_url.rstrip('/')}/login/oauth/authorize?{urlencode(query)}"

    def finish(self, *, redirect_uri: str, params: Mapping[str, str], nonce: str, code_verifier: str) -> Identity:
        self.upstream_error(params)
        token = self._access_token(params["code"], redirect_uri, code_verifier)
        user = self._user(token)
        email = self._verified_primary_email(token)
        return Identity(provider=self.name, subject=str(user["id"]), email=email, email_verified=email is not None,
                        name=user["name"], username=user["login"])

    def _access_token(self, code: str, redirect_uri: str, code_verifier: str) -> str:
        """RFC 6749 §4.1.3 token request (client credentials in the body, as GitHub documents;
        RFC 7636 §4.5 ``code_verifier``) and §5.1 response."""
        answer = self.json_request(
            "POST", f"{self.config.github_url.rstrip('/')}/login/oauth/access_token", reason="token_exchange",
            headers={"Accept": "application/json"},
            data={"client_id": self.config.client_id, "client_secret": self.config.client_secret, "code": code,
                  "redirect_uri": redirect_uri, "code_verifier": code_verifier})
        refused = ConnectorError("token_exchange", "GitHub did not accept the sign-in. Start again.")
        if not isinstance(answer, dict) or answer.get("error"):
            raise refused  # GitHub's 200 {"error": "bad_verification_code", ...}
        token = answer.get("access_token")
        # RFC 6749 §7.1: "The client MUST NOT use an access token if it does not understand the token type."
        token_type = answer.get("token_type")
        if not isinstance(token, str) or not token or not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise refused
        return token

    def _api(self, path: str, token: str, reason: str, **kwargs) -> dict | list:
        headers = {**API_HEADERS, "Authorization": f"Bearer {token}"}
        return self.json_request("GET", f"{self.config.github_api_url.rstrip('/')}{path}", reason=reason,
                                 headers=headers, **kwargs)

    def _user(self, token: str) -> dict:
        """``GET /user``: ``id`` (an integer), ``login``, ``name`` (may be null)."""
        user = self._api("/user", token, "profile")
        if not isinstance(user, dict):
            raise ConnectorError("profile", PROFILE_UNREADABLE)
        user_id, login, name = user.get("id"), user.get("login"), user.get("name")
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise ConnectorError("profile", PROFILE_UNREADABLE)
        if not _text(login, MAX_LOGIN):
            raise ConnectorError("profile", PROFILE_UNREADABLE)
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            raise ConnectorError("profile", PROFILE_UNREADABLE)
        return {"id": user_id, "login": login, "name": (name or "").strip() or None}

    def _verified_primary_email(self, token: str) -> str | None:
        """``GET /user/emails``: the address that is both ``primary`` and ``verified``, else None.
        A verified secondary address does not count: the primary is the one the person chose."""
        emails = self._api("/user/emails", token, "email", params={"per_page": MAX_EMAILS})
        if not isinstance(emails, list):
            raise ConnectorError("email", EMAILS_UNREADABLE)
        found = None
        for entry in emails:
            if not isinstance(entry, dict) or not _text(entry.get("email"), MAX_EMAIL) or "@" not in entry["email"]:
                raise ConnectorError("email", EMAILS_UNREADABLE)
            if not isinstance(entry.get("primary"), bool) or not isinstance(entry.get("verified"), bool):
                raise ConnectorError("email", EMAILS_UNREADABLE)
            if entry["primary"] and entry["verified"]:
                found = entry["email"]
        return found


def _text(value: object, limit: int) -> bool:
    """A non-empty string of at most ``limit`` characters with no control characters."""
    return (isinstance(value, str) and 0 < len(value) <= limit
            and not any(ord(c) < 32 or ord(c) == 127 for c in value))
