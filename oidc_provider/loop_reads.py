"""Hot reads (``hot``) in granian's event loop, on PostgreSQL (issue 13): what the lanes of
``serving/lanes.py`` read, without a thread and, mostly, without a round trip.

**Awaited reads.** ``LoopReads.run`` runs a lane in a greenlet (SQLAlchemy's ``greenlet_spawn``,
the mechanism of its own asyncio support) where ``hot.first`` and ``hot.rows`` await their
read on one of a few psycopg ``AsyncConnection`` connections of the worker's loop
(``await_``): the lane's code stays the app's own synchronous code and the loop serves other
requests while a read waits. Each read has a deadline (``hot.TIMEOUT``); a kept connection
found closed is replaced once, as ``hot.HotReads`` does; a database that refuses connections is
not asked again for ``BACKOFF`` seconds. Every failure is a database error, on which a lane
leaves its request to the app (which answers 503 on an outage). The ORM session, whose reads
would stop the loop, refuses to execute there (``BlockingRead``, a database error too).

**Kept rows.** A round trip costs more CPU than the rest of a token request (psycopg's
protocol and the server process, on the same cores), so the rows of the statements marked
``cached`` (clients, accounts, roles, what is revoked) are kept, per worker, and served
until any of their tables changes. PostgreSQL announces each change (``models/notify.py``:
a trigger per table, ``NOTIFY`` at commit, whoever commits: this worker, another instance,
the CLI, SQL by hand) to a connection of each worker that ``LISTEN``\\ s; the worker then
empties what it keeps. So a rotated credential, a disabled account or a revoked token is
refused from the moment the notification arrives: milliseconds after the commit on one host
(``tests/unit/test_loop_reads.py`` measures it), and at once in the worker whose thread
committed it (``_committed``). Rows are kept only while the listening connection is up and
every table has its trigger; a read that was in flight while a change was announced is not
kept; nothing is kept longer than ``MAX_AGE`` seconds (a bound if notifications stopped without
the connection failing); ``hot.Kept`` bounds how much is kept and copies values out.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from collections.abc import Callable, Mapping

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.util import await_, greenlet_spawn

from . import hot, transactions
from .models import notify

log = logging.getLogger(__name__)

_ALL: weakref.WeakSet[LoopReads] = weakref.WeakSet()


class BlockingRead(SQLAlchemyError):
    """The ORM session was asked to read in the event loop."""


@event.listens_for(Session, "do_orm_execute")
def _not_in_the_event_loop(_state) -> None:
    # Before the session takes a connection: a blocking read would stop every request the
    # worker holds. A lane meeting this leaves its request to the app (a database error).
    if hot.LOOP.get() is not None:
        raise BlockingRead("the ORM session does not read in the event loop")


@event.listens_for(Engine, "commit")
def _committed(conn) -> None:
    """This process wrote and committed: what its loops keep may be what changed. (Other
    processes learn of it through the notification.)"""
    if _ALL and transactions.connection_wrote(conn):
        for reads in list(_ALL):
            reads.changed()


class LoopReads:
    """A worker's reads in its event loop: up to ``connections`` connections for reads and one
    that listens; made on first use, in that loop."""

    #: A database that refused a connection is not asked again for this long (seconds).
    BACKOFF = 1.0
    #: Seconds a kept row is served at most, whatever the notifications say.
    MAX_AGE = 5.0

    def __init__(self, engine: Engine, *, connections: int = 4, timeout: float = hot.TIMEOUT):
        self.engine = engine
        self.timeout = timeout
        self._slots: list[object | None] = [None] * connections
        self._locks = [asyncio.Lock() for _ in range(connections)]
        self._turn = 0
        self._down_until = 0.0
        self._down: DBAPIError | None = None
        self._kept = hot.Kept()
        self._epoch = 0  # moves on whenever what is kept may be wrong
        self._listening = False  # LISTEN is on and every table notifies
        self._listener: asyncio.Task | None = None
        self.listener_pid: int | None = None  # the listening connection's server process
        self._closed = False
        _ALL.add(self)

    async def run(self, fn: Callable, *args):
        """``fn(*args)`` in a greenlet whose hot reads are this object's, and whose context
        variables (Flask's app context among them) are its own."""
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        return await greenlet_spawn(contextvars.copy_context().run, self._within, fn, args)

    def _within(self, fn: Callable, args: tuple):
        hot.LOOP.set(self)
        return fn(*args)

    def read(self, engine: Engine, statement: hot.Statement, params: Mapping[str, object], *,
             many: bool) -> list[tuple]:
        key = None
        if statement.cached and self._listening:
            key = hot.Kept.key(statement, params, many)
            found = self._kept.get(key, self.MAX_AGE)
            if found is not None:
                return found
        epoch = self._epoch
        sql, values, processors = statement.bound(engine, params)
        found = hot.processed(await_(self._fetch(sql, values, many)), processors)
        if key is not None and self._epoch == epoch and self._listening:
            self._kept.put(key, found)
        return found

    def changed(self) -> None:
        """Something a kept row was read from may have changed: keep nothing read before."""
        self._epoch += 1
        self._kept.clear()

    async def close(self) -> None:
        """Close the connections (a worker shutting down, a test done with its loop)."""
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
        for slot, connection in enumerate(self._slots):
            if connection is not None:
                await self._discard(slot, connection)

    # ---- listening -------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Keep a connection that listens; empty what is kept on each notification and
        whenever the connection is lost or (re)made."""
        warned = False
        while not self._closed:
            connection = None
            try:
                # Keepalives: a peer gone without a word is found out within ~20 s (MAX_AGE
                # bounds what is served meanwhile).
                connection = await self._connect(keepalives=1, keepalives_idle=10, keepalives_interval=5,
                                                 keepalives_count=2)
                await connection.execute(f"LISTEN {notify.CHANNEL}")
                missing = await self._tables_without_trigger(connection)
                if missing:
                    if not warned:
                        log.warning("the tables %s have no %s trigger (run `oidc-provider init`): "
                                    "lanes read them every time", ", ".join(missing), notify.TRIGGER)
                        warned = True
                    await connection.close()
                    await asyncio.sleep(60)
                    continue
                self.changed()
                self._listening = True
                self.listener_pid = connection.info.backend_pid
                async for _ in connection.notifies():
                    self.changed()
            except (self.engine.dialect.loaded_dbapi.Error, DBAPIError, OSError):
                pass  # lost, or not made: kept rows are gone (below); try again
            finally:
                self._listening = False
                self.changed()
                if connection is not None:
                    await connection.close()
            if not self._closed:
                await asyncio.sleep(self.BACKOFF)

    @staticmethod
    async def _tables_without_trigger(connection) -> list[str]:
        cursor = await connection.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND pg_table_is_visible(c.oid)", (notify.TRIGGER,))
        present = {row[0] for row in await cursor.fetchall()}
        return [table for table in notify.TABLES if table not in present]

    # ---- reading ---------------------------------------------------------------------------

    async def _fetch(self, sql: str, values, many: bool) -> list:
        dbapi = self.engine.dialect.loaded_dbapi
        for attempt in (1, 2):
            slot = self._turn = (self._turn + 1) % len(self._slots)
            connection, reused = await self._connection(slot)
            try:
                async with asyncio.timeout(self.timeout):
                    cursor = await connection.execute(sql, values)
                    if many:
                        return await cursor.fetchall()
                    row = await cursor.fetchone()
                    return [row] if row is not None else []
            except dbapi.Error as exc:
                disconnected = connection.broken or connection.closed
                await self._discard(slot, connection)
                if attempt == 1 and reused and disconnected:
                    continue  # a kept connection the server closed meanwhile: once more
                raise hot.wrapped(self.engine, exc, sql) from exc
            except TimeoutError as exc:
                # The statement may still run: the connection is in no state to be used again.
                await self._discard(slot, connection)
                raise hot.wrapped(self.engine, dbapi.OperationalError(f"no answer within {self.timeout} s"),
                                  sql) from exc
        raise AssertionError("unreachable")

    async def _connection(self, slot: int) -> tuple[object, bool]:
        connection = self._slots[slot]
        if connection is not None:
            return connection, True
        async with self._locks[slot]:  # one connection per slot, however many ask at once
            connection = self._slots[slot]
            if connection is not None:
                return connection, True
            self._slots[slot] = connection = await self._connect()
            return connection, False

    async def _connect(self, **options):
        if time.monotonic() < self._down_until:
            raise self._down
        dialect = self.engine.dialect
        cargs, cparams = dialect.create_connect_args(self.engine.url)
        try:
            return await dialect.loaded_dbapi.AsyncConnection.connect(
                *cargs, **{"connect_timeout": hot.TIMEOUT, **cparams, **options}, autocommit=True)
        except dialect.loaded_dbapi.Error as exc:
            self._down_until = time.monotonic() + self.BACKOFF
            self._down = hot.wrapped(self.engine, exc, None)
            raise self._down from exc

    async def _discard(self, slot: int, connection) -> None:
        if self._slots[slot] is connection:
            self._slots[slot] = None
        try:
            await connection.close()
        except Exception:  # noqa: BLE001, S110 - it is broken already; the error raised is the first one
            pass
