"""The admin API (``/api/admin``) through the Flask test client: who may call it (RFC 6750
bearer tokens for the issuer's audience), what the caller's roles allow, every registered
operation end to end with its audit row, bad input refused without a change, and the OpenAPI
description kept true to the routes and to real answers."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from oidc_provider.access import system_accounts
from oidc_provider.admin import OPERATIONS, Permission
from oidc_provider.admin import services as admin_services
from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.models import Client, PersonalToken

from ..conftest import ISSUER
from ..helpers import make_client, make_user
from ..spec._clients import set_columns
from ..spec._tokens import foreign_token, www_authenticate
from ._admin import (
    ADMIN,
    API,
    APP,
    OPENAPI,
    admin_token,
    audit_since,
    bearer,
    define_role,
    grant,
    last_audit_id,
    personal_token,
    revoke,
    snapshot,
)
from ._admin_cases import CASES, KEY

DOCS = Path(__file__).resolve().parents[2] / "docs" / "admin-api.md"
VIEWER = {"audience": APP, "actions": ["read"], "resources": ["*"]}


@pytest.fixture
def world(app):
    """ops holds admin (with a token for the issuer); alice holds nothing; bob holds viewer
    (a role at another audience) and a personal token for it; spare is granted to no one;
    nightly is a system account with a secret, paused a disabled one."""
    token = admin_token(app, "ops")
    make_user(app, "alice")
    make_user(app, "bob")
    define_role(app, "viewer", VIEWER)
    define_role(app, "spare", VIEWER)
    grant(app, "bob", "viewer")
    bob_pat, _ = personal_token(app, "bob", audience=APP)
    with app.app_context():
        nightly, secret = system_accounts.create("nightly", scope="reports")
        system_accounts.create("paused")
        system_accounts.disable("paused")
        db.session.commit()
        nightly_id = nightly.client_id
    wiki = make_client(app, name="Wiki")
    return {"token": token, "bob_pat": bob_pat, "nightly": (nightly_id, secret), "wiki": wiki}


def call(http, method, path, token=None, *, json=None, **kw):
    headers = bearer(token) if token else {}
    return http.open(API + path, method=method, json=json, headers=headers, **kw)


def assert_error(response, status, error):
    assert (response.status_code, response.json["error"]) == (status, error), response.json
    assert response.json["error_description"]
    assert response.headers["Cache-Control"] == "no-store"


def assert_insufficient_scope(response, scope):
    """RFC 6750 §3.1 ``insufficient_scope``: "The request requires higher privileges than
    provided by the access token. The resource server SHOULD respond with the HTTP 403
    (Forbidden) status code and MAY include the scope attribute with the scope necessary to
    access the protected resource"; §3: the ``WWW-Authenticate: Bearer`` challenge."""
    assert_error(response, 403, "insufficient_scope")
    assert response.json["scope"] == scope
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="admin", ')
    assert 'error="insufficient_scope"' in challenge and f'scope="{scope}"' in challenge


# ---------------------------------------------------------------- RFC 6750: who may call

def test_rfc6750_3_1_no_token_is_401_with_a_bare_challenge(client, world):
    """§3.1: "If the request lacks any authentication information ... the resource server
    SHOULD NOT include an error code or other error information"."""
    response = call(client, "GET", "/accounts")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="admin"'
    assert response.json == {}


@pytest.mark.parametrize("which", ["garbage", "unknown_pat", "expired_pat", "revoked_pat", "foreign_jwt",
                                   "other_audience_pat"])
def test_rfc6750_3_1_bad_token_is_401_invalid_token(app, client, world, which):
    """§3.1 invalid_token: "expired, revoked, malformed, or invalid for other reasons"; RFC 9068
    §4: a token whose ``aud`` is not this provider is refused."""
    pat_id, pat = personal_token(app, "ops")
    if which == "expired_pat":
        set_columns(app, PersonalToken, PersonalToken.public_id == pat_id, expires_at=utcnow() - timedelta(seconds=1))
    if which == "revoked_pat":
        call(client, "DELETE", f"/tokens/{pat_id}", world["token"])
    if which == "other_audience_pat":
        pat = personal_token(app, "ops", audience=APP)[1]
    token = {"garbage": "not-a-token", "unknown_pat": "oidcpat_" + "A" * 43,
             "foreign_jwt": foreign_token(service_token(app, client))}.get(which, pat)
    before = last_audit_id(app)
    response = call(client, "GET", "/accounts", token)
    assert_error(response, 401, "invalid_token")
    assert www_authenticate(response)["error"] == "invalid_token"
    assert [(r["event"], r["reason"]) for r in audit_since(app, before)] == [("admin:api:denied", "invalid_token")]


def test_rfc6750_2_3_token_in_the_query_string_is_400(client, world):
    """§2.3 is not offered: a token in the URL ends up in logs. §3.1 invalid_request."""
    response = client.get(f"{API}/accounts", query_string={"access_token": world["token"]})
    assert_error(response, 400, "invalid_request")
    assert www_authenticate(response)["error"] == "invalid_request"


def service_token(app, client, *, role: str | None = None, audience: str | None = None) -> str:
    """An access token from client_credentials (RFC 6749 §4.4) for a system account."""
    with app.app_context():
        service, secret = admin_services.create_service(name="deployer", scope="")
        service_id = service.client_id
        db.session.commit()
    if role:
        grant(app, "deployer", role)
    if audience:
        set_columns(app, Client, Client.client_id == service_id, audience=audience)
    issued = client.post("/token", data={"grant_type": "client_credentials"}, auth=(service_id, secret))
    assert issued.status_code == 200, issued.json
    return issued.json["access_token"]


def test_rfc9068_access_token_for_the_issuer_works_and_names_the_actor(app, client, world):
    """A system account holding the admin role calls the API with its client_credentials
    access token (``aud`` = the issuer); its name is the actor of what it does."""
    token = service_token(app, client, role="admin")
    assert call(client, "GET", "/accounts", token).status_code == 200
    before = last_audit_id(app)
    assert call(client, "PUT", "/accounts/alice/roles/spare", token).status_code == 200
    assert [(r["event"], r["actor"]) for r in audit_since(app, before)] == [("admin:role:granted", "deployer")]


def test_rfc9068_4_access_token_for_another_audience_is_invalid_token(app, client, world):
    """§4: the resource server "MUST validate that the aud claim contains a resource indicator
    value corresponding to an identifier the resource server expects for itself"."""
    token = service_token(app, client, role="admin", audience=APP)
    assert_error(call(client, "GET", "/accounts", token), 401, "invalid_token")


# ---------------------------------------------------------------- what the roles allow

def test_read_only_role_lists_but_cannot_create(app, client, world):
    define_role(app, "auditor", {"audience": ISSUER, "actions": ["admin:accounts:read"], "resources": ["*"]})
    make_user(app, "carol")
    grant(app, "carol", "auditor")
    token = personal_token(app, "carol")[1]
    assert call(client, "GET", "/accounts", token).status_code == 200
    before, state = last_audit_id(app), snapshot(app)
    response = call(client, "POST", "/accounts", token, json={"username": "mallory"})
    assert_insufficient_scope(response, "admin:accounts:write")
    assert audit_since(app, before) == [{
        "event": "admin:api:denied", "outcome": "failure", "reason": "forbidden", "account": "carol", "actor": None,
        "detail": {"operation": "accounts.create", "permission": "admin:accounts:write",
                   "resource": "account:mallory"}}]
    assert {**snapshot(app), "audit": state["audit"]} == state


def test_statement_resources_narrow_what_a_role_reaches(app, client, world):
    define_role(app, "a-team", {"audience": ISSUER, "actions": ["admin:accounts:read"], "resources": ["account:a*"]})
    make_user(app, "carol")
    grant(app, "carol", "a-team")
    token = personal_token(app, "carol")[1]
    assert call(client, "GET", "/accounts/alice", token).status_code == 200
    assert_insufficient_scope(call(client, "GET", "/accounts/bob", token), "admin:accounts:read")


def test_pat_narrowed_to_a_non_admin_role_is_forbidden_though_its_owner_is_admin(app, client, world):
    grant(app, "ops", "viewer")
    narrowed = personal_token(app, "ops", roles=["viewer"])[1]
    assert_insufficient_scope(call(client, "GET", "/accounts", narrowed), "admin:accounts:read")
    assert call(client, "GET", "/accounts", world["token"]).status_code == 200


def test_owner_losing_the_admin_role_stops_the_pat_at_once(app, client, world):
    assert call(client, "GET", "/accounts", world["token"]).status_code == 200
    revoke(app, "ops", "admin")
    assert_insufficient_scope(call(client, "GET", "/accounts", world["token"]), "admin:accounts:read")


# ---------------------------------------------------------------- every operation


def test_every_registered_operation_has_a_case_and_no_case_is_stale():
    assert sorted(set(OPERATIONS) - set(CASES)) == [], "add a row to CASES for each new operation"
    assert sorted(set(CASES) - set(OPERATIONS)) == []


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_operation_works_through_the_api_and_every_action_is_audited(app, client, world, name):
    """Each operation answers its documented status and its answer validates against the
    OpenAPI description; every admin action (every method but GET) writes an audit row whose
    actor is the caller (DESIGN: "every ... admin action is an audit row")."""
    op = OPERATIONS[name]
    assert name in CASES, f"no test case for operation {name}: add one to CASES"
    case = CASES[name](world)
    before = last_audit_id(app)
    response = call(client, op.method, op.path.format(**case.path), world["token"], json=case.body,
                    query_string=case.query)
    assert response.status_code == op.status, response.json
    actions = [r for r in audit_since(app, before) if r["event"] != "admin:api:denied"]
    conforms(described(client), op.path, op.method, response)
    assert case.check(app, response.json), response.json
    if op.method != "GET":
        assert actions and all(r["actor"] == "ops" and r["outcome"] == "success" for r in actions), actions
    else:
        assert actions == []


# ---------------------------------------------------------------- bad input

BAD_INPUT = [  # (method, path, body or raw text, query, words the description must hold)
    ("POST", "/accounts", {"username": "carol", "admin": True}, None, "unknown member 'admin'"),
    ("POST", "/accounts", {"username": 5}, None, "username must be a string"),
    ("PATCH", "/accounts/alice", {"disabled": "yes"}, None, "disabled must be a boolean"),
    ("PATCH", "/accounts/alice", {"email_verified": 1}, None, "email_verified must be a boolean"),
    ("PATCH", "/accounts/alice", {"email": "not-an-address"}, None, "email must be an address"),
    ("PUT", "/roles/deployers", {"statements": "all"}, None, "statements must be a list"),
    ("PUT", "/roles/deployers", {"statements": [{"audience": APP, "actions": ["a*b"], "resources": ["*"]}]},
     None, "invalid statement"),
    ("PUT", "/roles/bad name", {"statements": [VIEWER]}, None, "role name must be"),
    ("POST", "/tokens", {"user": "bob", "audience": APP, "roles": "viewer"}, None, "roles must be a list"),
    ("POST", "/tokens", {"user": "bob", "audience": APP, "expires": "forever"}, None, "expires must be"),
    ("GET", "/audit", None, {"limit": "lots"}, "limit must be an integer"),
    ("GET", "/audit", None, {"limit": "0"}, "limit must be between 1 and 1000"),
    ("GET", "/audit", None, {"since": "yesterday"}, "since must be"),
    ("GET", "/accounts", None, {"kind": "robot"}, "kind must be one of human, system"),
    ("POST", "/accounts", {}, None, "username is required"),
    ("POST", "/accounts", None, None, "username is required"),
    ("PUT", "/roles/deployers", {"description": "x"}, None, "statements is required"),
    ("PUT", "/accounts/alice/password", {}, None, "password is required"),
    ("POST", "/accounts", "username=carol", None, "must be a JSON object"),
    ("POST", "/accounts", '["carol"]', None, "must be a JSON object"),
    ("POST", "/accounts", '{"username": ', None, "must be a JSON object"),
    ("GET", "/audit", None, [("limit", "1"), ("limit", "2")], "limit given more than once"),
    ("GET", "/accounts", None, {"sort": "name"}, "unknown query parameter 'sort'"),
    ("POST", "/accounts", {"username": "c" * 151}, None, "username must be at most 150 characters"),
    ("PATCH", "/accounts/alice", {"name": "n" * 201}, None, "name must be at most 200 characters"),
    ("PATCH", "/accounts/alice", {"name": "nul\x00byte"}, None, "name must be text without NUL"),
    # RFC 8259 §8.2: JSON may carry an unpaired surrogate, which no database or hash takes.
    ("PATCH", "/accounts/alice", '{"name": "\\ud800"}', None, "name must be text without NUL or unpaired"),
    ("POST", "/accounts", '{"username": "carol", "password": "\\udc00 long enough"}', None,
     "password must be text without NUL or unpaired surrogates"),
    ("POST", "/tokens", '{"user": "bob", "audience": "x", "roles": ["\\ud800"]}', None, "roles must be a list"),
    ("PUT", "/roles/deployers", '{"statements": ' + "[" * 5000 + "]" * 5000 + "}", None, "must be a JSON object"),
    ("GET", "/audit", None, {"since": "0001-01-01T00:00:00+14:00"}, "since is out of range"),
    ("GET", "/audit", None, {"since": "9999-12-31T23:59:59-14:00"}, "since is out of range"),
    ("GET", "/audit", None, {"event": "e" * 65}, "event must be at most 64 characters"),
    ("GET", "/accounts/" + "a" * 151, None, None, "username must be at most 150 characters"),
    ("POST", "/services", {"name": "backup", "scope": "a\tb"}, None, "scope must be"),
    ("PUT", "/services/nightly/key", {}, None, "give either jwks"),
    ("PUT", "/services/nightly/key", {"jwks": KEY.as_dict(private=True)}, None, "private"),
    ("PUT", "/services/nightly/database-credentials", {"dsn": "postgresql://u:pw@db/x", "password": "p"}, None,
     "must not contain a password"),
]


def test_bad_input_is_400_invalid_request_and_changes_nothing(app, client, world):
    """DESIGN "What bad input gets": a clear error in the protocol's shape, nothing changed.
    One world for all the cases: none of them may change it."""
    state = snapshot(app)
    for method, path, body, query, words in BAD_INPUT:
        if isinstance(body, str):
            kind = "application/json" if body[:1] in "[{" else "application/x-www-form-urlencoded"
            response = client.open(API + path, method=method, data=body, headers=bearer(world["token"]),
                                   content_type=kind)
        else:
            response = call(client, method, path, world["token"], json=body, query_string=query)
        case = (method, path, body, query)
        assert (response.status_code, response.json["error"]) == (400, "invalid_request"), (case, response.json)
        assert words in response.json["error_description"], (case, response.json)
        assert snapshot(app) == state, case


CONFLICTS = [  # (method, path, body, status, error)
    ("GET", "/accounts/nobody", None, 404, "not_found"),
    ("PATCH", "/accounts/nobody", {"name": "x"}, 404, "not_found"),
    ("PUT", "/accounts/nobody/roles/viewer", None, 404, "not_found"),
    ("PUT", "/accounts/alice/roles/nosuch", None, 404, "not_found"),
    ("DELETE", "/accounts/alice/roles/viewer", None, 404, "not_found"),
    ("GET", "/roles/nosuch", None, 404, "not_found"),
    ("DELETE", "/roles/nosuch", None, 404, "not_found"),
    ("DELETE", "/tokens/ffffffffffff", None, 404, "not_found"),
    ("POST", "/tokens", {"user": "nobody", "audience": APP}, 404, "not_found"),
    ("GET", "/tokens", None, 404, "not_found"),  # with ?user=nobody, below
    ("GET", "/services/nobody", None, 404, "not_found"),
    ("POST", "/services/alice/credential", None, 404, "not_found"),  # a person is no system account
    ("POST", "/services", {"name": "alice"}, 409, "conflict"),
    ("DELETE", "/roles/viewer", None, 409, "conflict"),  # still granted to bob
    ("POST", "/accounts", {"username": "alice"}, 409, "conflict"),
]


def test_unknown_names_are_404_and_conflicts_409_and_change_nothing(app, client, world):
    state = snapshot(app)
    for method, path, body, status, error in CONFLICTS:
        query = {"user": "nobody"} if path == "/tokens" and method == "GET" else None
        response = call(client, method, path, world["token"], json=body, query_string=query)
        assert (response.status_code, response.json["error"]) == (status, error), (method, path, response.json)
        assert response.json["error_description"]
        assert snapshot(app) == state, (method, path)


# ---------------------------------------------------------------- the OpenAPI description

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def described(http) -> dict:
    response = http.get(OPENAPI)
    assert (response.status_code, response.mimetype) == (200, "application/json")
    return response.json


def test_the_description_is_valid_openapi_3_1(client):
    doc = described(client)
    assert doc["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(doc).validate()


def test_every_admin_route_and_method_is_described_and_nothing_else(app, client):
    # HEAD and OPTIONS are Werkzeug's automatic companions of GET and every rule, not operations.
    routes = {(re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin_api.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    doc = described(client)
    operations = {(path, method) for path, item in doc["paths"].items() for method in item if method in HTTP_METHODS}
    assert routes == operations
    assert {(API + op.path, op.method.lower()) for op in OPERATIONS.values()} <= operations


def _validate(doc: dict, schema: dict, instance) -> None:
    # "#/components/..." references resolve against the root: carry the components along.
    Draft202012Validator({**schema, "components": doc["components"]}).validate(instance)


def conforms(doc: dict, path: str, method: str, response) -> None:
    operation = doc["paths"][API + path if not path.startswith(API) else path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path}: {status} is not described"
    answer = operation["responses"][status]
    for name, header in answer.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, f"{method} {path} {status}: no {name} header"
    content = answer.get("content")
    assert content and response.mimetype in content, f"{method} {path} {status}: {response.mimetype} not described"
    _validate(doc, content[response.mimetype]["schema"], response.json)


def test_real_error_answers_validate_against_the_description(app, client, world):
    doc = described(client)
    reader = personal_token(app, "bob", roles=["viewer"])[1]
    exchanges = [  # (method, path template, concrete path, token, body, status)
        ("GET", "/accounts", "/accounts", None, None, 401),
        ("GET", "/accounts", "/accounts", "oidcpat_nope", None, 401),
        ("GET", "/accounts", "/accounts", reader, None, 403),
        ("POST", "/accounts", "/accounts", world["token"], {"username": 7}, 400),
        ("GET", "/accounts/{username}", "/accounts/nobody", world["token"], None, 404),
        ("DELETE", "/roles/{name}", "/roles/viewer", world["token"], None, 409),
        ("PUT", "/roles/{name}", "/roles/ci", world["token"], {"statements": [ADMIN]}, 200),
        ("POST", "/tokens", "/tokens", world["token"], {"user": "alice", "audience": ISSUER}, 201),
        ("GET", "/openapi.json", "/openapi.json", None, None, 200),
    ]
    for method, template, path, token, body, status in exchanges:
        response = call(client, method, path, token, json=body)
        assert response.status_code == status, (method, path, response.json)
        conforms(doc, template, method, response)


# ---------------------------------------------------------------- the documentation


def test_docs_name_every_permission_and_every_operation_path():
    """docs/admin-api.md is the operator's reference: it names every permission and route."""
    text = DOCS.read_text()
    assert [p.value for p in Permission if f"`{p.value}`" not in text] == []
    assert sorted({op.path for op in OPERATIONS.values() if f"{op.method} {API}{op.path}" not in text}) == []
