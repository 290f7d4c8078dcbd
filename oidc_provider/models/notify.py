"""PostgreSQL: a change to a table whose rows the lanes keep (``loop_reads``) is announced on the
``oidc_hot`` channel (``NOTIFY``), by a trigger on the table, whoever makes it: this process,
another instance, the CLI, a hand-written ``UPDATE``. PostgreSQL delivers a notification when
the transaction commits, to every session listening in the same database.

The tables are those the cached hot statements read (``hot.Statement(..., cached=True)``;
``tests/unit/test_loop_reads.py`` checks the two agree). Migration 0013 creates the same
function and triggers on an existing database, ``oidc-provider init`` makes them again
(``install``), ``db.create_all`` (tests) here.
"""

from __future__ import annotations

from sqlalchemy import DDL, Engine, event, text

from ..extensions import db

CHANNEL = "oidc_hot"
TRIGGER = "oidc_hot_changed"
TABLES = ("account", "client", "consent_generation", "revoked_token", "role", "role_grant")

FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$"""


def trigger(table: str) -> str:
    """Once per statement (an ``UPDATE`` of many rows notifies once), for every kind of change;
    made again if it is there (``create_all`` on existing tables)."""
    return (f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table}; "
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()")


def install(engine: Engine) -> None:
    """The function and every table's trigger, made again (``oidc-provider init``); PostgreSQL only."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        conn.execute(text(FUNCTION))
        for table in TABLES:
            conn.execute(text(trigger(table)))


event.listen(db.metadata, "after_create", DDL(FUNCTION).execute_if(dialect="postgresql"))
for _table in TABLES:
    event.listen(db.metadata, "after_create", DDL(trigger(_table)).execute_if(dialect="postgresql"))
