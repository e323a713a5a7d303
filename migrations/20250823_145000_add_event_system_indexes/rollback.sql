-- Rollback: Remove the event system indexes
-- This reverses migration 20250823_145000_add_event_system_indexes
-- DROP INDEX CONCURRENTLY cannot run in a transaction block, so this file has no BEGIN/COMMIT

DROP INDEX CONCURRENTLY IF EXISTS idx_event_session;
DROP INDEX CONCURRENTLY IF EXISTS idx_event_props_gin;
DROP INDEX CONCURRENTLY IF EXISTS idx_event_conversion;
DROP INDEX CONCURRENTLY IF EXISTS idx_event_lead_timestamp;
DROP INDEX CONCURRENTLY IF EXISTS idx_event_anonymous_timestamp;
DROP INDEX CONCURRENTLY IF EXISTS idx_event_tenant_timestamp;
