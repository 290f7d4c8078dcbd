"""The input guard: what no endpoint accepts is refused before any view, and so before the
database, sees it. PostgreSQL refuses NUL in text and values longer than a column; a query that
fails so is a 500 with the request's values in the log. Here it is a 400 in the protocol's shape
(``errors.py``): RFC 6749 §5.2 JSON at the OAuth endpoints and the JSON APIs, an error
redirect or page at ``/authorize`` (OIDC Core §3.1.2.6), an HTML page elsewhere.

Refused, before the first ``before_request`` of any other module:

- a query string, ``application/x-www-form-urlencoded`` body or path that is not UTF-8 once
  percent-decoded (RFC 6749 Appendix B: parameters are UTF-8);
- control characters other than tab, line feed and carriage return, and lone surrogates, in a
  parameter name or value, a JSON string (but in the admin API's bodies, which it checks
  itself against its description) or the path; in a header value (RFC 9110 §5.5: a field
  value is visible characters, space and tab), or in client credentials sent with HTTP Basic
  (RFC 6749 §2.3.1, decoded as the token endpoint decodes them);
- a name longer than ``MAX_NAME``, a value or JSON string longer than ``MAX_VALUE``, more than
  ``MAX_PARAMETERS`` parameters, more than ``MAX_HEADERS`` headers or a header longer than
  ``MAX_VALUE`` (431, RFC 6585 §5).

Integers in URLs (``<int:...>``) are bounded to ``0..MAX_INT`` (a 32-bit ``INTEGER`` column):
a larger one matches no route, 404.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote, unquote_to_bytes

from flask import request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

MAX_VALUE = 8192
MAX_NAME = 128
MAX_PARAMETERS = 100
MAX_HEADERS = 100
MAX_INT = 2**31 - 1
MAX_JSON_ITEMS = 10_000
OAUTH_ENDPOINTS = ("/token", "/revoke", "/introspect")  # RFC 6749 §2.3.1 Basic is read there
# The admin API checks every member against its OpenAPI description (NUL, surrogates, lengths)
# and names the member in its answer; the guard leaves its JSON bodies to it.
SELF_VALIDATING_JSON = ("/api/admin/",)

# C0 controls but tab, LF and CR; DEL; lone surrogates (not text: psycopg cannot encode them).
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# RFC 9110 §5.5: field-content is VCHAR, obs-text, SP and HTAB.
_NOT_FIELD = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


class BadInput(BadRequest):
    """A request no endpoint accepts. ``error`` is the OAuth error code (RFC 6749 §5.2); the
    description names what was wrong, never the value."""

    def __init__(self, description: str, *, error: str = "invalid_request", code: int = 400):
        super().__init__(description)
        self.error, self.code = error, code


class BoundedInt(IntegerConverter):
    """``<int:...>`` with ``min=0, max=MAX_INT`` unless the rule says otherwise."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits, 0 if min is None else min, MAX_INT if max is None else max, signed)


def init_app(app) -> None:
    """Call before any blueprint is registered (the converter applies to rules added after)
    and before any other ``before_request`` (CSRF reads the form)."""
    app.url_map.converters["int"] = BoundedInt
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)


def clean(value) -> bool:
    """A parameter value this guard lets through (used to decide whether an error may go back
    to a redirect URI)."""
    return isinstance(value, str) and len(value) <= MAX_VALUE and not _NOT_TEXT.search(value)


def check_request() -> None:
    environ = request.environ
    _check_head(environ)
    mimetype = request.mimetype
    if mimetype == "application/x-www-form-urlencoded":
        _check_items(_pairs(request.get_data(cache=True), "form body"), "form body")
    elif mimetype == "multipart/form-data":
        _check_items(request.form.items(multi=True), "form body")
    elif request.is_json and not request.path.startswith(SELF_VALIDATING_JSON):
        _check_json(request.get_data(cache=True))
    if request.path in OAUTH_ENDPOINTS:
        _check_basic(request.headers.get("Authorization", ""))


def checked_form(environ: dict, body: bytes) -> list[tuple[str, str]]:
    """``check_request`` for a form-encoded request, on the WSGI environ and body the app would
    get (``serving/lanes.py`` answers only what passes): the body's pairs, decoded, or
    ``BadInput`` where the app would refuse the request."""
    _check_head(environ)
    pairs = _pairs(body, "form body")
    _check_items(pairs, "form body")
    if environ.get("PATH_INFO") in OAUTH_ENDPOINTS:
        _check_basic(environ.get("HTTP_AUTHORIZATION", ""))
    return pairs


def _check_head(environ) -> None:
    _check_headers(environ)
    _check_path(environ.get("PATH_INFO", ""))
    _check_items(_pairs(environ.get("QUERY_STRING", "").encode("latin-1", "replace"), "query string"),
                 "query string")


def _check_headers(environ) -> None:
    headers = [(k, v) for k, v in environ.items() if k.startswith("HTTP_") or k in ("CONTENT_TYPE",)]
    if len(headers) > MAX_HEADERS:
        raise BadInput(f"At most {MAX_HEADERS} header fields are accepted.", code=431)
    for name, value in headers:
        if not isinstance(value, str):
            continue
        if len(name) > MAX_NAME + 5 or len(value) > MAX_VALUE:
            raise BadInput("A header field is too long.", code=431)
        if _NOT_FIELD.search(value):
            raise BadInput("A header field contains a control character.")


def plain_fields(fields) -> bool:
    """True when header fields, as (name, value) pairs, each name once, would all pass
    ``check_request``'s header checks: ``serving/fast_lane.py`` answers only such requests and
    leaves the rest to the app, which refuses them in its words."""
    seen = set()
    for name, value in fields:
        if name in seen or len(seen) >= MAX_HEADERS or len(name) > MAX_NAME or len(value) > MAX_VALUE \
                or _NOT_FIELD.search(value):
            return False
        seen.add(name)
    return True


def _check_path(path: str) -> None:
    text = _utf8(path.encode("latin-1", "replace"), "path")
    if len(text) > MAX_VALUE or _NOT_TEXT.search(text):
        raise BadInput("The path contains a control character or is too long.")


def _pairs(raw: bytes, where: str) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` (a query string or a body), split as Werkzeug
    splits it and decoded strictly: Werkzeug replaces what is not UTF-8 with U+FFFD and would
    let it through."""
    pairs = []
    for chunk in raw.split(b"&"):
        if chunk:
            name, _, value = chunk.partition(b"=")
            pairs.append((_decode(name, where), _decode(value, where)))
    return pairs


def _check_items(items, where: str) -> None:
    for count, (name, value) in enumerate(items, start=1):
        if count > MAX_PARAMETERS:
            raise BadInput(f"The {where} has more than {MAX_PARAMETERS} parameters.")
        if len(name) > MAX_NAME:
            raise BadInput(f"A parameter name in the {where} is longer than {MAX_NAME} characters.")
        if len(value) > MAX_VALUE:
            raise BadInput(f"A parameter in the {where} is longer than {MAX_VALUE} characters.")
        if _NOT_TEXT.search(name) or _NOT_TEXT.search(value):
            raise BadInput(f"A parameter in the {where} contains a control character.")


def _decode(raw: bytes, where: str) -> str:
    return _utf8(unquote_to_bytes(raw.replace(b"+", b" ")), where)


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"The {where} is not valid UTF-8.") from None


def _check_json(raw: bytes) -> None:
    """Every string (member names too) is checked like a parameter; a body that does not parse
    (RFC 8259 §8.1: not UTF-8, among others) is left to the view, which says so in its words."""
    if not raw:
        return
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested too deep to parse: the view refuses it
        return
    stack, seen = [body], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_JSON_ITEMS:
            raise BadInput("The JSON body has too many members.")
        if isinstance(item, dict):
            for name in item:
                if len(name) > MAX_NAME or _NOT_TEXT.search(name):
                    raise BadInput("A member name in the JSON body is too long or contains a control character.")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and (len(item) > MAX_VALUE or _NOT_TEXT.search(item)):
            raise BadInput("A string in the JSON body is too long or contains a control character.")


def _check_basic(header: str) -> None:
    """RFC 6749 §2.3.1: client_id and client_secret, form-encoded, then Basic. Decoded as
    Authlib decodes them; one it cannot decode is left to it (invalid_client)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        text = base64.b64decode(token.strip()).decode("utf-8")
    except (binascii.Error, ValueError):
        return
    for part in text.split(":", 1):
        value = unquote(part)
        if len(value) > MAX_VALUE or _NOT_TEXT.search(value):
            # RFC 6749 §5.2 invalid_client: "Client authentication failed (e.g., unknown client...)".
            raise BadInput("The client credentials are not valid.", error="invalid_client", code=401)
