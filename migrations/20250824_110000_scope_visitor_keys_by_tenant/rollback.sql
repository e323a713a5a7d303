-- Rollback: Restore the global visitor key
-- This reverses migration 20250824_110000_scope_visitor_keys_by_tenant
-- WARNING: Visitors sharing an anonymous ID with an older visitor of another tenant or workspace are deleted (a global key cannot hold both); their identity links then point at the remaining visitor again, which is the cross-tenant defect this migration fixed

BEGIN;

ALTER TABLE event DROP CONSTRAINT IF EXISTS event_lead_fkey;
ALTER TABLE event
ADD CONSTRAINT event_lead_id_fkey
FOREIGN KEY (lead_id) REFERENCES lead(id) ON DELETE SET NULL;
ALTER TABLE event DROP CONSTRAINT IF EXISTS event_workspace_tenant_fkey;

ALTER TABLE lead DROP CONSTRAINT IF EXISTS lead_workspace_tenant_fkey;
ALTER TABLE visitor DROP CONSTRAINT IF EXISTS visitor_workspace_tenant_fkey;

ALTER TABLE identity_link DROP CONSTRAINT IF EXISTS identity_link_lead_fkey;
ALTER TABLE identity_link
ADD CONSTRAINT identity_link_lead_id_fkey
FOREIGN KEY (lead_id) REFERENCES lead(id) ON DELETE CASCADE;
ALTER TABLE identity_link DROP CONSTRAINT IF EXISTS identity_link_visitor_fkey;

-- Keep the oldest visitor of each anonymous ID
DELETE FROM visitor v
USING visitor keep
WHERE keep.anonymous_id = v.anonymous_id
  AND (COALESCE(keep.first_seen_at, '-infinity'), keep.tenant_id, keep.workspace_id)
    < (COALESCE(v.first_seen_at, '-infinity'), v.tenant_id, v.workspace_id);

ALTER TABLE visitor DROP CONSTRAINT visitor_pkey;
ALTER TABLE visitor ADD CONSTRAINT visitor_pkey PRIMARY KEY (anonymous_id);
ALTER TABLE identity_link
ADD CONSTRAINT identity_link_anonymous_id_fkey
FOREIGN KEY (anonymous_id) REFERENCES visitor(anonymous_id) ON DELETE CASCADE;

ALTER TABLE lead DROP CONSTRAINT IF EXISTS lead_tenant_workspace_id_key;
ALTER TABLE workspace DROP CONSTRAINT IF EXISTS workspace_tenant_id_id_key;

COMMENT ON COLUMN visitor.anonymous_id IS 'Client-generated ID with format a_{12_chars}';

COMMIT;
