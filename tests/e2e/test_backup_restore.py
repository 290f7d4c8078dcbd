"""Backups as the operator guide's "Backups" section gives them, restored, and a person signs
in again (OpenID Connect Core §3.1) with what the backup held: an online ``oidc-provider
backup`` of SQLite, and ``pg_dump -Fc`` / ``pg_restore`` of PostgreSQL (the binaries from
Debian's postgresql-client, which bin/test's machines have).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from authlib.common.security import generate_token
from live import LiveServer  # conformance/live.py, on sys.path via tests/e2e/conftest.py

from .conftest import REDIRECT_URI
from .test_move_to_postgresql import POSTGRES, claims_of, halt, refused, sign_in

pytestmark = pytest.mark.e2e


def _used_provider(server: LiveServer) -> dict:
    server.prepare()
    password = generate_token(18)
    server.create_user("alice", password)
    client = server.create_client("Backed up", [REDIRECT_URI])
    server.start()
    sub = claims_of(sign_in(server.issuer, client, "alice", password)["id_token"])["sub"]
    return {"password": password, "client": client, "sub": sub}


def _signs_in_again(server: LiveServer, before: dict) -> None:
    server.start()
    tokens = sign_in(server.issuer, before["client"], "alice", before["password"])
    assert claims_of(tokens["id_token"])["sub"] == before["sub"]
    # What was created after the backup is gone: the database is the backup's.
    assert [u["username"] for u in server.cli("user", "list")] == ["alice"]


def test_sqlite_online_backup_is_restored(tmp_path):
    server = LiveServer(workers=1)
    try:
        before = _used_provider(server)
        backup = tmp_path / "oidc-backup.db"
        made = server.cli("backup", str(backup))  # while serving
        assert made["revision"] and backup.stat().st_mode & 0o777 == 0o600
        server.create_user("late", generate_token(18))
        halt(server)

        # The disk is lost: the database is garbage now.
        database = Path(server.db_url.removeprefix("sqlite:///"))
        database.write_bytes(b"\0" * 4096)
        # Restore as the guide says: remove the old -wal/-shm files, put the copy in place (0600).
        for leftover in (database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(backup, database)
        database.chmod(0o600)
        _signs_in_again(server, before)
    finally:
        server.stop()


def test_backup_never_overwrites_a_file(tmp_path):
    existing = tmp_path / "exists.db"
    existing.write_bytes(b"keep me")
    server = LiveServer(workers=1)
    try:
        server.prepare()
        refused(server.env, "backup", str(existing), says="exists")
        assert existing.read_bytes() == b"keep me"
    finally:
        server.stop()


def _libpq(url: str, database: str | None = None) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    return urlunsplit(parts._replace(path="/" + database)) if database else urlunsplit(parts)


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                          env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
    assert done.returncode == 0, (command, done.stderr)


def test_postgresql_pg_dump_is_restored_with_pg_restore(tmp_path):
    assert shutil.which("pg_dump") and shutil.which("pg_restore"), "postgresql-client is not installed"
    server = LiveServer(database_url=POSTGRES, workers=1)
    try:
        before = _used_provider(server)
        # `oidc-provider backup` is for SQLite; it points to pg_dump.
        refused(server.env, "backup", str(tmp_path / "pg.db"), says="pg_dump -Fc")
        assert not (tmp_path / "pg.db").exists()
        dump = tmp_path / "oidc.pgdump"
        url = _libpq(server.db_url)
        _run("pg_dump", "-Fc", "-f", str(dump), url)  # while serving
        server.create_user("late", generate_token(18))
        halt(server)

        # The database is lost; restore into a new empty one of the same name, as the guide says.
        name = urlsplit(url).path.lstrip("/")
        admin = _libpq(server.db_url, "postgres")
        _run("psql", "-q", "-d", admin, "-c", f'DROP DATABASE "{name}" WITH (FORCE)')
        _run("psql", "-q", "-d", admin, "-c", f'CREATE DATABASE "{name}"')
        _run("pg_restore", "--no-owner", "--exit-on-error", "-d", url, str(dump))
        _signs_in_again(server, before)
    finally:
        server.stop()
