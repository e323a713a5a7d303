-- Rollback: Undo the legacy user data migration
-- This reverses migration 20250824_090000_migrate_legacy_user_data
--
-- Example 4 stamps every row it moved with migrated_at = NOW() and logs the same NOW() in migration_log,
-- so that timestamp identifies its batch. Its visitors, leads and links carry the legacy created_at;
-- leads are matched on their fingerprints too (this needs MERCURIO_HMAC_KEY), so rows the application
-- created later are left alone. The migration_log rows stay: the log is append-only.

BEGIN;

CREATE TEMP TABLE legacy_rollback_batch ON COMMIT DROP AS
SELECT
    id,
    tenant_id,
    workspace_id,
    anonymous_id,
    created_at,
    CASE WHEN email IS NOT NULL THEN hmac_sha256(email, get_hmac_key()) END AS email_fingerprint,
    CASE WHEN phone IS NOT NULL THEN hmac_sha256(phone, get_hmac_key()) END AS phone_fingerprint
FROM legacy_user_table
WHERE migrated_at = (
    SELECT max(completed_at) FROM migration_log WHERE migration_name = 'migrate_legacy_user_data'
);

-- Remove the identity links it created (they carry the legacy created_at as linked_at)
DELETE FROM identity_link il
USING legacy_rollback_batch b
WHERE il.tenant_id = b.tenant_id
  AND il.workspace_id = b.workspace_id
  AND il.anonymous_id = b.anonymous_id
  AND il.linked_at IS NOT DISTINCT FROM b.created_at;

-- Remove the leads it created
DELETE FROM lead l
USING legacy_rollback_batch b
WHERE l.tenant_id = b.tenant_id
  AND l.workspace_id = b.workspace_id
  AND l.created_at IS NOT DISTINCT FROM b.created_at
  AND l.email_fingerprint IS NOT DISTINCT FROM b.email_fingerprint
  AND l.phone_fingerprint IS NOT DISTINCT FROM b.phone_fingerprint;

-- Remove the visitors it created (first seen at a batch row's created_at)
DELETE FROM visitor v
USING legacy_rollback_batch b
WHERE v.anonymous_id = b.anonymous_id
  AND v.tenant_id = b.tenant_id
  AND v.workspace_id = b.workspace_id
  AND v.first_seen_at IS NOT DISTINCT FROM b.created_at;

-- Let the next run migrate these rows again
UPDATE legacy_user_table
SET migrated_at = NULL
WHERE id IN (SELECT id FROM legacy_rollback_batch);

-- Log rollback
INSERT INTO migration_log (migration_name, records_processed, completed_at, notes)
VALUES ('rollback_migrate_legacy_user_data',
        (SELECT COUNT(*) FROM legacy_rollback_batch),
        NOW(),
        'Removed the visitors, leads and identity links of the legacy batch; migrated_at cleared');

COMMIT;
