"""``export``, ``import``, ``copy-database`` and ``backup``: move the provider's data to another
database (SQLite to PostgreSQL and back) and make an online SQLite backup. The logic is in
``oidc_provider.transfer``; these commands open the databases and speak in one line."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import create_engine, make_url

from ..audit import Event, record
from ..extensions import db
from ..keys.encryption import SIGNING_KEYS, Sealer
from ..keys.store import KeysUnreadable
from ..settings import absolute_sqlite_url
from ..transfer import (
    TransferError,
    check_revision,
    code_revision,
    database_revision,
    load,
    read_file,
    records,
    write_file,
)
from .common import app_context, emit, json_option

FILE = click.Path(dir_okay=False, path_type=Path)


def _head() -> str:
    return code_revision(current_app.extensions["migrate"].directory)


def _sealer() -> Sealer:
    """Opens signing keys as the target provider will."""
    return Sealer.for_settings(current_app.extensions["oidc_settings"], SIGNING_KEYS)


def _check_source(head: str) -> None:
    """The source's migrations are this version's and its signing keys open with this
    OIDC_SECRET_KEY (they are copied sealed), checked before the export reads anything."""
    with db.engine.connect() as conn:
        try:
            check_revision(conn, head, "source")
        except TransferError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        current_app.extensions["oidc_server"].policy.keys.require_readable()
    except KeysUnreadable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.session.rollback()  # SQLite: let go of the lock before the export's transaction


def _snapshot(conn):
    """One consistent view of every table (PostgreSQL: REPEATABLE READ; on SQLite the read
    transaction already is one)."""
    return conn.execution_options(isolation_level="REPEATABLE READ") if conn.dialect.name == "postgresql" else conn


@click.command("export")
@click.argument("file", type=FILE)
@json_option
def export(file, as_json):
    """Write every row of the database to FILE (JSON Lines, gzip if it ends in .gz, mode 0600).
    FILE holds sealed keys, digests and password hashes: keep it like a backup."""
    with app_context():
        head = _head()
        _check_source(head)
        with db.engine.connect() as conn:
            try:
                counts = write_file(file, records(_snapshot(conn), db.metadata, head))
            except TransferError as exc:
                raise click.ClickException(str(exc)) from None
        record(Event.DATA_EXPORTED, actor="cli", detail={"revision": head, "rows": sum(counts.values())})
    emit({"file": str(file), "revision": head, "tables": counts}, as_json,
         f"exported {sum(counts.values())} rows of {len(counts)} tables at migration {head} to {file}")


@click.command("import")
@click.argument("file", type=FILE)
@json_option
def import_(file, as_json):
    """Load an export FILE into this database, which `init` prepared and nothing else touched.
    One transaction: a refused file changes nothing. Needs the source's OIDC_SECRET_KEY."""
    with app_context():
        head = _head()
        try:
            with db.engine.begin() as conn:
                counts = load(conn, db.metadata, head, read_file(file), _sealer())
        except TransferError as exc:
            raise click.ClickException(str(exc)) from None
        record(Event.DATA_IMPORTED, actor="cli", detail={"revision": head, "rows": sum(counts.values())})
    emit({"file": str(file), "revision": head, "tables": counts}, as_json,
         f"imported {sum(counts.values())} rows of {len(counts)} tables from {file}")


@click.command("copy-database")
@click.option("--to", "target", required=True, metavar="URL",
              help="The target database URL (prepared with `init`, empty), e.g. postgresql+psycopg://...")
@json_option
def copy_database(target, as_json):
    """Copy every row of this database into the database at URL, as export and import would,
    without a file. One transaction on the target."""
    with app_context():
        head = _head()
        _check_source(head)
        engine = create_engine(_normalised(target))
        try:
            with db.engine.connect() as source, engine.begin() as conn:
                counts = load(conn, db.metadata, head, records(_snapshot(source), db.metadata, head), _sealer())
        except TransferError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.dispose()
        to = make_url(_normalised(target)).render_as_string(hide_password=True)
        record(Event.DATA_EXPORTED, actor="cli", detail={"revision": head, "rows": sum(counts.values()), "to": to})
    emit({"to": to, "revision": head, "tables": counts}, as_json,
         f"copied {sum(counts.values())} rows of {len(counts)} tables")


def _normalised(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    if not url.startswith(("sqlite:", "postgresql+psycopg://")):
        raise click.BadParameter("a sqlite:/// or postgresql+psycopg:// URL", param_hint="--to")
    return absolute_sqlite_url(url)


@click.command("backup")
@click.argument("file", type=FILE)
@json_option
def backup(file, as_json):
    """Copy the SQLite database to FILE (mode 0600) while the provider runs, with SQLite's
    online backup. For PostgreSQL use pg_dump -Fc."""
    with app_context():
        url = db.engine.url
        if url.get_backend_name() != "sqlite":
            raise click.ClickException("`backup` copies a SQLite database; back up PostgreSQL with "
                                       "`pg_dump -Fc` (see the operator guide, Backups)")
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise click.ClickException(f"{file} exists: choose another name or remove it first") from None
        except OSError as exc:
            raise click.ClickException(f"{file}: {exc.strerror}") from None
        os.close(fd)
        with db.engine.connect() as conn:
            revision = database_revision(conn)
        try:
            _sqlite_backup(db.engine.raw_connection(), file)
        except sqlite3.Error as exc:
            file.unlink(missing_ok=True)
            raise click.ClickException(f"{file}: the backup failed: {exc}") from None
        except BaseException:
            file.unlink(missing_ok=True)
            raise
    emit({"file": str(file), "revision": revision, "bytes": file.stat().st_size}, as_json,
         f"backed up the database at migration {revision} to {file}")


def _sqlite_backup(raw, file: Path) -> None:
    try:
        target = sqlite3.connect(file)
        try:
            raw.driver_connection.backup(target)
            # One self-contained file (the source is in WAL mode; the copy need not be).
            target.execute("PRAGMA journal_mode=DELETE")
            if target.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise click.ClickException(f"{file}: the copy does not pass SQLite's quick_check")
        finally:
            target.close()
    finally:
        raw.close()


COMMANDS = (export, import_, copy_database, backup)
