"""PII encryption and fingerprints on the Python side (no database)."""

from __future__ import annotations

import base64
import stat

import pytest

from mercurio_migrate import keys, pii
from mercurio_migrate.errors import UsageError

KEY = "k" * 40
OLD_KEY = "o" * 40
HMAC_KEY = "h" * 40


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice@Example.com ", "alice@example.com"),
        ("alice@example.com", "alice@example.com"),
        ("\tBOB@EXAMPLE.ORG\n", "bob@example.org"),
        ("Ünïcode@Example.com", "Ünïcode@example.com"),  # ASCII-only folding, as SQL's lower(... COLLATE "C")
        ("+1 (555) 010-9999", "+15550109999"),
        ("001 555 010 9999", "+15550109999"),
        ("+44 20 7946 0958", "+442079460958"),
        ("555.010.9999", "+5550109999"),
        ("12345", "12345"),  # too few digits for a phone number
        ("1234567890123456", "1234567890123456"),  # too many
        ("call 555 0100", "call 555 0100"),
        ("vince@x.cv", "vince@x.cv"),  # a v at either end is a letter, not the vertical tab
        ("\x0bAda@Example.com\x0b", "ada@example.com"),  # the vertical tab is whitespace
        ("  ", ""),
        (" + ", "+"),  # phone-shaped only with its spaces, and no digits
        ("0012345678", "+12345678"),
        ("00123456", "00123456"),  # six digits once 00 is dropped: not a phone number
        ("+0012345678", "+0012345678"),  # a leading + keeps the 00
        ("1\t555 0100 99", "1\t555 0100 99"),  # a tab is not a phone separator
        ("+1 555 0100@x", "+1 555 0100@x"),
    ],
)
def test_normalize(raw, expected):
    assert pii.normalize(raw) == expected


def test_fingerprints_match_after_normalisation():
    assert pii.fingerprint("  Alice@Example.com ", HMAC_KEY) == pii.fingerprint("alice@example.com", HMAC_KEY)
    assert pii.fingerprint("+1 (555) 010-9999", HMAC_KEY) == pii.fingerprint("0015550109999", HMAC_KEY)
    assert pii.fingerprint("alice@example.com", HMAC_KEY) != pii.fingerprint("alice@example.com", "x" * 40)
    assert len(pii.fingerprint("alice@example.com", HMAC_KEY)) == 64


def test_round_trip_with_random_iv():
    first = pii.encrypt("Ada Lovelace ✓", KEY)
    second = pii.encrypt("Ada Lovelace ✓", KEY)
    assert first != second  # fresh IV each time
    assert first.startswith(f"v1.{pii.key_id(KEY)}.")
    assert pii.decrypt(first, KEY) == pii.decrypt(second, KEY) == "Ada Lovelace ✓"
    assert pii.decrypt(pii.encrypt("", KEY), KEY) == ""


def _flip(ciphertext: str, position: int) -> str:
    version, kid, payload = ciphertext.split(".")
    raw = bytearray(base64.b64decode(payload))
    raw[position] ^= 0x01
    return f"{version}.{kid}.{base64.b64encode(bytes(raw)).decode()}"


@pytest.mark.parametrize("position", [0, 16, -33, -1])  # IV, ciphertext, last ciphertext byte, tag
def test_tampered_ciphertext_is_rejected(position):
    ciphertext = pii.encrypt("alice@example.com", KEY)
    with pytest.raises(pii.PiiError, match="failed authentication"):
        pii.decrypt(_flip(ciphertext, position), KEY)


def test_key_id_in_header_is_authenticated():
    other = "p" * 40
    ciphertext = pii.encrypt("alice@example.com", KEY)
    forged = ciphertext.replace(pii.key_id(KEY), pii.key_id(other), 1)
    with pytest.raises(pii.PiiError, match="failed authentication"):
        pii.decrypt(forged, [KEY, other])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plain text", "not a PII ciphertext"),
        ("v2.abcdef12.AAAA", "unsupported PII ciphertext version v2"),
        ("v1.deadbeef.AAAA", "no PII key with id deadbeef"),
    ],
)
def test_malformed_ciphertexts(text, message):
    with pytest.raises(pii.PiiError, match=message):
        pii.decrypt(text, KEY)


def test_truncated_and_bad_base64():
    ciphertext = pii.encrypt("alice@example.com", KEY)
    version, kid, payload = ciphertext.split(".")
    short = base64.b64encode(base64.b64decode(payload)[:40]).decode()
    with pytest.raises(pii.PiiError, match="truncated"):
        pii.decrypt(f"{version}.{kid}.{short}", KEY)
    with pytest.raises(pii.PiiError, match="base64"):
        pii.decrypt(f"{version}.{kid}.!!!!", KEY)


def test_rotation_old_keys_still_decrypt():
    old_ciphertext = pii.encrypt("carol@example.com", OLD_KEY)
    ring = pii.Keyring(KEY, (OLD_KEY,))
    assert pii.decrypt(old_ciphertext, ring) == "carol@example.com"
    with pytest.raises(pii.PiiError, match="no PII key with id"):
        pii.decrypt(old_ciphertext, KEY)
    [rotated] = pii.reencrypt([old_ciphertext], ring)
    assert rotated.split(".")[1] == pii.key_id(KEY)
    assert pii.decrypt(rotated, KEY) == "carol@example.com"


def test_keys_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MERCURIO_HOME", str(tmp_path))
    monkeypatch.setenv(keys.PII_KEY_ENV, KEY)
    monkeypatch.setenv(keys.PII_OLD_KEYS_ENV, OLD_KEY)
    monkeypatch.setenv(keys.HMAC_KEY_ENV, HMAC_KEY)
    assert pii.decrypt(pii.encrypt("x@example.com", OLD_KEY)) == "x@example.com"
    assert pii.fingerprint("X@example.com") == pii.fingerprint("x@example.com", HMAC_KEY)
    assert KEY not in repr(pii.Keyring.from_env())
    monkeypatch.delenv(keys.PII_KEY_ENV)
    with pytest.raises(pii.PiiKeyMissing, match="MERCURIO_PII_KEY"):
        pii.encrypt("x")


# --- keys.py -----------------------------------------------------------------------------------------------
class _Settings:
    def __init__(self, database_url):
        self.database_url = database_url


EXAMPLE_4 = "INSERT INTO lead (email_enc, email_fingerprint) SELECT encrypt_pii(e), hmac_sha256(e, get_hmac_key()) FROM t;"


def test_needs_keys_from_parsed_statements():
    assert keys.keys_needed(EXAMPLE_4) == {keys.PII_KEY_ENV, keys.HMAC_KEY_ENV}
    assert keys.keys_needed("SELECT decrypt_pii(email_enc) FROM lead") == {keys.PII_KEY_ENV}
    assert keys.keys_needed("DO $$ BEGIN PERFORM hmac_sha256('a', get_hmac_key()); END $$;") == {keys.HMAC_KEY_ENV}
    assert keys.keys_needed("DO $$ DECLARE x text; BEGIN x := encrypt_pii('a'); END $$;") == {keys.PII_KEY_ENV}
    # naming a function is not calling it: strings, comments and definitions do not count
    assert not keys.needs_keys("-- encrypt_pii(x)\nSELECT 'encrypt_pii(x)';")
    assert not keys.needs_keys("CREATE FUNCTION f(v text) RETURNS text LANGUAGE sql AS $$ SELECT encrypt_pii(v) $$;")
    assert not keys.needs_keys("DROP FUNCTION IF EXISTS encrypt_pii(TEXT);")


def test_missing_key_against_database_url_names_variable_and_migration(monkeypatch, tmp_path):
    for name in keys.SETTING_FOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MERCURIO_HOME", str(tmp_path))
    with pytest.raises(UsageError) as info:
        keys.session_settings(_Settings("postgresql://db/x"), [_Named("20250824_090000_migrate_legacy_user_data")])
    assert "MERCURIO_HMAC_KEY" in info.value.message
    assert "20250824_090000_migrate_legacy_user_data" in info.value.message
    assert not (tmp_path / "keys").exists()  # never generated for a real database


class _Named:
    def __init__(self, id_):
        self.id = id_
        self.text = EXAMPLE_4


def test_session_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MERCURIO_HOME", str(tmp_path))
    monkeypatch.setenv(keys.PII_KEY_ENV, KEY)
    monkeypatch.setenv(keys.HMAC_KEY_ENV, HMAC_KEY)
    monkeypatch.delenv(keys.PII_OLD_KEYS_ENV, raising=False)
    options = keys.session_settings(_Settings("postgresql://db/x"), EXAMPLE_4)
    assert dict(options) == {"mercurio.pii_key": KEY, "mercurio.hmac_key": HMAC_KEY}
    assert options.message is None
    assert KEY not in repr(options) and HMAC_KEY not in str(options)
    assert keys.session_settings(_Settings("postgresql://db/x"), "CREATE TABLE t (a int);") == {}
    assert keys.session_settings(_Settings("postgresql://db/x"), False) == {}
    assert keys.session_settings(_Settings("postgresql://db/x"), [None, "SELECT 1"]) == {}
    assert keys.session_settings(_Settings("postgresql://db/x"), [None, _Named("x")]) == dict(options)


def test_unusable_key_is_refused_without_echoing_it(monkeypatch, tmp_path):
    monkeypatch.setenv("MERCURIO_HOME", str(tmp_path))
    monkeypatch.setenv(keys.PII_KEY_ENV, "short key with spaces")
    monkeypatch.setenv(keys.HMAC_KEY_ENV, HMAC_KEY)
    with pytest.raises(UsageError) as info:
        keys.session_settings(_Settings("postgresql://db/x"), True)
    assert "MERCURIO_PII_KEY" in info.value.message and "short key" not in info.value.message


def test_embedded_default_generates_dev_keys_once(monkeypatch, tmp_path):
    for name in keys.SETTING_FOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MERCURIO_HOME", str(tmp_path))
    first = keys.session_settings(_Settings(None), EXAMPLE_4)
    path = tmp_path / "keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "generated development PII keys" in first.message
    assert first["mercurio.pii_key"] not in first.message
    second = keys.session_settings(_Settings(None), EXAMPLE_4)
    assert second.message is None
    assert dict(second) == dict(first)
    assert pii.decrypt(pii.encrypt("a@b.c")) == "a@b.c"  # the Python side finds the same development keys
    path.chmod(0o644)
    with pytest.raises(UsageError, match="others can read it") as info:
        keys.session_settings(_Settings(None), EXAMPLE_4)
    assert info.value.hint == f"chmod 600 {path}"
