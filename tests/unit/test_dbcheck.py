"""``oidc_provider.dbcheck``: database problems named in one line (cause and fix, password
masked), the migration state read from a real database, and which errors are an outage (503)
rather than a bug or a refused value. The errors here are the drivers' own, raised by real
connections where the machine allows it (SQLite, PostgreSQL when the suite runs on it)."""

from __future__ import annotations

import os
import sqlite3

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from oidc_provider import PACKAGE, dbcheck
from oidc_provider.cli import main

MIGRATIONS = PACKAGE / "migrations"
HEADS, KNOWN = dbcheck._scripts(str(MIGRATIONS))
TEST_URL = os.environ.get("OIDC_TEST_DATABASE_URL", "")


def _sqlite_error(statement: str, setup: str = "") -> OperationalError:
    connection = sqlite3.connect(":memory:")
    if setup:
        connection.execute(setup)
    try:
        connection.execute(statement)
    except sqlite3.Error as exc:
        return OperationalError(statement, {}, exc)
    raise AssertionError("no error")


# ---- the migration state ----

@pytest.mark.parametrize("stored,status", [
    (set(), "uninitialised"),
    (None, "current"),  # the heads themselves
    ({"0001"}, "behind"),
    ({"ffffffffffff"}, "ahead"),
])
def test_revisions_status(stored, status):
    stored = HEADS if stored is None else frozenset(stored)
    revisions = dbcheck.Revisions(stored=stored, heads=HEADS, known=KNOWN)
    assert revisions.status == status
    problem = revisions.problem()
    assert (problem is None) == (status == "current")
    if problem is not None:
        assert "\n" not in str(problem)
        fix = {"uninitialised": "run `oidc-provider init`", "behind": "oidc-provider serve --migrate",
               "ahead": "upgrade oidc-provider"}[status]
        assert fix in str(problem)


def test_revisions_are_read_from_the_database(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.begin() as connection:
        assert dbcheck.revisions(connection, MIGRATIONS).status == "uninitialised"
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
        assert dbcheck.revisions(connection, MIGRATIONS).stored == {"0001"}
    engine.dispose()


# ---- explain: one line, the cause and the fix ----

def test_sqlite_missing_directory_is_named(tmp_path):
    path = tmp_path / "absent" / "x.db"
    with pytest.raises(sqlite3.OperationalError) as raised:
        sqlite3.connect(path)
    problem = str(dbcheck.explain(OperationalError("", {}, raised.value), f"sqlite:///{path}"))
    assert problem.startswith(f"the directory {path.parent} of the SQLite database does not exist: create it")


def test_unrecognised_errors_give_the_drivers_first_line(tmp_path):
    problem = str(dbcheck.explain(_sqlite_error("SELEC 1"), f"sqlite:///{tmp_path / 'x.db'}"))
    assert problem.startswith("the database at sqlite:///") and 'near "SELEC": syntax error' in problem


def test_sqlite_locked_and_missing_tables_are_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert "no provider tables: run `oidc-provider init`" in str(
        dbcheck.explain(_sqlite_error("SELECT * FROM account"), url))
    locked = OperationalError("", {}, sqlite3.OperationalError("database is locked"))
    assert "stayed locked by another process" in str(dbcheck.explain(locked, url))


def test_fallback_masks_the_password():
    url = "postgresql+psycopg://oidc:s3cret-pw@db.internal:5432/oidc"
    problem = str(dbcheck.explain(RuntimeError("something odd"), url))
    assert "s3cret-pw" not in problem and "***" in problem and "something odd" in problem


@pytest.mark.parametrize("message,expected", [
    ('connection to server at "127.0.0.1", port 5999 failed: Connection refused\n\tIs the server running?',
     "cannot connect to PostgreSQL at db.internal:5432 (connection refused)"),
    ('connection to server at "10.0.0.1", port 5432 failed: FATAL:  database "oidcx" does not exist',
     'database "oidcx" does not exist on the PostgreSQL server at db.internal:5432: create it (createdb oidcx)'),
    ('connection to server at "10.0.0.1", port 5432 failed: FATAL:  role "nobody" does not exist',
     'the PostgreSQL role "nobody" does not exist'),
    ('connection to server at "10.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "oidc"',
     'refused the credentials of role "oidc": correct the password in OIDC_DATABASE_URL'),
    ('connection to server failed: FATAL:  database "oidc" is not currently accepting connections',
     'the database "oidc" at db.internal:5432 is not accepting connections'),
    ("failed to resolve host 'db.internal': [Errno -2] Name or service not known",
     'cannot resolve the database host "db.internal"'),
    ("connection timeout expired", "did not answer in time"),
])
def test_postgresql_connection_failures_are_named(message, expected):
    """libpq reports these without a SQLSTATE: the message names them."""
    import psycopg

    error = OperationalError("", {}, psycopg.OperationalError(message))
    problem = str(dbcheck.explain(error, "postgresql+psycopg://oidc:s3cret-pw@db.internal:5432/oidc"))
    assert expected in problem and "\n" not in problem and "s3cret-pw" not in problem


# ---- outage or not ----

def test_outages_and_non_outages():
    import psycopg

    assert dbcheck.is_outage(OperationalError("", {}, psycopg.OperationalError("server closed the connection")))
    assert dbcheck.is_outage(PoolTimeout("QueuePool limit reached"))
    assert dbcheck.is_outage(OperationalError("", {}, sqlite3.OperationalError("database is locked")))
    assert dbcheck.is_outage(_sqlite_error("SELECT * FROM account"))
    # A faulty statement, a value the database refused, a constraint: bugs or input, not outages.
    assert not dbcheck.is_outage(_sqlite_error("SELEC 1"))
    assert not dbcheck.is_outage(DataError("", {}, psycopg.DataError("invalid byte sequence")))
    assert not dbcheck.is_outage(IntegrityError("", {}, psycopg.IntegrityError("duplicate key")))
    assert not dbcheck.is_outage(ProgrammingError("", {}, psycopg.ProgrammingError("syntax error")))
    assert not dbcheck.is_outage(ValueError("not a database error"))


def test_a_disconnect_is_an_outage_whatever_its_class():
    import psycopg

    error = ProgrammingError("", {}, psycopg.ProgrammingError("x"), connection_invalidated=True)
    assert dbcheck.is_outage(error)


def test_real_postgresql_refusals_are_named_without_secrets():
    """A real connection attempt to a port where nothing listens (no server needed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://oidc:s3cret-pw@127.0.0.1:{port}/oidc"
    engine = create_engine(url)
    with pytest.raises(dbcheck.DatabaseProblem) as problem:
        dbcheck.check(engine, MIGRATIONS)
    engine.dispose()
    assert str(problem.value).startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused)")
    assert "s3cret-pw" not in str(problem.value)


# ---- every kind of command goes through the check ----

COMMANDS = [
    ["user", "list"], ["user", "show", "alice"], ["user", "create", "alice", "--email", "a@example.com"],
    ["user", "disable", "alice"], ["user", "grant", "alice", "viewer"],
    ["client", "list"], ["client", "create", "--name", "App", "--redirect-uri", "https://app.example/cb"],
    ["client", "rotate-secret", "x"], ["service", "list"], ["service", "create", "backup"],
    ["keys", "list"], ["keys", "rotate"], ["role", "list"],
    ["role", "define", "viewer", "--audience", "https://app.example", "--action", "read"],
    ["token", "list"], ["audit", "list"], ["connector", "list"], ["cleanup"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_every_kind_of_command_names_an_uninitialised_database(args, tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    env = {"OIDC_ISSUER": "http://127.0.0.1:5000", "OIDC_SECRET_KEY": "k" * 40,
           "OIDC_DATABASE_URL": f"sqlite:///{path}", "OIDC_CONFIG_FILE": ""}
    result = CliRunner().invoke(main, args, env=env, input="a long password\n", catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == ("Error: the database is not initialised (it has no provider tables): "
                             "run `oidc-provider init`\n")
