"""``oidc_provider.transfer`` on its own: every column type it knows survives the file exactly,
a type it does not know is refused rather than copied wrongly, and the file's checks hold.
(The move of a real provider between SQLite and PostgreSQL: tests/e2e/test_move_to_postgresql.py.)"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Time,
    Uuid,
    create_engine,
    insert,
    select,
    text,
)

from oidc_provider.keys.encryption import Sealer
from oidc_provider.transfer import TransferError, load, read_file, records, write_file

HEAD = "0042"
SECRET = "s" * 40


def _metadata() -> MetaData:
    metadata = MetaData()
    Table("signing_key", metadata, Column("id", Integer, primary_key=True), Column("kid", String(64)),
          Column("state", String(16)), Column("private_jwk_encrypted", LargeBinary))
    Table("owner", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
    Table("thing", metadata,
          Column("id", Integer, primary_key=True),
          Column("owner_id", ForeignKey("owner.id")),
          Column("big", BigInteger), Column("flag", Boolean), Column("note", Text),
          Column("at", DateTime), Column("day", Date), Column("clock", Time),
          Column("blob", LargeBinary), Column("doc", JSON, nullable=True), Column("required_doc", JSON, nullable=False),
          Column("price", Numeric(10, 4)), Column("ratio", Float), Column("uid", Uuid))
    return metadata


ROWS = [
    {"id": 1, "owner_id": 1, "big": 2**32 + 7, "flag": True, "note": "naïve ☃\nline", "at": datetime.datetime(
        2026, 1, 5, 10, 21, 7, 512345), "day": datetime.date(2026, 1, 5), "clock": datetime.time(23, 59, 58, 1),
     "blob": bytes(range(256)), "doc": {"a": [1, None, "x"], "b": {"c": True}}, "required_doc": [],
     "price": decimal.Decimal("12.3400"), "ratio": 0.1, "uid": uuid.UUID(int=5)},
    {"id": 7, "owner_id": None, "big": None, "flag": False, "note": None, "at": None, "day": None, "clock": None,
     "blob": b"", "doc": None, "required_doc": None, "price": None, "ratio": None, "uid": None},
]


def _database(metadata, *, revision=HEAD, with_rows=False):
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": revision})
        if with_rows:
            conn.execute(insert(metadata.tables["signing_key"]), [
                {"id": 3, "kid": "k1", "state": "active", "private_jwk_encrypted": Sealer(SECRET).seal(b"{}", b"k1")},
                # Revoked because no key opens it any more (docs: "Recovering a database with keys
                # sealed under two secrets"): copied as it is, not checked.
                {"id": 4, "kid": "k0", "state": "revoked",
                 "private_jwk_encrypted": Sealer("o" * 40).seal(b"{}", b"k0")},
            ])
            conn.execute(insert(metadata.tables["owner"]), [{"id": 1, "name": "o"}])
            conn.execute(insert(metadata.tables["thing"]), ROWS)
    return engine


def _export(tmp_path, metadata, name="export.jsonl"):
    path = tmp_path / name
    with _database(metadata, with_rows=True).connect() as conn:
        write_file(path, records(conn, metadata, HEAD))
    return path


def _import(path, metadata, engine=None, sealer=None):
    engine = engine or _database(metadata)
    with engine.begin() as conn:
        load(conn, metadata, HEAD, read_file(path), sealer or Sealer(SECRET))
    return engine


@pytest.mark.parametrize("name", ["export.jsonl", "export.jsonl.gz"])
def test_every_known_type_round_trips_exactly(tmp_path, name):
    metadata = _metadata()
    path = _export(tmp_path, metadata, name)
    assert path.stat().st_mode & 0o777 == 0o600
    engine = _import(path, metadata)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(metadata.tables["thing"]).order_by(text("id")))]
        # A nullable JSON column's None is SQL NULL; a required one's is JSON null.
        raw = conn.execute(text("SELECT doc IS NULL, required_doc FROM thing WHERE id = 7")).one()
    assert rows == ROWS
    assert tuple(raw) == (1, "null")


def test_a_column_type_it_does_not_know_is_refused(tmp_path):
    metadata = _metadata()
    Table("odd", metadata, Column("id", Integer, primary_key=True), Column("span", Interval))
    engine = _database(metadata)
    with engine.connect() as conn, pytest.raises(TransferError, match=r"odd\.span has type"):
        write_file(tmp_path / "x.jsonl", records(conn, metadata, HEAD))
    assert list(tmp_path.iterdir()) == []  # no file, not even a partial one


def test_rows_must_match_the_columns_and_the_trailer(tmp_path):
    metadata = _metadata()
    lines = _export(tmp_path, metadata).read_text().splitlines()
    # A row with a value missing, with a fresh checksum so that only the row check can catch it.
    row = next(i for i, line in enumerate(lines) if line.startswith("[1,1,"))
    lines[row] = json.dumps(json.loads(lines[row])[:-1])
    forged = tmp_path / "forged.jsonl"
    _write_with_checksum(forged, lines[:-1], json.loads(lines[-1])["end"]["tables"])
    with pytest.raises(TransferError, match="does not have 14 values"):
        _import(forged, metadata)
    # A row left out: the trailer's counts say so.
    tables = json.loads(lines[-1])["end"]["tables"]
    short = tmp_path / "short.jsonl"
    _write_with_checksum(short, [line for i, line in enumerate(lines[:-1]) if i != row], tables)
    with pytest.raises(TransferError, match="row counts"):
        _import(short, metadata)


def _write_with_checksum(path, lines, tables):
    import hashlib

    body = "".join(line + "\n" for line in lines).encode()
    trailer = {"end": {"tables": tables, "sha256": hashlib.sha256(body).hexdigest()}}
    path.write_bytes(body + json.dumps(trailer).encode() + b"\n")


def test_not_an_export_and_another_format_version_are_refused(tmp_path):
    metadata = _metadata()
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": "world"}\n')
    with pytest.raises(TransferError, match="not an oidc-provider export"):
        _import(other, metadata)
    lines = _export(tmp_path, metadata).read_text().splitlines()
    newer = tmp_path / "newer.jsonl"
    header = {**json.loads(lines[0]), "version": 2}
    newer.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(TransferError, match="format version 2 is not supported"):
        _import(newer, metadata)


def test_an_uninitialised_target_is_refused(tmp_path):
    metadata = _metadata()
    path = _export(tmp_path, metadata)
    blank = create_engine("sqlite://")
    with pytest.raises(TransferError, match="not initialised: run `oidc-provider init`"):
        _import(path, metadata, blank)


def test_a_row_the_target_refuses_or_cannot_decode_is_one_line_and_nothing_stays(tmp_path):
    metadata = _metadata()
    lines = _export(tmp_path, metadata).read_text().splitlines()
    tables = json.loads(lines[-1])["end"]["tables"]
    row = next(i for i, line in enumerate(lines) if line.startswith("[1,1,"))
    duplicate = tmp_path / "duplicate.jsonl"
    twice = [*lines[: row + 1], lines[row], *lines[row + 1: -1]]
    _write_with_checksum(duplicate, twice, {**tables, "thing": tables["thing"] + 1})
    engine = _database(metadata)
    with pytest.raises(TransferError, match=r"table thing: the target database refuses a row \(UNIQUE constraint"):
        _import(duplicate, metadata, engine)
    with engine.connect() as conn:  # the owner and the signing key inserted before were rolled back
        assert conn.execute(text("SELECT count(*) FROM owner")).scalar_one() == 0

    values = json.loads(lines[row])
    values[8] = "not base64!"  # blob
    bad = tmp_path / "bad.jsonl"
    _write_with_checksum(bad, [*lines[:row], json.dumps(values), *lines[row + 1: -1]], tables)
    with pytest.raises(TransferError, match="table thing holds a value of the wrong type"):
        _import(bad, metadata)


def test_files_that_cannot_be_written_or_read_are_one_line(tmp_path):
    metadata = _metadata()
    with _database(metadata, with_rows=True).connect() as conn, pytest.raises(TransferError, match="cannot write"):
        write_file(tmp_path / "missing-dir" / "x.jsonl", records(conn, metadata, HEAD))
    not_gzip = tmp_path / "x.jsonl.gz"
    not_gzip.write_bytes(b"plain text")
    with pytest.raises(TransferError, match="cannot read: Not a gzipped file"):
        _import(not_gzip, metadata)


def test_signing_keys_must_open_with_the_targets_secret_key(tmp_path):
    """Sealed values are copied as they are: an active key the target cannot open is refused;
    OIDC_SECRET_KEY_PREVIOUS counts during a change of key."""
    metadata = _metadata()
    path = _export(tmp_path, metadata)
    with pytest.raises(TransferError, match="signing key k1 cannot be unsealed with this OIDC_SECRET_KEY"):
        _import(path, metadata, sealer=Sealer("n" * 40))
    engine = _import(path, metadata, sealer=Sealer("n" * 40, previous=SECRET))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kid FROM signing_key ORDER BY id")).scalars().all() == ["k1", "k0"]
