"""A worker imports its signing keys when it starts, not inside the first request that signs
(issue 12, "No write lock during slow work"): importing an RSA private key validates it
(~70 ms), and inside a request's transaction (on SQLite: the database's write lock) every
other request waited for it. ``oidc-provider serve`` and ``oidc_provider.wsgi`` build the
worker's app with ``serving.worker_app``, which warms the keys (``serving.warm``)."""

from __future__ import annotations

import pytest
from joserfc import jwk

from oidc_provider import serving
from oidc_provider.extensions import db

from ..helpers import Browser, make_client, make_user


@pytest.fixture
def private_imports(monkeypatch):
    """Each private-key import, with whether a transaction of the request was open around it."""
    seen: list[bool] = []
    original = jwk.import_key

    def spy(data, *args, **kwargs):
        if isinstance(data, dict) and "d" in data:
            seen.append(db.session().in_transaction())
        return original(data, *args, **kwargs)

    monkeypatch.setattr(jwk, "import_key", spy)
    return seen


def _first_id_token(app) -> dict:
    make_user(app)
    client_id, secret = make_client(app)
    browser = Browser(app)
    result = browser.sign_in_and_authorize(client_id)
    return browser.redeem(client_id, secret, result["code"]).json


def test_a_fresh_app_imports_its_private_key_in_the_first_request_that_signs(app_factory, private_imports):
    """What ``warm`` is for: without it the import happens while a request is being served."""
    tokens = _first_id_token(app_factory())
    assert "id_token" in tokens and private_imports, "the first signature imported the key"


def test_a_warmed_worker_app_signs_its_first_id_token_without_importing_a_key(app_factory, private_imports):
    app = serving.warm(app_factory())
    assert private_imports and not any(private_imports), "imported at start, with no transaction open"
    private_imports.clear()
    tokens = _first_id_token(app)
    assert "id_token" in tokens and private_imports == []


def test_warm_leaves_unreadable_keys_to_the_requests(app_factory, private_imports):
    """A wrong OIDC_SECRET_KEY must not stop the server from starting: /readyz then says why."""
    app = serving.warm(app_factory(secret_key="another-secret-key-" + "y" * 32))
    assert private_imports == []
    assert app.test_client().get("/readyz").status_code == 503
