"""Hot reads: the few queries every token, userinfo, introspection and forward-auth request
makes, as SQL compiled once and run on a connection of the thread's own (issue 13).

Through the ORM session, one indexed read costs about 0.17 ms of CPU on SQLite and 0.5 ms on
PostgreSQL (session, pool checkout and reset, the transaction's ``BEGIN``, result objects);
the same statement on a DB-API cursor costs 0.01 and 0.05 ms. The statements are written
with SQLAlchemy Core (``select(...)``) and compiled for the engine's dialect on first use;
their values go through the column types' own result processors, so a JSON column or a
timestamp reads as it does through the ORM.

The connection is the thread's own, taken from the engine once (so the engine's connect
listeners have set it up: WAL, foreign keys, busy timeout) and detached from its pool. It runs
in autocommit: every read is a transaction of its own, which takes no lock (SQLite: readers
never wait for the writer under WAL) and sees what was committed before it began. It is never
used for writes. A failure closes it; a kept connection found closed by the server (a restart)
is replaced and the read tried once more, like the pool's pre-ping; any other failure is
raised as SQLAlchemy's ``DBAPIError``, so an outage is answered as every other database error is
(``errors.database_error``: 503 with ``Retry-After``).

The rows of a statement marked ``cached`` (clients, accounts, roles, what is revoked: tables
that change seldom) are kept (``Kept``). On SQLite by each thread's connection, checked
before every read with ``PRAGMA data_version``, which changes whenever another connection (of
this process or another) has committed to the file: then nothing kept is served, so a kept row
is never older than the last commit. On PostgreSQL the lanes read in the event loop and keep
rows until PostgreSQL announces a change (``loop_reads``); its threads keep nothing.
"""

from __future__ import annotations

import contextvars
import copy
import os
import threading
import time
from collections.abc import Mapping
from datetime import date, datetime

from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

from .extensions import db

KEY = "oidc_hot_reads"
#: Every ``Statement(..., cached=True)``: ``loop_reads`` checks that a change to each of their
#: tables notifies.
CACHED: list[Statement] = []
#: Seconds to connect (the engine's ``connect_timeout`` too) and, in the event loop, to read.
TIMEOUT = 10
# The ``loop_reads.LoopReads`` of the lane running in this greenlet, if any.
LOOP: contextvars.ContextVar = contextvars.ContextVar("oidc_hot_loop", default=None)


def first(statement: Statement, params: Mapping[str, object]) -> tuple | None:
    """The first row of ``statement`` (or None), read on the thread's own connection (in a lane's
    greenlet on PostgreSQL, awaited: ``loop_reads``)."""
    rows = (LOOP.get() or current_app.extensions[KEY]).read(db.engine, statement, params, many=False)
    return rows[0] if rows else None


def rows(statement: Statement, params: Mapping[str, object]) -> list[tuple]:
    """Every row of ``statement``, read as ``first`` reads."""
    return (LOOP.get() or current_app.extensions[KEY]).read(db.engine, statement, params, many=True)


class Statement:
    """A Core ``select`` with named ``bindparam`` values, compiled once per dialect.

    ``cached``: its rows may be served from what is kept (``Kept``: on SQLite until another
    connection commits, in the event loop on PostgreSQL until a change to one of its tables is
    announced, ``loop_reads``): only for statements whose tables change seldom (clients,
    accounts, roles, what is revoked)."""

    def __init__(self, select: Select, *, cached: bool = False):
        self.select = select
        self.cached = cached
        self._compiled: dict[str, tuple] = {}
        if cached:
            CACHED.append(self)

    def compiled(self, engine: Engine) -> tuple[str, tuple[str, ...] | None, dict, tuple]:
        dialect = engine.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.select.compile(dialect=dialect)
            order = tuple(compiled.positiontup) if dialect.positional else None
            # Values the statement carries itself (a ``literal``), under generated names.
            fixed = {name: value for name, value in compiled.params.items() if value is not None}
            processors = tuple(column.type._cached_result_processor(dialect, None)
                               for column in self.select.selected_columns)
            found = self._compiled[dialect.name] = (str(compiled), order, fixed, processors)
        return found

    def bound(self, engine: Engine, params: Mapping[str, object]) -> tuple[str, object, tuple]:
        """The SQL, its values in the driver's form and the columns' result processors."""
        sql, order, fixed, processors = self.compiled(engine)
        if fixed:
            params = {**fixed, **params}
        return sql, tuple(params[name] for name in order) if order is not None else params, processors


class Kept:
    """Rows of cached statements, by statement and values: at most ``MAX_ENTRIES`` (past it,
    all are dropped), each served as a copy, so a caller cannot change what the next one reads."""

    MAX_ENTRIES = 4096

    def __init__(self):
        self._rows: dict[tuple, tuple[float, list, tuple]] = {}

    @staticmethod
    def key(statement: Statement, params: Mapping[str, object], many: bool) -> tuple:
        return (id(statement), many, *sorted(params.items()))

    def get(self, key: tuple, max_age: float | None = None) -> list[tuple] | None:
        kept = self._rows.get(key)
        if kept is None or (max_age is not None and time.monotonic() - kept[0] >= max_age):
            return None
        _, rows, mutable = kept
        return _copied(rows, mutable) if mutable else list(rows)

    def put(self, key: tuple, rows: list[tuple]) -> None:
        if len(self._rows) >= self.MAX_ENTRIES:
            self._rows.clear()
        # The columns holding a value that can change (JSON: lists, dicts): copied each time.
        mutable = tuple(sorted({i for row in rows for i, v in enumerate(row) if type(v) not in _PLAIN}))
        self._rows[key] = (time.monotonic(), _copied(rows, mutable) if mutable else list(rows), mutable)

    def clear(self) -> None:
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)


# Immutable values, kept and served as they are.
_PLAIN = (str, int, float, bool, bytes, datetime, date, type(None))


def _copied(rows: list[tuple], mutable: tuple[int, ...]) -> list[tuple]:
    copied = []
    for row in rows:
        values = list(row)
        for i in mutable:
            values[i] = _copy(values[i])
        copied.append(tuple(values))
    return copied


def _copy(value):
    """A JSON value's copy: a list or object of plain values shallowly (most are), else deeply."""
    kind = type(value)
    if kind is list and all(type(v) in _PLAIN for v in value):
        return value[:]
    if kind is dict and all(type(v) in _PLAIN for v in value.values()):
        return value.copy()
    return value if kind in _PLAIN else copy.deepcopy(value)


class HotReads:
    """One per app (``app.extensions["oidc_hot_reads"]``); connections per thread and process."""

    def __init__(self):
        self._local = threading.local()

    def read(self, engine: Engine, statement: Statement, params: Mapping[str, object], *,
             many: bool) -> list[tuple]:
        """The first row (``many`` false; none or one) or every row of ``statement``."""
        sql, values, processors = statement.bound(engine, params)
        key = Kept.key(statement, params, many) if statement.cached and engine.dialect.name == "sqlite" else None
        kept = None
        for attempt in (1, 2):
            connection, reused = self._connection(engine)
            try:
                cursor = connection.cursor()
                try:
                    if key is not None:
                        cursor.execute("PRAGMA data_version")
                        kept = self._kept(cursor.fetchone()[0])
                        found = kept.get(key)
                        if found is not None:
                            return found
                    cursor.execute(sql, values)
                    if many:
                        found = cursor.fetchall()
                    else:
                        row = cursor.fetchone()
                        found = [row] if row is not None else []
                finally:
                    cursor.close()
                break
            except engine.dialect.loaded_dbapi.Error as exc:
                disconnected = engine.dialect.is_disconnect(exc, connection, None)
                self._discard()
                # A kept connection the server closed meanwhile (a restart, an idle timeout,
                # pg_terminate_backend): read again once on a new one, as the pool's pre-ping
                # does for the ORM's connections; it is a read, so trying twice changes nothing.
                if attempt == 1 and reused and disconnected:
                    continue
                raise wrapped(engine, exc, sql) from exc
        found = processed(found, processors)
        if kept is not None:
            kept.put(key, found)
        return found

    def _kept(self, version: int) -> Kept:
        """The rows the thread's SQLite connection keeps, none if another connection has
        committed since the last read (``version``: its ``PRAGMA data_version``)."""
        local = self._local
        if getattr(local, "kept", None) is None:
            local.kept = Kept()
        elif local.version != version:
            local.kept.clear()
        local.version = version
        return local.kept

    def _connection(self, engine: Engine) -> tuple[object, bool]:
        """The thread's connection, and whether it was kept from an earlier read."""
        local = self._local
        if getattr(local, "pid", None) == os.getpid() and local.engine is engine:
            return local.connection, True
        # A connection made before a fork (it belongs to the parent: left alone), or for
        # another engine (tests build many apps: closed): a new one.
        if getattr(local, "pid", None) == os.getpid():
            self._discard()
        try:
            pooled = engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool hands the driver's own error on (``Engine.connect`` would wrap it): the
            # database refusing connections is an outage like any other (503), not a 500.
            raise wrapped(engine, exc, None) from exc
        pooled.detach()
        connection = pooled.dbapi_connection
        if engine.dialect.name == "postgresql":
            connection.autocommit = True
        local.pid, local.engine, local.connection = os.getpid(), engine, connection
        return connection, False

    def _discard(self) -> None:
        local = self._local
        connection = getattr(local, "connection", None)
        local.pid = local.engine = local.connection = local.kept = None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110 - it is broken already; the error raised is the first one
                pass


def processed(found: list, processors: tuple) -> list[tuple]:
    """Rows with the column types' result processors applied, as the ORM would read them."""
    return [tuple(value if process is None else process(value)
                  for value, process in zip(row, processors, strict=True)) for row in found]


def wrapped(engine: Engine, exc: Exception, sql: str | None) -> DBAPIError:
    """The driver's error as SQLAlchemy's (what ``errors.database_error`` and ``dbcheck``
    read), without the statement's values."""
    return DBAPIError.instance(sql, None, exc, engine.dialect.loaded_dbapi.Error, hide_parameters=True,
                               dialect=engine.dialect)
