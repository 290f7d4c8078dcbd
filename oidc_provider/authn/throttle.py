"""Brute-force protection for every secret a person types: attempts are counted per key
(``account:<typed username, lowercased>`` and ``ip:<client address>``) in the database, so
several provider processes share the counts, and each attempt past a free allowance locks the
key for a delay that doubles up to a cap. A key whose last attempt is older than ``WINDOW``
starts again from zero.

Counting is atomic: ``admit`` counts the attempt first (one upsert per key, which refuses a
locked key in the same statement) and only then is the secret checked, so parallel guesses,
in one process or several, can never get more checks than the allowance and the locks let
through (check-then-count could: 11 of 16 parallel guesses were checked where 9 was the
limit). A correct secret gives its attempt back (``give_back``).

    attempt = throttle.admit(keys, now=now)      # commits; Blocked -> refuse without checking
    if isinstance(attempt, throttle.Blocked): ...
    ... check the secret, with no transaction open if it is slow (``transactions.outside``)
    if right: throttle.give_back(attempt)        # wrong: nothing more, it is already counted

``check`` + ``fail`` (+ ``succeed``) remain for callers that count only failures; they are
check-then-count, not atomic, so a new caller should use ``admit``.

The delay policy (``delay_for``, ``lockout_until``) is pure; the rest reads and writes
``auth_throttle`` with an injected ``now`` (naive UTC, as ``oidc_provider.clock``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from .. import transactions
from ..extensions import db
from ..models import AuthThrottle

# Attempts allowed before any delay. Attempts are counted before the secret is checked, so
# the allowance also bounds how many sign-ins of one person may be in flight at once: a
# browser restoring several tabs signs in from each at the same moment, and a password
# allowance of 3 locked out its 4th tab with the right password (NIST SP 800-63B §5.2.2
# allows up to 100). Codes have a 10^6 space and keep a small allowance; an address may be
# shared by a whole office behind NAT.
FREE_FAILURES = {"account": 10, "otp": 3, "ip": 30,
                 # /passkeys/login/options per address: each answer stores a challenge row
                 "passkey-options": 10}
FIRST_DELAY = 1  # seconds, after the last free failure; doubles with each further failure
MAX_DELAY = 15 * 60
WINDOW = timedelta(hours=1)  # failures older than this (since the last one) are forgotten


@dataclass(frozen=True)
class Blocked:
    """A refused attempt: ``key`` is locked until ``until``."""

    until: datetime
    key: str


@dataclass(frozen=True)
class Status:
    """What an admin sees for one key: failures in the current window and the lock, if any."""

    key: str
    failures: int
    last_failure_at: datetime
    locked_until: datetime | None


def account_key(username: str) -> str:
    return "account:" + username.strip().lower()


def code_key(username: str) -> str:
    """Second-factor codes (TOTP, recovery codes) count apart from the password: a correct
    password must not reset the count of wrong codes."""
    return "otp:" + username.strip().lower()


def ip_key(address: str | None) -> str:
    return "ip:" + (address or "unknown")


def delay_for(failures: int, *, free: int | None = None) -> int:
    """Seconds to lock a key after its ``failures``-th failure: 0 within the free allowance,
    then 1, 2, 4, ... capped at ``MAX_DELAY``."""
    beyond = failures - (FREE_FAILURES["account"] if free is None else free)
    if beyond <= 0:
        return 0
    # Bound the exponent: 2**large is exact in Python but pointless past the cap.
    return min(FIRST_DELAY << min(beyond - 1, 32), MAX_DELAY)


def lockout_until(failures: int, now: datetime, *, free: int | None = None) -> datetime | None:
    delay = delay_for(failures, free=free)
    return now + timedelta(seconds=delay) if delay else None


def _free(key: str) -> int:
    return FREE_FAILURES.get(key.split(":", 1)[0], FREE_FAILURES["account"])


@dataclass(frozen=True)
class Attempt:
    """An attempt ``admit`` let through: counted against ``keys``; ``locks`` holds the lock
    each key got from this attempt (when it went past the free allowance)."""

    keys: tuple[str, ...]
    locks: dict[str, datetime]


def admit(keys: list[str], *, now: datetime) -> Attempt | Blocked:
    """Count one attempt against every key, then decide: Blocked (nothing counted) when any
    key is locked, else the Attempt, each key locked as ``delay_for`` says for the count it
    reached. Commits (in its own short transaction), so the count holds whatever the request
    does next and every process sees it before the secret is checked."""
    keys = sorted(set(keys))  # one order everywhere: two attempts never wait on each other's rows
    locks: dict[str, datetime] = {}
    savepoint = db.session.begin_nested()  # a refusal takes back the counts made before it
    for key in keys:
        attempts = db.session.execute(_count_unless_locked(key, now)).scalar()
        if attempts is None:
            savepoint.rollback()
            blocked = check([key], now=now) or Blocked(until=now, key=key)
            transactions.end()
            return blocked
        until = lockout_until(attempts, now, free=_free(key))
        if until is not None:
            _lock(key, until)
            locks[key] = until
    savepoint.commit()
    transactions.end()  # what the caller loaded stays readable: argon2id comes next, outside
    return Attempt(keys=tuple(keys), locks=locks)


def give_back(attempt: Attempt) -> None:
    """The secret was right: the account's count (or its code count) is cleared, as
    ``succeed`` does; the address gets back the attempt and the lock this attempt set, and keeps
    the rest of its count (guesses at other accounts from the same place). Commits."""
    for key in attempt.keys:
        if not key.startswith("ip:"):
            db.session.execute(delete(AuthThrottle).where(AuthThrottle.key == key)
                               .execution_options(synchronize_session=False))
            continue
        ours = attempt.locks.get(key)
        db.session.execute(
            update(AuthThrottle).where(AuthThrottle.key == key, AuthThrottle.failures > 0)
            .values(failures=AuthThrottle.failures - 1,
                    locked_until=case((AuthThrottle.locked_until == ours, None), else_=AuthThrottle.locked_until)
                    if ours else AuthThrottle.locked_until)
            .execution_options(synchronize_session=False))
    transactions.end()


def _count_unless_locked(key: str, now: datetime):
    """INSERT ... ON CONFLICT DO UPDATE ... WHERE not locked RETURNING the count: no row back
    means the key is locked. One statement, so the row is locked from the count to the commit
    (PostgreSQL) or the database is (SQLite)."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    stale = AuthThrottle.last_failure_at < now - WINDOW
    statement = dialect.insert(AuthThrottle).values(
        key=key, failures=1, first_failure_at=now, last_failure_at=now)
    return statement.on_conflict_do_update(
        index_elements=[AuthThrottle.key],
        set_={"failures": case((stale, 1), else_=AuthThrottle.failures + 1),
              "first_failure_at": case((stale, now), else_=AuthThrottle.first_failure_at),
              "last_failure_at": now},
        where=or_(AuthThrottle.locked_until.is_(None), AuthThrottle.locked_until <= now),
    ).returning(AuthThrottle.failures)


def _lock(key: str, until: datetime) -> None:
    # Never shorten a lock a concurrent attempt made longer.
    db.session.execute(
        update(AuthThrottle)
        .where(AuthThrottle.key == key,
               or_(AuthThrottle.locked_until.is_(None), AuthThrottle.locked_until < until))
        .values(locked_until=until)
        .execution_options(synchronize_session=False)
    )


def check(keys: list[str], *, now: datetime) -> Blocked | None:
    """The lock that refuses this attempt (the one lasting longest), or None. Only a look:
    an attempt is counted by ``admit`` (atomic) or ``fail``."""
    row = db.session.execute(
        select(AuthThrottle.key, AuthThrottle.locked_until)
        .where(AuthThrottle.key.in_(keys), AuthThrottle.locked_until > now)
        .order_by(AuthThrottle.locked_until.desc()).limit(1)
    ).first()
    return Blocked(until=row.locked_until, key=row.key) if row else None


def fail(keys: list[str], *, now: datetime) -> None:
    """Count one failure against each key and lock it as ``delay_for`` says. Commits: the count
    must hold whatever the request does next, and be seen by the other processes at once."""
    for key in keys:
        failures = _increment(key, now)
        until = lockout_until(failures, now, free=_free(key))
        if until is not None:
            _lock(key, until)
    db.session.commit()


def _increment(key: str, now: datetime) -> int:
    """failures + 1 in one UPDATE (atomic under concurrency), restarting the count when the
    last failure is older than the window; the first failure inserts the row."""
    stale = AuthThrottle.last_failure_at < now - WINDOW
    bump = (
        update(AuthThrottle).where(AuthThrottle.key == key)
        .values(failures=case((stale, 1), else_=AuthThrottle.failures + 1),
                first_failure_at=case((stale, now), else_=AuthThrottle.first_failure_at),
                last_failure_at=now)
        .returning(AuthThrottle.failures)
        .execution_options(synchronize_session=False)
    )
    failures = db.session.execute(bump).scalar()
    if failures is not None:
        return failures
    try:
        with db.session.begin_nested():
            db.session.execute(insert(AuthThrottle).values(
                key=key, failures=1, first_failure_at=now, last_failure_at=now))
        return 1
    except IntegrityError:
        # Another process inserted the row between our UPDATE and INSERT: count on it.
        return db.session.execute(bump).scalar_one()


def succeed(keys: list[str]) -> None:
    """A correct secret clears the account's count (or its code count). The address keeps its
    count: one good password must not wipe the record of guesses at other accounts from the
    same place."""
    account_keys = [key for key in keys if not key.startswith("ip:")]
    if account_keys:
        db.session.execute(delete(AuthThrottle).where(AuthThrottle.key.in_(account_keys))
                           .execution_options(synchronize_session=False))


def unlock(username: str) -> bool:
    """Lift the locks and forget the failures of an account, for passwords and codes alike;
    True if there was anything."""
    keys = [account_key(username), code_key(username)]
    result = db.session.execute(delete(AuthThrottle).where(AuthThrottle.key.in_(keys))
                                .execution_options(synchronize_session=False))
    return result.rowcount > 0


def status(username: str, *, now: datetime) -> Status | None:
    """The account's failures in the current window and its lock (None once expired), for
    passwords or codes, whichever is locked longer (or failed more); None when nothing is
    counted."""
    rows = db.session.scalars(select(AuthThrottle).where(
        AuthThrottle.key.in_([account_key(username), code_key(username)]),
        AuthThrottle.last_failure_at >= now - WINDOW)).all()
    if not rows:
        return None
    row = max(rows, key=lambda r: (r.locked_until is not None and r.locked_until > now,
                                   r.locked_until or now, r.failures))
    locked = row.locked_until if row.locked_until and row.locked_until > now else None
    return Status(key=row.key, failures=row.failures, last_failure_at=row.last_failure_at,
                  locked_until=locked)


def forget_stale(*, now: datetime) -> int:
    """Delete counts the window has already forgotten (no failure for ``WINDOW``, no lock in
    force): ``cleanup`` keeps the table to the last hour's failures."""
    result = db.session.execute(delete(AuthThrottle).where(
        AuthThrottle.last_failure_at < now - WINDOW,
        or_(AuthThrottle.locked_until.is_(None), AuthThrottle.locked_until <= now),
    ).execution_options(synchronize_session=False))
    return result.rowcount or 0
