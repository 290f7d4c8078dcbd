"""PostgreSQL: changes to the tables the lanes keep are announced (NOTIFY oidc_hot)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 04:30:00

granian's workers keep the rows of the few reads every token, introspection and UserInfo
request makes (clients, accounts, roles, what is revoked) and drop what they keep when one of
these tables changes (``oidc_provider/loop_reads.py``). A trigger on each table announces the
change on the ``oidc_hot`` channel when its transaction commits, whoever made it. SQLite:
nothing (its reads are not kept). A database without the triggers is read every time.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

TABLES = ('account', 'client', 'consent_generation', 'revoked_token', 'role', 'role_grant')


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
CREATE OR REPLACE FUNCTION oidc_hot_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oidc_hot', TG_TABLE_NAME);
    RETURN NULL;
END
$$""")
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS oidc_hot_changed ON {table}")
        op.execute(f"CREATE TRIGGER oidc_hot_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION oidc_hot_changed()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS oidc_hot_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS oidc_hot_changed()")
