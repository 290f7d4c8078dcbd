"""one linked identity per account and provider

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-05 07:00:00

A unique index on ``federated_identity (account_id, provider)``: an account links at most one
identity at each upstream (what linking already refuses, now also under concurrent links).
Duplicates a race left behind are removed first, keeping the most recently used (last sign-in,
else last linked, else the newest row); each removal is counted in the migration's log line.
"""
import logging

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0007'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def duplicates_to_remove(rows) -> list[int]:
    """The ids to delete: for each (account_id, provider), every row but the most recent.
    ``rows``: (id, account_id, provider, last_login_at, linked_at)."""
    keep: dict[tuple, tuple] = {}
    remove: list[int] = []
    for row in rows:
        key = (row[1], row[2])
        rank = (row[3] is not None, str(row[3] or ""), row[4] is not None, str(row[4] or ""), row[0])
        if key not in keep:
            keep[key] = (rank, row[0])
        elif rank > keep[key][0]:
            remove.append(keep[key][1])
            keep[key] = (rank, row[0])
        else:
            remove.append(row[0])
    return sorted(remove)


def upgrade():
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, account_id, provider, last_login_at, linked_at FROM federated_identity ORDER BY id")).all()
    remove = duplicates_to_remove(rows)
    for start in range(0, len(remove), 500):
        bind.execute(sa.text("DELETE FROM federated_identity WHERE id IN :ids")
                     .bindparams(sa.bindparam("ids", expanding=True)), {"ids": remove[start:start + 500]})
    if remove:
        log.info("0010: removed %d duplicate linked identities (kept the most recent per account and provider)",
                 len(remove))
    with op.batch_alter_table('federated_identity', schema=None) as batch_op:
        batch_op.create_index('uq_federated_identity_account_provider', ['account_id', 'provider'], unique=True)


def downgrade():
    with op.batch_alter_table('federated_identity', schema=None) as batch_op:
        batch_op.drop_index('uq_federated_identity_account_provider')
