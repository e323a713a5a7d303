-- Migration: Migrate legacy user data to new identity system
-- Purpose: Transform existing user table to visitor/lead structure
-- Author: Development Team
-- Date: 2025-08-24
-- Requirements: 4.1, 4.2, 4.3

BEGIN;

-- Create temporary table for data transformation
CREATE TEMP TABLE user_migration_temp AS
SELECT 
    id,
    tenant_id,
    workspace_id,
    email,
    phone,
    first_name,
    last_name,
    anonymous_id,
    created_at
FROM legacy_user_table
WHERE migrated_at IS NULL;

-- Insert visitors for users with anonymous_id
INSERT INTO visitor (anonymous_id, tenant_id, workspace_id, first_seen_at, last_seen_at)
SELECT DISTINCT
    anonymous_id,
    tenant_id, 
    workspace_id,
    created_at,
    created_at
FROM user_migration_temp
WHERE anonymous_id IS NOT NULL
ON CONFLICT (anonymous_id) DO NOTHING;

-- Insert leads for users with email or phone
INSERT INTO lead (tenant_id, workspace_id, email_enc, email_fingerprint, phone_enc, phone_fingerprint, first_name_enc, last_name_enc, created_at)
SELECT 
    tenant_id,
    workspace_id,
    CASE WHEN email IS NOT NULL THEN encrypt_pii(email) END,
    CASE WHEN email IS NOT NULL THEN hmac_sha256(email, get_hmac_key()) END,
    CASE WHEN phone IS NOT NULL THEN encrypt_pii(phone) END,
    CASE WHEN phone IS NOT NULL THEN hmac_sha256(phone, get_hmac_key()) END,
    CASE WHEN first_name IS NOT NULL THEN encrypt_pii(first_name) END,
    CASE WHEN last_name IS NOT NULL THEN encrypt_pii(last_name) END,
    created_at
FROM user_migration_temp
WHERE email IS NOT NULL OR phone IS NOT NULL;

-- Create identity links for users with both anonymous_id and lead data
INSERT INTO identity_link (tenant_id, workspace_id, anonymous_id, lead_id, linked_at)
SELECT 
    umt.tenant_id,
    umt.workspace_id,
    umt.anonymous_id,
    l.id,
    umt.created_at
FROM user_migration_temp umt
JOIN lead l ON (
    l.tenant_id = umt.tenant_id 
    AND l.workspace_id = umt.workspace_id
    AND (
        (umt.email IS NOT NULL AND l.email_fingerprint = hmac_sha256(umt.email, get_hmac_key()))
        OR (umt.phone IS NOT NULL AND l.phone_fingerprint = hmac_sha256(umt.phone, get_hmac_key()))
    )
)
WHERE umt.anonymous_id IS NOT NULL;

-- Mark legacy records as migrated
UPDATE legacy_user_table 
SET migrated_at = NOW()
WHERE id IN (SELECT id FROM user_migration_temp);

-- Log migration statistics
INSERT INTO migration_log (migration_name, records_processed, completed_at)
VALUES ('migrate_legacy_user_data', (SELECT COUNT(*) FROM user_migration_temp), NOW());

COMMIT;
