"""Hot reads awaited in the event loop (oidc_provider/loop_reads.py), as granian's worker
makes the lanes' reads on PostgreSQL: the loop goes on serving while a read waits on the
network, a read has a deadline, a connection the server closed is replaced once, a database
that refuses connections is an outage (503 from the app) and is not asked again at once, and
the ORM session, whose reads would stop the loop, refuses to read there.

These talk to the machine's PostgreSQL whichever database the suite runs on (the lanes' tests,
tests/unit/test_*_lane.py, run through ``LoopReads`` when it is PostgreSQL)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import JSON, bindparam, cast, create_engine, func, literal, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.util import find_tables

import oidc_provider
from oidc_provider import create_app, dbcheck, hot
from oidc_provider.admin import services as admin_services
from oidc_provider.extensions import db
from oidc_provider.loop_reads import BlockingRead, LoopReads
from oidc_provider.models import Client, notify
from oidc_provider.oauth.server import query_client

from ..conftest import settings_for

_URL = os.environ.get("OIDC_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
_VALUES = hot.Statement(select(literal(1), cast(literal('{"a": [1, 2]}'), JSON), func.pg_backend_pid()))
_SLEEP = hot.Statement(select(func.pg_sleep(bindparam("seconds")), literal("slept")))
_SERIES = hot.Statement(select(func.generate_series(1, bindparam("n"))))


@pytest.fixture
def engine():
    made = create_engine(_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    yield made
    made.dispose()


def _one(reads: LoopReads, engine, statement, params) -> list:
    """A read of the first row, awaited (as a lane's reads are: in a greenlet of ``run``)."""
    return reads.run(functools.partial(reads.read, many=False), engine, statement, params)


def _in_a_loop(reads: LoopReads, fn, *args):
    async def run():
        try:
            return await reads.run(fn, *args)
        finally:
            await reads.close()

    return asyncio.run(run())


def test_a_read_in_the_loop_gives_rows_as_the_thread_reads_them(app, engine):
    """The columns' result processors apply (JSON decoded), one row or all of them."""
    def reads():
        return (hot.LOOP.get().read(engine, _VALUES, {}, many=False),
                hot.LOOP.get().read(engine, _SERIES, {"n": 3}, many=True))

    (one,), every = _in_a_loop(LoopReads(engine), reads)
    assert one[:2] == (1, {"a": [1, 2]})
    assert every == [(1,), (2,), (3,)]
    thread = hot.HotReads().read(engine, _VALUES, {}, many=False)
    assert thread[0][:2] == one[:2]


def test_the_loop_serves_others_while_a_read_waits(engine):
    """The point of awaiting: a read that waits on the database stops nothing else."""
    reads = LoopReads(engine)
    ticks = []

    async def run():
        async def tick():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        started = time.monotonic()
        try:
            answer = await _one(reads, engine, _SLEEP, {"seconds": 0.3})
        finally:
            ticker.cancel()
            await reads.close()
        return started, answer

    started, answer = asyncio.run(run())
    assert answer[0][1] == "slept"
    assert len([t for t in ticks if t > started]) >= 10


def test_reads_at_once_share_the_few_connections(engine):
    reads = LoopReads(engine, connections=2)

    async def run():
        try:
            answers = await asyncio.gather(*(_one(reads, engine, _VALUES, {})
                                             for _ in range(20)))
        finally:
            await reads.close()
        return answers

    pids = {answer[0][2] for answer in asyncio.run(run())}
    assert 1 <= len(pids) <= 2


def test_a_read_past_its_deadline_is_a_database_error_and_its_connection_goes(engine):
    reads = LoopReads(engine, connections=1, timeout=0.2)

    async def run():
        try:
            with pytest.raises(DBAPIError) as raised:
                await _one(reads, engine, _SLEEP, {"seconds": 2})
            assert reads._slots == [None]
            # The next read is on a new connection and answers.
            return raised.value, await _one(reads, engine, _SLEEP, {"seconds": 0})
        finally:
            await reads.close()

    error, answer = asyncio.run(run())
    assert dbcheck.is_outage(error), error
    assert answer[0][1] == "slept"


def test_a_kept_connection_closed_by_the_server_is_replaced_and_the_read_answers(engine):
    reads = LoopReads(engine, connections=1)

    async def run():
        try:
            first = await _one(reads, engine, _VALUES, {})
            with engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first[0][2]})
            return first, await _one(reads, engine, _VALUES, {})
        finally:
            await reads.close()

    first, second = asyncio.run(run())
    assert second[0][:2] == first[0][:2] and second[0][2] != first[0][2]


def test_a_database_that_refuses_connections_is_an_outage_not_asked_again_at_once(monkeypatch):
    """Each lane request would otherwise try to connect before the app tries again; for
    ``BACKOFF`` seconds the lanes leave their requests to the app at once."""
    unreachable = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    reads = LoopReads(unreachable)
    attempts = []
    connect = unreachable.dialect.loaded_dbapi.AsyncConnection.connect

    async def counted(*args, **kwargs):
        attempts.append(1)
        return await connect(*args, **kwargs)

    monkeypatch.setattr(unreachable.dialect.loaded_dbapi.AsyncConnection, "connect", counted)

    async def run():
        errors = []
        for _ in range(3):
            with pytest.raises(DBAPIError) as raised:
                await _one(reads, unreachable, _VALUES, {})
            errors.append(raised.value)
        return errors

    try:
        errors = asyncio.run(run())
    finally:
        unreachable.dispose()
    assert all(dbcheck.is_outage(error) for error in errors)
    assert len(attempts) == 1


def test_the_orm_session_refuses_to_read_in_the_loop(app, engine):
    """A read through the session would stop the event loop for its round trip: it raises a
    database error instead (a lane then leaves its request to the app), before any
    connection is taken."""
    def through_the_orm():
        with app.app_context():
            db.session.execute(select(literal(1)))

    with pytest.raises(BlockingRead):
        _in_a_loop(LoopReads(engine), through_the_orm)
    with app.app_context():  # outside the loop's greenlet the session reads as ever
        assert db.session.execute(select(literal(1))).scalar() == 1


def test_each_run_has_its_own_context(app, engine):
    """Flask's app context, pushed in one lane's greenlet, is not another's (or the loop's)."""
    seen = []

    def lane(name):
        with app.app_context() as ctx:
            hot.LOOP.get().read(engine, _SLEEP, {"seconds": 0.05}, many=False)
            from flask import globals as flask_globals
            seen.append((name, flask_globals.app_ctx._get_current_object() is ctx))

    reads = LoopReads(engine)

    async def run():
        try:
            await asyncio.gather(*(reads.run(lane, name) for name in "abc"))
        finally:
            await reads.close()
        return hot.LOOP.get()

    assert asyncio.run(run()) is None
    assert sorted(seen) == [("a", True), ("b", True), ("c", True)]


# ---- kept rows ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_app():
    """The provider on a PostgreSQL database of its own (made with ``db.create_all``, which
    also makes the triggers of models/notify.py), whatever the suite runs on."""
    url = make_url(_URL)
    name = "oidc_loop_reads_" + secrets.token_hex(4)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    app = create_app(settings_for(database_url=url.set(database=name).render_as_string(hide_password=False)))
    try:
        with app.app_context():
            db.create_all()
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class _Loop:
    """A ``LoopReads`` on ``app``'s database, in an event loop of its own (a thread), as a
    granian worker has one; ``read`` runs a read there and counts the round trips."""

    def __init__(self, app, **options):
        self.app = app
        with app.app_context():
            self.engine = db.engine
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.reads = self._call(self._make, options)
        self.fetched = 0
        fetch = self.reads._fetch

        async def counted(*args):
            self.fetched += 1
            return await fetch(*args)

        self.reads._fetch = counted

    async def _make(self, options):
        return LoopReads(self.engine, **options)

    def _call(self, fn, *args):
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(timeout=30)

    def run(self, fn, *args):
        async def in_loop():
            return await self.reads.run(fn, *args)
        return self._call(in_loop)

    def client(self, client_id):
        def lookup():
            with self.app.app_context():
                return query_client(client_id)
        return self.run(lookup)

    def listening(self) -> bool:
        """Wait (at most 10 s) for the listening connection."""
        if self.reads._listener is None:
            self.run(lambda: None)
        deadline = time.monotonic() + 10
        while not self.reads._listening and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.reads._listening

    def close(self):
        self._call(self.reads.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def loop(pg_app):
    made = _Loop(pg_app)
    yield made
    made.close()


def _service(app, name):
    with app.app_context():
        client, secret = admin_services.create_service(name=name + secrets.token_hex(3))
        db.session.commit()
        return client.client_id, secret


def _elsewhere(app, statement: str, params: dict) -> None:
    """A change committed by another process (the CLI, another instance): a connection of
    its own, not this process's session."""
    with app.app_context():
        url = db.engine.url
    other = create_engine(url)
    try:
        with other.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        other.dispose()


def _until(condition, seconds=10.0) -> float:
    """Seconds until ``condition()`` holds (fails past ``seconds``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within %s s" % seconds
        time.sleep(0.001)
    return time.monotonic() - started


def test_kept_rows_are_served_without_a_round_trip(pg_app, loop):
    client_id, _ = _service(pg_app, "kept")
    assert loop.listening()
    first = loop.client(client_id)
    fetched = loop.fetched
    for _ in range(5):
        again = loop.client(client_id)
        assert again.client_id == first.client_id and again.token_generation == first.token_generation
    assert loop.fetched == fetched


def test_a_change_committed_elsewhere_is_read_once_announced(pg_app, loop):
    """DESIGN's one live credential with kept rows: a rotation committed by another process
    (here a bare connection, as another instance's) empties what every worker keeps when
    PostgreSQL delivers the notification, milliseconds after the commit; the next read is
    the database's."""
    client_id, _ = _service(pg_app, "rotated")
    assert loop.listening()
    generation = loop.client(client_id).token_generation
    _elsewhere(pg_app, "UPDATE client SET token_generation = token_generation + 1 WHERE client_id = :c",
               {"c": client_id})
    _until(lambda: loop.client(client_id).token_generation == generation + 1)
    # Disabled elsewhere: the client no longer authenticates (its system account is disabled).
    _elsewhere(pg_app, "UPDATE account SET disabled = true WHERE id = (SELECT account_id FROM client "
               "WHERE client_id = :c)", {"c": client_id})
    _until(lambda: loop.client(client_id) is None)


def test_a_change_committed_by_this_process_is_read_at_once(pg_app, loop):
    """The worker whose thread commits does not wait for the notification."""
    client_id, _ = _service(pg_app, "here")
    assert loop.listening()
    generation = loop.client(client_id).token_generation
    with pg_app.app_context():
        db.session.execute(update(Client).where(Client.client_id == client_id)
                           .values(token_generation=Client.token_generation + 1))
        db.session.commit()
    assert loop.client(client_id).token_generation == generation + 1


def test_nothing_is_kept_while_the_listening_connection_is_down(pg_app, loop):
    client_id, _ = _service(pg_app, "lost")
    assert loop.listening()
    loop.client(client_id)
    _elsewhere(pg_app, "SELECT pg_terminate_backend(:pid)", {"pid": loop.reads.listener_pid})
    _until(lambda: not loop.reads._listening)
    assert len(loop.reads._kept) == 0
    fetched = loop.fetched
    loop.client(client_id)
    if not loop.reads._listening:  # not made again yet: read every time
        loop.client(client_id)
        assert loop.fetched >= fetched + 1
    assert loop.listening()  # made again, after BACKOFF


def test_a_table_without_its_trigger_is_read_every_time(pg_app, caplog):
    """A database upgraded without migration 0013 (or a trigger dropped by hand): nothing kept,
    and the log says why."""
    client_id, _ = _service(pg_app, "untriggered")
    _elsewhere(pg_app, f"DROP TRIGGER {notify.TRIGGER} ON role_grant", {})
    loop = _Loop(pg_app)
    try:
        with caplog.at_level(logging.WARNING, logger="oidc_provider.loop_reads"):
            loop.run(lambda: None)
            _until(lambda: "role_grant" in caplog.text)
        for _ in range(3):
            loop.client(client_id)
        assert loop.fetched == 3 and not loop.reads._listening
    finally:
        loop.close()
    # What `oidc-provider init` does (cli.lifecycle.prepare): the trigger is back.
    engine = create_engine(_engine_url(pg_app))
    notify.install(engine)
    engine.dispose()
    loop = _Loop(pg_app)
    try:
        assert loop.listening()
    finally:
        loop.close()


def _engine_url(app):
    with app.app_context():
        return db.engine.url


def test_kept_values_are_copies(pg_app, loop):
    client_id, _ = _service(pg_app, "copies")
    assert loop.listening()
    first = loop.client(client_id)
    first.grant_types.append("password")
    assert "password" not in loop.client(client_id).grant_types


def test_what_is_kept_is_bounded(pg_app):
    loop = _Loop(pg_app)
    loop.reads._kept.MAX_ENTRIES = 3
    try:
        assert loop.listening()
        for n in range(10):
            loop.client(f"no-such-client-{n}")
            assert len(loop.reads._kept) <= 3
    finally:
        loop.close()


def test_every_table_a_kept_row_is_read_from_notifies():
    """models/notify.py's tables (and migration 0013's) are those the cached statements read."""
    read = {getattr(table, "name", None) for statement in hot.CACHED
            for table in find_tables(statement.select, check_columns=True, include_joins=True)} - {None}
    assert len(hot.CACHED) >= 5
    assert read == set(notify.TABLES)
    migration = Path(oidc_provider.__file__).parent / "migrations/versions/0013_notify_hot_changes.py"
    assert f"TABLES = {notify.TABLES!r}" in migration.read_text()
