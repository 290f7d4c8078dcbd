"""Storage of account attributes: read, write and delete one account's values. Every write is
audited in the same transaction; a failed write changes nothing. Values never go into the
audit detail (personal data): only the attribute's name."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..audit import Event, record
from ..clock import utcnow
from ..extensions import db
from ..models import AccountAttribute


def values_of(account_id: int) -> dict[str, object]:
    rows = db.session.scalars(select(AccountAttribute).where(AccountAttribute.account_id == account_id))
    return {row.name: row.value for row in rows}


def value_of(account_id: int, name: str) -> AccountAttribute | None:
    return db.session.scalar(select(AccountAttribute).where(
        AccountAttribute.account_id == account_id, AccountAttribute.name == name))


def put(account, name: str, value, *, client_id: str) -> bool:
    """Set the value; True when it was created."""
    try:
        return _put_once(account, name, value, client_id)
    except IntegrityError:
        # A concurrent first write won the unique (account_id, name) constraint: the row now
        # exists, so this write updates it.
        db.session.rollback()
        return _put_once(account, name, value, client_id)


def _put_once(account, name: str, value, client_id: str) -> bool:
    row = value_of(account.id, name)
    created = row is None
    if created:
        db.session.add(AccountAttribute(account_id=account.id, name=name, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()
    record(Event.ATTRIBUTE_UPDATED, account=account, client=client_id,
           detail={"name": name, "created": created}, commit=False)
    db.session.commit()
    return created


def remove(account, name: str, *, client_id: str) -> bool:
    """Delete the value; False when there was none (nothing is recorded then)."""
    gone = db.session.execute(delete(AccountAttribute).where(
        AccountAttribute.account_id == account.id, AccountAttribute.name == name)).rowcount == 1
    if gone:
        record(Event.ATTRIBUTE_DELETED, account=account, client=client_id, detail={"name": name}, commit=False)
    db.session.commit()
    return gone


def refused(account, event: Event, name: str, reason: str, *, client_id: str) -> None:
    """A write that was refused (too weak a token, a bad value): an audit row, nothing else."""
    db.session.rollback()
    record(event, outcome="failure", reason=reason, account=account, client=client_id, detail={"name": name})
