"""pending authorization requests, one row each

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-05 07:10:00

Authorization requests waiting for login, step-up or consent were kept inside the browser
session's data, so parallel requests in one browser overwrote each other. Each now has its own
row, bound to the browser by a per-request cookie. Requests pending in sessions at upgrade time
are not carried over: their browsers start again at the application (a "request expired" page).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'pending_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pid', sa.String(length=32), nullable=False),
        sa.Column('binder_digest', sa.String(length=64), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('progress', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_request')),
        sa.UniqueConstraint('pid', name=op.f('uq_pending_request_pid')),
    )
    with op.batch_alter_table('pending_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_request_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('pending_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_request_expires_at'))
    op.drop_table('pending_request')
