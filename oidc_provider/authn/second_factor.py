"""Second factors held here: TOTP and recovery codes. The crypto is in ``totp`` and
``recovery_codes`` (pure); this service adds persistence, single use, throttling and audit.

- TOTP secrets are sealed (AES-256-GCM, key from OIDC_SECRET_KEY, the account's ``sub`` as
  associated data) both at rest and while an enrolment waits in the session.
- A TOTP code is accepted once: the accepted time-step is recorded by one conditional UPDATE,
  so two concurrent uses of one code give one success (RFC 6238 §5.2).
- Codes are throttled per account (``otp:<username>``), like passwords: each attempt is counted
  before the code is checked (``throttle.admit``) and a right code gives it back, so parallel
  guesses cannot get more checks than the allowance.
- Recovery codes are argon2id hashes: they are hashed and verified with no transaction open
  (``transactions``).
"""

from __future__ import annotations

import base64
import time

from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select, update

from .. import transactions
from ..audit import Event, record
from ..clock import utcnow
from ..extensions import db
from ..keys.encryption import TOTP_SECRETS, Sealer
from ..models import Account, Passkey, RecoveryCode
from . import levels, recovery_codes, throttle, totp
from .levels import AMR_HARDWARE_KEY, AMR_OTP, AMR_PASSWORD, AMR_USER_PRESENCE_VERIFIED, SECOND_FACTORS
from .passkey_service import stored_amr


def factor_methods(has_password: bool, has_totp: bool, passkeys) -> list[str]:
    """RFC 8176 values of an account's factors: its password, its TOTP, and its passkeys
    (each with ``backup_eligible`` and ``user_verified_at_registration``)."""
    methods = [AMR_PASSWORD] if has_password else []
    if has_totp:
        methods.append(AMR_OTP)
    for passkey in passkeys:
        methods.extend(m for m in stored_amr(passkey) if m not in methods)
    return methods


class SecondFactors:
    def __init__(self, settings, passwords):
        self._sealer = Sealer.for_settings(settings, TOTP_SECRETS)
        self._passwords = passwords
        self._issuer_name = settings.site_name
        self._passkeys = settings.passkeys_available
        self._ladder = settings.ladder
        self._enrolled_factors = settings.enrolled_factors

    # ---- what an account has ----
    @staticmethod
    def methods_of(account: Account) -> list[str]:
        """RFC 8176 values of the factors this account can use."""
        # The two columns that decide, not Passkey objects: this runs on every authorization request.
        passkeys = db.session.execute(select(Passkey.backup_eligible, Passkey.user_verified_at_registration)
                                      .where(Passkey.account_id == account.id))
        return factor_methods(bool(account.password_hash), account.totp_enabled_at is not None, passkeys)

    def enrollable_methods(self) -> list[str]:
        """What the enrolment page can add: an authenticator app (otp) and, where passkeys work,
        a passkey with user verification (a key plus ``user``: it reaches ``phr``)."""
        return [AMR_OTP] + ([AMR_HARDWARE_KEY, AMR_USER_PRESENCE_VERIFIED] if self._passkeys else [])

    def enrolled_level(self, account: Account) -> str | None:
        """The level every sign-in of this account must reach (OIDC_ENROLLED_FACTORS), or None."""
        return levels.enrolled_level(self._ladder, self.methods_of(account), self._enrolled_factors)

    def strongest_level(self, account: Account) -> str:
        """The highest level the account's factors reach: what changing them asks for."""
        return levels.strongest_level(self._ladder, self.methods_of(account))

    def level_to_add_a_factor(self, account: Account, session_acr: str | None) -> str | None:
        """Adding a factor needs a session at the level the account's factors already reach
        (else someone with only the password could add their own second factor and get past
        the real one): that level when this session is below it, else None."""
        have = self._ladder.level_of(self.methods_of(account))
        if have is None or self._ladder.rank(have) <= self._ladder.rank(AMR_PASSWORD) \
                or self._ladder.satisfies(session_acr, have):
            return None
        return have

    # ---- TOTP enrolment ----
    def begin_totp(self, account: Account) -> tuple[str, dict]:
        """A fresh secret, sealed for keeping in the session, and what the page shows."""
        secret = totp.new_secret()
        uri = totp.provisioning_uri(secret, account_name=account.username, issuer_name=self._issuer_name)
        sealed = base64.b64encode(self._sealer.seal(secret.encode(), account.subject.encode())).decode()
        return sealed, {"secret": secret, "uri": uri, "qr_svg": totp.qr_svg(uri)}

    def pending(self, account: Account, sealed: str | None) -> str | None:
        """The enrolment waiting in the session if it still opens (a process with another
        OIDC_SECRET_KEY may have sealed it during a change of key), else None: start again."""
        if not isinstance(sealed, str) or not sealed:
            return None
        try:
            self._open(account, base64.b64decode(sealed))
        except (InvalidTag, ValueError):
            return None
        return sealed

    def shown_for(self, account: Account, sealed: str) -> dict:
        secret = self._open(account, base64.b64decode(sealed))
        uri = totp.provisioning_uri(secret, account_name=account.username, issuer_name=self._issuer_name)
        return {"secret": secret, "uri": uri, "qr_svg": totp.qr_svg(uri)}

    def confirm_totp(self, account: Account, sealed: str, code: str, *, now: float | None = None) -> list[str] | None:
        """Enable TOTP once the person typed a valid first code; returns the recovery codes to
        show once (generated at the first second-factor enrolment), or None if the code is
        wrong."""
        now = time.time() if now is None else now
        if account.totp_enabled_at is not None:
            # One authenticator app per account: enrolment never replaces the one in use.
            record(Event.TOTP_FAILURE, outcome="failure", reason="already_enrolled", account=account)
            return None
        attempt = self._admit(account)
        if attempt is None:
            return None
        secret = self._open(account, base64.b64decode(sealed))
        counter = totp.verify(secret, code, now=now, last_counter=None)
        if counter is None:
            self._failed(account, Event.TOTP_FAILURE, "wrong_code_at_enrolment")
            return None
        codes, hashes = self._new_recovery_codes(account)
        enabled = db.session.execute(
            update(Account).where(Account.id == account.id, Account.totp_enabled_at.is_(None))
            .values(totp_secret_encrypted=self._sealer.seal(secret.encode(), account.subject.encode()),
                    totp_last_counter=counter, totp_enabled_at=utcnow())
            .execution_options(synchronize_session="fetch")
        ).rowcount == 1
        if not enabled:  # a concurrent confirmation won
            db.session.rollback()
            record(Event.TOTP_FAILURE, outcome="failure", reason="already_enrolled", account=account)
            return None
        record(Event.TOTP_ENROLLED, account=account, commit=False)
        if hashes:
            self._add_recovery_codes(account, hashes)
            record(Event.RECOVERY_CODES_REGENERATED, account=account, detail={"first": True}, commit=False)
        db.session.commit()
        throttle.give_back(attempt)
        return codes

    # ---- using a factor ----
    def verify_totp(self, account: Account, code: str, *, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if account.totp_secret_encrypted is None:
            return False
        attempt = self._admit(account)
        if attempt is None:
            return False
        try:
            secret = self._open(account, account.totp_secret_encrypted)
        except (InvalidTag, ValueError):
            # Sealed under a key this process does not have (a change of OIDC_SECRET_KEY still
            # rolling out): refused, but not the person's fault, so not counted against them.
            record(Event.TOTP_FAILURE, outcome="failure", reason="secret_unreadable", account=account)
            return False
        counter = totp.verify(secret, code, now=now, last_counter=account.totp_last_counter)
        claimed = counter is not None and db.session.execute(
            update(Account).where(Account.id == account.id)
            .where((Account.totp_last_counter.is_(None)) | (Account.totp_last_counter < counter))
            .values(totp_last_counter=counter).execution_options(synchronize_session=False)
        ).rowcount == 1
        if not claimed:
            db.session.rollback()
            self._failed(account, Event.TOTP_FAILURE, "wrong_or_replayed_code")
            return False
        db.session.commit()
        throttle.give_back(attempt)
        return True

    def use_recovery_code(self, account: Account, typed: str) -> bool:
        attempt = self._admit(account)
        if attempt is None:
            return False
        rows = db.session.execute(select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None)).order_by(RecoveryCode.id)).all()
        with transactions.outside():
            index = recovery_codes.match(self._passwords, typed, [r.code_hash for r in rows])
        if index is None:
            self._failed(account, Event.RECOVERY_CODE_FAILURE, "wrong_code")
            return False
        used = db.session.execute(
            update(RecoveryCode).where(RecoveryCode.id == rows[index].id, RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow()).execution_options(synchronize_session=False)
        ).rowcount == 1
        record(Event.RECOVERY_CODE_USED, outcome="success" if used else "failure", account=account,
               detail={"remaining": len(rows) - 1})
        if used:
            throttle.give_back(attempt)
        return used

    def first_recovery_codes(self, account: Account) -> list[str]:
        """Issue 3: "10 generated at first second-factor enrollment, shown once": a set when the
        account has none (the caller commits and shows them), else []."""
        codes, hashes = self._new_recovery_codes(account)
        if hashes:
            self._add_recovery_codes(account, hashes)
            record(Event.RECOVERY_CODES_REGENERATED, account=account, detail={"first": True}, commit=False)
        return codes

    def regenerate_recovery_codes(self, account: Account) -> list[str]:
        """A new set; the old one stops working. Hashed before the transaction that stores them."""
        codes = recovery_codes.generate()
        with transactions.outside():
            hashes = recovery_codes.hash_all(self._passwords, codes)
        db.session.query(RecoveryCode).filter(RecoveryCode.account_id == account.id).delete()
        self._add_recovery_codes(account, hashes)
        record(Event.RECOVERY_CODES_REGENERATED, account=account, commit=False)
        db.session.commit()
        return codes

    def remove_totp(self, account: Account) -> None:
        """The person removes their authenticator app. Recovery codes back up second factors:
        they go too when no second factor is left."""
        account.totp_secret_encrypted = account.totp_last_counter = account.totp_enabled_at = None
        record(Event.TOTP_REMOVED, account=account, commit=False)
        self.drop_unused_recovery_codes(account)
        db.session.commit()

    def drop_unused_recovery_codes(self, account: Account) -> None:
        """Recovery codes back up second factors: they go when none is left (a later first
        enrolment brings a new set)."""
        if not SECOND_FACTORS & set(self.methods_of(account)):
            db.session.query(RecoveryCode).filter(RecoveryCode.account_id == account.id).delete()

    def recovery_codes_left(self, account: Account) -> int:
        return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
            RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None)))

    def reset(self, account: Account) -> None:
        """Admin: remove every second factor and passkey (``user reset-mfa``)."""
        account.totp_secret_encrypted = account.totp_last_counter = account.totp_enabled_at = None
        db.session.query(RecoveryCode).filter(RecoveryCode.account_id == account.id).delete()
        db.session.query(Passkey).filter(Passkey.account_id == account.id).delete()
        record(Event.MFA_RESET, account=account, commit=False)

    # ---- helpers ----
    def _new_recovery_codes(self, account: Account) -> tuple[list[str], list[str]]:
        """A first set of codes and their hashes (made with no transaction open), or ([], [])
        when the account has codes already."""
        if db.session.scalar(select(RecoveryCode.id).where(RecoveryCode.account_id == account.id).limit(1)):
            return [], []
        codes = recovery_codes.generate()
        with transactions.outside():
            return codes, recovery_codes.hash_all(self._passwords, codes)

    @staticmethod
    def _add_recovery_codes(account: Account, hashes: list[str]) -> None:
        for code_hash in hashes:
            db.session.add(RecoveryCode(account_id=account.id, code_hash=code_hash))

    def _open(self, account: Account, sealed: bytes) -> str:
        return self._sealer.open(sealed, account.subject.encode()).decode()

    @staticmethod
    def _key(account: Account) -> str:
        return throttle.code_key(account.username)

    def lockout(self, account: Account) -> throttle.Blocked | None:
        """The lock on this account's codes after too many wrong ones (recorded), or None."""
        blocked = throttle.check([self._key(account)], now=utcnow())
        if blocked is not None:
            record(Event.TOTP_FAILURE, outcome="failure", reason="throttled", account=account)
        return blocked

    def _admit(self, account: Account) -> throttle.Attempt | None:
        """Count this code attempt before the code is checked; None (recorded) when locked."""
        attempt = throttle.admit([self._key(account)], now=utcnow())
        if isinstance(attempt, throttle.Blocked):
            record(Event.TOTP_FAILURE, outcome="failure", reason="throttled", account=account)
            return None
        return attempt

    @staticmethod
    def _failed(account: Account, event: Event, reason: str) -> None:
        """A wrong code: recorded (``_admit`` counted it already)."""
        record(event, outcome="failure", reason=reason, account=account)
