"""Models and migrations agree: on a fresh database, ``flask_migrate.upgrade()`` builds exactly
the schema the models declare (alembic's ``compare_metadata`` finds no difference), and a
second upgrade changes nothing. Runs on a temporary SQLite file and, when the suite runs on
PostgreSQL (OIDC_TEST_DATABASE_URL), on a scratch PostgreSQL database created and dropped
here."""

from __future__ import annotations

import contextlib
import json
import os
import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from oidc_provider import create_app
from oidc_provider.extensions import db
from oidc_provider.models import notify
from oidc_provider.problems import Problem

from ..conftest import settings_for

TEST_URL = os.environ.get("OIDC_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_URL.startswith("postgresql") else [])
# SQLite's expression index (usernames regardless of case) cannot be reflected, so alembic skips
# it in the comparison with a warning; _has_case_index checks it instead.
EXPRESSION_INDEX_WARNINGS = pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index",
    "ignore:Skipped unsupported reflection of expression-based index")


@contextlib.contextmanager
def fresh_database(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    url = make_url(TEST_URL if TEST_URL.startswith("postgresql") else "postgresql://postgres@127.0.0.1:5432/test")
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
@EXPRESSION_INDEX_WARNINGS
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
                assert _has_case_index(app)
                tables = set(inspect(db.engine).get_table_names())
                assert {t.name for t in db.metadata.sorted_tables} <= tables
                upgrade(directory=directory)
                assert _revision(app) == head
                assert _differences(app) == []
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def test_0013_announces_changes_to_the_kept_tables_on_postgresql(tmp_path):
    """loop_reads keeps rows only while a change to their tables is announced: after the
    upgrade each of models/notify.py's tables has its trigger, a change commits a
    notification, and the downgrade takes them away."""
    with fresh_database("postgresql", tmp_path) as url:
        app = create_app(settings_for(database_url=url))
        try:
            with app.app_context():
                directory = app.extensions["migrate"].directory
                upgrade(directory=directory)
                assert _triggered(app) == set(notify.TABLES)
                with db.engine.connect() as listener:
                    listener.execute(text("LISTEN oidc_hot"))
                    listener.commit()
                    with db.engine.begin() as conn:
                        conn.execute(text("UPDATE client SET token_generation = token_generation + 1"))
                        conn.execute(text("DELETE FROM revoked_token"))
                    listener.execute(text("SELECT 1"))
                    heard = {n.payload for n in listener.connection.dbapi_connection.notifies(timeout=1, stop_after=2)}
                    assert heard == {"client", "revoked_token"}
                downgrade(directory=directory, revision="0012")
                assert _triggered(app) == set()
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def _triggered(app) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = :name"),
            {"name": notify.TRIGGER}).scalars())


def _usernames(app) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT username FROM account ORDER BY id")).scalars())


def _has_case_index(app) -> bool:
    """SQLAlchemy does not reflect SQLite's expression indexes, so ask each catalogue."""
    query = ("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'uq_account_username_lower'"
             if db.engine.dialect.name == "sqlite" else
             "SELECT count(*) FROM pg_indexes WHERE indexname = 'uq_account_username_lower'")
    with db.engine.connect() as conn:
        return conn.execute(text(query)).scalar() == 1


@pytest.mark.parametrize("backend", BACKENDS)
@EXPRESSION_INDEX_WARNINGS
def test_0007_stops_on_usernames_that_differ_only_in_case_and_changes_nothing(backend, tmp_path):
    """Migration 0007 (usernames unique regardless of case) names the accounts that clash and
    how to fix them, and leaves the database at 0006; once they are renamed it goes through,
    and the database itself then refuses a second "Alice"."""
    with fresh_database(backend, tmp_path) as url:
        app = create_app(settings_for(database_url=url))
        try:
            with app.app_context():
                directory = app.extensions["migrate"].directory
                upgrade(directory=directory, revision="0006")
                with db.engine.begin() as conn:
                    for username in ("alice", "Alice", "bob", "carol", "CAROL", "Carol"):
                        conn.execute(text("INSERT INTO account (subject, kind, username, email_verified, disabled) "
                                          "VALUES (:subject, 'human', :username, false, false)"),
                                     {"subject": secrets.token_hex(8), "username": username})
                before = _usernames(app)

                with pytest.raises(Problem) as refused:
                    upgrade(directory=directory)
                message = str(refused.value)
                assert message.startswith("cannot make usernames unique regardless of case (migration 0007)")
                assert "'Alice' and 'alice'" in message and "'CAROL' and 'Carol' and 'carol'" in message
                assert "'bob'" not in message
                assert "This step changed nothing" in message and "UPDATE account SET username" in message
                assert "\n" not in message
                assert _revision(app) == "0006"
                assert not _has_case_index(app)
                assert _usernames(app) == before

                with db.engine.begin() as conn:  # what the message says to do
                    for old, new in (("Alice", "alice-2"), ("CAROL", "carol-2"), ("Carol", "carol-3")):
                        conn.execute(text("UPDATE account SET username = :new WHERE username = :old"),
                                     {"old": old, "new": new})
                upgrade(directory=directory, revision="0007")
                assert _revision(app) == "0007"
                assert _has_case_index(app)
                with pytest.raises(IntegrityError), db.engine.begin() as conn:
                    conn.execute(text("INSERT INTO account (subject, kind, username, email_verified, disabled) "
                                      "VALUES ('s-x', 'human', 'BOB', false, false)"))

                downgrade(directory=directory, revision="0006")
                assert not _has_case_index(app)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
@EXPRESSION_INDEX_WARNINGS
def test_0008_gives_existing_codes_and_refresh_tokens_generation_0_and_downgrades(backend, tmp_path):
    """Migration 0008 (consent generations): codes and refresh tokens stored before it carry
    generation 0, the generation a grant starts at, so they keep working until a withdrawal;
    the downgrade removes what it added."""
    with fresh_database(backend, tmp_path) as url:
        app = create_app(settings_for(database_url=url))
        try:
            with app.app_context():
                directory = app.extensions["migrate"].directory
                upgrade(directory=directory, revision="0007")
                with db.engine.begin() as conn:
                    account_id = conn.execute(text(
                        "INSERT INTO account (subject, kind, username, email_verified, disabled) "
                        "VALUES ('s-1', 'human', 'alice', false, false) RETURNING id")).scalar()
                    conn.execute(text("INSERT INTO refresh_token (token_digest, family, client_id, account_id, scope) "
                                      "VALUES ('d1', 'f1', 'c1', :a, 'openid')"), {"a": account_id})
                    conn.execute(text("INSERT INTO authorization_code (code_digest, family, client_id, account_id, "
                                      "redirect_uri, scope) VALUES ('d2', 'f2', 'c1', :a, 'https://rp/cb', 'openid')"),
                                 {"a": account_id})
                upgrade(directory=directory, revision="0008")
                assert _revision(app) == "0008"
                with db.engine.connect() as conn:
                    assert conn.execute(text("SELECT generation, predecessor_id, sealed_value "
                                             "FROM refresh_token")).one() == (0, None, None)
                    assert conn.execute(text("SELECT generation FROM authorization_code")).scalar() == 0
                    assert conn.execute(text("SELECT count(*) FROM consent_generation")).scalar() == 0
                downgrade(directory=directory, revision="0007")
                tables = inspect(db.engine)
                assert "consent_generation" not in tables.get_table_names()
                assert "generation" not in {c["name"] for c in tables.get_columns("refresh_token")}
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
@EXPRESSION_INDEX_WARNINGS
def test_0010_keeps_the_most_recent_link_per_account_and_provider_then_refuses_a_second(backend, tmp_path):
    """Migration 0010 (issue 12: a unique ``(account, provider)`` on federated identities):
    duplicates an old race left are removed first, keeping the most recently used one (last
    sign-in, else last linked); other accounts and upstreams are untouched; afterwards the
    database refuses a second identity at the same upstream for one account."""
    with fresh_database(backend, tmp_path) as url:
        app = create_app(settings_for(database_url=url))
        try:
            with app.app_context():
                directory = app.extensions["migrate"].directory
                upgrade(directory=directory, revision="0007")
                with db.engine.begin() as conn:
                    ids = [conn.execute(text(
                        "INSERT INTO account (subject, kind, username, email_verified, disabled) "
                        "VALUES (:s, 'human', :u, false, false) RETURNING id"), {"s": name, "u": name}).scalar()
                        for name in ("alice", "bob")]
                    rows = [  # (account, provider, subject, linked_at, last_login_at)
                        (ids[0], "github", "old-used", "2026-01-01 00:00:00", "2026-06-01 00:00:00"),
                        (ids[0], "github", "recent-used", "2026-02-01 00:00:00", "2026-11-01 00:00:00"),
                        (ids[0], "github", "never-used", "2026-12-01 00:00:00", None),
                        (ids[0], "corp", "corp-a", "2026-01-01 00:00:00", None),
                        (ids[0], "corp", "corp-b", "2026-03-01 00:00:00", None),
                        (ids[1], "github", "bobs", "2026-01-01 00:00:00", None),
                    ]
                    for account, provider, subject, linked, last in rows:
                        conn.execute(text("INSERT INTO federated_identity (account_id, provider, subject, linked_at, "
                                          "last_login_at) VALUES (:a, :p, :s, :l, :t)"),
                                     {"a": account, "p": provider, "s": subject, "l": linked, "t": last})
                upgrade(directory=directory, revision="0010")
                assert _revision(app) == "0010"
                with db.engine.connect() as conn:
                    kept = sorted(conn.execute(text("SELECT subject FROM federated_identity")).scalars())
                assert kept == ["bobs", "corp-b", "recent-used"]
                with pytest.raises(IntegrityError), db.engine.begin() as conn:
                    conn.execute(text("INSERT INTO federated_identity (account_id, provider, subject) "
                                      "VALUES (:a, 'github', 'another')"), {"a": ids[1]})
                downgrade(directory=directory, revision="0007")
                with db.engine.begin() as conn:
                    conn.execute(text("INSERT INTO federated_identity (account_id, provider, subject) "
                                      "VALUES (:a, 'github', 'another')"), {"a": ids[1]})
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_0011_personal_tokens_narrowed_by_name_become_narrowed_by_id(backend, tmp_path):
    """Migration 0011: each stored role name becomes the id of the role named so; a name with no
    role left is dropped (the token stays narrowed, never widened); an unnarrowed token stays
    unnarrowed. The downgrade gives the names back."""
    with fresh_database(backend, tmp_path) as url:
        app = create_app(settings_for(database_url=url))
        try:
            with app.app_context():
                directory = app.extensions["migrate"].directory
                upgrade(directory=directory, revision="0007")
                with db.engine.begin() as conn:
                    conn.execute(text("INSERT INTO account (id, subject, kind, username, email_verified, disabled) "
                                      "VALUES (1, 's-1', 'human', 'alice', false, false)"))
                    conn.execute(text("INSERT INTO role (id, name, statements) VALUES (7, 'viewer', '[]'), "
                                      "(9, 'editor', '[]')"))
                    for public_id, roles in (("t-both", '["editor", "viewer"]'), ("t-gone", '["removed"]'),
                                             ("t-some", '["viewer", "removed"]'), ("t-all", None)):
                        conn.execute(text("INSERT INTO personal_token (public_id, token_digest, account_id, name, "
                                          "audience, roles) VALUES (:p, :p, 1, '', 'https://app', :r)"),
                                     {"p": public_id, "r": roles})
                upgrade(directory=directory, revision="0011")
                with db.engine.connect() as conn:
                    rows = dict(conn.execute(text("SELECT public_id, role_ids FROM personal_token")).all())
                decoded = {k: (json.loads(v) if isinstance(v, str) else v) for k, v in rows.items()}
                assert decoded == {"t-both": [7, 9], "t-gone": [], "t-some": [7], "t-all": None}
                assert "roles" not in {c["name"] for c in inspect(db.engine).get_columns("personal_token")}

                downgrade(directory=directory, revision="0007")
                with db.engine.connect() as conn:
                    rows = dict(conn.execute(text("SELECT public_id, roles FROM personal_token")).all())
                decoded = {k: (json.loads(v) if isinstance(v, str) else v) for k, v in rows.items()}
                assert decoded == {"t-both": ["editor", "viewer"], "t-gone": [], "t-some": ["viewer"], "t-all": None}
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
@EXPRESSION_INDEX_WARNINGS
def test_0009_pending_requests_table_goes_up_and_down(backend, tmp_path):
    """Migration 0009 adds the table of pending authorization requests (one row each, issue
    12) and its downgrade removes it, leaving the rest as 0007 made it."""
    with fresh_database(backend, tmp_path) as url:
        app = create_app(settings_for(database_url=url))
        try:
            with app.app_context():
                directory = app.extensions["migrate"].directory
                upgrade(directory=directory, revision="0007")
                assert "pending_request" not in inspect(db.engine).get_table_names()
                upgrade(directory=directory, revision="0009")
                columns = {c["name"] for c in inspect(db.engine).get_columns("pending_request")}
                assert columns == {"id", "pid", "binder_digest", "params", "progress", "created_at", "expires_at"}
                downgrade(directory=directory, revision="0007")
                assert "pending_request" not in inspect(db.engine).get_table_names()
                assert _has_case_index(app)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
