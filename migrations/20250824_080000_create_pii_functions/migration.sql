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

-- Fingerprints are computed over a canonical form (pii.normalize is the same in Python):
--   * ASCII whitespace (space, tab, LF, CR, FF, VT) trimmed, ASCII letters lower-cased;
--   * a value made only of digits, spaces, dots, dashes and parentheses, with an optional leading +, and
--     7 to 15 digits once an international 00 prefix is dropped (unless a + leads) is a phone number and
--     becomes E.164: + and its digits.
-- Example 4's identity_link join evaluates the fingerprint of a legacy user's e-mail and phone once per
-- candidate lead of its workspace, not once per user, so this work repeats for every pair. Everything here
-- is a single SQL expression the planner inlines (no function call per pair, and no PL/pgSQL, whose calls
-- cost more than these string operations); an e-mail costs a strpos(), a lower() and a byte trim.

-- A phone-shaped value without its whitespace and separators: the digits, and the + if one leads.
-- replace() chains take several times fewer instructions than translate() or regexp_replace() here.
CREATE FUNCTION pii_phone_chars(value TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(value,
        ' ', ''), '.', ''), '-', ''), '(', ''), ')', ''), E'\t', ''), E'\n', ''), E'\r', ''), E'\f', ''), E'\x0B', '')
$$;

-- The canonical form as the UTF-8 bytes HMAC-SHA256 takes. Not STRICT because PostgreSQL does not inline
-- a STRICT function whose body holds a CASE (a NULL input still gives NULL).
--   * Not phone-shaped (an @, or a character the regular expression, which allows the whitespace around
--     the number, rejects): lower(... COLLATE "C"), which folds ASCII letters only whatever the database
--     collation (translate() would do the same, about ten times slower), then the whitespace trimmed as
--     bytes: btrim() on text walks every character of a multibyte string, and those ASCII bytes never
--     occur inside a UTF-8 sequence. E'\x0B' is the vertical tab (E'\v' would be the letter v).
--   * Phone-shaped: a + can only lead, so pii_phone_chars gives + and the digits, or the digits (drop a 00
--     prefix); with too few or too many digits, NULL, so COALESCE keeps the value as given, trimmed (it
--     has no letters to lower-case). Ranges rather than BETWEEN, which would run the chain twice.
CREATE FUNCTION pii_normalize_utf8(value TEXT) RETURNS BYTEA
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN strpos(value, '@') > 0 OR value !~ '^[ \t\n\r\f\v]*\+?[0-9 ().-]+[ \t\n\r\f\v]*$'
        THEN btrim(convert_to(lower(value COLLATE "C"), 'UTF8'), '\x20090a0d0c0b'::BYTEA)
        ELSE convert_to(COALESCE(CASE
            WHEN strpos(value, '+') > 0
            THEN CASE WHEN int4range(8, 16, '[]') @> octet_length(pii_phone_chars(value))
                      THEN pii_phone_chars(value) END
            WHEN pii_phone_chars(value) ^@ '00'
            THEN CASE WHEN int4range(9, 17, '[]') @> octet_length(pii_phone_chars(value))
                      THEN '+' || substr(pii_phone_chars(value), 3) END
            WHEN int4range(7, 15, '[]') @> octet_length(pii_phone_chars(value))
            THEN '+' || pii_phone_chars(value)
        END, btrim(value, E' \t\n\r\f\x0B')), 'UTF8')
    END
$$;

-- The canonical form as text, for people and tests: STABLE, not IMMUTABLE, because convert_to and
-- convert_from are STABLE and an IMMUTABLE body with a STABLE call is never inlined
CREATE FUNCTION pii_normalize(value TEXT) RETURNS TEXT
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT convert_from(pii_normalize_utf8(value), 'UTF8')
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
    SELECT encode(hmac(pii_normalize_utf8(value), convert_to(key, 'UTF8'), 'sha256'), 'hex')::VARCHAR(64)
$$;

-- The current key's derived material, computed once per transaction instead of three HMACs per
-- encrypt_pii call: bytes 1-12 the header 'v1.<key_id>.', 13-44 the enc key, 45-76 the mac key. It is kept,
-- hex-encoded, in the transaction-local setting mercurio.pii_key_cache, and the key it was derived from in
-- mercurio.pii_key_cache_key, so a changed mercurio.pii_key is never served stale material. Both hold
-- nothing the session's mercurio.pii_key does not already give (whoever can read one can read the other,
-- and derive the rest in microseconds); they are never stored or logged, and COMMIT or ROLLBACK discards
-- them, so they never outlive the transaction that used the key.
-- STABLE like the key it reads: filling the cache changes nothing any query sees but the cache.
CREATE FUNCTION pii_derive_key_material(key TEXT) RETURNS BYTEA
LANGUAGE plpgsql STABLE STRICT
AS $$
DECLARE
    material BYTEA := convert_to('v1.' || pii_key_id(key) || '.', 'UTF8') || pii_subkey(key, 'enc')
                      || pii_subkey(key, 'mac');
BEGIN
    PERFORM set_config('mercurio.pii_key_cache', encode(material, 'hex'), true),
            set_config('mercurio.pii_key_cache_key', key, true);
    RETURN material;
END
$$;

-- Inlined into its callers, so a cache hit costs three setting look-ups, a comparison and a hex decoding
CREATE FUNCTION pii_key_material() RETURNS BYTEA
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN current_setting('mercurio.pii_key_cache_key', true) = pii_current_key()
        THEN decode(current_setting('mercurio.pii_key_cache', true), 'hex')
        ELSE pii_derive_key_material(pii_current_key())
    END
$$;

-- encrypt_pii's body, with the IV as an argument so that encrypt_pii can be a SQL function the planner
-- inlines: a VOLATILE PL/pgSQL function takes a fresh snapshot for every expression it evaluates, which
-- cost more than the AES. Only encrypt_pii calls it, always with 16 fresh random bytes.
CREATE FUNCTION pii_encrypt_with_iv(plaintext TEXT, iv BYTEA) RETURNS TEXT
LANGUAGE plpgsql STABLE STRICT
AS $$
DECLARE
    material BYTEA := pii_key_material();
    body BYTEA := iv || encrypt_iv(convert_to(plaintext, 'UTF8'), substring(material FROM 13 FOR 32), iv,
                                   'aes-cbc/pad:pkcs');
BEGIN
    -- replace(), not translate(): the same result, several times faster on a long string
    RETURN convert_from(substring(material FROM 1 FOR 12), 'UTF8') || replace(
        encode(body || hmac(substring(material FROM 1 FOR 12) || body, substring(material FROM 45 FOR 32), 'sha256'),
               'base64'),
        E'\n', '');
END
$$;

CREATE FUNCTION encrypt_pii(plaintext TEXT) RETURNS TEXT
LANGUAGE sql VOLATILE STRICT
AS $$
    SELECT pii_encrypt_with_iv(plaintext, gen_random_bytes(16))
$$;

CREATE FUNCTION decrypt_pii(ciphertext TEXT) RETURNS TEXT
LANGUAGE plpgsql STABLE STRICT
AS $$
DECLARE
    parts TEXT[] := string_to_array(ciphertext, '.');
    material BYTEA;
    candidate TEXT;
    enc_key BYTEA;
    mac_key BYTEA;
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
    material := pii_key_material();
    IF substring(material FROM 4 FOR 8) = convert_to(parts[2], 'UTF8') THEN
        enc_key := substring(material FROM 13 FOR 32);
        mac_key := substring(material FROM 45 FOR 32);
    ELSE
        FOREACH candidate IN ARRAY COALESCE(
            string_to_array(nullif(current_setting('mercurio.pii_old_keys', true), ''), ','), '{}')
        LOOP
            IF pii_key_id(candidate) = parts[2] THEN
                enc_key := pii_subkey(candidate, 'enc');
                mac_key := pii_subkey(candidate, 'mac');
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF mac_key IS NULL THEN
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
    expected := hmac(convert_to('v1.' || parts[2] || '.', 'UTF8') || iv || body, mac_key, 'sha256');
    -- Comparing keyed hashes of both tags under a random key hides where they differ (no timing oracle)
    IF hmac(expected, blind, 'sha256') <> hmac(tag, blind, 'sha256') THEN
        RAISE EXCEPTION 'PII ciphertext failed authentication (tampered, or encrypted under another key with the same id)';
    END IF;
    RETURN convert_from(decrypt_iv(body, enc_key, iv, 'aes-cbc/pad:pkcs'), 'UTF8');
END
$$;

-- Add function comments
COMMENT ON FUNCTION pii_normalize(TEXT) IS 'Canonical form of an identifier before fingerprinting: trimmed, ASCII lower-case, phones as E.164';
COMMENT ON FUNCTION hmac_sha256(TEXT, TEXT) IS 'Hex HMAC-SHA256 fingerprint of pii_normalize(value) for matching without decrypting';
COMMENT ON FUNCTION get_hmac_key() IS 'Fingerprint key from the session setting mercurio.hmac_key (never stored)';
COMMENT ON FUNCTION encrypt_pii(TEXT) IS 'AES-256-CBC with a random IV, then HMAC-SHA256 (encrypt-then-MAC); result v1.<key_id>.<base64>';
COMMENT ON FUNCTION decrypt_pii(TEXT) IS 'Verifies and decrypts encrypt_pii output with mercurio.pii_key or one of mercurio.pii_old_keys';

COMMIT;
