"""What the server-side session records when factors are proven (issue 3): the amr, the
level, and when each method was proven, so freshness never borrows an old proof."""

from __future__ import annotations

from types import SimpleNamespace

from oidc_provider.authn import sessions
from oidc_provider.authn.levels import Ladder, fresh_enough
from oidc_provider.authn.sessions import ServerSession
from oidc_provider.clock import epoch, utcnow

LADDER = Ladder()


def signed_in(amr, acr):
    session = ServerSession()
    sessions.log_in(session, SimpleNamespace(id=1), acr=acr, amr=amr)
    return session


def test_a_trusted_upstream_mfa_survives_a_password_confirmation_and_counts_as_fresh():
    """An upstream trusted for MFA (``fed`` + ``mfa``) reaches mfa; proving the password on the
    account page later must not drop the session to pwd."""
    session = signed_in(["fed", "mfa"], "mfa")
    assert fresh_enough(LADDER, proven=session["proven"], level="mfa", now=epoch(utcnow()))
    assert sessions.reauthenticate(session, amr=["pwd"], ladder=LADDER) == "mfa"
    assert set(session["amr"]) == {"fed", "pwd", "mfa"}


def test_a_second_factor_after_a_password_adds_mfa_once():
    session = signed_in(["pwd"], "pwd")
    assert sessions.elevate(session, method="otp", ladder=LADDER) == "mfa"
    assert sessions.elevate(session, method="otp", ladder=LADDER) == "mfa"
    assert session["amr"].count("mfa") == 1 and session.rotate
    assert set(session["proven"]) == {"pwd", "otp"}
