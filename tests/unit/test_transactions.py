"""``transactions``: where a request's transactions end, so that slow work (argon2id, key
imports, rendering) never runs inside one (issue 12)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from oidc_provider import transactions
from oidc_provider.digests import unknown_username
from oidc_provider.extensions import db
from oidc_provider.models import Account

from ..helpers import make_user


def test_end_keeps_what_was_loaded_readable_without_a_new_transaction(app):
    make_user(app)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "alice"))
        assert db.session().in_transaction()
        transactions.end()
        assert not db.session().in_transaction()
        assert account.username == "alice" and account.id
        assert not db.session().in_transaction()


def test_a_read_only_transaction_ends_a_writing_one_does_not(app):
    make_user(app)
    with app.app_context():
        db.session.scalar(select(Account.id))
        assert not transactions.wrote()
        assert transactions.end_if_read_only() is True
        assert not db.session().in_transaction()
        account = db.session.scalar(select(Account))
        account.name = "Changed"
        db.session.flush()
        assert transactions.wrote()
        assert transactions.end_if_read_only() is False
        assert db.session().in_transaction()
        db.session.rollback()


def test_outside_refuses_work_that_starts_a_transaction(app):
    make_user(app)
    with app.app_context():
        db.session.scalar(select(Account.id))
        with pytest.raises(RuntimeError):
            with transactions.outside():
                assert not db.session().in_transaction()
                db.session.scalar(select(Account.id))
        db.session.rollback()


def test_read_only_connection_reads_while_the_session_holds_the_write_lock(app):
    """SQLite: the session's transaction holds the database's write lock (BEGIN IMMEDIATE);
    a read-only connection still reads at once instead of waiting for it."""
    make_user(app)
    with app.app_context():
        account = db.session.scalar(select(Account))
        account.name = "Locked"
        db.session.flush()
        with transactions.read_only() as conn:
            assert conn.execute(select(Account.username)).scalars().all() == ["alice"]
        db.session.rollback()


def test_unknown_username_digest_is_keyed_and_ignores_case():
    """Issue 12: a username matching no account (maybe a password) is audited as a digest."""
    one = unknown_username("k" * 32, " Hunter2-Password ")
    assert one == unknown_username("k" * 32, "hunter2-password")
    assert one != unknown_username("j" * 32, "hunter2-password")
    assert one.startswith("unknown:") and len(one) == len("unknown:") + 32
    assert "hunter2" not in one
