-- Rollback: Remove PII encryption and fingerprint functions
-- This reverses migration 20250824_080000_create_pii_functions

BEGIN;

DROP FUNCTION IF EXISTS decrypt_pii(TEXT);
DROP FUNCTION IF EXISTS encrypt_pii(TEXT);
DROP FUNCTION IF EXISTS pii_encrypt_with_iv(TEXT, BYTEA);
DROP FUNCTION IF EXISTS pii_key_material();
DROP FUNCTION IF EXISTS pii_derive_key_material(TEXT);
DROP FUNCTION IF EXISTS hmac_sha256(TEXT, TEXT);
DROP FUNCTION IF EXISTS get_hmac_key();
DROP FUNCTION IF EXISTS pii_current_key();
DROP FUNCTION IF EXISTS pii_missing_key(TEXT, TEXT);
DROP FUNCTION IF EXISTS pii_subkey(TEXT, TEXT);
DROP FUNCTION IF EXISTS pii_key_id(TEXT);
DROP FUNCTION IF EXISTS pii_normalize(TEXT);
DROP FUNCTION IF EXISTS pii_normalize_utf8(TEXT);
DROP FUNCTION IF EXISTS pii_phone_chars(TEXT);

-- Remove pgcrypto only when the migration installed it (its comment says so)
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_extension e
        WHERE e.extname = 'pgcrypto'
          AND obj_description(e.oid, 'pg_extension') LIKE '%installed by migration 20250824_080000_create_pii_functions'
    ) THEN
        DROP EXTENSION pgcrypto;
    END IF;
END
$$;

COMMIT;
