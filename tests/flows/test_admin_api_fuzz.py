"""Schemathesis against the admin API's own OpenAPI description, in process (WSGI), with an
admin's personal token: for every operation, generated requests (valid and invalid ones) never
get a server error, and every answer's status, content type and body are the ones the
description promises. DESIGN: "Never a stack trace, never a 500 for input a client can send".

Schemathesis is used as a library (its Hypothesis strategies and checks) under our own
``pytest.mark.parametrize``: its pytest plugin gives every operation the same node id on
pytest 9.2, and its lazy ``from_fixture`` loader fails there (it sets ``Node._nodeid``).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from oidc_provider import create_app
from oidc_provider.access import system_accounts
from oidc_provider.admin import OPERATIONS as REGISTRY
from oidc_provider.extensions import db

from ..conftest import settings_for
from ..helpers import make_user
from ._admin import API, APP, OPENAPI, admin_token, bearer, define_role, grant, personal_token

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The description needs no database: load it once, from an app made at import; every
# generated request goes to the test's own app (fresh tables, seeded below).
SCHEMA = schemathesis.openapi.from_wsgi(OPENAPI, create_app(settings_for()))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def token(app):
    """A few names for generated requests to land on, and the admin's personal token."""
    admin = admin_token(app, "ops")
    make_user(app, "alice")
    define_role(app, "viewer", {"audience": APP, "actions": ["read"], "resources": ["*"]})
    grant(app, "alice", "viewer")
    personal_token(app, "alice", audience=APP)
    with app.app_context():
        system_accounts.create("nightly", scope="reports")
        db.session.commit()
    return admin


def test_every_registered_operation_is_fuzzed():
    assert {(op.method.upper(), op.path) for op in OPERATIONS} == \
        {(op.method, API + op.path) for op in REGISTRY.values()}


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_error_and_every_answer_is_described(app, token, operation):
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    sent = []

    # Bounded and reproducible: a fixed number of examples, derandomized, no example database.
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def run(case):
        response = case.call_and_validate(app=app, headers=bearer(token), checks=CHECKS)
        sent.append(response.status_code)

    run()
    assert sent, "no request was generated"
