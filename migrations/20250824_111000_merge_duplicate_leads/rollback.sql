-- Rollback: Unmerge duplicate leads
-- This reverses migration 20250824_111000_merge_duplicate_leads
-- Duplicates were only marked, never deleted: dropping the column restores every lead as it was

BEGIN;

DROP INDEX IF EXISTS idx_lead_merged_into;
DROP INDEX IF EXISTS uq_lead_phone_fingerprint;
DROP INDEX IF EXISTS uq_lead_email_fingerprint;

ALTER TABLE lead DROP CONSTRAINT IF EXISTS lead_merged_into_fkey;
ALTER TABLE lead DROP COLUMN IF EXISTS merged_into_id;

COMMIT;
