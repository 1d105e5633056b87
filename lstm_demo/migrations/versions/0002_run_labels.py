"""Runs get a user label (name) and an owner; metric points get free-form extras.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Adding a nullable column is a plain ALTER TABLE even on SQLite; batch mode keeps any later
    # change that SQLite cannot ALTER in place (it then copies the table) working the same way.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("name", sa.String(255), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("extra", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("extra")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner")
        batch.drop_column("name")
