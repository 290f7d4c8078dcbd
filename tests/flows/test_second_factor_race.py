"""Parallel wrong second-factor codes get no more checks than the throttle allows (issue 12:
"throttling that counts atomically (increment, then decide)"; NIST SP 800-63B §5.2.2). The
codes are checked by the service the step-up page calls, from threads with their own
database connections, as concurrent requests in several workers would."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from oidc_provider import transactions
from oidc_provider.authn import throttle
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent

from ..helpers import make_user
from .test_step_up import enroll_totp

ATTEMPTS = 16


def _most_checks(seconds: float) -> int:
    """The free allowance, the attempt that sets the first lock, and one more each time a lock
    runs out (1 s, 2 s, ...) within ``seconds``."""
    free = throttle.FREE_FAILURES["otp"]
    checks, waited = free + 1, 0
    while waited + throttle.delay_for(checks, free=free) <= seconds:
        waited += throttle.delay_for(checks, free=free)
        checks += 1
    return checks


def _race(app, check) -> tuple[float, list[str]]:
    barrier = threading.Barrier(ATTEMPTS)
    errors = []

    def work():
        with app.test_request_context():
            try:
                account = db.session.scalar(select(Account).where(Account.username == "alice"))
                transactions.end()  # as a request does once its session is loaded
                barrier.wait(timeout=20)
                assert check(app.extensions["oidc_second_factors"], account) in (False, None)
            except Exception as exc:  # reported below
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(ATTEMPTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    took = time.monotonic() - began
    assert errors == []
    with app.app_context():
        return took, list(db.session.scalars(select(AuditEvent.reason).where(
            AuditEvent.account == "alice", AuditEvent.outcome == "failure",
            AuditEvent.event.in_(("account:totp:failure", "account:recovery-code:failure")))))


def _checked(took, reasons, wrong):
    assert len(reasons) == ATTEMPTS
    assert throttle.FREE_FAILURES["otp"] + 1 <= reasons.count(wrong) <= _most_checks(took), (took, reasons)
    assert reasons.count(wrong) + reasons.count("throttled") == ATTEMPTS


def test_5_2_2_parallel_wrong_totp_codes_never_exceed_the_allowance(app):
    make_user(app)
    enroll_totp(app)
    took, reasons = _race(app, lambda factors, account: factors.verify_totp(account, "000000"))
    _checked(took, reasons, "wrong_or_replayed_code")


def test_5_2_2_parallel_wrong_recovery_codes_never_exceed_the_allowance(app):
    """Recovery codes are argon2id hashes, checked with no transaction open: the window
    between count and check is wide, and still no guess gets past the count."""
    make_user(app)
    enroll_totp(app)
    took, reasons = _race(app, lambda factors, account: factors.use_recovery_code(account, "AAAAA-AAAAA"))
    _checked(took, reasons, "wrong_code")
