-- Rollback: Remove the legacy user table if this migration created it
-- This reverses migration 20250824_081000_create_legacy_user_table
-- WARNING: When this migration created legacy_user_table, its rows are dropped with it; a pre-existing legacy table is kept (only a migrated_at column this migration added is removed)

BEGIN;

DO $$
BEGIN
    IF obj_description(to_regclass('legacy_user_table'), 'pg_class') LIKE '%created by migration 20250824_081000_create_legacy_user_table' THEN
        DROP TABLE legacy_user_table;
    ELSIF col_description(to_regclass('legacy_user_table'),
            (SELECT attnum FROM pg_attribute
             WHERE attrelid = to_regclass('legacy_user_table') AND attname = 'migrated_at' AND NOT attisdropped))
          = 'Added by migration 20250824_081000_create_legacy_user_table' THEN
        ALTER TABLE legacy_user_table DROP COLUMN migrated_at;
    END IF;
END
$$;

COMMIT;
