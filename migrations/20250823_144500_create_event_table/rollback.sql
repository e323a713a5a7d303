-- Rollback: Remove event table
-- This reverses migration 20250823_144500_create_event_table
-- WARNING: This drops every stored event

BEGIN;

DROP INDEX IF EXISTS idx_event_tenant_name_timestamp;
DROP TABLE IF EXISTS event;

COMMIT;
