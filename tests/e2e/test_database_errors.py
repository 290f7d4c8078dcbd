"""Every database mistake an operator can make is one line from the real ``oidc-provider``
command: the cause and the fix on standard error, a non-zero exit, no traceback, no password.
SQLite always; PostgreSQL too when the suite runs on it (OIDC_TEST_DATABASE_URL), on scratch
databases and roles that do not exist. ``serve`` refuses a database whose migrations are behind
unless ``--migrate`` is given."""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import subprocess

import pytest
import requests
from live import CHEAP_ARGON2, LiveServer, ScratchPostgres, _cli_path, free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from oidc_provider import create_app
from oidc_provider.extensions import db
from oidc_provider.settings import Settings

pytestmark = pytest.mark.e2e

TEST_URL = os.environ.get("OIDC_TEST_DATABASE_URL", "")
POSTGRES = TEST_URL.startswith("postgresql")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES else [])
ISSUER = "http://127.0.0.1:5000"
SECRET_KEY = "database-errors-secret-" + "d" * 32
PASSWORD = "s3cret-pw-" + secrets.token_hex(4)  # must never be printed
FUTURE = "ffffffffffff"  # a revision no version of the provider has (yet)


def oidc(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
    env.update(CHEAP_ARGON2, OIDC_ISSUER=ISSUER, OIDC_SECRET_KEY=SECRET_KEY, OIDC_DATABASE_URL=url)
    return subprocess.run([_cli_path(), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)


def assert_one_line(done: subprocess.CompletedProcess, *fragments: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output
    assert PASSWORD not in output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path):
    """An empty database: a SQLite file with no tables, or a scratch PostgreSQL database."""
    if backend == "sqlite":
        path = tmp_path / "oidc.db"
        sqlite3.connect(path).close()
        yield f"sqlite:///{path}"
        return
    scratch = ScratchPostgres(TEST_URL)
    try:
        yield scratch.create()
    finally:
        scratch.drop()


def execute(url: str, statement: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def migrate(url: str, *, to: str) -> None:
    """Set the schema up in-process (what the CLI is tested on comes after): ``to="head"`` is
    what ``init`` makes; ``to="-1"`` after it is what an older version left behind."""
    from flask_migrate import downgrade, upgrade

    app = create_app(Settings(issuer=ISSUER, secret_key=SECRET_KEY, database_url=url))
    with app.app_context():
        directory = app.extensions["migrate"].directory
        upgrade(directory=directory) if to == "head" else downgrade(directory=directory, revision=to)
        db.engine.dispose()


# ---- cannot connect, no such database, role, file or directory ----

def _postgres_url(**parts) -> str:
    return make_url(TEST_URL).set(password=PASSWORD, **parts).render_as_string(hide_password=False)


def _under_a_file(tmp) -> str:
    (tmp / "a-file").write_text("")
    return f"sqlite:///{tmp / 'a-file' / 'oidc.db'}"


def _connection_cases():
    cases = [
        pytest.param(lambda tmp: f"sqlite:///{tmp / 'absent' / 'oidc.db'}", ["user", "list"],
                     "the SQLite database {tmp}/absent/oidc.db does not exist: run `oidc-provider init` first",
                     id="sqlite-no-such-directory"),
        pytest.param(lambda tmp: f"sqlite:///{tmp / 'oidc.db'}", ["serve", "--port", "9"],
                     "the SQLite database {tmp}/oidc.db does not exist: run `oidc-provider init` first",
                     id="sqlite-no-such-file-serve"),
        pytest.param(_under_a_file, ["init"], "{tmp}/a-file is not a directory", id="sqlite-directory-is-a-file"),
    ]
    if POSTGRES:
        port = free_port()  # nothing listens there
        missing_db, missing_role = f"oidc_absent_{secrets.token_hex(4)}", f"oidc_nobody_{secrets.token_hex(4)}"
        refused = f"cannot connect to PostgreSQL at {make_url(TEST_URL).host}:{port} (connection refused)"
        cases += [
            pytest.param(lambda tmp: _postgres_url(port=port), ["init"], refused, id="postgresql-wrong-port-init"),
            pytest.param(lambda tmp: _postgres_url(port=port), ["serve", "--port", "9"], refused,
                         id="postgresql-wrong-port-serve"),
            pytest.param(lambda tmp: _postgres_url(database=missing_db), ["user", "list"],
                         f'database "{missing_db}" does not exist', id="postgresql-no-such-database"),
            pytest.param(lambda tmp: _postgres_url(username=missing_role), ["keys", "list"],
                         f'the PostgreSQL role "{missing_role}" does not exist', id="postgresql-no-such-role"),
        ]
    return cases


@pytest.mark.parametrize("make_url_,args,expected", _connection_cases())
def test_a_database_that_cannot_be_reached_is_one_line(make_url_, args, expected, tmp_path):
    done = oidc(make_url_(tmp_path), *args)
    assert_one_line(done, expected.format(tmp=tmp_path))


# ---- not initialised, migrations behind, migrations ahead ----

@pytest.mark.parametrize("backend", BACKENDS)
def test_an_uninitialised_database_says_run_init(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        for args in (["user", "list"], ["serve", "--port", "9"]):
            assert_one_line(oidc(url, *args), "the database is not initialised", "run `oidc-provider init`")


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_behind_the_code_say_run_init_and_serve_refuses(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        migrate(url, to="head")
        migrate(url, to="-1")
        for args in (["keys", "list"], ["serve", "--port", "9"]):
            assert_one_line(oidc(url, *args), "the database schema is at revision",
                            "run `oidc-provider init` (or start `oidc-provider serve --migrate`)")
        assert oidc(url, "init").returncode == 0  # the fix it names


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_ahead_of_the_code_say_upgrade(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        migrate(url, to="head")
        execute(url, f"UPDATE alembic_version SET version_num = '{FUTURE}'")
        for args in (["init"], ["serve", "--port", "9"]):
            assert_one_line(oidc(url, *args), f"the database schema is at revision {FUTURE}",
                            "a newer version migrated it: upgrade oidc-provider")


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_migrate_applies_pending_migrations_then_serves(backend):
    server = LiveServer(database_url=TEST_URL if backend == "postgresql" else None, workers=1,
                        serve_options=("--migrate",))
    try:
        server.prepare()
        migrate(server.db_url, to="-1")
        server.start()
        ready = requests.get(server.issuer + "/readyz", timeout=10)
        assert (ready.status_code, ready.json()["status"]) == (200, "ok")
        assert server.cli("keys", "list", as_json=True)  # the schema is current again for every command
    finally:
        server.stop()
