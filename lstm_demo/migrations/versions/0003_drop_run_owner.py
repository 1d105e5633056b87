"""Revision 0003 (after 0002): runs lose the owner column, which nothing ever set."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # SQLite cannot always drop a column in place; batch mode copies the table when it must.
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
