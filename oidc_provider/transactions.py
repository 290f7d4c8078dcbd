"""Where a request's database transactions end, so that slow work never runs inside one.

On SQLite every transaction takes the database's write lock as it begins (``BEGIN IMMEDIATE``,
``create_app``'s ``_sqlite_begin``), and on PostgreSQL the rows a transaction updated stay
locked until it ends. A transaction left open across slow work (argon2id, importing an RSA
key, rendering a page) makes every other request, in every process, wait for that work: one
person signing in over and over stalled a token client a thousandfold (issue 12). The rule
(DESIGN: "no lock held across slow work"):

- the session interface ends its transaction once the session is loaded (``authn.sessions``);
- a password check is two short transactions around argon2id: look the hash up and count the
  attempt; verify with no transaction open; record the outcome (``authn.password_check``);
- a page is rendered with no transaction open when the request wrote nothing (``init_app``);
  a request that wrote keeps its transaction, and its own commit, as before;
- signing keys are read on a connection of their own that takes no lock (``read_only``).

Ending a transaction here keeps the objects it loaded as they are (not expired), so the code
after it reads them without starting a new transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import before_render_template
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

_WROTE = "oidc_transaction_wrote"
# Statements that change no data (transaction control included); anything else counts as a write.
_READS = ("SELECT", "PRAGMA", "BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "SHOW")
READ_ONLY = "oidc_read_only"  # execution option: this connection only reads (``read_only``)


def end() -> None:
    """Commit the current transaction, if one is open, and keep what it loaded readable."""
    session = db.session()
    if not session.in_transaction():
        return
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def wrote() -> bool:
    """Whether the open transaction has written (or holds unflushed changes)."""
    session = db.session()
    if session.new or session.dirty or session.deleted:
        return True
    if not session.in_transaction():
        return False
    return bool(session.connection().info.get(_WROTE))


def end_if_read_only() -> bool:
    """End the transaction if it wrote nothing (True then). A request that wrote keeps its
    transaction: its changes commit or roll back where its code says."""
    try:
        if wrote():
            return False
        end()
        return True
    except SQLAlchemyError:
        # A failed transaction (an outage being answered with an error page): its owner rolls
        # it back; rendering the error page must not raise another error.
        return False


@contextmanager
def outside() -> Iterator[None]:
    """Run slow work with no transaction open: what the caller did so far is committed first
    (its writes are meant: counting an attempt, say), and the work must not start one."""
    end()
    yield
    if db.session().in_transaction():
        raise RuntimeError("a transaction was started during work meant to run outside one")


@contextmanager
def read_only() -> Iterator[Connection]:
    """A connection of its own, apart from the request's session, for reads only. On SQLite
    it begins a deferred transaction (no write lock: with WAL, readers never wait), so it
    neither waits for nor blocks a writer, including the request's own open transaction."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{READ_ONLY: True})
        try:
            yield conn
        finally:
            conn.rollback()


def init_app(app) -> None:
    before_render_template.connect(_before_render, app)


def _before_render(_app, **_extra) -> None:
    end_if_read_only()


@event.listens_for(Engine, "begin")
def _track_begin(conn) -> None:
    conn.info[_WROTE] = False


@event.listens_for(Engine, "before_cursor_execute")
def _track_writes(conn, _cursor, statement, _parameters, _context, _executemany) -> None:
    if not conn.info.get(_WROTE) and not statement.lstrip().upper().startswith(_READS):
        conn.info[_WROTE] = True
