-- Migration: Create PII encryption and fingerprint functions
-- Purpose: encrypt_pii / decrypt_pii (authenticated, versioned, key-rotatable) and hmac_sha256 fingerprints over normalised input
-- Author: Development Team
-- Date: 2025-08-24
-- Requirements: 4.2, 4.3, 4.4
--
-- Keys never live in the database: mercurio-migrate passes them for one session as the settings
-- mercurio.pii_key, mercurio.pii_old_keys (comma-separated) and mercurio.hmac_key, taken from the
-- environment variables MERCURIO_PII_KEY, MERCURIO_PII_OLD_KEYS and MERCURIO_HMAC_KEY.
--
-- Ciphertext format: v1.<key_id>.<base64(iv[16] || aes-256-cbc ciphertext || tag[32])>
--   key_id  = first 8 hex digits of HMAC-SHA256(key, 'mercurio-pii-key-id')
--   enc key = HMAC-SHA256(key, 'mercurio-pii-enc-v1'); mac key = HMAC-SHA256(key, 'mercurio-pii-mac-v1')
--   tag     = HMAC-SHA256(mac key, 'v1.<key_id>.' || iv || ciphertext)   (encrypt-then-MAC)
-- src/mercurio_migrate/pii.py implements the same format for the application side.

BEGIN;

-- pgcrypto may already be installed by a DBA: the comment marks it as ours so the rollback removes only what this migration created
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto;
        COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions - installed by migration 20250824_080000_create_pii_functions';
    END IF;
END
$$;

-- Phone digits as E.164 wants them: every digit, an international 00 prefix dropped unless a + leads
CREATE FUNCTION pii_phone_digits(value TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN left(value, 1) <> '+' AND regexp_replace(value, '[^0-9]', '', 'g') LIKE '00%'
        THEN substr(regexp_replace(value, '[^0-9]', '', 'g'), 3)
        ELSE regexp_replace(value, '[^0-9]', '', 'g')
    END
$$;

-- Trim and ASCII-lower-case always; a value made only of digits, spaces, dots, dashes, parentheses and
-- an optional leading + with 7 to 15 digits is a phone number and becomes E.164 (+ and its digits).
-- lower() under the "C" collation folds ASCII letters only: the result does not depend on the database's
-- collation and equals pii.py's (translate() would do the same, about ten times slower).
-- Single-expression SQL functions, so the planner inlines them: Example 4 evaluates fingerprints once per
-- candidate pair of its identity_link join, and a function call per evaluation would dominate its run time.
-- Not declared STRICT because PostgreSQL does not inline a STRICT function whose body holds a CASE; a NULL
-- input still gives NULL.
CREATE FUNCTION pii_normalize(value TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN btrim(value, E' \t\n\r\f\v') ~ '^\+?[0-9 ().-]+$'
             AND length(pii_phone_digits(btrim(value, E' \t\n\r\f\v'))) BETWEEN 7 AND 15
        THEN '+' || pii_phone_digits(btrim(value, E' \t\n\r\f\v'))
        ELSE lower(btrim(value, E' \t\n\r\f\v') COLLATE "C")
    END
$$;

-- Key ids are a keyed hash of the key, so a ciphertext names its key without revealing it
CREATE FUNCTION pii_key_id(key TEXT) RETURNS TEXT
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT left(encode(hmac(convert_to('mercurio-pii-key-id', 'UTF8'), convert_to(key, 'UTF8'), 'sha256'), 'hex'), 8)
$$;

CREATE FUNCTION pii_subkey(key TEXT, purpose TEXT) RETURNS BYTEA
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT hmac(convert_to('mercurio-pii-' || purpose || '-v1', 'UTF8'), convert_to(key, 'UTF8'), 'sha256')
$$;

-- Raises the missing-key error. STABLE (not VOLATILE) so the key functions below stay inlinable; the
-- planner may then raise it while planning, which only happens when the key is missing anyway
CREATE FUNCTION pii_missing_key(setting TEXT, env_var TEXT) RETURNS TEXT
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RAISE EXCEPTION 'PII key is not set (session setting %)', setting
        USING HINT = format('Set %s in the environment of mercurio-migrate or of the application session.', env_var);
END
$$;

-- current_setting(..., true) returns NULL instead of failing when the setting was never defined, so the
-- missing key gets our message rather than "unrecognized configuration parameter"
CREATE FUNCTION pii_current_key() RETURNS TEXT
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(NULLIF(current_setting('mercurio.pii_key', true), ''),
                    pii_missing_key('mercurio.pii_key', 'MERCURIO_PII_KEY'))
$$;

CREATE FUNCTION get_hmac_key() RETURNS TEXT
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(NULLIF(current_setting('mercurio.hmac_key', true), ''),
                    pii_missing_key('mercurio.hmac_key', 'MERCURIO_HMAC_KEY'))
$$;

-- STABLE, not IMMUTABLE, because convert_to is STABLE: an IMMUTABLE body with a STABLE call is never inlined
CREATE FUNCTION hmac_sha256(value TEXT, key TEXT) RETURNS VARCHAR(64)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT encode(hmac(convert_to(pii_normalize(value), 'UTF8'), convert_to(key, 'UTF8'), 'sha256'), 'hex')::VARCHAR(64)
$$;

CREATE FUNCTION encrypt_pii(plaintext TEXT) RETURNS TEXT
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
    key TEXT := pii_current_key();
    header TEXT := 'v1.' || pii_key_id(key) || '.';
    iv BYTEA := gen_random_bytes(16);
    body BYTEA;
BEGIN
    body := encrypt_iv(convert_to(plaintext, 'UTF8'), pii_subkey(key, 'enc'), iv, 'aes-cbc/pad:pkcs');
    RETURN header || translate(
        encode(iv || body || hmac(convert_to(header, 'UTF8') || iv || body, pii_subkey(key, 'mac'), 'sha256'), 'base64'),
        E'\n', '');
END
$$;

CREATE FUNCTION decrypt_pii(ciphertext TEXT) RETURNS TEXT
LANGUAGE plpgsql STABLE STRICT
AS $$
DECLARE
    parts TEXT[] := string_to_array(ciphertext, '.');
    candidate TEXT;
    key TEXT;
    raw BYTEA;
    iv BYTEA;
    body BYTEA;
    tag BYTEA;
    expected BYTEA;
    blind BYTEA := gen_random_bytes(32);
BEGIN
    IF array_length(parts, 1) IS DISTINCT FROM 3 OR parts[1] !~ '^v[0-9]+$' THEN
        RAISE EXCEPTION 'not a PII ciphertext (expected v1.<key_id>.<base64>)';
    END IF;
    IF parts[1] <> 'v1' THEN
        RAISE EXCEPTION 'unsupported PII ciphertext version %', parts[1];
    END IF;
    FOREACH candidate IN ARRAY array_prepend(
        pii_current_key(),
        string_to_array(nullif(current_setting('mercurio.pii_old_keys', true), ''), ','))
    LOOP
        IF pii_key_id(candidate) = parts[2] THEN
            key := candidate;
            EXIT;
        END IF;
    END LOOP;
    IF key IS NULL THEN
        RAISE EXCEPTION 'no PII key with id % is configured', parts[2]
            USING HINT = 'Add the retired key to MERCURIO_PII_OLD_KEYS (comma-separated).';
    END IF;
    BEGIN
        raw := decode(parts[3], 'base64');
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION 'PII ciphertext is not valid base64';
    END;
    IF length(raw) < 16 + 16 + 32 OR (length(raw) - 48) % 16 <> 0 THEN
        RAISE EXCEPTION 'PII ciphertext is truncated or malformed';
    END IF;
    iv := substring(raw FROM 1 FOR 16);
    body := substring(raw FROM 17 FOR length(raw) - 48);
    tag := substring(raw FROM length(raw) - 31);
    expected := hmac(convert_to('v1.' || parts[2] || '.', 'UTF8') || iv || body, pii_subkey(key, 'mac'), 'sha256');
    -- Comparing keyed hashes of both tags under a random key hides where they differ (no timing oracle)
    IF hmac(expected, blind, 'sha256') <> hmac(tag, blind, 'sha256') THEN
        RAISE EXCEPTION 'PII ciphertext failed authentication (tampered, or encrypted under another key with the same id)';
    END IF;
    RETURN convert_from(decrypt_iv(body, pii_subkey(key, 'enc'), iv, 'aes-cbc/pad:pkcs'), 'UTF8');
END
$$;

-- Add function comments
COMMENT ON FUNCTION pii_normalize(TEXT) IS 'Canonical form of an identifier before fingerprinting: trimmed, ASCII lower-case, phones as E.164';
COMMENT ON FUNCTION hmac_sha256(TEXT, TEXT) IS 'Hex HMAC-SHA256 fingerprint of pii_normalize(value) for matching without decrypting';
COMMENT ON FUNCTION get_hmac_key() IS 'Fingerprint key from the session setting mercurio.hmac_key (never stored)';
COMMENT ON FUNCTION encrypt_pii(TEXT) IS 'AES-256-CBC with a random IV, then HMAC-SHA256 (encrypt-then-MAC); result v1.<key_id>.<base64>';
COMMENT ON FUNCTION decrypt_pii(TEXT) IS 'Verifies and decrypts encrypt_pii output with mercurio.pii_key or one of mercurio.pii_old_keys';

COMMIT;
