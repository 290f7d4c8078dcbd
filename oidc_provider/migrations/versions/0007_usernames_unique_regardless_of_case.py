"""usernames unique regardless of case

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:00:00

A unique index on ``lower(username)``: "Alice" and "alice" become one name. Accounts whose
usernames differ only in case are found first; the upgrade then stops, changes nothing, and
names them with the way to fix it.
"""
from alembic import op
import sqlalchemy as sa

from oidc_provider.problems import Problem


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


class UsernameClash(Problem):
    """Usernames that differ only in case (a ``Problem``: the CLI shows it as one line)."""


def clash_message(groups: list[list[str]]) -> str:
    shown = "; ".join(" and ".join(repr(name) for name in group) for group in groups)
    last = groups[0][-1]
    return (f"cannot make usernames unique regardless of case (migration 0007): these accounts' usernames differ "
            f"only in case: {shown}. This step changed nothing. Rename all but one of each group in the database, "
            f"e.g. UPDATE account SET username = '{last}-2' WHERE username = '{last}'; then run the upgrade again")


def upgrade():
    names = op.get_bind().execute(sa.text("SELECT username FROM account ORDER BY username")).scalars()
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(name.lower(), []).append(name)
    groups = [group for group in by_key.values() if len(group) > 1]
    if groups:
        raise UsernameClash(clash_message(groups))
    op.create_index('uq_account_username_lower', 'account', [sa.text('lower(username)')], unique=True)


def downgrade():
    op.drop_index('uq_account_username_lower', table_name='account')
