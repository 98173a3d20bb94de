pg_dump --no-password --format=custom --file="$BACKUP_DIR/$BACKUP_FILE.partial" --dbname="$DATABASE_URL"
mv "$BACKUP_DIR/$BACKUP_FILE.partial" "$BACKUP_DIR/$BACKUP_FILE"
