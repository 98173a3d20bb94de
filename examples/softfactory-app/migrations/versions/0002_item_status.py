"""Version 2.0.0: items get a status, backfilled for the rows that exist.

Expand-only, so version 1 keeps working while both run: the column has a server
default, and version 1's INSERTs (which do not name it) still succeed.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("items", sa.Column("status", sa.Text, nullable=True))
    op.execute("UPDATE items SET status = 'active' WHERE status IS NULL")
    op.alter_column("items", "status", nullable=False, server_default="active")


def downgrade():
    op.drop_column("items", "status")
