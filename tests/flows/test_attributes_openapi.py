"""The OpenAPI 3.1 description of the account attributes API is kept true: every route and
method the blueprint serves is described and nothing else is, the schemas are valid JSON Schema
2020-12, the levels it publishes are the ones in force, and real responses of every status
validate against what it says."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

from oidc_provider.admin import services as admin_services
from oidc_provider.extensions import db

from ..helpers import Browser, make_user
from ..spec._attributes import attribute_client, call, enroll_totp, mfa_token, pwd_token

OPENAPI = "/api/account/openapi.json"
ITEM = "/api/account/attributes/{name}"
COLLECTION = "/api/account/attributes"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def described(http) -> dict:
    response = http.get(OPENAPI)
    assert (response.status_code, response.mimetype) == (200, "application/json")
    return response.json


def test_every_route_and_method_is_described_and_nothing_else(app):
    routes = {(re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("attributes.")
              for method in rule.methods}
    doc = described(app.test_client())
    operations = {(path, method) for path, item in doc["paths"].items() for method in item if method in HTTP_METHODS}
    assert routes == operations
    assert ("/api/account/attributes/{name}", "options") not in routes  # no automatic OPTIONS (no CORS)


def test_the_schemas_are_json_schema_2020_12_and_every_ref_resolves(app):
    doc = described(app.test_client())
    assert (doc["openapi"], doc["jsonSchemaDialect"]) == ("3.1.0", "https://json-schema.org/draft/2020-12/schema")
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    refs = list(_refs(doc))
    assert len(refs) > 10
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_published_levels_are_the_levels_in_force(app_factory):
    """Built from the policy: OIDC_ATTRIBUTE_LEVELS shows in the description."""
    app = app_factory(attribute_levels="phone_number=read:mfa,update:phr,max_age:300")
    schemas = described(app.test_client())["components"]["schemas"]
    policy = app.extensions["oidc_attribute_policy"]
    assert {name: schemas[name]["x-account-attribute"] for name in policy.rules} == {
        name: {"scope": r.scope, "presence": r.presence, "read": r.read, "update": r.update, "max_age": r.max_age}
        for name, r in policy.rules.items()}
    assert schemas["phone_number"]["x-account-attribute"] == \
        {"scope": "phone", "presence": "pwd", "read": "mfa", "update": "phr", "max_age": 300}
    assert described(app.test_client())["paths"][ITEM]["parameters"][0]["schema"]["enum"] == list(policy.rules)


def _validate(doc: dict, schema: dict, instance) -> None:
    # "#/components/..." references resolve against the root: carry the components along.
    Draft202012Validator({**schema, "components": doc["components"]}).validate(instance)


def conforms(doc: dict, path: str, method: str, response) -> None:
    operation = doc["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path}: {status} is not described"
    answer = operation["responses"][status]
    for name, header in answer.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, f"{method} {path} {status}: no {name} header"
        if name in response.headers:
            _validate(doc, header["schema"], response.headers[name])
    content = answer.get("content")
    if content is None:
        assert response.data == b"", f"{method} {path} {status}: a body that is not described"
    else:
        assert response.mimetype in content, f"{method} {path} {status}: {response.mimetype} is not described"
        _validate(doc, content[response.mimetype]["schema"], response.json)


@pytest.fixture
def app(app_factory):
    """OIDC_ENROLLED_FACTORS=when-asked: these tests need access tokens at ``pwd`` for a person
    who has a second factor, which only that mode issues (under ``always`` every sign-in of an
    enrolled person reaches ``mfa``; tests/flows/test_signin_policy.py)."""
    return app_factory(enrolled_factors="when-asked")


@pytest.fixture
def tokens(app, browser):
    make_user(app)
    rp = attribute_client(app)
    mfa = mfa_token(app, browser, *rp, enroll_totp(app))
    pwd = pwd_token(Browser(app), *rp)
    narrow = pwd_token(Browser(app), *rp, scope="openid")
    with app.app_context():
        service, secret = admin_services.create_service(name="nightly", scope="phone")
        db.session.commit()
        service_id = service.client_id
    issued = browser.http.post("/token", data={"grant_type": "client_credentials"}, auth=(service_id, secret))
    return {"mfa": mfa, "pwd": pwd, "narrow": narrow, "service": issued.json["access_token"], "none": None,
            "bogus": "not.a.token"}


# (method, path, attribute, token, body or raw, expected status)
EXCHANGES = [
    ("PUT", ITEM, "phone_number", "mfa", {"value": "+441632960000"}, 200),
    ("PUT", ITEM, "address", "mfa", {"value": {"locality": "Springfield"}}, 200),
    ("PUT", ITEM, "locale", "pwd", {"value": "en-GB"}, 200),
    ("GET", ITEM, "phone_number", "pwd", None, 200),
    ("GET", ITEM, "address", "mfa", None, 200),
    ("GET", COLLECTION, None, "mfa", None, 200),
    ("GET", COLLECTION, None, "narrow", None, 200),
    ("HEAD", COLLECTION, None, "pwd", None, 200),
    ("HEAD", ITEM, "locale", "pwd", None, 204),
    ("HEAD", ITEM, "zoneinfo", "pwd", None, 404),
    ("GET", ITEM, "zoneinfo", "pwd", None, 404),
    ("GET", ITEM, "nickname", "pwd", None, 404),
    ("DELETE", ITEM, "locale", "pwd", None, 204),
    ("DELETE", ITEM, "locale", "pwd", None, 404),
    ("PUT", ITEM, "locale", "pwd", {"value": "English"}, 400),
    ("PUT", ITEM, "locale", "pwd", "not json", 400),
    ("PUT", ITEM, "address", "mfa", {"value": {"formatted": "x" * 70_000}}, 413),
    ("GET", ITEM, "locale", "none", None, 401),
    ("HEAD", ITEM, "locale", "none", None, 401),
    ("GET", COLLECTION, None, "bogus", None, 401),
    ("GET", ITEM, "address", "pwd", None, 401),
    ("PUT", ITEM, "phone_number", "pwd", {"value": "+15555550100"}, 401),
    ("DELETE", ITEM, "address", "pwd", None, 401),
    ("GET", ITEM, "phone_number", "narrow", None, 403),
    ("HEAD", ITEM, "phone_number", "narrow", None, 403),
    ("GET", COLLECTION, None, "service", None, 403),
    ("PUT", ITEM, "locale", "service", {"value": "en-GB"}, 403),
]


def test_real_responses_validate_against_the_description(app, browser, tokens):
    doc = described(browser.http)
    seen = set()
    for method, path, name, who, body, status in EXCHANGES:
        if isinstance(body, str):
            response = browser.http.open(path.replace("{name}", name), method=method, data=body,
                                         content_type="application/json",
                                         headers={"Authorization": f"Bearer {tokens[who]}"})
        else:
            response = call(browser.http, method, name, tokens[who], body)
        assert response.status_code == status, (method, path, name, who, response.status_code, response.data[:200])
        conforms(doc, path, method, response)
        if status == 200 and method == "PUT":
            _validate(doc, doc["paths"][path]["put"]["requestBody"]["content"]["application/json"]["schema"], body)
        seen.add(status)
    assert seen >= {200, 204, 400, 401, 403, 404}
    conforms(doc, "/api/account/openapi.json", "GET", browser.http.get(OPENAPI))
    conforms(doc, "/api/account/openapi.json", "HEAD", browser.http.head(OPENAPI))
