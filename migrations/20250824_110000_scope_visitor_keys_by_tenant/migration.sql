-- Migration: Scope visitor keys by tenant and workspace
-- Purpose: Fix cross-tenant linkage: anonymous IDs are generated per client, so a visitor is keyed by (tenant_id, workspace_id, anonymous_id) and every link stays inside one tenant
-- Author: Development Team
-- Date: 2025-08-24
-- Requirements: 3.3, 4.1, 4.5
--
-- Seed defect: visitor.anonymous_id was a global primary key. When two tenants' legacy users share an
-- anonymous ID, Example 4's ON CONFLICT (anonymous_id) DO NOTHING keeps one tenant's visitor only, and
-- identity_link (keyed to visitor by anonymous_id alone) then ties the other tenant's lead to it.
-- See docs/mercurio-schema.md.

BEGIN;

-- Keys that composite foreign keys can reference
ALTER TABLE workspace ADD CONSTRAINT workspace_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE lead ADD CONSTRAINT lead_tenant_workspace_id_key UNIQUE (tenant_id, workspace_id, id);

-- Rows whose tenant and workspace disagree cannot be repaired automatically: stop with a count instead
-- of failing on the first constraint violation
DO $$
DECLARE
    problems TEXT := '';
    n BIGINT;
BEGIN
    SELECT count(*) INTO n FROM identity_link il JOIN lead l ON l.id = il.lead_id
    WHERE (l.tenant_id, l.workspace_id) IS DISTINCT FROM (il.tenant_id, il.workspace_id);
    IF n > 0 THEN problems := problems || format(' %s identity_link row(s) point at a lead of another tenant or workspace;', n); END IF;
    SELECT count(*) INTO n FROM visitor v JOIN workspace w ON w.id = v.workspace_id WHERE w.tenant_id <> v.tenant_id;
    IF n > 0 THEN problems := problems || format(' %s visitor row(s) name a workspace of another tenant;', n); END IF;
    SELECT count(*) INTO n FROM lead l JOIN workspace w ON w.id = l.workspace_id WHERE w.tenant_id <> l.tenant_id;
    IF n > 0 THEN problems := problems || format(' %s lead row(s) name a workspace of another tenant;', n); END IF;
    SELECT count(*) INTO n FROM event e JOIN workspace w ON w.id = e.workspace_id WHERE w.tenant_id <> e.tenant_id;
    IF n > 0 THEN problems := problems || format(' %s event row(s) name a workspace of another tenant;', n); END IF;
    SELECT count(*) INTO n FROM event e JOIN lead l ON l.id = e.lead_id
    WHERE (l.tenant_id, l.workspace_id) IS DISTINCT FROM (e.tenant_id, e.workspace_id);
    IF n > 0 THEN problems := problems || format(' %s event row(s) point at a lead of another tenant or workspace;', n); END IF;
    IF problems <> '' THEN
        RAISE EXCEPTION 'cross-tenant rows found:%', rtrim(problems, ';')
            USING HINT = 'Correct or delete those rows, then apply this migration again.';
    END IF;
END
$$;

-- Re-key visitor per tenant and workspace
ALTER TABLE identity_link DROP CONSTRAINT identity_link_anonymous_id_fkey;
ALTER TABLE visitor DROP CONSTRAINT visitor_pkey;
ALTER TABLE visitor ADD CONSTRAINT visitor_pkey PRIMARY KEY (tenant_id, workspace_id, anonymous_id);

-- Recreate the visitors that ON CONFLICT (anonymous_id) DO NOTHING dropped, from the links that name them
INSERT INTO visitor (anonymous_id, tenant_id, workspace_id, first_seen_at, last_seen_at)
SELECT
    il.anonymous_id,
    il.tenant_id,
    il.workspace_id,
    min(il.linked_at),
    max(il.linked_at)
FROM identity_link il
WHERE NOT EXISTS (
    SELECT 1 FROM visitor v
    WHERE v.tenant_id = il.tenant_id AND v.workspace_id = il.workspace_id AND v.anonymous_id = il.anonymous_id
)
GROUP BY il.tenant_id, il.workspace_id, il.anonymous_id;

-- Every link, visitor, lead and event stays inside one tenant and workspace
ALTER TABLE identity_link
ADD CONSTRAINT identity_link_visitor_fkey
FOREIGN KEY (tenant_id, workspace_id, anonymous_id) REFERENCES visitor(tenant_id, workspace_id, anonymous_id) ON DELETE CASCADE;

ALTER TABLE identity_link DROP CONSTRAINT identity_link_lead_id_fkey;
ALTER TABLE identity_link
ADD CONSTRAINT identity_link_lead_fkey
FOREIGN KEY (tenant_id, workspace_id, lead_id) REFERENCES lead(tenant_id, workspace_id, id) ON DELETE CASCADE;

ALTER TABLE visitor
ADD CONSTRAINT visitor_workspace_tenant_fkey
FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspace(tenant_id, id) ON DELETE CASCADE;

ALTER TABLE lead
ADD CONSTRAINT lead_workspace_tenant_fkey
FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspace(tenant_id, id) ON DELETE CASCADE;

ALTER TABLE event
ADD CONSTRAINT event_workspace_tenant_fkey
FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspace(tenant_id, id) ON DELETE CASCADE;

ALTER TABLE event DROP CONSTRAINT event_lead_id_fkey;
ALTER TABLE event
ADD CONSTRAINT event_lead_fkey
FOREIGN KEY (tenant_id, workspace_id, lead_id) REFERENCES lead(tenant_id, workspace_id, id) ON DELETE SET NULL (lead_id);

-- Add column comments
COMMENT ON COLUMN visitor.anonymous_id IS 'Client-generated ID with format a_{12_chars}, unique within its tenant and workspace';

COMMIT;
