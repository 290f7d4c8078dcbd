"""Passkeys as a service: the ceremonies of ``authn.passkeys`` (pure, py_webauthn) plus what they
leave to the Relying Party (W3C WebAuthn Level 3): challenges, credential records, sign counts,
management rules and audit.

- Challenges (§13.4.3) live in ``webauthn_challenge`` for five minutes, bound to a purpose and to
  the account the ceremony is for (None: username-less sign-in), and are consumed once by a
  conditional DELETE: of two uses of one challenge, in any processes, one finds the row.
- §7.2 signCount: a counter that does not grow is refused unless the credential is
  backup-eligible (synced passkeys share one key between devices and not one counter). The new
  count is stored by a conditional UPDATE, so two concurrent assertions cannot both move it.
- A person may not remove their last way to sign in, and removing a passkey needs a recent
  authentication at the level that passkey gives (issue 3, "Account page").
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ..audit import Event, record
from ..clock import epoch, utcnow
from ..extensions import db
from ..models import Account, FederatedIdentity, Passkey, WebAuthnChallenge
from . import passkeys
from .levels import (
    AMR_HARDWARE_KEY,
    AMR_PASSWORD,
    AMR_SOFTWARE_KEY,
    AMR_USER_PRESENCE_VERIFIED,
    REAUTHENTICATION_WINDOW,
    fresh_enough,
)
from .passkeys import PasskeyError, Reason

log = logging.getLogger("oidc_provider.passkeys")

CHALLENGE_TTL = timedelta(minutes=5)  # DESIGN: "challenges expire after 5 minutes"
MAX_PASSKEYS = 20
MAX_NAME = 64
USER_HANDLE_BYTES = 64  # §14.6.1: "It is RECOMMENDED to let the user handle be 64 random bytes"


class ManageError(Exception):
    """A management request that is refused; ``error`` is the code the JSON answer carries."""

    error = "invalid_request"

    def __init__(self, description: str, **extra):
        super().__init__(description)
        self.description = description
        self.extra = extra


class NotFound(ManageError):
    error = "not_found"


class FreshAuthenticationRequired(ManageError):
    error = "fresh_authentication_required"


class LastWayToSignIn(ManageError):
    error = "last_sign_in_method"


class LimitReached(ManageError):
    error = "limit_reached"


@dataclass(frozen=True)
class Authenticated:
    account: Account
    passkey: Passkey
    amr: list[str]


def clean_name(raw) -> str:
    """A passkey's name as typed: 1 to 64 printable characters. Raises ValueError."""
    if not isinstance(raw, str):
        raise ValueError("The name must be text.")
    name = " ".join(raw.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"Give the passkey a name of 1 to {MAX_NAME} characters.")
    return name


def stored_amr(passkey: Passkey) -> list[str]:
    """RFC 8176 values a stored passkey can prove (as ``passkeys.amr_for``): "swk" when synced,
    "hwk" when device-bound, plus "user" when it verified the user at registration."""
    amr = [AMR_SOFTWARE_KEY if passkey.backup_eligible else AMR_HARDWARE_KEY]
    if passkey.user_verified_at_registration:
        amr.append(AMR_USER_PRESENCE_VERIFIED)
    return amr


class Passkeys:
    def __init__(self, settings):
        self.available = settings.passkeys_available
        self.rp_id = settings.rp_id
        self.origins = settings.passkey_origins
        self.rp_name = settings.site_name
        self.ladder = settings.ladder

    # ---- what an account has ----
    @staticmethod
    def of(account: Account) -> list[Passkey]:
        return list(db.session.scalars(select(Passkey).where(Passkey.account_id == account.id).order_by(Passkey.id)))

    def level_given(self, passkey: Passkey, account: Account) -> str:
        """The level this passkey reaches for this account: alone, or after the password."""
        amr = stored_amr(passkey) + ([AMR_PASSWORD] if account.password_hash else [])
        return self.ladder.level_of(amr) or self.ladder.levels[0]

    # ---- §7.1 registration ----
    def registration_options(self, account: Account) -> dict:
        existing = self.of(account)
        if len(existing) >= MAX_PASSKEYS:
            raise LimitReached(f"An account can have at most {MAX_PASSKEYS} passkeys. Remove one first.")
        if account.webauthn_user_handle is None:
            account.webauthn_user_handle = secrets.token_bytes(USER_HANDLE_BYTES)
        options, challenge = passkeys.registration_options(
            rp_id=self.rp_id, rp_name=self.rp_name, user_id=account.webauthn_user_handle,
            user_name=account.username, user_display_name=account.name or account.username,
            exclude_credential_ids=[p.credential_id for p in existing],
        )
        self._issue(challenge, "register", account)
        return options

    def register(self, account: Account, credential_json, name: str) -> Passkey:
        """Verify a ``create()`` response and store the credential record. Raises PasskeyError
        (recorded) or LimitReached."""
        try:
            claimed = passkeys.presented(credential_json, ceremony="create")
            self._consume(claimed.challenge, "register", account)
            verified = passkeys.verify_registration(
                credential_json=credential_json, expected_challenge=claimed.challenge,
                expected_rp_id=self.rp_id, expected_origins=self.origins, require_user_verification=False,
            )
            if db.session.scalar(select(Passkey.id).where(Passkey.credential_id == verified.credential_id)):
                # §7.1: "Verify that the credentialId is not yet registered for any user."
                raise PasskeyError(Reason.ALREADY_REGISTERED)
        except PasskeyError as exc:
            self._failed(Event.PASSKEY_REGISTERED, exc, account)
            raise
        if len(self.of(account)) >= MAX_PASSKEYS:
            raise LimitReached(f"An account can have at most {MAX_PASSKEYS} passkeys. Remove one first.")
        row = Passkey(
            account_id=account.id, credential_id=verified.credential_id, public_key=verified.public_key,
            sign_count=verified.sign_count, transports=verified.transports, aaguid=verified.aaguid,
            backup_eligible=verified.backup_eligible, backup_state=verified.backed_up,
            user_verified_at_registration=verified.user_verified, name=name, created_at=utcnow(),
        )
        db.session.add(row)
        try:
            db.session.flush()
        except IntegrityError:
            # The same credential registered concurrently: the unique index decided.
            db.session.rollback()
            exc = PasskeyError(Reason.ALREADY_REGISTERED, "unique index")
            self._failed(Event.PASSKEY_REGISTERED, exc, account)
            raise exc from None
        record(Event.PASSKEY_REGISTERED, account=account, commit=False, detail={
            "passkey_id": row.id, "backup_eligible": row.backup_eligible,
            "user_verified": row.user_verified_at_registration, "aaguid": row.aaguid})
        db.session.commit()
        return row

    # ---- §7.2 authentication ----
    def authentication_options(self, account: Account | None = None, *, user_verification: str | None = None) -> dict:
        """Username-less (``account`` None): any discoverable credential for this RP, with user
        verification required. For a signed-in person: their credentials, verification
        preferred (a security key without a PIN still proves possession)."""
        allow = [p.credential_id for p in self.of(account)] if account is not None else None
        options, challenge = passkeys.authentication_options(
            rp_id=self.rp_id, allow_credential_ids=allow,
            user_verification="required" if account is None else (user_verification or "preferred"),
        )
        self._issue(challenge, "authenticate", account)
        return options

    def authenticate(self, credential_json, *, account: Account | None = None) -> Authenticated:
        """Verify a ``get()`` response. ``account``: the signed-in person (step-up, fresh
        authentication), or None for a username-less sign-in. Raises PasskeyError (recorded)."""
        owner = account
        try:
            claimed = passkeys.presented(credential_json, ceremony="get")
            self._consume(claimed.challenge, "authenticate", account)
            stored = db.session.scalar(select(Passkey).where(Passkey.credential_id == claimed.credential_id))
            if stored is None or (account is not None and stored.account_id != account.id):
                # §7.2: the identified account must hold "a credential record whose id equals
                # credential.rawId".
                raise PasskeyError(Reason.UNKNOWN_CREDENTIAL)
            owner = db.session.get(Account, stored.account_id)
            # §7.2: "If the user was not identified before the authentication ceremony was
            # initiated, verify that response.userHandle is present"; if present, it must be the
            # handle of the account that owns the credential.
            if (account is None and claimed.user_handle is None) or (
                    claimed.user_handle is not None and claimed.user_handle != owner.webauthn_user_handle):
                raise PasskeyError(Reason.USER_HANDLE)
            if owner.disabled:
                raise PasskeyError(Reason.ACCOUNT_DISABLED)
            verified = passkeys.verify_authentication(
                credential_json=credential_json, expected_challenge=claimed.challenge, expected_rp_id=self.rp_id,
                expected_origins=self.origins, credential_public_key=stored.public_key,
                current_sign_count=stored.sign_count, backup_eligible=stored.backup_eligible,
                require_user_verification=account is None,
            )
            self._store_use(stored, verified)
        except PasskeyError as exc:
            self._failed(Event.PASSKEY_LOGIN_FAILURE, exc, owner)
            raise
        amr = passkeys.amr_for(verified)
        record(Event.PASSKEY_LOGIN_SUCCESS, account=owner, commit=False, detail={
            "passkey_id": stored.id, "amr": amr, "purpose": "sign_in" if account is None else "verify"})
        db.session.commit()
        return Authenticated(account=owner, passkey=stored, amr=amr)

    # ---- management ----
    def rename(self, account: Account, passkey_id: int, name: str) -> Passkey:
        row = self._owned(account, passkey_id)
        row.name = name
        record(Event.PASSKEY_RENAMED, account=account, commit=False, detail={"passkey_id": row.id})
        db.session.commit()
        return row

    def remove(self, account: Account, passkey_id: int, *, proven: dict[str, int],
               window: int = REAUTHENTICATION_WINDOW) -> None:
        """Delete a passkey: not the last way to sign in (409), and only after an authentication
        at the level it gives within the last ``window`` seconds (OIDC_ACCOUNT_REAUTH_SECONDS;
        403, ``levels.fresh_enough``)."""
        # Serialise removals for one account (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already
        # does), so two concurrent removals cannot each leave the other as "not the last one".
        db.session.execute(select(Account.id).where(Account.id == account.id).with_for_update())
        row = self._owned(account, passkey_id)
        count = db.session.scalar(select(func.count()).select_from(Passkey).where(Passkey.account_id == account.id))
        links = db.session.scalar(select(func.count()).select_from(FederatedIdentity).where(
            FederatedIdentity.account_id == account.id))
        if account.password_hash is None and count == 1 and not links:
            db.session.rollback()
            raise LastWayToSignIn(
                "This passkey is the only way you can sign in: you have no password, no other passkey and "
                "no linked sign-in. "
                "Add another passkey first, then remove this one.")
        level = self.level_given(row, account)
        if not fresh_enough(self.ladder, proven=proven, level=level, now=epoch(utcnow()), window=window):
            db.session.rollback()
            raise FreshAuthenticationRequired(
                "Confirm it's you with a passkey, then remove it.", level=level, max_age=window)
        db.session.delete(row)
        record(Event.PASSKEY_REMOVED, account=account, commit=False, detail={"passkey_id": passkey_id})
        db.session.commit()

    # ---- helpers ----
    def _owned(self, account: Account, passkey_id: int) -> Passkey:
        row = db.session.get(Passkey, passkey_id)
        if row is None or row.account_id != account.id:
            raise NotFound("No such passkey on your account.")
        return row

    @staticmethod
    def _digest(challenge: bytes) -> str:
        return hashlib.sha256(challenge).hexdigest()

    def _issue(self, challenge: bytes, purpose: str, account: Account | None) -> None:
        now = utcnow()
        # Unused challenges are dropped once expired, so the table holds five minutes' worth.
        db.session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now))
        db.session.add(WebAuthnChallenge(
            challenge_digest=self._digest(challenge), purpose=purpose,
            account_id=account.id if account is not None else None, created_at=now,
            expires_at=now + CHALLENGE_TTL))
        db.session.commit()

    def _consume(self, challenge: bytes, purpose: str, account: Account | None) -> None:
        """§13.4.3: a challenge is used once. One conditional DELETE claims it; the claim is
        committed before verification, so even a failed ceremony spends it."""
        key = self._digest(challenge)
        owner = (WebAuthnChallenge.account_id == account.id) if account is not None \
            else WebAuthnChallenge.account_id.is_(None)
        claimed = db.session.execute(
            delete(WebAuthnChallenge).where(
                WebAuthnChallenge.challenge_digest == key, WebAuthnChallenge.purpose == purpose, owner,
                WebAuthnChallenge.expires_at > utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        expired = not claimed and db.session.execute(
            delete(WebAuthnChallenge).where(WebAuthnChallenge.challenge_digest == key, owner,
                                            WebAuthnChallenge.expires_at <= utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        db.session.commit()
        if expired:
            raise PasskeyError(Reason.CHALLENGE_EXPIRED)
        if not claimed:
            raise PasskeyError(Reason.CHALLENGE_UNKNOWN)

    @staticmethod
    def _store_use(stored: Passkey, verified: passkeys.VerifiedAssertion) -> None:
        """Record the new signCount and backup state; for a device-bound credential only if the
        count still grows from what this process read (another assertion may have won)."""
        statement = update(Passkey).where(Passkey.id == stored.id)
        if not stored.backup_eligible and (verified.new_sign_count or stored.sign_count):
            statement = statement.where(Passkey.sign_count < verified.new_sign_count)
        moved = db.session.execute(
            statement.values(sign_count=verified.new_sign_count, backup_state=verified.backed_up,
                             last_used_at=utcnow()).execution_options(synchronize_session=False)
        ).rowcount == 1
        if not moved:
            db.session.rollback()
            raise PasskeyError(Reason.SIGN_COUNT, "a concurrent assertion moved the counter first")
        db.session.expire(stored)

    @staticmethod
    def _failed(event: Event, exc: PasskeyError, account: Account | None) -> None:
        db.session.rollback()
        if exc.detail:
            log.info("passkey ceremony refused: %s (%s)", exc.reason, exc.detail)
        record(event, outcome="failure", reason=str(exc.reason), account=account)
