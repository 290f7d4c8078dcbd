"""consent generation; refresh-token successors kept for a retry

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:00:00

``consent_generation`` holds the generation of each account's grant to a client; codes and
refresh tokens record the generation they were issued under (0 for those issued before: the
generation a missing row starts at), and withdrawing consent moves it on. A refresh token
also records the token it was rotated from and, for a retry within
OIDC_REFRESH_REUSE_GRACE_SECONDS, its own value sealed at rest (RFC 9700 §4.14.2).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'consent_generation',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('generation', sa.Integer(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_consent_generation_account_id_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('account_id', 'client_id', name=op.f('pk_consent_generation')),
    )
    with op.batch_alter_table('authorization_code') as batch:
        batch.add_column(sa.Column('generation', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('refresh_token') as batch:
        batch.add_column(sa.Column('generation', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('predecessor_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('sealed_value', sa.LargeBinary(), nullable=True))
        batch.create_index(batch.f('ix_refresh_token_predecessor_id'), ['predecessor_id'], unique=False)


def downgrade():
    with op.batch_alter_table('refresh_token') as batch:
        batch.drop_index(batch.f('ix_refresh_token_predecessor_id'))
        batch.drop_column('sealed_value')
        batch.drop_column('predecessor_id')
        batch.drop_column('generation')
    with op.batch_alter_table('authorization_code') as batch:
        batch.drop_column('generation')
    op.drop_table('consent_generation')
