"""Revision 0004 (after 0003): runs record which replica claimed them and until when its claim holds."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # batch mode, as SQLite's ALTER TABLE needs; new columns are NULL: no stored run holds a lease
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
