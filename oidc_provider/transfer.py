"""Move every row of the provider's database to another one (SQLite to PostgreSQL and back),
through a portable file or directly.

Generic over the models' metadata: every table in ``db.metadata.sorted_tables`` (foreign-key
order) goes, so a table added later is included without a change here. Rows are read and
written with SQLAlchemy Core in batches, never as ORM objects, and keep their primary keys, so
the foreign keys, the ``sub`` of every account and the associated data bound into sealed values
stay the same. Sealed values (signing keys, TOTP seeds, database credentials) are copied as
they are: the target needs the same ``OIDC_SECRET_KEY`` (or it as ``OIDC_SECRET_KEY_PREVIOUS``
during a change), which the commands check on both sides.

The file is JSON Lines: a header, then for each table a ``{"table", "columns"}`` line followed
by one JSON array per row, then a trailer with the row count of each table and the SHA-256 of
everything before it, so a truncated or altered file is refused. Values: datetimes as ISO 8601,
bytes as base64, JSON columns as JSON. A JSON column's SQL NULL and JSON ``null`` read the same
in the application; a nullable one is imported as SQL NULL. The file holds secrets at rest
(sealed keys, digests, password hashes) and is written with mode 0600.

Export and import refuse unless the database, the file and the code are at the same Alembic
revision. Import needs a target that ``oidc-provider init`` prepared and that holds nothing but
the signing keys ``init`` made (they are replaced by the source's); it runs in one transaction,
so a refused file changes nothing. On PostgreSQL the id sequences are then moved past the
imported ids.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, delete, func, insert, select, text, types
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError

from .keys.encryption import Sealer

FORMAT = "oidc-provider-export"
VERSION = 1
BATCH = 500
SIGNING_KEYS = "signing_key"


class TransferError(Exception):
    """Export or import refused; the message is one line that says why and what to do."""


# ---- revisions ----
def code_revision(migrations_directory: str) -> str:
    return ScriptDirectory(migrations_directory).get_current_head()


def database_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def check_revision(conn: Connection, head: str, which: str) -> None:
    found = database_revision(conn)
    if found is None:
        raise TransferError(f"the {which} database is not initialised: run `oidc-provider init` on it first")
    if found != head:
        raise TransferError(f"the {which} database is at migration {found} but this oidc-provider is at {head}: "
                            "run `oidc-provider init` on it (or use the matching oidc-provider version) first")


# ---- values ----
def _codec(column):
    """(encode, decode) between a column's Python value and JSON, or an error for a type this
    module does not know (so a new kind of column is never copied wrongly)."""
    kind = column.type
    same = (lambda v: v, lambda v: v)
    if isinstance(kind, types.LargeBinary):
        return (lambda v: base64.b64encode(v).decode("ascii"), lambda v: base64.b64decode(v, validate=True))
    if isinstance(kind, types.DateTime):
        return (datetime.datetime.isoformat, datetime.datetime.fromisoformat)
    if isinstance(kind, types.Date):
        return (datetime.date.isoformat, datetime.date.fromisoformat)
    if isinstance(kind, types.Time):
        return (datetime.time.isoformat, datetime.time.fromisoformat)
    if isinstance(kind, types.Uuid):
        return (str, uuid.UUID) if kind.as_uuid else same
    if isinstance(kind, types.Float):
        return same
    if isinstance(kind, types.Numeric):
        return (str, decimal.Decimal) if kind.asdecimal else same
    if isinstance(kind, types.JSON | types.Boolean | types.Integer | types.String):
        return same
    raise TransferError(f"column {column.table.name}.{column.name} has type {kind!r}, which export does not know")


def _encoder(table):
    codecs = [_codec(c)[0] for c in table.columns]
    return lambda row: [None if v is None else enc(v) for enc, v in zip(codecs, row, strict=True)]


def _decoder(table, columns: list[str]):
    codecs = [_codec(table.columns[name])[1] for name in columns]

    def decode(values):
        if not isinstance(values, list) or len(values) != len(columns):
            raise TransferError(f"a row of table {table.name} does not have {len(columns)} values: the file is damaged")
        try:
            return {name: None if v is None else dec(v) for name, dec, v in zip(columns, codecs, values, strict=True)}
        except (ValueError, TypeError):
            raise TransferError(f"a row of table {table.name} holds a value of the wrong type: the file is damaged") \
                from None
    return decode


# ---- reading a database ----
def records(conn: Connection, metadata, head: str) -> Iterator[dict | list]:
    """The export as a stream of JSON values: header, then per table its columns and rows."""
    check_revision(conn, head, "source")
    yield {"format": FORMAT, "version": VERSION, "revision": head, "dialect": conn.dialect.name,
           "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    counts = {}
    for table in metadata.sorted_tables:
        encode = _encoder(table)
        yield {"table": table.name, "columns": [c.name for c in table.columns]}
        counts[table.name] = 0
        query = select(table).order_by(*table.primary_key.columns)
        for row in conn.execution_options(yield_per=BATCH).execute(query):
            counts[table.name] += 1
            yield encode(row)
    yield {"end": {"tables": counts}}


def _check_sealed(sealer: Sealer, row: dict) -> None:
    """Sealed values are copied as they are, and are useless under another key: refuse a
    signing key (not revoked) that this OIDC_SECRET_KEY does not open."""
    if row["state"] != "revoked" and not sealer.opens(row["private_jwk_encrypted"], row["kid"].encode()):
        raise TransferError(f"signing key {row['kid']} cannot be unsealed with this OIDC_SECRET_KEY: use the "
                            "source provider's OIDC_SECRET_KEY (nothing was changed)")


# ---- writing a database ----
def load(conn: Connection, metadata, head: str, items: Iterable, sealer: Sealer) -> dict[str, int]:
    """Insert an export into ``conn``'s database inside the caller's transaction; returns the
    row count of each table. ``sealer`` opens signing keys as the target will. Raises
    TransferError (the caller rolls back) on anything wrong."""
    check_revision(conn, head, "target")
    _refuse_unless_empty(conn, metadata)
    items = iter(items)
    header = next(items, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TransferError("this is not an oidc-provider export file")
    if header.get("version") != VERSION:
        raise TransferError(f"export format version {header.get('version')} is not supported (this oidc-provider "
                            f"reads version {VERSION})")
    if header.get("revision") != head:
        raise TransferError(f"the file was exported at migration {header.get('revision')} but this oidc-provider is "
                            f"at {head}: import with the oidc-provider version that exported it")
    conn.execute(delete(metadata.tables[SIGNING_KEYS]))  # the ones `init` made
    counts: dict[str, int] = {}
    table, decode, batch = None, None, []
    for item in items:
        if isinstance(item, list):
            if table is None:
                raise TransferError("a row comes before any table: the file is damaged")
            batch.append(decode(item))
            if table.name == SIGNING_KEYS:
                _check_sealed(sealer, batch[-1])
            if len(batch) >= BATCH:
                counts[table.name] += _insert(conn, table, batch)
            continue
        if table is not None:
            counts[table.name] += _insert(conn, table, batch)
        if isinstance(item, dict) and "end" in item:
            _check_end(item["end"], counts, metadata)
            _reset_sequences(conn, metadata)
            return counts
        table, decode = _start_table(item, metadata, counts)
    raise TransferError("the file ends early (no trailer): it is truncated; nothing was imported")


def _start_table(item, metadata, counts):
    name = item.get("table") if isinstance(item, dict) else None
    if name not in metadata.tables or name in counts:
        raise TransferError(f"unexpected table {name!r} in the file: it is damaged or from another program")
    table = metadata.tables[name]
    columns = item.get("columns")
    if not isinstance(columns, list) or sorted(columns) != sorted(c.name for c in table.columns):
        raise TransferError(f"the columns of table {name} in the file differ from this oidc-provider's")
    counts[name] = 0
    return table, _decoder(table, columns)


def _insert(conn: Connection, table, batch: list[dict]) -> int:
    if batch:
        # A nullable JSON column's None is SQL NULL; the JSON type alone would store JSON null.
        nullable_json = {c.name for c in table.columns if isinstance(c.type, types.JSON) and c.nullable}
        statement = insert(table).values({
            name: bindparam("json_" + name, type_=types.JSON(none_as_null=True)) for name in nullable_json
        }) if nullable_json else insert(table)
        try:
            conn.execute(statement, [{("json_" + k if k in nullable_json else k): v for k, v in row.items()}
                                     for row in batch])
        except (DataError, IntegrityError) as exc:
            # SQLite keeps what PostgreSQL refuses (a string longer than its column, say). Only
            # the first line of the database's message: the lines after it may quote values.
            reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
            raise TransferError(f"table {table.name}: the target database refuses a row ({reason}); "
                                "nothing was imported") from None
    count = len(batch)
    batch.clear()
    return count


def _check_end(end, counts: dict, metadata) -> None:
    expected = end.get("tables") if isinstance(end, dict) else None
    if expected != counts or set(counts) != set(metadata.tables):
        raise TransferError("the row counts in the file's trailer do not match its rows: the file is damaged")


def _refuse_unless_empty(conn: Connection, metadata) -> None:
    for table in metadata.sorted_tables:
        if table.name == SIGNING_KEYS:
            continue
        rows = conn.execute(select(func.count()).select_from(table)).scalar_one()
        if rows:
            raise TransferError(f"the target database is not empty (table {table.name} holds {rows} row(s)): import "
                                "needs a new database prepared by `oidc-provider init` only")


def _reset_sequences(conn: Connection, metadata) -> None:
    """PostgreSQL: rows were inserted with their ids, so move each id sequence past them."""
    if conn.dialect.name != "postgresql":
        return  # SQLite gives a new row max(rowid) + 1
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is not None:
            conn.execute(text(
                f'SELECT setval(pg_get_serial_sequence(:table, :column), COALESCE(MAX("{column.name}"), 1), '
                f'MAX("{column.name}") IS NOT NULL) FROM "{table.name}"'
            ), {"table": table.name, "column": column.name})


# ---- the file ----
def write_file(path: Path, items: Iterable) -> dict[str, int]:
    """Write the export to ``path`` (gzip when it ends in .gz), mode 0600, atomically: a
    failure leaves no file behind. Refuses to overwrite."""
    if path.exists():
        raise TransferError(f"{path} exists: choose another name or remove it first")
    partial = path.with_name(path.name + ".partial")
    digest, counts = hashlib.sha256(), {}
    try:
        partial.unlink(missing_ok=True)  # left by an interrupted export
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise TransferError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as raw, (gzip.open(raw, "wb") if path.suffix == ".gz" else raw) as out:
            for item in items:
                if isinstance(item, dict) and "end" in item:
                    counts = item["end"]["tables"]
                    item = {"end": {**item["end"], "sha256": digest.hexdigest()}}
                line = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
                digest.update(line)
                out.write(line)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise TransferError(f"{path}: cannot write: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return counts


def read_file(path: Path) -> Iterator:
    """The items of an export file; the trailer's digest is checked before it is yielded."""
    if not path.is_file():
        raise TransferError(f"{path}: no such file")
    digest = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    item = json.loads(line)
                except ValueError:
                    raise TransferError(f"{path}: line {number} is not JSON: the file is damaged") from None
                if isinstance(item, dict) and "end" in item:
                    if not isinstance(item["end"], dict) or item["end"].get("sha256") != digest.hexdigest():
                        raise TransferError(f"{path}: the checksum does not match: the file is damaged")
                    yield item
                    return
                digest.update(line)
                yield item
    except (OSError, EOFError) as exc:
        raise TransferError(f"{path}: cannot read: {exc}") from None
