"""The hot reads' own connection (oidc_provider/hot.py): values read as the ORM reads them,
and a kept connection the server closed (a database restart, an idle timeout) is replaced
once, so the first token request after a restart is not a 503."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import bindparam, create_engine, select, text, update
from sqlalchemy.exc import DBAPIError

from oidc_provider import create_app, dbcheck, hot
from oidc_provider.extensions import db
from oidc_provider.models import Client
from oidc_provider.oauth.server import query_client

from ..conftest import settings_for
from ..helpers import make_client

_CLIENT = hot.Statement(select(Client.client_id, Client.created_at, Client.redirect_uris)
                        .where(Client.client_id == bindparam("client_id")))


def _kept_connection(app):
    return app.extensions[hot.KEY]._local.connection


def _close_from_the_server_side(connection) -> None:
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": connection.info.backend_pid})
    else:
        connection.close()  # SQLite has no server; a closed handle fails the same way


def test_a_hot_read_gives_what_the_orm_reads(app):
    client_id, _ = make_client(app)
    with app.app_context():
        orm = db.session.scalar(select(Client).where(Client.client_id == client_id))
        assert hot.first(_CLIENT, {"client_id": client_id}) == (client_id, orm.created_at, orm.redirect_uris)
        assert hot.first(_CLIENT, {"client_id": "no-such-client"}) is None


def test_a_kept_connection_closed_by_the_server_is_replaced_and_the_read_answers(app):
    client_id, _ = make_client(app)
    with app.app_context():
        assert hot.first(_CLIENT, {"client_id": client_id})[0] == client_id
        kept = _kept_connection(app)
        _close_from_the_server_side(kept)
        assert hot.first(_CLIENT, {"client_id": client_id})[0] == client_id
        assert _kept_connection(app) is not kept


def test_a_new_connection_that_fails_is_a_database_error_not_a_retry_loop(app, monkeypatch):
    """Only a kept connection is tried again: a read on a connection just opened that fails
    raises SQLAlchemy's ``DBAPIError`` (answered 503 by errors.py) after one attempt."""
    client_id, _ = make_client(app)
    attempts = []
    broken = hot.Statement(select(text("no_such_column")).select_from(Client.__table__))
    with app.app_context():
        reads = app.extensions[hot.KEY]
        reads._discard()
        real = reads._connection

        def counted(engine):
            attempts.append(1)
            return real(engine)

        monkeypatch.setattr(reads, "_connection", counted)
        with pytest.raises(DBAPIError):
            hot.first(broken, {})
        assert len(attempts) == 1
        assert hot.first(_CLIENT, {"client_id": client_id})[0] == client_id  # and the next read works


def test_each_thread_reads_on_a_connection_of_its_own(app):
    client_id, _ = make_client(app)
    seen, together = [], threading.Barrier(3)

    def read():
        with app.app_context():
            assert hot.first(_CLIENT, {"client_id": client_id})[0] == client_id
            seen.append(_kept_connection(app))
            together.wait(10)  # all three hold theirs at once

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 3 and len({id(connection) for connection in seen}) == 3


def test_a_database_that_refuses_connections_is_an_outage_not_a_500(app, tmp_path):
    """A thread's first read when the database cannot be reached: the driver's error comes
    out as SQLAlchemy's, which ``dbcheck.is_outage`` names an outage (answered 503 with
    ``Retry-After``), not as the bare driver error that reached the catch-all (500)."""
    with app.app_context():
        dialect = db.engine.dialect.name
    url = ("postgresql+psycopg://postgres@127.0.0.1:1/nowhere" if dialect == "postgresql"
           else f"sqlite:///{tmp_path}/missing/directory/oidc.db")
    unreachable = create_engine(url, connect_args={"connect_timeout": 2} if dialect == "postgresql" else {})
    try:
        with pytest.raises(DBAPIError) as raised:
            hot.HotReads().read(unreachable, _CLIENT, {"client_id": "any"}, many=False)
        assert dbcheck.is_outage(raised.value), raised.value
    finally:
        unreachable.dispose()


@pytest.fixture
def sqlite_app(tmp_path):
    """The provider on a SQLite file of its own, whatever the suite runs on."""
    made = create_app(settings_for(database_url=f"sqlite:///{tmp_path}/kept.db"))
    with made.app_context():
        db.create_all()
    yield made
    with made.app_context():
        db.session.remove()
        db.engine.dispose()


def _statements(app) -> list[str]:
    """What the thread's own connection executes from now on."""
    seen = []
    app.extensions[hot.KEY]._local.connection.set_trace_callback(seen.append)
    return seen


def test_sqlite_keeps_cached_rows_until_another_connection_commits(sqlite_app):
    """A cached statement's rows are served again after a ``PRAGMA data_version`` that says no
    other connection has committed; once one has (the app's session, another worker), the
    next read is the file's."""
    client_id, _ = make_client(sqlite_app)
    with sqlite_app.app_context():
        first = query_client(client_id)
        executed = _statements(sqlite_app)
        assert query_client(client_id).token_generation == first.token_generation
        assert executed == ["PRAGMA data_version"]
        db.session.execute(update(Client).where(Client.client_id == client_id)
                           .values(token_generation=Client.token_generation + 1))
        db.session.commit()
        executed.clear()
        assert query_client(client_id).token_generation == first.token_generation + 1
        assert len(executed) == 2 and executed[1].startswith("SELECT")


def test_kept_rows_are_copies(sqlite_app):
    client_id, _ = make_client(sqlite_app)
    with sqlite_app.app_context():
        query_client(client_id).redirect_uris.append("https://evil.example/cb")
        assert "https://evil.example/cb" not in query_client(client_id).redirect_uris


def test_statements_not_marked_cached_are_read_every_time(sqlite_app):
    client_id, _ = make_client(sqlite_app)
    with sqlite_app.app_context():
        hot.first(_CLIENT, {"client_id": client_id})
        executed = _statements(sqlite_app)
        hot.first(_CLIENT, {"client_id": client_id})
        assert len(executed) == 1 and executed[0].startswith("SELECT")
