"""Revocation of self-contained access tokens: what is revoked is stored, never the tokens.

DESIGN "Speed": "a JWT access token is revoked by what is revoked — a credential, a grant, a
session — not by a row per token". Issuing an access token writes nothing; each one carries,
besides the RFC 9068 §2.2 claims, what can revoke it (RFC 9068 §2.2 lets a server add claims):

- ``gen``: for a client_credentials token, the generation of the system account's credential it
  was issued with (``client.token_generation``, read in the same query as the credential); for a
  person's token, the generation of the person's consent to the client (``consent_generation``)
  that the code or refresh token was issued under. Rotating or revoking a credential, and
  withdrawing consent, move the generation on: every older token is refused from then on,
  including one minted by a request that was in flight while the change committed.
- ``fam``: the family of a token obtained with a code or a refresh token; a replayed code or a
  reused or revoked refresh token lists the family (RFC 6749 §4.1.2, RFC 9700 §4.14.2, RFC 7009
  §2.1).
- ``jti``: a single token revoked by RFC 7009 is listed by it.

``check`` decides all of it, and that the account and client still exist and the account is
enabled (and was not disabled since the token was issued), in one indexed read. The deny-list
(``revoked_token``) keeps a row only until the tokens it names have expired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, bindparam, delete, exists, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from .. import hot
from ..clock import from_epoch, utcnow
from ..extensions import db
from ..models import Account, Client, ConsentGeneration, RevokedToken

GENERATION = "gen"
FAMILY = "fam"
#: The ``userinfo`` member of the OIDC Core §5.5 ``claims`` request the token was issued under.
USERINFO_REQUEST = "userinfo_claims"


@dataclass(frozen=True, slots=True)
class Binding:
    """What an access token about to be issued is bound to (``grants/target.py``)."""

    family: str | None
    generation: int
    claims: dict | None  # the authorization's claims request (OIDC Core §5.5)


@dataclass(frozen=True, slots=True)
class AccountView:
    """The person an access token is for, as its validation read them: what OIDC Core §5.4's
    standard claims (``claims.account_claims``) and introspection need."""

    COLUMNS = (Account.id, Account.subject, Account.username, Account.name, Account.email,
               Account.email_verified, Account.updated_at)

    id: int
    subject: str
    username: str
    name: str | None
    email: str | None
    email_verified: bool
    updated_at: object
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    """A verified, unrevoked access token as the endpoints read it (the shape the stored row
    had): ``account_id`` is None for a client's own (client_credentials) token."""

    jti: str
    family: str | None
    client_id: str
    account_id: int | None
    account: AccountView | None  # None for a client's own token
    scope: str
    claims: dict | None
    audience: str | None
    issued_at: object
    expires_at: object
    revoked_at: None = None


def _jti_key(jti: str) -> str:
    return "jti:" + jti


def _family_key(family: str) -> str:
    return "family:" + family


# Both statements are built once (SQLAlchemy caches their compiled form): one indexed read each.
_DENIED = exists().where(RevokedToken.key.in_([bindparam("jti_key"), bindparam("family_key")]))
_CLIENT_TOKEN = hot.Statement(
    select(Client.token_generation, Account.disabled, Account.tokens_not_before, _DENIED)
    .select_from(Client).outerjoin(Account, Account.id == Client.account_id)
    .where(Client.client_id == bindparam("client_id")),
    cached=True,
)
# The person's standard claims come in the same read (userinfo needs nothing more).
_PERSON_TOKEN = hot.Statement(
    select(Account.disabled, Account.tokens_not_before,
           func.coalesce(ConsentGeneration.generation, literal(0)),
           exists().where(Client.client_id == bindparam("client_id")), _DENIED,
           *AccountView.COLUMNS)
    .select_from(Account)
    .outerjoin(ConsentGeneration, and_(ConsentGeneration.account_id == Account.id,
                                       ConsentGeneration.client_id == bindparam("client_id")))
    .where(Account.subject == bindparam("subject")),
    cached=True,
)


def check(claims: dict) -> IssuedAccessToken | None:
    """The token described by verified, unexpired ``claims``, or None when it is revoked."""
    client_id, subject, jti = claims.get("client_id"), claims.get("sub"), claims.get("jti")
    if not all(isinstance(v, str) and 0 < len(v) <= 64 for v in (client_id, subject, jti)):
        return None
    family = claims.get(FAMILY)
    if family is not None and not (isinstance(family, str) and 0 < len(family) <= 64):
        return None
    generation = claims.get(GENERATION)  # absent on tokens issued before generations existed
    if generation is not None and (not isinstance(generation, int) or isinstance(generation, bool)):
        return None
    params = {"client_id": client_id, "subject": subject, "jti_key": _jti_key(jti),
              "family_key": _family_key(family) if family else _jti_key(jti)}
    account = None
    if subject == client_id:  # a client's own token (client_credentials): its subject is the client
        row = hot.first(_CLIENT_TOKEN, params)
        if row is None:
            return None
        current, disabled, not_before, denied = row
    else:
        row = hot.first(_PERSON_TOKEN, params)
        if row is None or not row[3]:
            return None
        disabled, not_before, current, _client_exists, denied = row[:5]
        account = AccountView(*row[5:])
    if denied or disabled or (generation is not None and generation != current) \
            or (not_before is not None and claims["iat"] < not_before):
        return None
    userinfo_request = claims.get(USERINFO_REQUEST)
    aud = claims.get("aud")
    return IssuedAccessToken(
        jti=jti, family=family, client_id=client_id, account_id=account.id if account else None, account=account,
        scope=claims.get("scope") if isinstance(claims.get("scope"), str) else "",
        claims={"userinfo": userinfo_request} if isinstance(userinfo_request, dict) else None,
        audience=aud if isinstance(aud, str) else None,
        issued_at=from_epoch(claims["iat"]), expires_at=from_epoch(claims["exp"]),
    )


def _insert_ignoring_duplicates(key: str, expires_at) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RevokedToken)
    db.session.execute(insert.values(key=key, expires_at=expires_at).on_conflict_do_update(
        index_elements=["key"], set_={"expires_at": func.max(RevokedToken.expires_at, expires_at)}
        if dialect == "sqlite" else {"expires_at": func.greatest(RevokedToken.expires_at, expires_at)},
    ))


def deny_token(token: IssuedAccessToken) -> None:
    """RFC 7009 §2.1 for one access token: listed until it expires. The caller commits."""
    _insert_ignoring_duplicates(_jti_key(token.jti), token.expires_at)


def deny_family(family: str, access_token_ttl: int) -> None:
    """Every access token of the family, issued so far or still in flight: listed for as long
    as one issued now would live. The caller commits."""
    _insert_ignoring_duplicates(_family_key(family), utcnow() + timedelta(seconds=access_token_ttl + 60))


def revoke_client_tokens(client) -> None:
    """Every access token the client holds (by client_credentials) stops working. The caller
    commits."""
    # In SQL, not in Python: two rotations at once must move it on twice.
    client.token_generation = Client.token_generation + 1


def revoke_account_tokens(account) -> None:
    """Every access token issued for the account until now stops working (``iat`` before the
    next second), whatever happens to the account afterwards. The caller commits."""
    account.tokens_not_before = int(time.time()) + 1


def prune(now=None) -> int:
    """Deny-list rows whose tokens have all expired; returns how many went."""
    result = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= (now or utcnow())))
    return result.rowcount
