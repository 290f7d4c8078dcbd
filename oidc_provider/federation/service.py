"""The federation service: applies the linking rules (``linking.decide`` / ``decide_link``) to
the facts in the database, creates and links accounts, keeps linked identities current, and
writes an audit row for every outcome. Connectors only do HTTP; the views only parse and
render."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..audit import Event, record
from ..authn.levels import AMR_FEDERATED, AMR_MULTIPLE_FACTORS
from ..clock import utcnow
from ..extensions import db
from ..models import Account, FederatedIdentity, Passkey
from ..models.account import USERNAME, username_is
from . import linking
from .connector import Connector, Identity

# What a refusal says to the person: (title, what happened and what to do, HTTP status).
REFUSALS = {
    "no_account": ("No account for this sign-in",
                   "There is no account here for that sign-in, and this site does not create accounts "
                   "from it. Sign in another way, or ask the site's operator for an account.", 403),
    "email_account_linked_to_another_identity": (
        "This sign-in cannot be used",
        "The account with this email address is already linked to a different sign-in at the same "
        "site. Sign in with that one, or ask the site's operator for help.", 403),
    "already_linked_elsewhere": ("Already linked to another account",
                                 "That sign-in belongs to another account here, so it cannot be linked to "
                                 "yours. Sign in with it to use that account instead.", 403),
    "already_linked": ("Already linked", "That sign-in is already linked to your account.", 409),
    "provider_already_linked": ("Already linked",
                                "Your account is already linked to a sign-in at that site. Unlink it first "
                                "to link another one.", 409),
    "fresh_authentication_required": ("Sign in again first",
                                      "Linking a new way to sign in needs a sign-in from the last 10 minutes. "
                                      "Confirm it's you, then try again.", 403),
    "account_disabled": ("Account disabled",
                         "The account for this sign-in is disabled. Ask the site's operator for help.", 403),
    "wrong_account": ("Signed in as someone else",
                      "You are no longer signed in as the person who started linking. Sign in and "
                      "start again from your account page.", 403),
    "issuer_changed": ("This sign-in option changed",
                       "This sign-in option now points to a different site than the one your account was "
                       "linked with. Sign in another way, or ask the site's operator.", 403),
    "invalid_subject": ("This sign-in cannot be used",
                        "The other site sent an identity this site cannot use. Sign in another way.", 400),
    "last_way_to_sign_in": ("This is your only way to sign in",
                            "You cannot remove the last way to sign in to your account. Set a password or "
                            "add a passkey or another linked sign-in first.", 409),
}


class Refused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.title, self.message, self.status = REFUSALS[reason]


@dataclass(frozen=True)
class SignedIn:
    account: Account
    rule: str  # "linked", "email" (rule 2) or "signup" (rule 3)
    acr: str
    amr: list[str]


def amr_for(connector: Connector, identity: Identity) -> list[str]:
    """RFC 8176 ``fed``: an upstream login is one factor (``pwd`` level), unless the operator
    trusts this upstream for MFA and the upstream's ``amr`` says ``mfa`` (its ``acr`` values
    are not standardised, so only ``amr`` counts)."""
    if connector.config.trust_mfa and AMR_MULTIPLE_FACTORS in identity.amr:
        return [AMR_FEDERATED, AMR_MULTIPLE_FACTORS]
    return [AMR_FEDERATED]


def find_link(provider: str, subject: str) -> FederatedIdentity | None:
    return db.session.scalar(select(FederatedIdentity).where(FederatedIdentity.provider == provider,
                                                             FederatedIdentity.subject == subject))


def links_of(account: Account) -> list[FederatedIdentity]:
    return list(db.session.scalars(select(FederatedIdentity).where(FederatedIdentity.account_id == account.id)
                                   .order_by(FederatedIdentity.provider, FederatedIdentity.id)))


def sign_in(connector: Connector, identity: Identity, ladder) -> SignedIn:
    """Linking rules 1-4 for an upstream login; raises ``Refused``. Two callbacks for the same
    new identity at once: the second one's insert breaks the unique constraint, and its retry
    finds the link the first one made (rule 1)."""
    try:
        return _sign_in(connector, identity, ladder)
    except IntegrityError:
        db.session.rollback()
        return _sign_in(connector, identity, ladder)


def _sign_in(connector: Connector, identity: Identity, ladder) -> SignedIn:
    identity = _cleaned(identity)
    link = find_link(identity.provider, identity.subject)
    if link is not None and link.issuer and link.issuer != connector.upstream:
        raise _refuse("issuer_changed", identity)
    email_account = _verified_email_account(identity.email) if identity.email_verified else None
    facts = linking.Facts(
        linked_account=link.account_id if link else None,
        email_verified_upstream=identity.email_verified,
        verified_email_account=email_account.id if email_account else None,
        match_email=connector.config.match_email, signup=connector.config.signup,
        email_account_has_this_provider=bool(email_account and _has_provider(email_account, identity.provider)),
    )
    decision = linking.decide(facts)
    if isinstance(decision, linking.Refuse):
        blamed = email_account if decision.reason == "email_account_linked_to_another_identity" else None
        raise _refuse(decision.reason, identity, account=blamed)
    if isinstance(decision, linking.SignUp):
        account = _sign_up(identity, email_trusted=connector.config.match_email)
        rule = "signup"
    else:
        account = db.session.get(Account, decision.account)
        rule = "linked" if isinstance(decision, linking.SignIn) else "email"
    if account is None or account.disabled or account.kind != "human":
        db.session.rollback()
        raise _refuse("account_disabled", identity, account=account)
    if rule != "linked":
        link = _link(account, identity, rule=rule, issuer=connector.upstream)
    _refresh(link, identity)
    amr = amr_for(connector, identity)
    acr = ladder.level_of(amr)
    record(Event.FEDERATED_LOGIN_SUCCESS, account=account, commit=False,
           detail={"provider": identity.provider, "rule": rule, "amr": amr, "acr": acr})
    db.session.commit()
    return SignedIn(account=account, rule=rule, acr=acr, amr=amr)


def link_to(account: Account, identity: Identity, *, fresh: bool, issuer: str | None = None) -> FederatedIdentity:
    """The account page's explicit link (``linking.decide_link``); raises ``Refused``."""
    identity = _cleaned(identity)
    link = find_link(identity.provider, identity.subject)
    decision = linking.decide_link(signed_in_account=account.id, linked_account=link.account_id if link else None,
                                   fresh=fresh)
    if isinstance(decision, linking.Refuse):
        raise _refuse(decision.reason, identity, account=account, event=Event.FEDERATED_LINKED)
    if _has_provider(account, identity.provider):
        raise _refuse("provider_already_linked", identity, account=account, event=Event.FEDERATED_LINKED)
    try:
        link = _link(account, identity, rule="explicit", issuer=issuer)
    except IntegrityError:
        # A concurrent link won the race: (provider, subject) or (account, provider) is taken.
        raise _refuse("provider_already_linked", identity, account=account, event=Event.FEDERATED_LINKED) from None
    _refresh(link, identity)
    db.session.commit()
    return link


def ways_to_sign_in(account: Account) -> dict:
    return {
        "password": account.password_hash is not None,
        "passkeys": db.session.scalar(select(func.count()).select_from(Passkey)
                                      .where(Passkey.account_id == account.id)) or 0,
        "links": db.session.scalar(select(func.count()).select_from(FederatedIdentity)
                                   .where(FederatedIdentity.account_id == account.id)) or 0,
    }


def can_unlink(account: Account) -> bool:
    """Issue 4: "unlinking may not remove the last way to sign in": a password, a passkey or
    another linked identity must remain."""
    ways = ways_to_sign_in(account)
    return ways["password"] or ways["passkeys"] > 0 or ways["links"] > 1


def unlink(account: Account, link: FederatedIdentity, *, by: str = "account", force: bool = False) -> bool:
    """Remove one linked identity of ``account``; raises ``Refused("last_way_to_sign_in")``
    unless another way to sign in remains (an operator may ``force``). False when the link was
    already gone (another request removed it first).

    The check and the delete run under a lock on the account's row (``SELECT ... FOR UPDATE``
    on PostgreSQL; on SQLite it takes the database's write lock, ``transactions``), so two unlinks of
    an account's last two links, at two provider processes at once, cannot each count the
    other and leave the account with no way in."""
    link_id, provider = link.id, link.provider
    db.session.execute(select(Account.id).where(Account.id == account.id).with_for_update())
    # Read again under the lock: what another request committed meanwhile counts.
    current = db.session.scalar(select(FederatedIdentity).where(
        FederatedIdentity.id == link_id, FederatedIdentity.account_id == account.id)
        .execution_options(populate_existing=True))
    if current is None:
        db.session.rollback()
        return False
    db.session.refresh(account)
    if not force and not can_unlink(account):
        db.session.rollback()
        record(Event.FEDERATED_UNLINKED, outcome="failure", reason="last_way_to_sign_in", account=account,
               detail={"provider": provider, "by": by})
        raise Refused("last_way_to_sign_in")
    record(Event.FEDERATED_UNLINKED, account=account, commit=False,
           detail={"provider": provider, "by": by, "forced": force})
    db.session.delete(current)
    db.session.commit()
    return True


# ---- helpers ----

def _verified_email_account(email: str | None) -> Account | None:
    """The one human account whose verified email is ``email``; none when no account or
    several have it (an ambiguous match links nothing). Only ASCII addresses match, compared
    ASCII-case-insensitively: Unicode case folding maps look-alikes together (the Kelvin sign
    U+212A lowercases to "k"), which would hand one person's account to another."""
    if not email or not email.isascii():
        return None
    rows = db.session.scalars(select(Account).where(
        func.lower(Account.email) == email.lower(), Account.email_verified.is_(True), Account.kind == "human",
    ).limit(2)).all()
    return rows[0] if len(rows) == 1 and rows[0].email and rows[0].email.isascii() else None


def _email_taken(email: str) -> bool:
    return db.session.scalar(select(Account.id).where(func.lower(Account.email) == email.lower()).limit(1)) is not None


def _has_provider(account: Account, provider: str) -> bool:
    return db.session.scalar(select(FederatedIdentity.id).where(
        FederatedIdentity.account_id == account.id, FederatedIdentity.provider == provider).limit(1)) is not None


def _sign_up(identity: Identity, *, email_trusted: bool) -> Account:
    """Rule 3: a new account without a password. Its email counts as verified only if the
    upstream verified it AND the operator trusts this connector's verification (match_email):
    a verified email here is what rule 2 matches on, so an upstream allowed to sign people up
    but not trusted for emails must not plant verified addresses. An address another account
    already has is left out."""
    email = identity.email if identity.email and "@" in identity.email and len(identity.email) <= 320 else None
    if email and _email_taken(email):
        email = None
    account = Account(username=_free_username(identity), email=email,
                      email_verified=bool(email and identity.email_verified and email_trusted),
                      name=(identity.name or None) and identity.name[:200], password_hash=None)
    db.session.add(account)
    db.session.flush()
    record(Event.FEDERATED_SIGNUP, account=account, commit=False, detail={"provider": identity.provider})
    return account


def _free_username(identity: Identity) -> str:
    """The upstream username (or the email's local part) reduced to ``admin_accounts.USERNAME``,
    de-duplicated case-insensitively with ``-2``, ``-3``..."""
    raw = identity.username or (identity.email or "").split("@")[0] or "user"
    base = re.sub(r"[^A-Za-z0-9._@-]+", "-", raw)
    base = re.sub(r"^[^A-Za-z0-9]+", "", base)[:140] or "user"
    candidate, n = base, 1
    while db.session.scalar(select(Account.id).where(username_is(candidate))) is not None:
        n += 1
        candidate = f"{base}-{n}"
    assert USERNAME.match(candidate)
    return candidate


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _cleaned(identity: Identity) -> Identity:
    """Drop upstream strings with control characters (PostgreSQL refuses NUL in text): a name
    or username becomes None, an email None and unverified."""
    def ok(text):
        return text if text is None or not _CONTROL.search(text) else None

    if not identity.subject or len(identity.subject) > 255 or _CONTROL.search(identity.subject):
        raise _refuse("invalid_subject", identity)
    email = ok(identity.email)
    return dataclasses.replace(identity, name=ok(identity.name), username=ok(identity.username), email=email,
                               email_verified=identity.email_verified and email is not None)


def _link(account: Account, identity: Identity, *, rule: str, issuer: str | None) -> FederatedIdentity:
    link = FederatedIdentity(account_id=account.id, provider=identity.provider, subject=identity.subject,
                             issuer=issuer)
    db.session.add(link)
    db.session.flush()
    record(Event.FEDERATED_LINKED, account=account, commit=False,
           detail={"provider": identity.provider, "rule": rule})
    return link


def _refresh(link: FederatedIdentity, identity: Identity) -> None:
    """What the upstream said this time (it may change), and when."""
    link.email = identity.email[:320] if identity.email else None
    link.username = identity.username[:255] if identity.username else None
    link.last_login_at = utcnow()


def _refuse(reason: str, identity: Identity, *, account=None, event=Event.FEDERATED_LOGIN_FAILURE) -> Refused:
    db.session.rollback()
    record(event, outcome="failure", reason=reason, account=account, detail={"provider": identity.provider})
    return Refused(reason)
