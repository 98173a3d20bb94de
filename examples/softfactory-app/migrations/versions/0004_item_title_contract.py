"""Version 3.0.0, contract: items.name is gone, items.title is NOT NULL.

The second step of the rename begun in 0003, and the destructive one: version 2 reads
and writes `name`, so this runs only once no version 2 pod can serve again, as the
release's spec.migration.contract (`flask db upgrade 0004`), which the operator runs
after the flip, once the old colour has scaled to 0, on a fresh backup.

After it, version 2 fails on every query that names `name`: a rollback to it is
refused by the operator (its schema is gone). To undo it, `flask db downgrade 0003`
puts `name` back, filled from `title`, with the trigger (the expanded schema both
versions serve from), or restore the dump taken before this step.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# 0003's trigger function, for the downgrade.
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
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("DROP TRIGGER items_sync_name_title ON items")
    op.execute("DROP FUNCTION items_sync_name_title()")
    # Every row has a title: the trigger filled it on each write since 0003, and 0003
    # backfilled the rows before it. SET NOT NULL checks it, and fails the step if not.
    op.execute("ALTER TABLE items ALTER COLUMN title SET NOT NULL")
    op.execute("ALTER TABLE items DROP COLUMN name")


def downgrade():
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE items ADD COLUMN name text")
    op.execute("UPDATE items SET name = title")
    op.execute("ALTER TABLE items ALTER COLUMN name SET NOT NULL")
    op.execute("ALTER TABLE items ALTER COLUMN title DROP NOT NULL")
    # The expanded schema again, trigger included (a copy of 0003's: a migration is a
    # snapshot, and must not change when a later file does).
    op.execute(SYNC_FUNCTION)
    op.execute(
        "CREATE TRIGGER items_sync_name_title BEFORE INSERT OR UPDATE ON items "
        "FOR EACH ROW EXECUTE FUNCTION items_sync_name_title()"
    )
