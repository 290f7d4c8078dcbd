"""The OpenAPI 3.1 description of the account attributes API, built from the attribute policy in
force (defaults plus ``OIDC_ATTRIBUTE_LEVELS``) and the value schemas of
``authn.attribute_policy``, so that it says what the API does. A test checks every route and
method against it, and real responses against its schemas."""

from __future__ import annotations

from ..authn.attribute_policy import ATTRIBUTES, AttributePolicy

BASE = "/api/account"
JSON = "application/json"
SCHEMAS = "#/components/schemas/"
ERRORS = ["invalid_request", "invalid_token", "insufficient_scope", "not_found"]


def _ref(name: str) -> dict:
    return {"$ref": SCHEMAS + name}


def _json(schema: dict) -> dict:
    return {JSON: {"schema": schema}}


def _challenge_header() -> dict:
    return {"WWW-Authenticate": {
        "description": "RFC 6750 §3 `Bearer` challenge; RFC 9470 §3 adds `acr_values` and `max_age`.",
        "required": True, "schema": {"type": "string"}}}


def _errors(*, head: bool, not_found: bool) -> dict:
    """400, 401, 403 (and 404): JSON bodies, except on HEAD, which has none."""
    def response(description, schema, challenged=True):
        out = {"description": description}
        if challenged:
            out["headers"] = _challenge_header()
        if not head:
            out["content"] = _json(schema)
        return out

    responses = {
        "400": response("Malformed request (RFC 6750 §3.1 invalid_request): token in the URL, not a Bearer "
                        "header, a body that is not the JSON described, or an invalid value.", _ref("Error"),
                        challenged=False),
        "401": response("No token (no `error`), an invalid, expired or revoked token (`invalid_token`), or a "
                        "token whose authentication is too weak or too old (RFC 9470 "
                        "`insufficient_user_authentication`).",
                        {"anyOf": [_ref("NoToken"), _ref("Error"), _ref("StepUpChallenge")]}),
        "403": response("RFC 6750 §3.1 insufficient_scope: the token lacks the attribute's scope, or was "
                        "issued to a client for itself (client_credentials) rather than for a person.",
                        _ref("Error")),
    }
    if not_found:
        responses["404"] = response("No such attribute, or it is not set.", _ref("Error"), challenged=False)
    return responses


def _levels_table(policy: AttributePolicy) -> str:
    lines = ["| attribute | scope | presence (HEAD) | read (GET) | update (PUT, DELETE) | update max_age |",
             "|---|---|---|---|---|---|"]
    for name, rule in policy.rules.items():
        lines.append(f"| `{name}` | `{rule.scope}` | `{rule.presence}` | `{rule.read}` | `{rule.update}` | "
                     f"{rule.max_age if rule.max_age is not None else '-'} |")
    return "\n".join(lines)


def _schemas(policy: AttributePolicy) -> dict:
    names = list(policy.rules)
    schemas = {}
    for name, rule in policy.rules.items():
        schemas[name] = {
            **ATTRIBUTES[name].schema, "description": ATTRIBUTES[name].description,
            "x-account-attribute": {"scope": rule.scope, "presence": rule.presence, "read": rule.read,
                                    "update": rule.update, "max_age": rule.max_age},
        }
    schemas.update({
        "Attribute": {"oneOf": [{
            "type": "object", "required": ["name", "value"], "additionalProperties": False,
            "properties": {"name": {"const": name}, "value": _ref(name)},
        } for name in names]},
        "Attributes": {
            "type": "object", "required": ["attributes"], "additionalProperties": False,
            "properties": {"attributes": {
                "type": "object", "additionalProperties": False,
                "description": "Every attribute that is set and that this token may read.",
                "properties": {name: _ref(name) for name in names}}},
        },
        "AttributeUpdate": {
            "type": "object", "required": ["value"], "additionalProperties": False,
            "properties": {"value": {"anyOf": [_ref(name) for name in names],
                                     "description": "Must match the schema of the attribute named in the path."}},
        },
        "NoToken": {"type": "object", "maxProperties": 0,
                    "description": "RFC 6750 §3.1: no authentication information, no error code."},
        "Error": {
            "type": "object", "required": ["error", "error_description"], "additionalProperties": False,
            "properties": {"error": {"enum": ERRORS}, "error_description": {"type": "string"},
                           "scope": {"type": "string", "description": "The scope the token lacks."}},
        },
        "StepUpChallenge": {
            "type": "object", "required": ["error", "error_description", "acr_values"],
            "additionalProperties": False,
            "description": "RFC 9470 §3: ask the authorization server again with these `acr_values` "
                           "(and `max_age`), then retry with the new access token.",
            "properties": {
                "error": {"const": "insufficient_user_authentication"},
                "error_description": {"type": "string"},
                "acr_values": {"type": "string", "enum": list(policy.ladder.levels)},
                "max_age": {"type": "integer", "minimum": 0},
            },
        },
        "OpenAPI": {"type": "object", "required": ["openapi", "info", "paths"]},
    })
    return schemas


def document(policy: AttributePolicy, issuer: str) -> dict:
    names = list(policy.rules)
    name_parameter = {"name": "name", "in": "path", "required": True, "schema": {"enum": names},
                      "description": "The attribute."}
    secured = [{"bearer": []}]
    no_store = {"Cache-Control": {"description": "`no-store`: the body is personal data.",
                                  "schema": {"const": "no-store"}}}
    collection_ok = {"description": "The attributes.", "headers": no_store}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Account attributes", "version": "1",
            "description": "Personal data the provider keeps for a person, read and changed by an application "
                           "holding an access token issued for that person (RFC 6750 §2.1, Authorization "
                           "header only). Each attribute needs a scope and a level of authentication (`acr`) "
                           "per action:\n\n" + _levels_table(policy),
        },
        "servers": [{"url": issuer}],
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An RFC 9068 access token from this provider, issued for a person."}},
            "schemas": _schemas(policy),
        },
        "paths": {
            f"{BASE}/attributes": {
                "get": {"operationId": "listAttributes", "security": secured,
                        "summary": "Every attribute that is set and that the token may read.",
                        "responses": {"200": {**collection_ok, "content": _json(_ref("Attributes"))},
                                      **_errors(head=False, not_found=False)}},
                "head": {"operationId": "listAttributesHead", "security": secured,
                         "summary": "As GET, without a body.",
                         "responses": {"200": collection_ok, **_errors(head=True, not_found=False)}},
            },
            f"{BASE}/attributes/{{name}}": {
                "parameters": [name_parameter],
                "head": {"operationId": "checkAttribute", "security": secured,
                         "summary": "Whether the attribute is set (needs the presence level).",
                         "responses": {"204": {"description": "It is set."}, **_errors(head=True, not_found=True)}},
                "get": {"operationId": "readAttribute", "security": secured,
                        "summary": "The attribute's value (needs the read level).",
                        "responses": {"200": {"description": "The value.", "headers": no_store,
                                              "content": _json(_ref("Attribute"))},
                                      **_errors(head=False, not_found=True)}},
                "put": {"operationId": "updateAttribute", "security": secured,
                        "summary": "Set the value (needs the update level, and a recent sign-in where the "
                                   "attribute has an update max_age).",
                        "requestBody": {"required": True, "content": _json(_ref("AttributeUpdate"))},
                        "responses": {"200": {"description": "Stored.", "headers": no_store,
                                              "content": _json(_ref("Attribute"))},
                                      **_errors(head=False, not_found=True),
                                      "413": {"description": "The body is over 64 KiB.",
                                              "content": _json(_ref("Error"))}}},
                "delete": {"operationId": "deleteAttribute", "security": secured,
                           "summary": "Remove the value (needs the update level, as PUT).",
                           "responses": {"204": {"description": "Removed."}, **_errors(head=False, not_found=True)}},
            },
            f"{BASE}/openapi.json": {
                "get": {"operationId": "openapi", "security": [], "summary": "This description.",
                        "responses": {"200": {"description": "OpenAPI 3.1.", "content": _json(_ref("OpenAPI"))}}},
                "head": {"operationId": "openapiHead", "security": [], "summary": "As GET, without a body.",
                         "responses": {"200": {"description": "OpenAPI 3.1."}}},
            },
        },
    }
