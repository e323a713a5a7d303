-- Rollback: Remove tenant and workspace tables
-- This reverses migration 20250823_143000_create_tenant_tables

BEGIN;

-- Drop indexes first
DROP INDEX IF EXISTS idx_api_key_hash;
DROP INDEX IF EXISTS idx_api_key_workspace;
DROP INDEX IF EXISTS idx_workspace_tenant;
DROP INDEX IF EXISTS idx_tenant_status;

-- Drop tables in reverse dependency order
DROP TABLE IF EXISTS api_key;
DROP TABLE IF EXISTS workspace;
DROP TABLE IF EXISTS tenant;

COMMIT;
