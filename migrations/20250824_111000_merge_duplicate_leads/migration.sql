-- Migration: Merge duplicate leads
-- Purpose: Apply the duplicate policy to leads Example 4 created twice for one person, and keep new duplicates out
-- Author: Development Team
-- Date: 2025-08-24
-- Requirements: 4.2, 4.3
--
-- Seed defect: Example 4 creates one lead per legacy row, so the same e-mail twice in a workspace (even
-- as "Alice@Example.com " and "alice@example.com") makes two leads. Policy (docs/mercurio-schema.md):
-- the oldest lead per (tenant, workspace, e-mail fingerprint) is canonical; among leads without an
-- e-mail, the oldest per phone fingerprint is. Later duplicates are kept, with their PII and links,
-- and point at it through merged_into_id: nothing is deleted, so the merge is auditable and reversible.

BEGIN;

ALTER TABLE lead ADD COLUMN merged_into_id BIGINT;

-- A duplicate belongs to the same tenant and workspace as its canonical lead, and is erased with it
ALTER TABLE lead
ADD CONSTRAINT lead_merged_into_fkey
FOREIGN KEY (tenant_id, workspace_id, merged_into_id) REFERENCES lead(tenant_id, workspace_id, id) ON DELETE CASCADE;

-- Mark duplicates by e-mail fingerprint
UPDATE lead
SET merged_into_id = ranked.canonical_id
FROM (
    SELECT
        id,
        first_value(id) OVER (
            PARTITION BY tenant_id, workspace_id, email_fingerprint
            ORDER BY created_at NULLS LAST, id
        ) AS canonical_id
    FROM lead
    WHERE email_fingerprint IS NOT NULL
) AS ranked
WHERE lead.id = ranked.id AND ranked.id <> ranked.canonical_id;

-- Mark duplicates by phone fingerprint among leads without an e-mail
UPDATE lead
SET merged_into_id = ranked.canonical_id
FROM (
    SELECT
        id,
        first_value(id) OVER (
            PARTITION BY tenant_id, workspace_id, phone_fingerprint
            ORDER BY created_at NULLS LAST, id
        ) AS canonical_id
    FROM lead
    WHERE email_fingerprint IS NULL AND phone_fingerprint IS NOT NULL
) AS ranked
WHERE lead.id = ranked.id AND ranked.id <> ranked.canonical_id;

-- One canonical lead per person from now on
CREATE UNIQUE INDEX uq_lead_email_fingerprint ON lead(tenant_id, workspace_id, email_fingerprint)
    WHERE email_fingerprint IS NOT NULL AND merged_into_id IS NULL;
CREATE UNIQUE INDEX uq_lead_phone_fingerprint ON lead(tenant_id, workspace_id, phone_fingerprint)
    WHERE email_fingerprint IS NULL AND phone_fingerprint IS NOT NULL AND merged_into_id IS NULL;
CREATE INDEX idx_lead_merged_into ON lead(tenant_id, workspace_id, merged_into_id)
    WHERE merged_into_id IS NOT NULL;

-- Add column comments
COMMENT ON COLUMN lead.merged_into_id IS 'Canonical lead this duplicate belongs to (same person); NULL for canonical leads - resolve with COALESCE(merged_into_id, id)';

COMMIT;
