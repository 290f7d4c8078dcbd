"""How a request's database transactions begin and end: reads take no lock, and slow work
never runs inside a transaction.

**Locks** (issue 13). On SQLite the write lock is database-wide; readers never wait for it
(WAL). A transaction begins with its first statement: ``BEGIN`` (deferred, no lock) when that
statement reads, ``BEGIN IMMEDIATE`` (the write lock, waiting up to the busy timeout) when it
writes, is a ``SELECT ... FOR UPDATE`` or opens a savepoint. So userinfo, introspection,
discovery, JWKS and a client_credentials token run in every worker at once. A deferred
transaction that has read can never take the lock itself: its first write would fail at once
with SQLITE_BUSY ("database is locked", no waiting) whenever another connection committed
since its first read. Such a statement ends the read transaction first (it wrote nothing) and
begins ``BEGIN IMMEDIATE`` (``_sqlite_statement``). The rule for code that reads and writes:

- a write that depends on the state it changes is one conditional statement (``UPDATE ...
  WHERE``, ``INSERT ... ON CONFLICT``, ``DELETE ... WHERE`` with its rowcount), or follows a
  ``SELECT ... FOR UPDATE`` of the rows it decides on (PostgreSQL locks them, SQLite takes its
  write lock, and either way the locked read sees what was committed last);
- reads before that may be stale by the time of the write, as on PostgreSQL's READ COMMITTED:
  code correct on PostgreSQL is correct on SQLite;
- work that must read and write one state with no row to lock calls ``writing()`` before its
  first read (SQLite: BEGIN IMMEDIATE there; PostgreSQL: nothing).

PostgreSQL is untouched: its transactions begin as psycopg begins them.

**Slow work.** On PostgreSQL the rows a transaction updated stay locked until it ends, and on
SQLite a transaction that wrote holds the write lock. A transaction left open across slow work
(argon2id, importing an RSA key, rendering a page) makes every other request, in every
process, wait for that work: one person signing in over and over stalled a token client a
thousandfold (issue 12). The rule (DESIGN: "no lock held across slow work"):

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

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from flask import before_render_template
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

log = logging.getLogger(__name__)

_WROTE = "oidc_transaction_wrote"
_SQLITE = "oidc_sqlite_begin"  # SQLite: the BEGIN still to send, then the one sent (below)
_PENDING, _DEFERRED, _IMMEDIATE = "pending", "BEGIN", "BEGIN IMMEDIATE"
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


def connection_wrote(conn) -> bool:
    """Whether the transaction of ``conn`` (a SQLAlchemy ``Connection``) has written."""
    return bool(conn.info.get(_WROTE))


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


def writing() -> None:
    """Hold the write lock from here to the end of the session's transaction (SQLite): call it
    before the first read of work that reads and then writes what it read, so that the reads
    and the write see one state. A transaction that has not read yet begins with
    ``BEGIN IMMEDIATE`` (waiting for the lock, ``busy_timeout``); one that has only read is
    ended first (what it loaded stays readable). PostgreSQL: nothing to do, rows are locked by
    ``with_for_update`` or by the write itself."""
    session = db.session()
    if session.get_bind().dialect.name != "sqlite":
        return
    session.flush()  # changes made so far are written (taking the lock) rather than committed below
    if sqlite_mode() == _DEFERRED:
        end()  # it has only read: a write would have taken the lock
    conn = session.connection()
    if conn.info.get(_SQLITE) == _PENDING:
        _sqlite_begin(conn, conn.connection.dbapi_connection, _IMMEDIATE)


def sqlite_mode() -> str | None:
    """The BEGIN the session's open SQLite transaction sent (``BEGIN`` or ``BEGIN IMMEDIATE``),
    ``pending`` if it has sent none yet, None with no transaction open. For tests and logs."""
    session = db.session()
    if not session.in_transaction():
        return None
    return session.connection().info.get(_SQLITE)


@event.listens_for(Engine, "begin")
def _track_begin(conn) -> None:
    conn.info[_WROTE] = False
    if conn.dialect.name == "sqlite":
        # BEGIN is sent with the transaction's first statement, when it is known whether that
        # statement writes (``_sqlite_statement``).
        conn.info[_SQLITE] = _PENDING


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _track_end(conn) -> None:
    conn.info.pop(_SQLITE, None)


@event.listens_for(Engine, "before_cursor_execute")
def _track_writes(conn, cursor, statement, _parameters, context, _executemany) -> None:
    writes = not statement.lstrip().upper().startswith(_READS)
    if conn.info.get(_SQLITE):
        _sqlite_statement(conn, cursor.connection, statement, context, writes)
    if writes and not conn.info.get(_WROTE):
        conn.info[_WROTE] = True


def _sqlite_statement(conn, dbapi, statement: str, context, writes: bool) -> None:
    """SQLite, before each statement of a transaction: begin it, or take the write lock.

    A deferred transaction that has read and then writes fails at once with SQLITE_BUSY
    (``database is locked``, without waiting) when another connection has committed since its
    first read, or holds the write lock: SQLite cannot move its snapshot forward. So a
    statement that writes, a ``SELECT ... FOR UPDATE`` (SQLite drops the clause; PostgreSQL
    locks the rows) or a SAVEPOINT (what follows is meant to write) takes the write lock:
    as the transaction's first statement by beginning it ``BEGIN IMMEDIATE``; after reads
    by ending the read transaction and beginning ``BEGIN IMMEDIATE``, which waits for the lock.
    What was read before keeps its values, like PostgreSQL's READ COMMITTED, where each
    statement sees what was committed when it started; work that needs its reads and its
    write to see one state calls ``writing`` before reading."""
    mode = conn.info[_SQLITE]
    if mode == _IMMEDIATE:
        return
    locks = writes or statement.startswith("SAVEPOINT") or _locking_read(context)
    if mode == _PENDING:
        read_only = conn.get_execution_options().get(READ_ONLY)
        _sqlite_begin(conn, dbapi, _IMMEDIATE if locks and not read_only else _DEFERRED)
    elif locks and not conn.get_execution_options().get(READ_ONLY):
        log.debug("a read transaction takes the write lock before: %s", statement.split("\n", 1)[0][:80])
        dbapi.execute("COMMIT")  # it has only read: ending it loses nothing
        try:
            _sqlite_begin(conn, dbapi, _IMMEDIATE)
        except sqlite3.OperationalError as exc:
            # A result still being iterated keeps the old snapshot open past the COMMIT: the
            # loop that writes while it reads must read everything first (``.all()``).
            log.error("could not take the write lock after reads (a result still open?) before: %s: %s",
                      statement.split("\n", 1)[0][:80], exc)
            raise


def _sqlite_begin(conn, dbapi, begin: str) -> None:
    dbapi.execute(begin)
    conn.info[_SQLITE] = begin


def _locking_read(context) -> bool:
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None
