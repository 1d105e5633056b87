"""Revision 0005 (after 0004): runs record when they joined the shared queue and when a cancel was asked."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # NULL for stored runs: none of them was submitted to the shared queue
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("submitted", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancel_requested", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("submitted")
