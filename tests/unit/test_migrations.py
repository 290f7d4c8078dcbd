"""Models and migrations agree: on a fresh database, ``flask_migrate.upgrade()`` builds exactly
the schema the models declare (alembic's ``compare_metadata`` finds no difference), and a
second upgrade changes nothing. Runs on a temporary SQLite file and, when the suite runs on
PostgreSQL (OIDC_TEST_DATABASE_URL), on a scratch PostgreSQL database created and dropped
here."""

from __future__ import annotations

import contextlib
import os
import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from oidc_provider import create_app
from oidc_provider.extensions import db

from ..conftest import settings_for

TEST_URL = os.environ.get("OIDC_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_URL.startswith("postgresql") else [])


@contextlib.contextmanager
def fresh_database(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    url = make_url(TEST_URL)
    name = "oidc_migrations_" + secrets.token_hex(4)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _differences(app) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def _revision(app) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_builds_the_models_schema_and_is_idempotent(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        app = create_app(settings_for(database_url=url))
        try:
            with app.app_context():
                directory = app.extensions["migrate"].directory
                assert inspect(db.engine).get_table_names() == []
                # The comparison sees every table as missing before the upgrade.
                assert len([d for d in _differences(app) if d[0] == "add_table"]) == len(db.metadata.tables)
                upgrade(directory=directory)
                head = _revision(app)
                assert head is not None
                assert _differences(app) == []
                tables = set(inspect(db.engine).get_table_names())
                assert {t.name for t in db.metadata.sorted_tables} <= tables
                upgrade(directory=directory)
                assert _revision(app) == head
                assert _differences(app) == []
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
