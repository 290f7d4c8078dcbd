"""Fill a provider database with rows that look like a long-lived instance's.

    python bench/volume.py DATABASE_URL COUNT [--client-id ID]

Adds COUNT accounts, then COUNT refresh tokens, COUNT audit events and, while the schema still
has one, COUNT access-token records. The tables are found from the provider's models (by class
name: ``Account``, ``RefreshToken``, ``AuditEvent``, ``AccessToken``; one that no longer exists is
skipped) and their columns from a reflection of the live schema, so the filler follows the
schema as it changes: every NOT NULL column without a server default gets a value of its type,
unique columns get distinct values, foreign keys point at existing rows, timestamps are recent
and expiries in the future, columns named like ``revoked_at`` stay empty.

Bulk inserts, one transaction per 50,000 rows: PostgreSQL through ``COPY ... FROM STDIN``,
SQLite through one ``executemany`` per chunk. run.py calls ``fill`` between measurements.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
import warnings
from datetime import datetime, timedelta

import sqlalchemy as sa

CHUNK = 50_000
#: model class name -> what the rows stand for (the report's wording)
MODELS = {"Account": "accounts", "RefreshToken": "refresh tokens", "AuditEvent": "audit events",
          "AccessToken": "access-token records"}
#: plausible values for columns the application reads as an enumeration, by column name
ENUMS = {"kind": "human", "outcome": "success", "event": "login", "scope": "openid profile email",
         "acr": "pwd"}
_EMPTY = ("revoked", "rotated", "disabled_at", "deleted", "consumed", "predecessor", "sealed",
          "totp", "webauthn", "password")


def tables_to_fill() -> dict[str, str]:
    """model class name -> table name, for the models that exist in this checkout."""
    import oidc_provider.models as models

    found = {}
    for name in MODELS:
        model = getattr(models, name, None)
        if model is not None and hasattr(model, "__tablename__"):
            found[name] = model.__tablename__
    return found


def _unique_columns(table: sa.Table) -> set[str]:
    names = {c.name for c in table.columns if c.unique}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and len(constraint.columns) == 1:
            names.update(c.name for c in constraint.columns)
    for index in table.indexes:
        if index.unique:
            names.update(c.name for c in index.columns)
            # An expression index such as lower(username) shows no columns: treat every string
            # column the expression mentions as unique.
            for expr in index.expressions:
                names.update(c.name for c in table.columns if c.name in str(expr))
    return names


def _generator(table: sa.Table, conn, client_id: str | None):
    """A function row_number -> row (a tuple in ``columns`` order), and those columns."""
    now = datetime.now().replace(microsecond=0)  # the application stores naive UTC-ish datetimes
    later = now + timedelta(days=30)
    unique = _unique_columns(table)
    makers = []
    columns = []
    for column in table.columns:
        name = column.name
        if column.primary_key and column.autoincrement in (True, "auto") and \
                isinstance(column.type, sa.Integer):
            continue  # the database numbers rows
        kind = column.type
        needed = not column.nullable and column.server_default is None
        if any(word in name for word in _EMPTY) and not needed:
            continue
        if column.foreign_keys:
            target = next(iter(column.foreign_keys)).column
            ids = [row[0] for row in conn.execute(sa.select(target).limit(1_000_000))]
            if not ids:
                if needed:
                    raise RuntimeError(f"{table.name}.{name}: no {target.table.name} row to point at")
                continue
            makers.append(lambda i, ids=ids: ids[i % len(ids)])
        elif isinstance(kind, sa.Boolean):
            makers.append(lambda i: False)
        elif isinstance(kind, sa.Integer):
            makers.append(lambda i, u=name in unique: i if u else 0)
        elif isinstance(kind, sa.DateTime):
            makers.append(lambda i, v=later if "expires" in name else now: v)
        elif isinstance(kind, sa.JSON):
            if not needed and name not in ("claims", "amr", "resources"):
                continue
            value = {"sub": "volume"} if name == "claims" else ["pwd"] if name == "amr" else \
                [] if name == "resources" else {}
            makers.append(lambda i, v=value: v)
        elif isinstance(kind, sa.LargeBinary):
            if not needed:
                continue
            makers.append(lambda i, t=table.name, n=name: hashlib.sha256(f"{t}.{n}.{i}".encode()).digest())
        elif isinstance(kind, sa.String | sa.Text):
            length = getattr(kind, "length", None) or 64
            if name in unique:
                makers.append(lambda i, t=table.name, n=name, k=length:
                              hashlib.sha256(f"{t}.{n}.{i}".encode()).hexdigest()[:k])
            elif name == "client_id" and client_id:
                makers.append(lambda i, v=client_id: v)
            elif name in ENUMS:
                makers.append(lambda i, v=ENUMS[name][:length]: v)
            elif name == "email":
                makers.append(lambda i: f"volume{i}@example.com")
            elif name in ("family", "account", "client", "name", "ip", "actor"):
                makers.append(lambda i, k=length: f"volume-{i}"[:k])
            elif needed:
                makers.append(lambda i: "volume")
            else:
                continue
        elif needed:
            raise RuntimeError(f"{table.name}.{name}: no filler for NOT NULL column of type {kind!r}")
        else:
            continue
        columns.append(column)
    return (lambda i: tuple(make(i) for make in makers)), columns


def _insert_postgresql(engine, table, columns, rows) -> None:
    json_at = [n for n, c in enumerate(columns) if isinstance(c.type, sa.JSON)]
    names = ", ".join(f'"{c.name}"' for c in columns)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                if json_at:
                    row = list(row)
                    for n in json_at:
                        row[n] = json.dumps(row[n])  # COPY's text format: json and jsonb parse it
                copy.write_row(row)
        conn.commit()
    finally:
        raw.close()


def _insert_sqlite(engine, table, columns, rows) -> None:
    # Core executemany with the reflected columns' types (JSON serialised by SQLAlchemy).
    # (The DB-API's own executemany was tried: no faster here, and slower under load.)
    statement = sa.insert(table)
    names = [c.name for c in columns]
    with engine.begin() as conn:
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])


def fill(database_url: str, count: int, *, start: int = 0, client_id: str | None = None,
         log=print) -> dict:
    """Add ``count`` rows to each table (row numbers from ``start``, so that calls add up);
    returns {table: {"rows": count, "seconds": s}}."""
    engine = sa.create_engine(database_url)
    found = tables_to_fill()
    metadata = sa.MetaData()
    with warnings.catch_warnings():  # expression indexes (lower(username)) are not reflected
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        metadata.reflect(engine, only=list(found.values()))
    insert = _insert_postgresql if engine.dialect.name == "postgresql" else _insert_sqlite
    done = {}
    try:
        # Accounts first: the other tables' foreign keys point at them.
        for model in sorted(found, key=lambda m: m != "Account"):
            table = metadata.tables[found[model]]
            began = time.monotonic()
            with engine.connect() as conn:
                make, columns = _generator(table, conn, client_id)
            numbers = iter(range(start, start + count))
            while chunk := [make(i) for i in itertools.islice(numbers, CHUNK)]:
                insert(engine, table, columns, chunk)
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text(f'ANALYZE "{table.name}"'))
            seconds = time.monotonic() - began
            done[table.name] = {"what": MODELS[model], "rows": count, "seconds": round(seconds, 1)}
            log(f"  {table.name}: +{count} {MODELS[model]} in {seconds:.1f} s")
    finally:
        engine.dispose()
    return done


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("count", type=int)
    parser.add_argument("--client-id", help="client_id written into token rows")
    args = parser.parse_args(argv)
    fill(args.database_url, args.count, client_id=args.client_id)


if __name__ == "__main__":
    main()
