"""Database problems, named: what stands between the provider and its database, said in one
line that gives the cause and the fix, with the URL's password masked.

- ``check(engine, directory)`` runs before a command or the server uses the database: the
  SQLite file (or its directory) is there, the server answers, and the Alembic revision stored
  in the database is the one this version's migrations end at.
- ``explain(exc, url)`` names the problem behind an error met on the way.
- ``is_outage(exc)`` tells the server which errors mean "the database cannot be used right now"
  (503) rather than a bug or a value the database refused.

libpq reports connection failures without a SQLSTATE (the server's FATAL message is only text),
so those are recognised by their message; errors inside a session carry a SQLSTATE class.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

INIT = "run `oidc-provider init`"
VERSION_TABLE = "alembic_version"  # Alembic's default; migrations/env.py keeps it


class DatabaseProblem(Exception):
    """One line for the operator: what is wrong with the database and what to do."""


@dataclass(frozen=True)
class Revisions:
    """The Alembic revisions stored in the database against the heads this version ships."""

    stored: frozenset[str]
    heads: frozenset[str]
    known: frozenset[str]

    @property
    def status(self) -> str:
        if self.stored == self.heads:
            return "current"
        if not self.stored:
            return "uninitialised"
        if self.stored - self.known:
            return "ahead"
        return "behind"

    def problem(self) -> DatabaseProblem | None:
        stored, heads = ", ".join(sorted(self.stored)), ", ".join(sorted(self.heads))
        return {
            "current": None,
            "uninitialised": DatabaseProblem(f"the database is not initialised (it has no provider tables): {INIT}"),
            "behind": DatabaseProblem(
                f"the database schema is at revision {stored} but this version of oidc-provider needs {heads}: "
                f"{INIT} (or start `oidc-provider serve --migrate`) to apply the migrations"),
            "ahead": DatabaseProblem(
                f"the database schema is at revision {stored}, which this version of oidc-provider does not "
                f"know (its migrations end at {heads}); a newer version migrated it: upgrade oidc-provider"),
        }[self.status]


@functools.cache
def _scripts(directory: str) -> tuple[frozenset[str], frozenset[str]]:
    """(heads, every revision) of the migrations in ``directory``: read once per process."""
    scripts = ScriptDirectory(directory)
    return frozenset(scripts.get_heads()), frozenset(s.revision for s in scripts.walk_revisions())


def revisions(connection, directory) -> Revisions:
    heads, known = _scripts(str(directory))
    # Alembic's version table read directly: MigrationContext would log two INFO lines for
    # every command and every readiness probe.
    stored = frozenset()
    if inspect(connection).has_table(VERSION_TABLE):
        stored = frozenset(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    return Revisions(stored=stored, heads=heads, known=known)


def check(engine, directory, *, upgrading: bool = False) -> Revisions:
    """Raise DatabaseProblem unless the database can be used: reachable, and its schema current
    (``upgrading``: anything an upgrade can bring to current, i.e. not ahead)."""
    _sqlite_file(engine.url, create=upgrading)
    try:
        with engine.connect() as connection:
            state = revisions(connection, directory)
    except (SQLAlchemyError, CommandError) as exc:
        raise explain(exc, engine.url) from None
    if state.status == "ahead" or (not upgrading and state.status != "current"):
        raise state.problem()
    return state


def masked(url) -> str:
    return make_url(url).render_as_string(hide_password=True)


# ---- SQLite files ----

def _sqlite_path(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_file(url: URL, *, create: bool) -> None:
    path = _sqlite_path(url)
    if path is None:
        return
    if not create:
        if not path.exists():
            raise DatabaseProblem(f"the SQLite database {path} does not exist: {INIT} first, "
                                  "or correct OIDC_DATABASE_URL")
        return
    if path.parent.exists() and not path.parent.is_dir():
        raise DatabaseProblem(f"{path.parent} is not a directory, so the SQLite database {path} cannot be "
                              "made there: correct OIDC_DATABASE_URL")
    try:
        # A new SQLite database: its directory too (private: it holds the sealed keys).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseProblem(f"cannot create the directory {path.parent} for the SQLite database "
                              f"({exc.strerror}): create it, or correct OIDC_DATABASE_URL") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise DatabaseProblem(_unwritable(path))


def _unwritable(path: Path) -> str:
    return (f"the directory {path.parent} is not writable by this user, and SQLite writes its journal "
            f"next to {path.name}: make it writable, or correct OIDC_DATABASE_URL")


def _sqlite_open(path: Path | None, _match) -> str:
    if path is not None and not path.parent.is_dir():
        return (f"the directory {path.parent} of the SQLite database does not exist: create it "
                f"({INIT} does), or correct OIDC_DATABASE_URL")
    if path is not None and not os.access(path.parent, os.W_OK | os.X_OK):
        return _unwritable(path)
    return f"cannot open the SQLite database {path}: check the path and its permissions"


# ---- errors, named ----

# (pattern in the driver's message, one line: the cause and the fix). First match wins.
_POSTGRES = (
    (r'database "(?P<name>[^"]*)" does not exist',
     'database "{name}" does not exist on the PostgreSQL server at {where}: create it (createdb {name}), '
     "or correct the database name in OIDC_DATABASE_URL"),
    (r'role "(?P<name>[^"]*)" does not exist',
     'the PostgreSQL role "{name}" does not exist on the server at {where}: create it (createuser {name}), '
     "or correct the user name in OIDC_DATABASE_URL"),
    (r"password authentication failed|authentication failed|no password supplied|fe_sendauth",
     'PostgreSQL at {where} refused the credentials of role "{user}": correct the password in '
     "OIDC_DATABASE_URL (or ~/.pgpass)"),
    (r"no pg_hba\.conf entry",
     'PostgreSQL at {where} does not accept connections from this host for role "{user}" and database '
     '"{database}": add a pg_hba.conf entry'),
    (r"not currently accepting connections",
     'the database "{database}" at {where} is not accepting connections: ask its administrator '
     "to allow them (ALTER DATABASE ... ALLOW_CONNECTIONS true)"),
    (r"permission denied for database",
     'the PostgreSQL role "{user}" may not connect to "{database}": GRANT CONNECT ON DATABASE to it'),
    (r"permission denied for",
     'the PostgreSQL role "{user}" lacks privileges on the provider\'s tables in "{database}": grant them, '
     "or use the role that ran `oidc-provider init`"),
    (r"too many clients|too many connections|remaining connection slots",
     "PostgreSQL at {where} has no free connection slots: run fewer workers or raise max_connections"),
    (r"starting up|shutting down|in recovery mode|not yet accepting connections",
     "PostgreSQL at {where} is starting up or shutting down: try again in a moment"),
    (r"translate host name|failed to resolve host|name or service not known|nodename nor servname",
     'cannot resolve the database host "{host}": correct the host in OIDC_DATABASE_URL'),
    (r"timeout expired|timed out",
     "PostgreSQL at {where} did not answer in time: check the host and port in OIDC_DATABASE_URL, "
     "and the network between"),
    (r"connection refused|is the server running|no such file or directory",
     "cannot connect to PostgreSQL at {where} (connection refused): start the server, or correct the "
     "host and port in OIDC_DATABASE_URL"),
    (r"server closed the connection|terminating connection|consuming input failed|connection .*(lost|closed)",
     "the connection to PostgreSQL at {where} was lost: check that the server is up, then try again"),
    (r'relation "[^"]*" does not exist',
     f'the database "{{database}}" has no provider tables: {INIT}'),
)
_SQLITE = (
    (r"unable to open database file", _sqlite_open),
    (r"readonly database",
     "the SQLite database {path} is read-only for this user: make it (and its directory) writable"),
    (r"database is locked",
     "the SQLite database {path} stayed locked by another process for 30 s: try again, and look for a "
     "stuck process if it persists"),
    (r"file is not a database|malformed",
     "{path} is not a usable SQLite database: restore it from a backup, or correct OIDC_DATABASE_URL"),
    (r"disk i/o error|database or disk is full",
     "SQLite cannot write {path} (disk error or disk full): check the disk"),
    (r"no such table",
     f"the SQLite database {{path}} has no provider tables: {INIT}"),
)


def _message(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return str(original if original is not None else exc)


def explain(exc: BaseException, url) -> DatabaseProblem:
    """The problem behind ``exc``, an error met while using the database at ``url``."""
    url = make_url(url)
    text = _message(exc)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        fields, table = {"path": path or url.database}, _SQLITE
    else:
        host = url.host or "localhost"
        fields = {"host": host, "where": f"{host}:{url.port or 5432}", "user": url.username or "(default)",
                  "database": url.database or "(default)"}
        table = _POSTGRES
    for pattern, say in table:
        if match := re.search(pattern, text, re.IGNORECASE):
            if callable(say):
                return DatabaseProblem(say(fields.get("path"), match))
            return DatabaseProblem(say.format(**fields, **match.groupdict()))
    if isinstance(exc, CommandError):
        return DatabaseProblem(f"the migrations and the database disagree ({text}): {INIT}")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return DatabaseProblem(f"the database at {masked(url)} failed: {first}")


_SQLITE_OUTAGES = re.compile(
    r"unable to open database file|database is locked|disk i/o error|database or disk is full|readonly database"
    r"|file is not a database|malformed|no such table", re.IGNORECASE)


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be used now (connection refused or lost,
    database closed to connections, pool exhausted, SQLite file gone or locked): the server
    answers 503 and recovers by itself once the database is back. A value the database refused
    (DataError, IntegrityError) or a faulty statement is no outage."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        return isinstance(exc, OperationalError) and bool(_SQLITE_OUTAGES.search(str(exc.orig)))
    # psycopg: OperationalError covers SQLSTATE classes 08 (connection), 53 (insufficient
    # resources), 57 (operator intervention: terminated, shutting down), 40 (rolled back).
    return isinstance(exc, OperationalError | InterfaceError)
