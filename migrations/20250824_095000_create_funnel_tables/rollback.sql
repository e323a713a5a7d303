-- Rollback: Remove funnel and funnel step tables
-- This reverses migration 20250824_095000_create_funnel_tables
-- WARNING: This drops every funnel and funnel step

BEGIN;

DROP INDEX IF EXISTS idx_funnel_tenant_workspace;

DROP TABLE IF EXISTS funnel_step;
DROP TABLE IF EXISTS funnel;

COMMIT;
