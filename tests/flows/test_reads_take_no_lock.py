"""Requests that only read take no lock (issue 13): while another connection holds the write
lock (SQLite: a transaction that wrote holds the database's; PostgreSQL: the rows it updated,
here every account's), discovery (OIDC Discovery 1.0 §4), the key set, userinfo (OIDC Core
§5.3) and introspection (RFC 7662 §2.1) answer at once. A request that needed the lock would
wait for the holder, which lets go only after ``HOLD`` seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import update

from oidc_provider.extensions import db
from oidc_provider.models import Account

from ..spec._clients import issue_tokens
from ..spec._tokens import bearer, introspect, setup_rp

HOLD = 5.0  # seconds the other connection keeps the lock; a read answers in far less


@contextmanager
def write_lock_held(app) -> Iterator[None]:
    """Another connection writes and keeps its transaction open until the block ends (or
    ``HOLD`` seconds pass)."""
    release, ready = threading.Event(), threading.Event()

    def hold():
        with app.app_context(), db.engine.connect() as conn:
            conn.execute(update(Account).values(name="Held"))
            ready.set()
            release.wait(HOLD)
            conn.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert ready.wait(10)
        yield
    finally:
        release.set()
        thread.join(HOLD + 10)


def _answered_at_once(call):
    began = time.monotonic()
    response = call()
    took = time.monotonic() - began
    assert response.status_code == 200, response.data[:300]
    assert took < HOLD / 2, f"took {took:.2f} s: it waited for the write lock"
    return response


def test_discovery_jwks_userinfo_and_introspection_take_no_write_lock(app, browser):
    client_id, secret = setup_rp(app)
    access_token = issue_tokens(browser, client_id, secret)["access_token"]
    http = app.test_client()
    assert http.get("/userinfo", headers=bearer(access_token)).status_code == 200  # keys cached
    with write_lock_held(app):
        _answered_at_once(lambda: http.get("/.well-known/openid-configuration"))
        _answered_at_once(lambda: http.get("/jwks.json"))
        info = _answered_at_once(lambda: http.get("/userinfo", headers=bearer(access_token)))
        assert info.json["sub"]
        answer = _answered_at_once(lambda: introspect(http, client_id, secret, access_token))
        assert answer.json["active"] is True
