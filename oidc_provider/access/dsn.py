"""PostgreSQL connection strings kept for system accounts: the two forms libpq reads
(PostgreSQL docs, "Connection Strings", §34.1.1): a ``postgresql://`` (or ``postgres://``) URI
and a ``keyword = value`` string. The password never travels inside the string: it is stored
and handed out separately, so a DSN echoed into a log or a shell history carries no secret.

Pure: no Flask, no database.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_DSN_LENGTH = 1000
MAX_PASSWORD_LENGTH = 1024
# libpq keywords that hold a secret: they belong in the password, never in the DSN.
SECRET_KEYWORDS = frozenset({"password", "sslpassword"})
_KEYWORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")


class DSNError(ValueError):
    """The DSN cannot be stored; the message says why and never quotes the DSN."""


def check_dsn(dsn) -> dict:
    """The connection parameters named in ``dsn`` (``user`` and ``dbname`` when given), or
    ``DSNError``. A DSN holding a password is refused: it goes in the password."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise DSNError("dsn must be a postgresql:// URL or a libpq key=value string")
    if len(dsn) > MAX_DSN_LENGTH:
        raise DSNError(f"dsn must be at most {MAX_DSN_LENGTH} characters")
    if any(not c.isprintable() for c in dsn):
        raise DSNError("dsn must not contain control characters")
    if dsn.startswith(("postgresql://", "postgres://")):
        return _uri_parameters(dsn)
    if "://" in dsn.split("=", 1)[0]:
        raise DSNError("a dsn URL must start with postgresql:// or postgres://")
    return _keyword_parameters(dsn)


def check_password(password) -> str:
    if not isinstance(password, str) or not password:
        raise DSNError("the database password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH or "\x00" in password:
        raise DSNError(f"the database password must be at most {MAX_PASSWORD_LENGTH} characters, without NUL")
    return password


def _uri_parameters(dsn: str) -> dict:
    """``postgresql://[userspec@][hostspec][/dbname][?paramspec]``: the userspec is
    ``user[:password]`` and the paramspec may repeat any keyword, password included."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        raise DSNError("dsn is not a valid postgresql:// URL") from None
    if parts.fragment:
        raise DSNError("a dsn URL has no #fragment")
    # Split the userinfo by hand: urlsplit's .port refuses libpq's multi-host form (h1:5432,h2:5433).
    userinfo, at, _hosts = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        raise DSNError("the dsn must not contain a password: give it on standard input instead")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name.lower() in SECRET_KEYWORDS for name, _ in query):
        raise DSNError("the dsn must not contain a password: give it on standard input instead")
    out = {name: value for name, value in query if name in ("user", "dbname")}
    if at and userinfo:
        out["user"] = unquote(userinfo)
    dbname = unquote(parts.path.lstrip("/"))
    if dbname:
        out["dbname"] = dbname
    return out


def _keyword_parameters(dsn: str) -> dict:
    """``host=db.internal port=5432 dbname=app user='svc'``: values unquoted (backslash escapes)
    or single-quoted (``\\'`` and ``\\\\`` escapes), separated by whitespace."""
    found: dict[str, str] = {}
    pos = 0
    while dsn[pos:].strip():
        match = _KEYWORD.match(dsn, pos)
        if match is None:
            raise DSNError("dsn must be a postgresql:// URL or libpq key=value pairs")
        name = match.group(1)
        value, pos = _value(dsn, match.end())
        if name.lower() in SECRET_KEYWORDS:
            raise DSNError("the dsn must not contain a password: give it on standard input instead")
        if name in found:
            raise DSNError(f"dsn names {name} twice")
        found[name] = value
    if not found:
        raise DSNError("dsn must be a postgresql:// URL or libpq key=value pairs")
    return {name: found[name] for name in ("user", "dbname") if name in found}


def _value(text: str, pos: int) -> tuple[str, int]:
    quoted = pos < len(text) and text[pos] == "'"
    if quoted:
        pos += 1
    out = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if quoted and char == "'":
            return "".join(out), pos + 1
        if not quoted and char.isspace():
            break
        out.append(char)
        pos += 1
    if quoted:
        raise DSNError("dsn has an unterminated quoted value")
    return "".join(out), pos
