-- Migration: Create legacy user table when absent
-- Purpose: Give Example 4 (20250824_090000_migrate_legacy_user_data) its source table; a real legacy table is kept as it is
-- Author: Development Team
-- Date: 2025-08-24
-- Requirements: 4.1, 4.2, 4.3

BEGIN;

-- A database that already holds the legacy table keeps it and its rows; the comments mark what this
-- migration created so the rollback removes exactly that
DO $$
BEGIN
    IF to_regclass('legacy_user_table') IS NULL THEN
        -- No foreign keys or format checks: legacy data is dirty by nature, and the pre-flight
        -- report (mercurio-migrate preflight) lists what Example 4 would reject
        CREATE TABLE legacy_user_table (
            id BIGSERIAL PRIMARY KEY,
            tenant_id BIGINT,
            workspace_id BIGINT,
            email VARCHAR(320),
            phone VARCHAR(50),
            first_name VARCHAR(255),
            last_name VARCHAR(255),
            anonymous_id VARCHAR(100),
            created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
            migrated_at TIMESTAMP WITH TIME ZONE
        );
        CREATE INDEX idx_legacy_user_tenant_workspace ON legacy_user_table(tenant_id, workspace_id)
            WHERE migrated_at IS NULL;
        COMMENT ON TABLE legacy_user_table IS 'Users of the legacy system awaiting migration to visitor/lead - external ID: lu_{id} - created by migration 20250824_081000_create_legacy_user_table';
        COMMENT ON COLUMN legacy_user_table.migrated_at IS 'Set by 20250824_090000_migrate_legacy_user_data when the row was moved to visitor/lead';
    ELSIF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'legacy_user_table' AND column_name = 'migrated_at'
    ) THEN
        ALTER TABLE legacy_user_table ADD COLUMN migrated_at TIMESTAMP WITH TIME ZONE;
        COMMENT ON COLUMN legacy_user_table.migrated_at IS 'Added by migration 20250824_081000_create_legacy_user_table';
    END IF;
END
$$;

COMMIT;
