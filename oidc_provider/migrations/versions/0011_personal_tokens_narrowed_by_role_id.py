"""personal tokens narrowed by role id

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-05 07:10:00

``personal_token.roles`` (role names) becomes ``personal_token.role_ids``: a token narrowed to
"viewer" must not follow the name to a role created later under it, nor lose its role when it is
renamed. Each stored name becomes the id of the role named so now; a name with no role left is
dropped, so the token stays narrowed (to fewer roles, possibly none) and is never widened. A
token narrowed to nothing stays ``[]``; one not narrowed stays NULL (all its owner's roles).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TOKEN = sa.table('personal_token', sa.column('id', sa.Integer), sa.column('roles', sa.JSON),
                 sa.column('role_ids', sa.JSON))


def _move(conn, source, target, mapping) -> None:
    for row_id, values in conn.execute(sa.select(TOKEN.c.id, source).where(source.is_not(None))).all():
        if values is None:  # JSON null: not narrowed
            continue
        moved = sorted({mapping[v] for v in values if v in mapping})
        conn.execute(TOKEN.update().where(TOKEN.c.id == row_id).values({target.name: moved}))


def upgrade():
    with op.batch_alter_table('personal_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role_ids', sa.JSON(), nullable=True))
    conn = op.get_bind()
    ids = dict(conn.execute(sa.text("SELECT name, id FROM role")).all())
    _move(conn, TOKEN.c.roles, TOKEN.c.role_ids, ids)
    with op.batch_alter_table('personal_token', schema=None) as batch_op:
        batch_op.drop_column('roles')


def downgrade():
    with op.batch_alter_table('personal_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('roles', sa.JSON(), nullable=True))
    conn = op.get_bind()
    names = {role_id: name for role_id, name in conn.execute(sa.text("SELECT id, name FROM role")).all()}
    _move(conn, TOKEN.c.role_ids, TOKEN.c.roles, names)
    with op.batch_alter_table('personal_token', schema=None) as batch_op:
        batch_op.drop_column('role_ids')
