pg_restore --no-password --clean --if-exists --single-transaction --no-owner --dbname="$DATABASE_URL" "$BACKUP_DIR/$BACKUP_FILE"
