"""``transactions``: where a request's transactions end, so that slow work (argon2id, key
imports, rendering) never runs inside one (issue 12)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

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


def _sqlite(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "sqlite"


def _other_writer_commits(app) -> None:
    """Another connection (another process, as far as SQLite can tell) changes the database."""
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(update(Account).where(Account.username == "alice").values(name="Elsewhere"))
        conn.commit()


def test_a_transaction_that_only_reads_takes_no_write_lock(app):
    """SQLite (issue 13): reads begin deferred; another connection holds the write lock from
    before the read until after it, and the read still completes at once. PostgreSQL: reads
    take no row locks either."""
    make_user(app)
    with app.app_context():
        with db.engine.connect() as holder:
            if _sqlite(app):
                holder.exec_driver_sql("PRAGMA busy_timeout = 0")  # never wait: fail instead
            holder.execute(update(Account).where(Account.username == "alice").values(name="Held"))
            assert db.session.scalar(select(Account.username)) == "alice"
            assert transactions.sqlite_mode() == ("BEGIN" if _sqlite(app) else None)
            db.session.rollback()
            holder.rollback()


def test_a_write_after_reads_waits_for_the_lock_instead_of_failing(app):
    """SQLite: a deferred transaction that read, then writes after another connection
    committed, would fail at once with SQLITE_BUSY ("database is locked"); it takes the write
    lock with a fresh BEGIN IMMEDIATE instead, and the write lands."""
    make_user(app)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "alice"))
        _other_writer_commits(app)
        account.email = "alice@elsewhere.example"
        db.session.commit()
        assert db.session.scalar(select(Account.email)) == "alice@elsewhere.example"
        db.session.rollback()


def test_a_locking_read_or_a_first_write_begins_immediate(app):
    """``with_for_update`` (PostgreSQL: row locks) takes SQLite's write lock, as does a
    transaction's first statement when it writes."""
    make_user(app)
    expected = "BEGIN IMMEDIATE" if _sqlite(app) else None
    with app.app_context():
        db.session.execute(select(Account.id).with_for_update())
        assert transactions.sqlite_mode() == expected
        db.session.rollback()
        db.session.execute(update(Account).values(name="First"))
        assert transactions.sqlite_mode() == expected
        db.session.rollback()
        db.session.scalar(select(Account.id))
        db.session.execute(select(Account.id).with_for_update())
        assert transactions.sqlite_mode() == expected
        db.session.rollback()


def test_writing_takes_the_lock_before_the_first_read(app):
    """``writing``: the reads after it and the write see one state (SQLite: BEGIN IMMEDIATE
    before the first read; one that only read is ended first, keeping what it loaded)."""
    make_user(app)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "alice"))
        transactions.writing()
        assert transactions.sqlite_mode() == ("BEGIN IMMEDIATE" if _sqlite(app) else None)
        assert account.username == "alice"
        account.name = "Locked first"
        db.session.commit()
        assert db.session.scalar(select(Account.name)) == "Locked first"
        db.session.rollback()
