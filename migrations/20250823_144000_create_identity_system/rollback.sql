-- Rollback: Remove identity system tables
-- This reverses migration 20250823_144000_create_identity_system
-- WARNING: This drops every visitor, lead and identity link (encrypted PII included)

BEGIN;

-- Drop indexes first
DROP INDEX IF EXISTS idx_identity_link_lead;
DROP INDEX IF EXISTS idx_identity_link_anonymous;
DROP INDEX IF EXISTS idx_lead_phone_fingerprint;
DROP INDEX IF EXISTS idx_lead_email_fingerprint;
DROP INDEX IF EXISTS idx_lead_tenant_workspace;
DROP INDEX IF EXISTS idx_visitor_last_seen;
DROP INDEX IF EXISTS idx_visitor_tenant_workspace;

-- Drop tables in reverse dependency order
DROP TABLE IF EXISTS identity_link;
DROP TABLE IF EXISTS lead;
DROP TABLE IF EXISTS visitor;

COMMIT;
