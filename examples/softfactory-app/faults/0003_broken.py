"""A migration that fails for real, for the failure scenarios (image tag 3.0.0-broken).

It is not part of the app: hack/real/images.sh adds it to the broken image only. The
ALTER names a table that does not exist, so PostgreSQL raises an error, Alembic rolls
the whole upgrade back and `flask db upgrade` exits non-zero.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE no_such_table ADD COLUMN priority integer")


def downgrade():
    pass
