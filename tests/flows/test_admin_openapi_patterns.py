"""The admin API's OpenAPI description refuses what the server refuses (issue 12): every shape
the server checks (names, scopes, audiences, addresses, lifetimes, redirect URIs, resources) is
one pattern, shared by the domain check, the API's parameter gate (``admin.ops.Param``) and the
document. Checked three ways: the pattern and the domain check agree on generated text (and on
every lifetime of the shape); every value the server refuses with 400 the document refuses too;
and values the document accepts are accepted by the server.

Patterns are read as JSON Schema reads them (ECMA-262: searched, ``$`` is the end of the text),
not as Python's ``re.search`` would (where ``$`` also matches before a final newline).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend

from oidc_provider.access import personal_tokens, system_accounts
from oidc_provider.access import roles as role_service
from oidc_provider.admin import OPERATIONS
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.admin import clients as admin_clients
from oidc_provider.admin.ops import pattern_matches
from oidc_provider.oauth.resources import resource_problem
from oidc_provider.problems import Problem

from ._admin import API, OPENAPI, admin_token, bearer


def _ecma_pattern(validator, pattern, instance, schema):
    if isinstance(instance, str) and not pattern_matches(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


ECMA = extend(Draft202012Validator, {"pattern": _ecma_pattern})


def _refused(check) -> callable:
    def refused(value) -> bool:
        try:
            return check(value) is False
        except Problem:
            return True
    return refused


# Each pattern-checked parameter: the domain check the server runs on it, True when it refuses.
DOMAIN = {
    ("accounts.create", "username"): lambda v: not admin_accounts.USERNAME.fullmatch(v),
    ("accounts.create", "email"): lambda v: "@" not in v,
    ("accounts.update", "email"): lambda v: "@" not in v,
    ("services.create", "name"): lambda v: not system_accounts.NAME.fullmatch(v),
    ("services.create", "scope"): _refused(system_accounts.check_scope),
    ("services.update", "scope"): _refused(system_accounts.check_scope),
    ("clients.create", "scope"): _refused(system_accounts.check_scope),
    ("clients.update", "scope"): _refused(system_accounts.check_scope),
    ("roles.define", "name"): lambda v: not role_service.ROLE_NAME.fullmatch(v),
    ("roles.show", "name"): lambda v: not role_service.ROLE_NAME.fullmatch(v),
    ("roles.remove", "name"): lambda v: not role_service.ROLE_NAME.fullmatch(v),
    ("tokens.create", "audience"): _refused(personal_tokens.check_audience),
    ("tokens.create", "expires"): _refused(personal_tokens.parse_lifetime),
    ("clients.create", "audience"): _refused(personal_tokens.check_audience),
    ("clients.update", "audience"): _refused(personal_tokens.check_audience),
    ("services.create", "audience"): _refused(personal_tokens.check_audience),
    ("services.update", "audience"): _refused(personal_tokens.check_audience),
}
# URIs: the server checks the pattern and, beyond it, what urlsplit finds (a port that is no
# number): those are tested with the table below rather than generated text.
URI_PARAMS = {("clients.create", "redirect_uris"), ("clients.update", "redirect_uris"),
              ("clients.create", "post_logout_redirect_uris"), ("clients.update", "post_logout_redirect_uris"),
              ("clients.create", "resources"), ("clients.update", "resources"),
              ("services.create", "resources"), ("services.update", "resources")}
PATTERNED = sorted((op.name, p.name) for op in OPERATIONS.values() for p in op.params if p.pattern)


def test_every_patterned_parameter_is_checked_here():
    assert sorted(DOMAIN.keys() | URI_PARAMS) == PATTERNED


def _param(op_name, name):
    return next(p for p in OPERATIONS[op_name].params if p.name == name)


def _document_schema(document, op_name, name) -> dict:
    op = OPERATIONS[op_name]
    operation = document["paths"][API + op.path][op.method.lower()]
    param = _param(op_name, name)
    if param.where == "body":
        schema = operation["requestBody"]["content"]["application/json"]["schema"]["properties"][name]
    else:
        schema = next(p["schema"] for p in operation["parameters"] if p["name"] == name)
    return schema["items"] if schema.get("type") == "array" else schema


@pytest.fixture(scope="module")
def document():
    from oidc_provider import create_app

    from ..conftest import settings_for
    return create_app(settings_for()).test_client().get(OPENAPI).json


def test_the_document_publishes_the_servers_pattern(document):
    for op_name, name in PATTERNED:
        assert _document_schema(document, op_name, name)["pattern"] == _param(op_name, name).pattern


# Text biased towards what the patterns care about: letters, digits, the few punctuation marks
# they allow or refuse, spaces, control characters, a trailing newline, non-ASCII. (NUL is
# refused by every string parameter before any pattern: tests/spec/test_bad_input.py.)
TEXT = st.text(alphabet=st.sampled_from(list("aZ09._@-#:/ !\"$~\t\n\x7f\u00e9\u212ahdw")), min_size=0, max_size=12)


@pytest.mark.parametrize("op_name,name", sorted(DOMAIN))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=TEXT)
def test_pattern_and_domain_check_agree(document, op_name, name, value):
    """The server's own check refuses a value exactly when the document's pattern does (and the
    API's gate, which reads the same pattern, with it)."""
    schema = _document_schema(document, op_name, name)
    document_refuses = not ECMA(schema).is_valid(value)
    assert DOMAIN[(op_name, name)](value) == document_refuses, value
    param = _param(op_name, name)
    gate_refuses = _refused(lambda v: param.check([v] if param.type == "array" else v))(value) if value else True
    if value and len(value) <= param.max_length:
        assert gate_refuses == document_refuses, value


def test_every_lifetime_of_the_shape_agrees():
    """``expires``: the pattern is exactly parse_lifetime (1-4 digits and h, d or w; at most
    366 days; no zero, no leading zero), checked on every value of the shape."""
    values = [f"{prefix}{n}{unit}" for n in range(10000) for unit in "hdwm" for prefix in ("", "0")]
    disagree = [v for v in values if pattern_matches(personal_tokens.LIFETIME_PATTERN, v)
                == _refused(personal_tokens.parse_lifetime)(v)]
    assert disagree == []


BAD_URIS = ["/relative", "cb", "https://rp.example/cb#frag", "http:/no-host", "http:///no-host", "https://",
            "https://rp.example/a b", "https://rp.example/\tcb", "https://rp.example/cb\n", "https://r\u00e9p.example/",
            "1http://x.example/"]
# Absolute URIs, so fine as resources, but never where a browser is sent (RFC 6749 §3.1.2).
BAD_REDIRECT_URIS = ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "FILE:///etc/passwd",
                     "vbscript:x"]
GOOD_URIS = ["https://rp.example/cb", "http://127.0.0.1:9/e2e/callback", "com.example.app:/oauth", "urn:example:api",
             "https://rp.example/cb?x=$y"]


@pytest.mark.parametrize("uri", BAD_URIS)
def test_a_uri_the_server_refuses_the_document_refuses(app, client, document, uri):
    """Redirect URIs (RFC 6749 §3.1.2: absolute, no fragment) and resources (RFC 8707 §2): a
    value the server answers 400 the document's pattern refuses too."""
    token = admin_token(app)
    for op_name, name, body in (("clients.create", "redirect_uris", {"name": "X", "redirect_uris": [uri]}),
                                ("clients.create", "resources", {"name": "X", "redirect_uris": GOOD_URIS[:1],
                                                                 "resources": [uri]}),
                                ("services.create", "resources", {"name": "svc", "resources": [uri]})):
        response = client.post(API + OPERATIONS[op_name].path, headers=bearer(token), json=body)
        assert (response.status_code, response.json["error"]) == (400, "invalid_request"), (op_name, uri)
        assert not ECMA(_document_schema(document, op_name, name)).is_valid(uri), (op_name, uri)
    with app.app_context():
        assert resource_problem(uri) is not None
        with pytest.raises(Problem):
            admin_clients._check_redirect_uri(uri)


@pytest.mark.parametrize("uri", BAD_REDIRECT_URIS)
def test_a_redirect_uri_scheme_the_server_refuses_the_document_refuses(app, client, document, uri):
    token = admin_token(app)
    for op_name, name in (("clients.create", "redirect_uris"), ("clients.create", "post_logout_redirect_uris")):
        body = {"name": "X", "redirect_uris": [uri]} if name == "redirect_uris" else \
            {"name": "X", "redirect_uris": GOOD_URIS[:1], name: [uri]}
        response = client.post(API + "/clients", headers=bearer(token), json=body)
        assert (response.status_code, response.json["error"]) == (400, "invalid_request"), (name, uri)
        assert "forbidden scheme" in response.json["error_description"]
        assert not ECMA(_document_schema(document, op_name, name)).is_valid(uri), (name, uri)


@pytest.mark.parametrize("uri", GOOD_URIS)
def test_a_uri_the_document_accepts_the_server_takes(app, client, document, uri):
    token = admin_token(app)
    for op_name, name in (("clients.create", "redirect_uris"), ("clients.create", "resources")):
        assert ECMA(_document_schema(document, op_name, name)).is_valid(uri)
    response = client.post(API + "/clients", headers=bearer(token),
                           json={"name": "X", "redirect_uris": [uri], "resources": [uri]})
    assert response.status_code == 201, response.json
