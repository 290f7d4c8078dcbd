"""``oidc-provider --server URL --token-file FILE ...``: the same commands, acting through the
admin API of a provider on another machine instead of on the local database.

Only operations of the registry (``oidc_provider.admin``) can run this way; a command that
works on the server itself only (keys, cleanup, serve...) refuses with a clear message rather
than silently acting on a local database.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import click
import requests

from ..admin import Operation
from ..settings import is_loopback_host

TIMEOUT = 30


@dataclass(frozen=True)
class Target:
    server: str
    token: str


def target_from(server: str | None, token: str | None, token_file: str | None) -> Target | None:
    if server is None:
        if token or token_file:
            raise click.UsageError("--token and --token-file go with --server")
        return None
    parts = urlsplit(server)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise click.UsageError("--server must be the provider's issuer URL, e.g. https://id.example.com")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise click.UsageError("--server must use https (a bearer token never travels over plain http "
                               "except to loopback)")
    if token_file:
        try:
            with open(token_file) as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise click.UsageError(f"cannot read --token-file: {exc.strerror}") from None
    if not token:
        raise click.UsageError("--server needs --token-file FILE (or --token)")
    return Target(server=server.rstrip("/"), token=token)


def call(target: Target, op: Operation, params: dict):
    """One admin API request; an error answer becomes a one-line ClickException."""
    params = dict(params)
    path = op.path
    for param in op.params:
        if param.where == "path":
            path = path.replace("{" + param.name + "}", quote(str(params.pop(param.name)), safe=""))
    query = {}
    for param in op.params:
        if param.where == "query" and param.name in params:
            value = params.pop(param.name)
            query[param.name] = ("true" if value else "false") if isinstance(value, bool) else value
    try:
        response = requests.request(
            op.method, f"{target.server}/api/admin{path}", params=query, json=params or None,
            headers={"Authorization": f"Bearer {target.token}", "Accept": "application/json"},
            timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise click.ClickException(f"cannot reach {target.server}: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or body is None:
        description = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
        raise click.ClickException(f"{target.server} answered {response.status_code}: "
                                   f"{description or 'no JSON answer'}")
    return body
