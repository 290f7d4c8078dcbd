"""access tokens are no longer stored: what is revoked is

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:15:00

A JWT access token (RFC 9068) is self-contained: issuing one writes nothing (issue 13). What
revokes access tokens is kept instead: ``revoked_token`` lists a single revoked token by
``jti`` and a revoked family by ``family:<family>``, each until the tokens it names have
expired; ``client.token_generation`` (a system account's credential rotated or revoked) and
``account.tokens_not_before`` (an account disabled) revoke everything older. Access tokens
revoked before this migration and not yet expired are carried into ``revoked_token``; the
``access_token`` table goes. Tokens issued before it carry no generation and are checked
against the deny-list, the account and the client only.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'revoked_token',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_revoked_token')),
    )
    with op.batch_alter_table('revoked_token') as batch:
        batch.create_index(batch.f('ix_revoked_token_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('client') as batch:
        batch.add_column(sa.Column('token_generation', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('account') as batch:
        batch.add_column(sa.Column('tokens_not_before', sa.Integer(), nullable=True))
    # Times are stored as naive UTC; the database's own clock may be in another zone.
    op.get_bind().execute(
        sa.text("INSERT INTO revoked_token (key, expires_at) "
                "SELECT jti, expires_at FROM access_token WHERE revoked_at IS NOT NULL AND expires_at > :now"),
        {"now": datetime.now(timezone.utc).replace(tzinfo=None)},
    )
    op.drop_table('access_token')


def downgrade():
    op.create_table(
        'access_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('jti', sa.String(length=64), nullable=False),
        sa.Column('family', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('scope', sa.String(length=1000), nullable=False),
        sa.Column('claims', sa.JSON(), nullable=True),
        sa.Column('audience', sa.String(length=200), nullable=True),
        sa.Column('issued_at', sa.DateTime(), nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_access_token_account_id_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_token')),
        sa.UniqueConstraint('jti', name=op.f('uq_access_token_jti')),
    )
    with op.batch_alter_table('access_token') as batch:
        batch.create_index(batch.f('ix_access_token_client_id'), ['client_id'], unique=False)
        batch.create_index(batch.f('ix_access_token_expires_at'), ['expires_at'], unique=False)
        batch.create_index(batch.f('ix_access_token_family'), ['family'], unique=False)
    with op.batch_alter_table('account') as batch:
        batch.drop_column('tokens_not_before')
    with op.batch_alter_table('client') as batch:
        batch.drop_column('token_generation')
    op.drop_index(op.f('ix_revoked_token_expires_at'), table_name='revoked_token')
    op.drop_table('revoked_token')
