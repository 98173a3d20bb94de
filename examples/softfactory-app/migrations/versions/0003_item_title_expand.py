"""Version 3.0.0, expand: items.name becomes items.title, first step of two.

The rename is done in two releases' steps so that both versions can serve from the
same database while the release is under way (docs: README, "Example: renaming a
column"). This expand step is additive only; version 2 (which knows `name`) keeps
reading and writing as before:

- `title` is added, nullable, with no default: no table rewrite, and version 2's
  INSERTs (which do not name it) still succeed.
- A trigger keeps the two columns equal on every write, from either version: an INSERT
  that sets only `name` (version 2) gets `title` from it, one that sets only `title`
  (version 3) gets `name` from it, so `name`'s NOT NULL never fails a version 3 INSERT;
  an UPDATE of one column is copied to the other.
- The rows that exist are backfilled, after the trigger is in place, so that no row
  written in between is missed. (One UPDATE: the sample's table is small. A large table
  is backfilled in batches of a few thousand rows, each its own transaction.)

Run it alone: `flask db upgrade 0003` (the release's spec.migration). Revision 0004,
the contract step, runs after the old version is gone.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SYNC_FUNCTION = """
CREATE FUNCTION items_sync_name_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.title IS NULL THEN
      NEW.title := NEW.name;
    ELSIF NEW.name IS NULL THEN
      NEW.name := NEW.title;
    END IF;
  ELSIF NEW.title IS NOT DISTINCT FROM OLD.title THEN
    NEW.title := NEW.name;
  ELSIF NEW.name IS NOT DISTINCT FROM OLD.name THEN
    NEW.name := NEW.title;
  END IF;
  RETURN NEW;
END
$$
"""


def upgrade():
    # ADD COLUMN and CREATE TRIGGER take the table's strongest lock: never queue behind
    # a long transaction (every request of the serving version would queue behind this
    # step); fail instead, and the release stops with the old version serving.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE items ADD COLUMN title text")
    op.execute(SYNC_FUNCTION)
    op.execute(
        "CREATE TRIGGER items_sync_name_title BEFORE INSERT OR UPDATE ON items "
        "FOR EACH ROW EXECUTE FUNCTION items_sync_name_title()"
    )
    op.execute("UPDATE items SET title = name WHERE title IS NULL")


def downgrade():
    op.execute("DROP TRIGGER items_sync_name_title ON items")
    op.execute("DROP FUNCTION items_sync_name_title()")
    op.execute("ALTER TABLE items DROP COLUMN title")
