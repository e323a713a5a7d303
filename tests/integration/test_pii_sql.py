"""The SQL side of the PII functions (migrations/20250824_080000_create_pii_functions) against pii.py:
normalisation edge cases and random strings, fresh IVs within one statement, the per-transaction key cache
(what it holds, when it is gone, key changes, savepoints, rotation), and the inlining Example 4's speed
depends on (without ever putting a key into a plan)."""

from __future__ import annotations

import hashlib
import hmac
import random

import psycopg
import pytest
from tests.conftest import MIGRATIONS

from mercurio_migrate import pii

PII_MIGRATION = MIGRATIONS / "20250824_080000_create_pii_functions" / "migration.sql"
KEY = "sql-test-pii-key-" + "k" * 32
OLD_KEY = "sql-test-old-key-" + "o" * 32
NEW_KEY = "sql-test-new-key-" + "n" * 32
HMAC_KEY = "sql-test-hmac-key-" + "h" * 32
OPTIONS = f"-c mercurio.pii_key={KEY} -c mercurio.pii_old_keys={OLD_KEY} -c mercurio.hmac_key={HMAC_KEY}"


@pytest.fixture
def conn(database_url):
    with psycopg.connect(database_url, autocommit=True) as setup:
        setup.execute(PII_MIGRATION.read_text(encoding="utf-8"))
    with psycopg.connect(database_url, autocommit=True, options=OPTIONS) as connection:
        yield connection


def sql_forms(conn, values: list[str]) -> list[tuple[str, str, str]]:
    return conn.execute("SELECT v, pii_normalize(v), hmac_sha256(v, get_hmac_key()) "
                        "FROM unnest(%s::text[]) WITH ORDINALITY AS t(v, n) ORDER BY n", (values,)).fetchall()


# --- normalisation: SQL and Python agree -------------------------------------------------------------------
EDGE_CASES = [
    # letters v at either end: E'\v' in SQL is the letter v, not the vertical tab
    "vince@x.cv", "Vince@X.CV", "v", "vv", "\x0bada@x.org\x0b", " \t\n\r\f\x0bAda@Example.com \t\n\r\f\x0b",
    # empty and whitespace only
    "", " ", "\t", "\x0b", " \t ",
    # phone shapes, digit counts and the 00 prefix
    "+", " + ", "+ ", "()", "-", "+1", "123456", "1234567", "123456789012345", "1234567890123456",
    "+123456", "+1234567", "+123456789012345", "+1234567890123456", "0012345678", "00123456", "001234567",
    "00 1 555 010 9999", "+0012345678", "(555) 010-9999", "555.010.9999", "+1 (555) 010-9999",
    "\t+1 555 0100 99\n", "\x0b+44 20 7946 0958\x0b",
    # almost phones: a tab inside, a + elsewhere, two +, letters, an @
    "1\t555 0100 99", "+1 555\t0100", "1+555 0100", "++1 555 0100", "+1 555 0100@x", "tel:+15550100",
    "call 555 0100", "12345",
    # outside ASCII: never folded, never trimmed, never digits
    "Ünïcode@Example.com", "İSTANBUL@X.TR", "ß", "١٢٣٤٥٦٧٨", "ＡＢＣ@x", "a\u00a0b", "\u2003+1 555 0100 99",
    "Ada Lovelace ✓",
]


def test_edge_cases_normalise_and_fingerprint_as_in_python(conn):
    for value, normalised, fingerprint in sql_forms(conn, EDGE_CASES):
        assert normalised == pii.normalize(value), repr(value)
        assert fingerprint == pii.fingerprint(value, HMAC_KEY), repr(value)


def test_random_strings_normalise_and_fingerprint_as_in_python(conn):
    rng = random.Random(20250824)
    anything = " \t\n\r\f\x0b+0123456789().-@aAvVzZ✓é"
    phoneish = " +0123456789().-\t"
    values = ["".join(rng.choice(rng.choice([anything, phoneish])) for _ in range(rng.randint(0, 20)))
              for _ in range(3000)]
    mismatches = [value for value, normalised, fingerprint in sql_forms(conn, values)
                  if normalised != pii.normalize(value) or fingerprint != pii.fingerprint(value, HMAC_KEY)]
    assert mismatches == []


def test_null_stays_null(conn):
    assert conn.execute("SELECT pii_normalize(NULL), hmac_sha256(NULL, get_hmac_key()), encrypt_pii(NULL), "
                        "decrypt_pii(NULL)").fetchone() == (None, None, None, None)


# --- encryption ----------------------------------------------------------------------------------------------
def test_every_value_gets_its_own_iv_even_in_one_statement(conn):
    rows = conn.execute("SELECT encrypt_pii('same'), encrypt_pii('same') FROM generate_series(1, 200)").fetchall()
    ciphertexts = [c for row in rows for c in row]
    assert len(set(ciphertexts)) == 400
    assert len({pii.decrypt(c, KEY) for c in ciphertexts}) == 1
    assert {c.split(".")[1] for c in ciphertexts} == {pii.key_id(KEY)}


def test_round_trips_between_sql_and_python(conn):
    for value in ["", "a", "x" * 15, "x" * 16, "x" * 17, "Ünïcode ✓ " * 40]:
        assert pii.decrypt(conn.execute("SELECT encrypt_pii(%s)", (value,)).fetchone()[0], KEY) == value
        assert conn.execute("SELECT decrypt_pii(%s)", (pii.encrypt(value, KEY),)).fetchone()[0] == value


def test_retired_keys_decrypt_next_to_the_current_one(conn):
    old, current = pii.encrypt("carol", OLD_KEY), pii.encrypt("dave", KEY)
    assert conn.execute("SELECT decrypt_pii(%s), decrypt_pii(%s), decrypt_pii(%s)",
                        (old, current, old)).fetchone() == ("carol", "dave", "carol")
    with pytest.raises(psycopg.errors.RaiseException, match="no PII key with id"):
        conn.execute("SELECT decrypt_pii(%s)", (pii.encrypt("x", NEW_KEY),))
    version, key_id, payload = current.split(".")
    forged = f"{version}.{pii.key_id(OLD_KEY)}.{payload}"  # another configured key's id: the tag must fail
    with pytest.raises(psycopg.errors.RaiseException, match="failed authentication"):
        conn.execute("SELECT decrypt_pii(%s)", (forged,))


# --- the per-transaction cache of derived key material -------------------------------------------------------
def cache(conn) -> tuple[str | None, str | None]:
    return conn.execute("SELECT current_setting('mercurio.pii_key_cache', true), "
                        "current_setting('mercurio.pii_key_cache_key', true)").fetchone()


def derived(key: str) -> bytes:
    """What the cache may hold: the header and the two sub-keys of docs/mercurio-schema.md, nothing else."""
    def mac(data: bytes) -> bytes:
        return hmac.new(key.encode(), data, hashlib.sha256).digest()

    return (f"v1.{mac(b'mercurio-pii-key-id').hex()[:8]}.".encode() + mac(b"mercurio-pii-enc-v1")
            + mac(b"mercurio-pii-mac-v1"))


def test_the_cache_holds_only_what_the_key_gives_and_ends_with_the_transaction(conn):
    with conn.transaction():
        conn.execute("SELECT encrypt_pii('a')")
        material, key = cache(conn)
        assert bytes.fromhex(material) == derived(KEY)
        assert key == KEY  # the session setting it was derived from, so a changed key is noticed
    assert cache(conn)[0] in (None, "") and cache(conn)[1] in (None, "")
    conn.execute("SELECT decrypt_pii(encrypt_pii('b'))")  # one autocommit statement is one transaction too
    assert cache(conn)[0] in (None, "") and cache(conn)[1] in (None, "")
    with conn.transaction():
        conn.execute("SELECT decrypt_pii(%s)", (pii.encrypt("c", KEY),))  # decryption fills it the same way
        assert bytes.fromhex(cache(conn)[0]) == derived(KEY)
    assert conn.execute("SELECT count(*) FROM pg_db_role_setting").fetchone()[0] == 0


def test_a_changed_key_is_never_served_stale_material(conn):
    with conn.transaction():
        first = conn.execute("SELECT encrypt_pii('a')").fetchone()[0]
        conn.execute("SELECT set_config('mercurio.pii_key', %s, true), set_config('mercurio.pii_old_keys', %s, true)",
                      (NEW_KEY, KEY))
        second = conn.execute("SELECT encrypt_pii('b')").fetchone()[0]
        assert bytes.fromhex(cache(conn)[0]) == derived(NEW_KEY)
        assert conn.execute("SELECT decrypt_pii(%s), decrypt_pii(%s)", (first, second)).fetchone() == ("a", "b")
        with pytest.raises(psycopg.errors.RaiseException, match="PII key is not set"):
            with conn.transaction():
                conn.execute("SELECT set_config('mercurio.pii_key', '', true)")
                conn.execute("SELECT encrypt_pii('c')")
    assert first.split(".")[1] == pii.key_id(KEY) and pii.decrypt(first, KEY) == "a"
    assert second.split(".")[1] == pii.key_id(NEW_KEY) and pii.decrypt(second, NEW_KEY) == "b"


def test_a_rolled_back_savepoint_takes_its_cache_with_it(conn):
    with conn.transaction():
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.transaction():
                conn.execute("SELECT set_config('mercurio.pii_key', %s, true)", (NEW_KEY,))
                conn.execute("SELECT encrypt_pii('x')")
                conn.execute("SELECT 1 / 0")
        assert cache(conn)[0] in (None, "")
        outer = conn.execute("SELECT encrypt_pii('y')").fetchone()[0]
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.transaction():
                conn.execute("SELECT set_config('mercurio.pii_key', %s, true)", (NEW_KEY,))
                conn.execute("SELECT encrypt_pii('z')")
                conn.execute("SELECT 1 / 0")
        assert bytes.fromhex(cache(conn)[0]) == derived(KEY)
        after = conn.execute("SELECT encrypt_pii('w')").fetchone()[0]
    assert [pii.decrypt(c, KEY) for c in (outer, after)] == ["y", "w"]


# --- what Example 4's speed depends on -------------------------------------------------------------------------
def test_fingerprints_and_encryption_are_inlined_and_no_key_reaches_the_plan(conn):
    plan = "\n".join(row[0] for row in conn.execute(
        "EXPLAIN (VERBOSE) SELECT hmac_sha256(v, get_hmac_key()), encrypt_pii(v), pii_normalize(v) "
        "FROM (VALUES ('a@b.c')) AS t(v)"))
    for called in ("hmac_sha256(", "encrypt_pii(", "pii_normalize(", "pii_normalize_utf8(", "get_hmac_key("):
        assert called not in plan, plan
    assert "pii_encrypt_with_iv(" in plan and "gen_random_bytes(" in plan
    for key in (KEY, OLD_KEY, HMAC_KEY):
        assert key not in plan
