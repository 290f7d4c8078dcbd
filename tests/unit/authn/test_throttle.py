"""``authn.throttle``: brute-force protection (NIST SP 800-63B §5.2.2, "Rate Limiting
(Throttling)"). The delay policy is pure and table-tested; the service runs against the test
database with an injected ``now``."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from oidc_provider.authn import throttle
from oidc_provider.authn.throttle import Blocked
from oidc_provider.extensions import db
from oidc_provider.models import AuthThrottle

NOW = datetime(2026, 1, 5, 10, 0, 0)
ALICE = throttle.account_key("alice")
IP = throttle.ip_key("203.0.113.9")


# The shipped allowances; the tests below exercise the mechanics with small ones (3 per
# account and code, 10 per address), whatever the defaults are.
DEFAULTS = dict(throttle.FREE_FAILURES)


@pytest.fixture(autouse=True)
def small_allowances(monkeypatch):
    monkeypatch.setattr(throttle, "FREE_FAILURES", {"account": 3, "otp": 3, "ip": 10})


def s(seconds):
    return timedelta(seconds=seconds)


@pytest.mark.parametrize("failures, free, delay", [
    (0, 3, 0), (1, 3, 0), (3, 3, 0),              # a few typos cost nothing
    (4, 3, 1), (5, 3, 2), (6, 3, 4), (7, 3, 8),   # then the delay doubles
    (13, 3, 512), (14, 3, 900), (15, 3, 900),     # up to the 15-minute cap
    (10_000, 3, 900),                             # and stays there
    (10, 10, 0), (11, 10, 1), (12, 10, 2),        # an address gets a larger allowance
    (-1, 3, 0),
])
def test_5_2_2_delay_grows_with_consecutive_failures(failures, free, delay):
    """§5.2.2: "Requiring the claimant to wait following a failed attempt for a period of time
    that increases as the account approaches its maximum allowance for consecutive failed
    attempts"."""
    assert throttle.delay_for(failures, free=free) == delay


@pytest.mark.parametrize("failures, expected", [
    (3, None), (4, NOW + s(1)), (8, NOW + s(16)), (40, NOW + s(900)),
])
def test_5_2_2_lockout_until_is_now_plus_the_delay(failures, expected):
    """No delay means no lock at all (None), not a lock that ends now."""
    assert throttle.lockout_until(failures, NOW) == expected


def test_5_2_2_default_allowances_let_a_restoring_browser_sign_in_from_every_tab():
    """Attempts are counted before the secret is checked, so the password allowance bounds the
    sign-ins of one person in flight at once (a browser restoring tabs); codes keep a small
    one; an address, shared behind NAT, a larger one."""
    assert DEFAULTS == {"account": 10, "otp": 3, "ip": 30, "passkey-options": 10}


@pytest.mark.parametrize("typed, key", [
    ("alice", "account:alice"), ("Alice", "account:alice"), (" ALICE ", "account:alice"),
    ("nobody-at-all", "account:nobody-at-all"),
])
def test_5_2_2_account_key_is_the_typed_name_lowercased(typed, key):
    """Known or not, the typed name is the key: guessing usernames is throttled the same way."""
    assert throttle.account_key(typed) == key


def _row(key):
    return db.session.scalar(select(AuthThrottle).where(AuthThrottle.key == key))


def _fail(times, keys, at=NOW):
    for _ in range(times):
        throttle.fail(keys, now=at)


def test_5_2_2_account_is_locked_after_the_free_failures(ctx):
    """§5.2.2: "the verifier SHALL limit consecutive failed authentication attempts on a single
    subscriber account"."""
    _fail(3, [ALICE])
    assert throttle.check([ALICE], now=NOW) is None
    _fail(1, [ALICE])
    assert throttle.check([ALICE], now=NOW) == Blocked(until=NOW + s(1), key=ALICE)
    assert throttle.check([ALICE], now=NOW + s(0.5)) == Blocked(until=NOW + s(1), key=ALICE)
    assert _row(ALICE).failures == 4


def test_5_2_2_lock_expires_and_the_next_failure_locks_longer(ctx):
    _fail(4, [ALICE])
    assert throttle.check([ALICE], now=NOW + s(1)) is None  # the lock ends at its instant
    throttle.fail([ALICE], now=NOW + s(1))
    assert throttle.check([ALICE], now=NOW + s(2)) == Blocked(until=NOW + s(3), key=ALICE)
    throttle.fail([ALICE], now=NOW + s(3))
    assert throttle.check([ALICE], now=NOW + s(3)).until == NOW + s(7)
    assert throttle.check([ALICE], now=NOW + s(7)) is None


def test_5_2_2_failures_older_than_the_window_are_forgotten(ctx):
    _fail(12, [ALICE])
    first = _row(ALICE).first_failure_at
    later = NOW + throttle.WINDOW + s(1)
    throttle.fail([ALICE], now=later)
    db.session.expire_all()
    row = _row(ALICE)
    assert (row.failures, row.first_failure_at, row.last_failure_at) == (1, later, later)
    assert first == NOW
    assert throttle.check([ALICE], now=later) is None
    # A count within the window keeps growing from its last failure, not its first.
    throttle.fail([ALICE], now=later + throttle.WINDOW - s(1))
    db.session.expire_all()
    assert _row(ALICE).failures == 2


def test_5_2_2_unlock_lifts_the_lock_and_forgets_the_failures(ctx):
    """Issue 3: "a temporary lockout an admin can see and lift"."""
    _fail(8, [ALICE, IP])
    status = throttle.status("Alice", now=NOW)
    assert status == throttle.Status(key=ALICE, failures=8, last_failure_at=NOW, locked_until=NOW + s(16))
    assert throttle.unlock("Alice") is True
    db.session.commit()
    assert throttle.check([ALICE], now=NOW) is None
    assert throttle.status("alice", now=NOW) is None
    assert throttle.unlock("alice") is False
    assert _row(IP).failures == 8  # the address is not the account's to unlock


def test_5_2_2_status_reports_no_lock_once_it_expired_and_nothing_after_the_window(ctx):
    _fail(4, [ALICE])
    assert throttle.status("alice", now=NOW + s(5)).locked_until is None
    assert throttle.status("alice", now=NOW + s(5)).failures == 4
    assert throttle.status("alice", now=NOW + throttle.WINDOW + s(1)) is None
    assert throttle.status("bob", now=NOW) is None


def test_5_2_2_address_key_is_shared_across_usernames(ctx):
    """§5.2.2 lists as an additional technique: "use of the IP address, geolocation, timing of
    request patterns" — spraying one password over many usernames is throttled by address."""
    for i in range(10):
        throttle.fail([throttle.account_key(f"user{i}"), IP], now=NOW)
    assert throttle.check([throttle.account_key("fresh"), IP], now=NOW) is None
    throttle.fail([throttle.account_key("user10"), IP], now=NOW)
    assert throttle.check([throttle.account_key("fresh"), IP], now=NOW) == Blocked(until=NOW + s(1), key=IP)
    # Another address is not affected, nor any single username (each failed once).
    assert throttle.check([throttle.account_key("fresh"), throttle.ip_key("198.51.100.1")], now=NOW) is None
    assert throttle.check([throttle.account_key("user3")], now=NOW) is None


def test_5_2_2_check_names_the_longest_lock(ctx):
    _fail(4, [IP])
    _fail(12, [IP])  # 16 failures on the address: 2**(16-10-1) = 32 s
    _fail(6, [ALICE])  # 4 s
    assert throttle.check([ALICE, IP], now=NOW) == Blocked(until=NOW + s(32), key=IP)
    assert throttle.check([ALICE], now=NOW) == Blocked(until=NOW + s(4), key=ALICE)


def test_5_2_2_success_clears_the_account_but_not_the_address(ctx):
    _fail(5, [ALICE, IP])
    throttle.succeed([IP, ALICE])
    db.session.commit()
    assert _row(ALICE) is None
    assert _row(IP).failures == 5


def test_5_2_2_a_lock_is_never_shortened_by_an_older_count(ctx):
    """A failure recorded with an earlier clock (another process) keeps the longer lock."""
    _fail(8, [ALICE], at=NOW + s(100))  # locked until NOW + 116 s
    throttle.fail([ALICE], now=NOW)      # 9 failures: 32 s from NOW
    db.session.expire_all()
    assert _row(ALICE).locked_until == NOW + s(116)


def test_5_2_2_concurrent_failures_are_all_counted(app):
    """Counts are kept in the database for several provider processes: two workers failing at
    once on a new key (the first insert races) lose no increment."""
    workers, per_worker = 2, 15
    barrier = threading.Barrier(workers)
    errors = []

    def work():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                _fail(per_worker, ["account:race", IP])
            except Exception as exc:  # reported below, with the thread's traceback lost
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    with app.app_context():
        assert _row("account:race").failures == workers * per_worker
        assert _row(IP).failures == workers * per_worker
        assert _row("account:race").locked_until == NOW + s(throttle.MAX_DELAY)


def test_5_2_2_admit_counts_first_and_refuses_a_locked_key_without_counting(ctx):
    """Issue 12: "increment, then decide". The attempt past the free allowance is admitted and
    sets the lock in the same transaction; the next one is refused and not counted."""
    attempts = [throttle.admit([ALICE], now=NOW) for _ in range(4)]
    assert all(isinstance(a, throttle.Attempt) for a in attempts)
    assert attempts[-1].locks == {ALICE: NOW + s(1)} and attempts[0].locks == {}
    assert throttle.admit([ALICE], now=NOW + s(0.5)) == Blocked(until=NOW + s(1), key=ALICE)
    db.session.expire_all()
    assert _row(ALICE).failures == 4
    fifth = throttle.admit([ALICE], now=NOW + s(1))  # the lock has run out
    assert fifth.locks == {ALICE: NOW + s(3)}


def test_5_2_2_admit_refused_by_one_key_counts_on_none(ctx):
    _fail(11, [IP])  # the address is locked for 1 s
    assert throttle.admit([ALICE, IP], now=NOW) == Blocked(until=NOW + s(1), key=IP)
    db.session.expire_all()
    assert _row(ALICE) is None and _row(IP).failures == 11


def test_5_2_2_give_back_clears_the_account_and_returns_the_address_attempt(ctx):
    """A right password gives its attempt back: the account's count goes, the address keeps
    the rest of its count and loses only the lock this attempt set."""
    _fail(10, [IP])
    attempt = throttle.admit([ALICE, IP], now=NOW)  # the address's 11th: locked for 1 s
    assert attempt.locks == {IP: NOW + s(1)}
    throttle.give_back(attempt)
    db.session.expire_all()
    assert _row(ALICE) is None
    assert (_row(IP).failures, _row(IP).locked_until) == (10, None)


def test_5_2_2_parallel_admits_never_exceed_the_allowance(app):
    """16 attempts at once on one key: exactly the free ones and the one that sets the first
    lock get through, whatever the interleaving."""
    barrier = threading.Barrier(8)
    admitted, errors = [], []

    def work():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                for _ in range(2):
                    admitted.append(isinstance(throttle.admit(["account:burst"], now=NOW), throttle.Attempt))
            except Exception as exc:
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(admitted) == throttle.FREE_FAILURES["account"] + 1
    with app.app_context():
        assert _row("account:burst").failures == throttle.FREE_FAILURES["account"] + 1
