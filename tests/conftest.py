"""Shared fixtures. The database comes from OIDC_TEST_DATABASE_URL (bin/test runs the suite
once on SQLite and once on a fresh PostgreSQL database); tables are created once per run and
emptied between tests; signing keys are generated once per run and re-inserted."""

from __future__ import annotations

import os
import tempfile

import pytest
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert

from oidc_provider import create_app
from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.keys.store import generate_private_jwk
from oidc_provider.models import SigningKey
from oidc_provider.settings import SIGNING_ALGS, Settings

from .helpers import Browser, make_client, make_user  # noqa: F401

ISSUER = "http://127.0.0.1:5000"


def _database_url() -> str:
    url = os.environ.get("OIDC_TEST_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if url and worker and url.startswith("postgresql"):
        return _worker_database(url, worker)
    if url:
        return url
    path = os.path.join(tempfile.mkdtemp(prefix="oidc-test-"), "test.db")
    return f"sqlite:///{path}"


def _worker_database(url: str, worker: str) -> str:
    """Under pytest-xdist each worker gets its own PostgreSQL database, ``<database>_<worker>``
    (bin/test drops them with the main one), since tests empty the tables between them."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


DATABASE_URL = _database_url()


def settings_for(**overrides) -> Settings:
    base = Settings(
        issuer=ISSUER, secret_key="test-secret-key-" + "x" * 32, database_url=DATABASE_URL,
        argon2_time_cost=1, argon2_memory_cost=1024, argon2_parallelism=1,
    )
    return base.replace(**overrides)


@pytest.fixture(scope="session")
def private_jwks():
    """One key per algorithm (and a spare set for rotation), generated once per run."""
    return {alg: [generate_private_jwk(alg) for _ in range(2)] for alg in SIGNING_ALGS}


@pytest.fixture(scope="session")
def _schema():
    app = create_app(settings_for())
    with app.app_context():
        db.drop_all()
        db.create_all()
        # The models' schema is the migrations' head (tests/unit/test_migrations.py): say so,
        # as `oidc-provider init` would, so that CLI commands run against this database.
        with db.engine.begin() as connection:
            MigrationContext.configure(connection).stamp(ScriptDirectory(app.extensions["migrate"].directory), "heads")
    return True


@pytest.fixture(scope="session")
def _default_app(_schema):
    """The app with the default test settings, built once per worker: building an app compiles
    ~80 routes (~60 ms), which every test paid once or twice. Its in-process caches are reset
    for each test (``app_factory``); the database is emptied."""
    app = create_app(settings_for())
    app.testing = True
    return app


@pytest.fixture(scope="session")
def _key_rows(_default_app, private_jwks):
    """The signing-key rows every test starts with (an active and a next key per algorithm),
    sealed once: deriving them imports RSA private keys, ~70 ms each."""
    with _default_app.app_context():
        keys = _default_app.extensions["oidc_server"].policy.keys
        rows = [keys.add(alg, state, pair[i]) for alg, pair in private_jwks.items()
                for i, state in enumerate(("active", "next"))]
        values = [{name: getattr(row, name) for name in ("kid", "alg", "state", "public_jwk", "private_jwk_encrypted")}
                  for row in rows]
        db.session.rollback()
    return values


@pytest.fixture
def app_factory(_schema, _default_app, _key_rows):
    made = []

    def factory(**overrides):
        app = create_app(settings_for(**overrides))
        app.testing = True
        made.append(app)
        return app

    first = factory.default = _default_app
    _reset_caches(first)
    with first.app_context():
        _empty_tables()
        now = utcnow()
        db.session.execute(insert(SigningKey), [
            {**row, "activated_at": now if row["state"] == "active" else None} for row in _key_rows])
        db.session.commit()
    yield factory
    with first.app_context():
        db.session.remove()
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _reset_caches(app) -> None:
    """What the app keeps in process memory between requests: the decrypted signing keys."""
    app.extensions["oidc_server"].policy.keys.invalidate()


def _empty_tables():
    # DELETE, not TRUNCATE: on PostgreSQL, TRUNCATE of a dozen small tables costs about a
    # second per test; DELETE of a few rows costs milliseconds.
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def app(request, app_factory):
    """The default provider, or one with the settings a test names through indirect
    parametrization (``configured(...)`` / ``WHEN_ASKED`` in tests/helpers.py)."""
    settings = getattr(request, "param", None)
    return app_factory(**settings) if settings else app_factory.default


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def browser(app):
    return Browser(app)
