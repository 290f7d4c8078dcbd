"""Consent as a grant with a generation: granted by an upsert, withdrawn with everything it let
the app do, in flight too.

RFC 6749 §10.5: "Authorization codes MUST be short lived and single-use"; §6 refreshes only
what the resource owner still grants; RFC 9700 §4.14: refresh tokens "may be revoked" and
"MUST be bound to the scope and resource servers as consented by the resource owner". A code
or refresh token records the generation of the account's grant to the client it was issued
under (``ConsentGeneration``). Redemption, refresh and the storing of what they issue lock
that row and compare; withdrawal locks it, moves the generation on, revokes the tokens and
deletes the consent in one transaction. The row lock (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite the same statement takes the database's write lock, ``transactions``)
orders a withdrawal against each in-flight redemption or refresh: either the withdrawal comes
first and the redemption or refresh is refused, or it comes after and revokes what was issued.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import Consent, ConsentGeneration


def _insert(model):
    """The dialect's INSERT, which has ``ON CONFLICT`` on both PostgreSQL and SQLite."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def current_generation(account_id: int, client_id: str) -> int:
    """The current generation of the account's grant to the client (OAuth ``client_id``),
    locked until the transaction ends. A missing row is created at generation 0 (what codes
    and tokens issued before generations existed carry)."""
    query = (select(ConsentGeneration.generation)
             .where(ConsentGeneration.account_id == account_id, ConsentGeneration.client_id == client_id)
             .with_for_update())
    generation = db.session.scalar(query)
    if generation is None:
        db.session.execute(_insert(ConsentGeneration)
                           .values(account_id=account_id, client_id=client_id, generation=0)
                           .on_conflict_do_nothing(index_elements=["account_id", "client_id"]))
        generation = db.session.scalar(query)
    return generation


def current_state(account_id: int, client) -> tuple[int, frozenset[str] | None]:
    """``current_generation`` (locked the same way) and the scopes the account has consented
    to for ``client`` (None: no consent): what the dispatcher reads per request.

    Two statements, the lock first: the consent is read once the generation's lock is held, so
    a withdrawal that committed while this waited is seen whole (generation moved on, consent
    gone). One statement joining both would not be: PostgreSQL rechecks only the locked row
    after waiting for a lock, and the joined consent would come from the snapshot taken before
    the wait (PostgreSQL 15 manual §13.2.1), pairing the new generation with the withdrawn
    consent, and a code issued then would redeem (RFC 6749 §10.5)."""
    generation = db.session.execute(_GENERATION, {"account_id": account_id, "client_id": client.client_id}).scalar()
    if generation is None:
        generation = current_generation(account_id, client.client_id)  # creates the row
    scope = db.session.execute(_CONSENT, {"account_id": account_id, "client_pk": client.id}).scalar()
    return generation, None if scope is None else frozenset(scope.split())


# Built once, on the tables (Core, no ORM loading): the consent generation, locked, and the consent.
_GENERATIONS, _CONSENTS = ConsentGeneration.__table__, Consent.__table__
_GENERATION = (select(_GENERATIONS.c.generation)
               .where(_GENERATIONS.c.account_id == bindparam("account_id"),
                      _GENERATIONS.c.client_id == bindparam("client_id"))
               .with_for_update())
_CONSENT = select(_CONSENTS.c.scope).where(_CONSENTS.c.account_id == bindparam("account_id"),
                                          _CONSENTS.c.client_id == bindparam("client_pk"))


def grant(account, client, scopes) -> Consent:
    """Remember that the account allows the client ``scopes`` (added to what it allowed
    before). An upsert: two "Allow" clicks at once, even on two instances, both succeed and
    leave one row. The caller commits."""
    db.session.execute(_insert(Consent)
                       .values(account_id=account.id, client_id=client.id, scope="")
                       .on_conflict_do_nothing(index_elements=["account_id", "client_id"]))
    row = db.session.scalar(select(Consent).where(Consent.account_id == account.id,
                                                  Consent.client_id == client.id)
                            .with_for_update().execution_options(populate_existing=True))
    row.scope = " ".join(sorted(set(scopes) | set(row.scope.split())))
    return row


def withdraw(consent: Consent, client, tokens) -> None:
    """Withdraw a consent: the generation moves on (codes and refresh tokens issued under it,
    in flight too, stop redeeming), the client's tokens for the account are revoked and the
    consent is deleted, all in one transaction, committed here."""
    db.session.execute(_insert(ConsentGeneration)
                       .values(account_id=consent.account_id, client_id=client.client_id, generation=1)
                       .on_conflict_do_update(index_elements=["account_id", "client_id"],
                                              set_={"generation": ConsentGeneration.generation + 1}))
    tokens.revoke_for(consent.account_id, client.client_id, commit=False)
    db.session.delete(consent)
    db.session.commit()
