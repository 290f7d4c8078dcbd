"""The DSNs kept for system accounts (PostgreSQL docs §34.1.1, "Connection Strings"): both
libpq forms are accepted, and a DSN carrying a password is refused (the password is stored
apart and given on standard input)."""

from __future__ import annotations

import pytest

from oidc_provider.access.dsn import DSNError, check_dsn, check_password

ACCEPTED = [
    ("postgresql://backup@db.internal:5432/backups", {"user": "backup", "dbname": "backups"}),
    ("postgres://db.internal/backups?sslmode=verify-full", {"dbname": "backups"}),
    ("postgresql://", {}),
    ("postgresql:///app?host=/var/run/postgresql&user=svc", {"user": "svc", "dbname": "app"}),
    ("postgresql://svc@h1:5432,h2:5433/app?target_session_attrs=read-write", {"user": "svc", "dbname": "app"}),
    ("postgresql://b%40ckup@db/my%20db", {"user": "b@ckup", "dbname": "my db"}),
    ("host=db.internal port=5432 dbname=backups user=backup", {"user": "backup", "dbname": "backups"}),
    ("host = db  dbname = 'my db'  user='o\\'brien'", {"user": "o'brien", "dbname": "my db"}),
    ("service=backups", {}),
    ("options='-c search_path=a,b' host=db", {}),
]

REFUSED = [
    ("postgresql://backup:hunter2@db/backups", "password"),
    ("postgresql://backup:@db/backups", "password"),
    ("postgresql://db/backups?password=hunter2", "password"),
    ("postgresql://db/backups?sslpassword=hunter2", "password"),
    ("host=db password=hunter2", "password"),
    ("host=db PASSWORD='hunter2'", "password"),
    ("host=db sslpassword=hunter2", "password"),
    ("mysql://db/app", "postgresql://"),
    ("just-a-database-name", "key=value"),
    ("host=db dbname='unterminated", "unterminated"),
    ("host=db host=other", "twice"),
    ("postgresql://db/app#frag", "fragment"),
    ("host=db\nuser=x", "control"),
    ("", "postgresql://"),
    ("   ", "postgresql://"),
    ("host=" + "x" * 1000, "at most"),
    (None, "postgresql://"),
]


@pytest.mark.parametrize(("dsn", "parameters"), ACCEPTED)
def test_libpq_forms_are_accepted(dsn, parameters):
    assert check_dsn(dsn) == parameters


@pytest.mark.parametrize(("dsn", "why"), REFUSED)
def test_refused_dsns_say_why_without_quoting_the_dsn(dsn, why):
    with pytest.raises(DSNError) as refused:
        check_dsn(dsn)
    assert why in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("password", ["", None, "x" * 1025, "nul\x00byte", 42])
def test_unusable_passwords_are_refused(password):
    with pytest.raises(DSNError):
        check_password(password)


def test_a_password_may_hold_any_printable_character():
    assert check_password("p@ss w0rd:'\"\\/?#") == "p@ss w0rd:'\"\\/?#"
