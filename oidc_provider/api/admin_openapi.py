"""The OpenAPI 3.1 description of the admin API, generated from the operation registry, so
that it lists exactly the routes, parameters and permissions the API has (a test checks it
against the app's routes and schemathesis checks the server against it)."""

from __future__ import annotations

from ..admin import OPERATIONS, Operation, Param

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}


def _schema(param: Param) -> dict:
    if param.type == "statements":
        return {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Statement"}}
    if param.type == "array":
        items = {"type": "string", "minLength": 1, "maxLength": param.max_length}
        if param.pattern:
            items["pattern"] = param.pattern
        return {"type": "array", "maxItems": 100, "items": items}
    schema: dict = {"type": param.type}
    if param.type == "string":
        schema["maxLength"] = param.max_length
        if param.enum:
            schema["enum"] = list(param.enum)
        if param.where == "path":
            schema["minLength"] = 1
        if param.pattern:
            schema["pattern"] = param.pattern
    if param.type == "integer":
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    if param.secret:
        schema["writeOnly"] = True
    if param.help:
        schema["description"] = param.help
    return schema


def _errors(op: Operation) -> dict:
    def response(text):
        return {"description": text, "content": {JSON: {"schema": ERROR}}}

    return {
        "400": response("Bad input: the `error_description` names the parameter (and, for a password the "
                        "password policy refuses, the rule it breaks)."),
        "401": {"description": "No bearer token (the body is an empty object, RFC 6750 §3.1), or an invalid, "
                               "expired or revoked one (`invalid_token`).",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
                "content": {JSON: {"schema": {"anyOf": [{"type": "object", "maxProperties": 0}, ERROR]}}}},
        "403": {"description": f"`insufficient_scope` (RFC 6750 §3.1): the token's roles allow no "
                               f"`{op.permission}` on `{op.resource}`"
                               + (f" and {op.delegation}" if op.delegation else "")
                               + "; the challenge's `scope` names the permission missing. `forbidden`: refused "
                               "for another reason the description names.",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": {JSON: {"schema": ERROR}}},
        "404": response("No such account, role, system account or token."),
        "409": response("It would leave things inconsistent (a name taken, a role still granted)."),
    }


def _operation(op: Operation) -> dict:
    parameters = [{"name": p.name, "in": p.where, "required": p.where == "path" or p.required,
                   "schema": _schema(p)} for p in op.params if p.where in ("path", "query")]
    body = [p for p in op.params if p.where == "body"]
    out = {
        "operationId": op.name,
        "summary": op.summary,
        "description": f"Needs `{op.permission}` on `{op.resource}` at the issuer's audience"
                       + (f", or {op.delegation}" if op.delegation else "") + ".",
        "tags": [op.name.split(".")[0]],
        "responses": {str(op.status): {"description": "Done.", "content": {JSON: {"schema": {
            "type": "array" if op.name.endswith(".list") or op.name == "accounts.roles" else "object"}}}},
            **_errors(op)},
    }
    if parameters:
        out["parameters"] = parameters
    if body:
        out["requestBody"] = {"required": any(p.required for p in body), "content": {JSON: {"schema": {
            "type": "object", "additionalProperties": False,
            "properties": {p.name: _schema(p) for p in body},
            "required": [p.name for p in body if p.required]}}}}
    return out


def document(issuer: str) -> dict:
    paths: dict = {"/api/admin/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This description.", "security": [], "tags": ["meta"],
        "responses": {"200": {"description": "The OpenAPI 3.1 document.",
                              "content": {JSON: {"schema": {"type": "object"}}}}}}}}
    for op in sorted(OPERATIONS.values(), key=lambda o: o.path):
        paths.setdefault("/api/admin" + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Admin API", "version": "1",
                 "description": "Accounts, clients, system accounts and their credentials, roles, grants, "
                                "personal tokens and audit events. See docs/admin-api.md."},
        "servers": [{"url": issuer}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A personal access token or an access token "
                                                          "for the issuer's audience."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "error_description"],
                          "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}},
                "Statement": {"type": "object", "additionalProperties": False,
                              "required": ["audience", "actions", "resources"], "properties": {
                                  "audience": {"type": "string", "minLength": 1, "maxLength": 200},
                                  "actions": {"type": "array", "minItems": 1, "maxItems": 50,
                                              "items": {"type": "string", "minLength": 1, "maxLength": 200}},
                                  "resources": {"type": "array", "minItems": 1, "maxItems": 50,
                                                "items": {"type": "string", "minLength": 1, "maxLength": 200}}}},
            },
        },
    }
