"""Changing ``OIDC_SECRET_KEY``: re-seal every value sealed under it, in one transaction.

What is sealed (``keys/encryption.py``): the private part of every signing key that is not
revoked, every account's TOTP secret and every system account's database credentials (DSN and
password). A TOTP enrolment waiting in a browser session is dropped rather than re-sealed
(the person sees a fresh secret when they reload the page: nothing was enrolled yet). Upstream
connector secrets are settings, not stored values, so they are not concerned. Nor are the
refresh-token successors kept for a retried refresh (``oauth/tokens.py``): each lives at most
OIDC_REFRESH_REUSE_GRACE_SECONDS and opens with OIDC_SECRET_KEY_PREVIOUS meanwhile; one that no
longer opens makes a retry count as reuse.

Each value is opened with the current key (or ``OIDC_SECRET_KEY_PREVIOUS``) and sealed under
the new key as it is read, and the transaction is committed only once all of them were; when
any value does not open, everything is rolled back and the refusal names each such value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from .. import transactions
from ..access.system_accounts import associated_data
from ..audit import Event, record
from ..extensions import db
from ..models import Account, BrowserSession, DatabaseCredential, SigningKey
from .encryption import DATABASE_CREDENTIALS, MIN_SECRET_BYTES, SIGNING_KEYS, TOTP_SECRETS, Sealer

# Session keys holding a sealed TOTP secret while an enrolment waits (web/step_up.py, web/account.py).
PENDING_ENROLMENTS = ("totp_enrollment", "account_totp_enrollment")


class RekeyRefused(Exception):
    """The re-key cannot be done; the message is one line and nothing was changed."""


@dataclass(frozen=True)
class SealedValue:
    kind: str           # "signing key", "TOTP secret", "database credential"
    name: str           # what the operator recognises: a kid, a username
    row: object
    column: str
    purpose: bytes
    associated: bytes


def sealed_values() -> Iterator[SealedValue]:
    """Every value sealed under OIDC_SECRET_KEY, in a stable order."""
    for key in db.session.scalars(select(SigningKey).where(SigningKey.state != "revoked").order_by(SigningKey.id)):
        yield SealedValue("signing key", key.kid, key, "private_jwk_encrypted", SIGNING_KEYS, key.kid.encode())
    for account in db.session.scalars(
            select(Account).where(Account.totp_secret_encrypted.is_not(None)).order_by(Account.id)):
        yield SealedValue("TOTP secret", account.username, account, "totp_secret_encrypted", TOTP_SECRETS,
                          account.subject.encode())
    for credential, account in db.session.execute(
            select(DatabaseCredential, Account).join(Account, Account.id == DatabaseCredential.account_id)
            .order_by(DatabaseCredential.id)):
        for field in ("dsn", "password"):
            yield SealedValue("database credential", f"{account.username} ({field})", credential, f"{field}_sealed",
                              DATABASE_CREDENTIALS, associated_data(account, field))


def unreadable(settings) -> list[SealedValue]:
    """The stored values that neither OIDC_SECRET_KEY nor OIDC_SECRET_KEY_PREVIOUS opens."""
    sealers = {}
    bad = []
    for value in sealed_values():
        sealer = sealers.setdefault(value.purpose, Sealer.for_settings(settings, value.purpose))
        if not sealer.opens(getattr(value.row, value.column), value.associated):
            bad.append(value)
    return bad


def rekey(settings, new_key: str | None = None) -> dict:
    """Re-seal every stored value under ``new_key``, or, when it is None, under OIDC_SECRET_KEY
    what still needs OIDC_SECRET_KEY_PREVIOUS (the second step of a change across several
    processes). Values open with OIDC_SECRET_KEY, then OIDC_SECRET_KEY_PREVIOUS. Commits once,
    with the audit row; returns the counts. Raises RekeyRefused (nothing changed)."""
    target = _target(settings, new_key)
    opening, sealing, bad = {}, {}, []
    counts = Counter({"signing key": 0, "TOTP secret": 0, "database credential": 0})
    try:
        transactions.writing()  # SQLite: what is read is what is re-sealed, nobody writes between
        for value in sealed_values():
            opener = opening.setdefault(value.purpose, Sealer.for_settings(settings, value.purpose))
            try:
                plaintext = opener.open(getattr(value.row, value.column), value.associated)
            except (InvalidTag, ValueError):
                bad.append(value)
                continue
            sealer = sealing.setdefault(value.purpose, Sealer(target, value.purpose))
            setattr(value.row, value.column, sealer.seal(plaintext, value.associated))
            counts[value.kind] += 1
            db.session.flush()  # written now; kept only if every value opens
        if bad:
            raise RekeyRefused(_refusal(bad))
        detail = {kind.lower().replace(" ", "_") + "s": n for kind, n in counts.items()}
        detail["pending_totp_enrolments_dropped"] = _drop_pending_enrolments()
        detail["mode"] = "new key" if new_key is not None else "previous key retired"
        record(Event.SECRET_KEY_ROTATED, detail=detail, commit=False)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return detail


def _target(settings, new_key: str | None) -> str:
    if new_key is None:
        if not settings.secret_key_previous:
            raise RekeyRefused("give the new key (--new-key-stdin or --new-key-file), or set OIDC_SECRET_KEY to the "
                               "new key and OIDC_SECRET_KEY_PREVIOUS to the old one; nothing was changed")
        return settings.secret_key
    if len(new_key.encode()) < MIN_SECRET_BYTES:
        raise RekeyRefused(f"the new key must be at least {MIN_SECRET_BYTES} bytes; nothing was changed")
    if new_key == settings.secret_key:
        raise RekeyRefused("the new key is the current OIDC_SECRET_KEY; nothing was changed")
    return new_key


def _refusal(bad: list[SealedValue]) -> str:
    keys = [v.name for v in bad if v.kind == "signing key"]
    others = [f"{v.kind} of {v.name}" for v in bad if v.kind != "signing key"]
    if keys:
        # The signing keys are in every database: when they do not open, the key is wrong.
        more = f" (nor {len(others)} other stored value(s))" if others else ""
        return (f"OIDC_SECRET_KEY does not open the signing keys stored in this database (sealed under another "
                f"key): {', '.join(keys[:6])}{' and more' if len(keys) > 6 else ''}{more}; nothing was changed; "
                "set OIDC_SECRET_KEY to the key they were sealed with (OIDC_SECRET_KEY_PREVIOUS during a change)")
    shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    return (f"OIDC_SECRET_KEY does not open {len(others)} stored value(s) (sealed under another key): {shown}; "
            "nothing was changed; `oidc-provider user reset-mfa USERNAME` removes an unreadable TOTP secret, "
            "`oidc-provider service db-credentials set NAME` replaces unreadable database credentials")


def _drop_pending_enrolments() -> int:
    dropped = 0
    for row in db.session.scalars(select(BrowserSession)):
        data = dict(row.data or {})
        if any(key in data for key in PENDING_ENROLMENTS):
            for key in PENDING_ENROLMENTS:
                data.pop(key, None)
            row.data = data
            flag_modified(row, "data")
            dropped += 1
    return dropped
