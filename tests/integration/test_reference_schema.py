"""Mercurio's reference migration set (migrations/): seed fidelity, the whole set up and down, each rollback
against the catalog with fixture rows loaded, and the cross-tenant seed defect before and after its fix."""

from __future__ import annotations

import re

import psycopg
import pytest
from tests.conftest import MIGRATIONS, SEED, SEED_FILES, run_cli

PII_KEY = "test-pii-key-" + "k" * 32
HMAC_KEY = "test-hmac-key-" + "h" * 32
KEY_ENV = {
    "MERCURIO_PII_KEY": PII_KEY,
    "MERCURIO_HMAC_KEY": HMAC_KEY,
    # until the engine passes keys.session_settings to connect(), libpq carries them as startup options
    "PGOPTIONS": f"-c mercurio.pii_key={PII_KEY} -c mercurio.hmac_key={HMAC_KEY}",
}
TOOL_TABLES = ("mercurio_migrations", "mercurio_migration_progress", "migration_log")
EXAMPLES = (
    "20250823_143000_create_tenant_tables",
    "20250823_144000_create_identity_system",
    "20250823_145000_add_event_system_indexes",
    "20250824_090000_migrate_legacy_user_data",
    "20250824_100000_add_funnel_versioning",
)


@pytest.fixture
def keyed(monkeypatch):
    for name, value in KEY_ENV.items():
        monkeypatch.setenv(name, value)


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, options=KEY_ENV["PGOPTIONS"])


def engine(url: str):
    from mercurio_migrate import config
    from mercurio_migrate.engine import Engine

    return Engine(config.resolve(url, MIGRATIONS))


def migration_folders() -> list[str]:
    return sorted(p.name for p in MIGRATIONS.iterdir() if p.is_dir() and (p / "migration.sql").is_file())


# --- the seed, byte for byte -------------------------------------------------------------------------------
def seed_files() -> dict[str, str]:
    text = SEED.read_text(encoding="utf-8")
    return dict(re.findall(r"#### File: `([^`]+)`\n```sql\n(.*?)\n```", text, flags=re.S))


@pytest.mark.skipif(not SEED.exists(), reason="the seed document (../shared/seed) is not beside this clone")
def test_examples_are_the_seed_text_byte_for_byte():
    files = seed_files()
    assert sorted(files) == sorted(SEED_FILES)
    assert sorted(p.split("/")[0] for p in files if p.endswith("/migration.sql")) == sorted(EXAMPLES)
    for path, body in files.items():
        on_disk = (MIGRATIONS / path).read_bytes().decode("utf-8")
        assert on_disk.rstrip("\n") == body, f"{path} differs from the seed"
        assert on_disk.endswith("\n") and not on_disk.endswith("\n\n"), f"{path}: one trailing newline only"


def test_prerequisites_sort_before_their_first_user():
    folders = migration_folders()

    def index(prefix: str) -> int:
        return next(i for i, f in enumerate(folders) if f.startswith(prefix))

    assert index("20250823_144500_create_event_table") < index("20250823_145000")
    assert index("20250824_080000_create_pii_functions") < index("20250824_090000")
    assert index("20250824_081000_create_legacy_user_table") < index("20250824_090000")
    assert index("20250824_095000_create_funnel_tables") < index("20250824_100000")
    for folder in folders:
        assert (MIGRATIONS / folder / "rollback.sql").is_file(), f"{folder} has no rollback.sql"


# --- catalog and row snapshots -----------------------------------------------------------------------------
SCHEMA_QUERIES = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')""",
    "relations": """
        SELECT relname, relkind, obj_description(oid, 'pg_class') FROM pg_class
        WHERE relnamespace = 'public'::regnamespace""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "functions": """
        SELECT proname, pg_get_function_identity_arguments(oid), md5(prosrc), provolatile, proisstrict,
               obj_description(oid, 'pg_proc')
        FROM pg_proc WHERE pronamespace = 'public'::regnamespace""",
    "extensions": "SELECT extname, obj_description(oid, 'pg_extension') FROM pg_extension",
}


def schema_snapshot(conn) -> dict[str, list]:
    snapshot = {}
    for name, query in SCHEMA_QUERIES.items():
        rows = conn.execute(query).fetchall()
        snapshot[name] = sorted(r for r in rows if not any(str(v).startswith(TOOL_TABLES) for v in r[:1]))
    return snapshot


def column_order(conn) -> dict[str, list[str]]:
    rows = conn.execute("""
        SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' GROUP BY c.relname""").fetchall()
    return {table: columns for table, columns in rows if table not in TOOL_TABLES}


def row_snapshot(conn) -> dict[str, str]:
    """Per table, a digest of its rows as JSON objects (keyed by column name, so column order does not count)."""
    tables = [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'").fetchall()
        if r[0] not in TOOL_TABLES]
    return {t: conn.execute(f'SELECT count(*) || \':\' || coalesce(md5(string_agg(to_jsonb(x)::text, \'|\' '
                            f'ORDER BY to_jsonb(x)::text)), \'\') FROM "{t}" x').fetchone()[0] for t in tables}


def test_each_rollback_restores_schema_and_rows_with_fixtures(database_url, keyed):
    """For every migration in order: up, down, and the catalog is as before (column order apart) and the rows of
    every table are as before unless the rollback declares a loss with a WARNING header; then up again and load
    its fixture.sql, so later migrations run over real rows."""
    from mercurio_migrate.layout import discover

    migrations = discover(MIGRATIONS).migrations
    with connect(database_url) as conn:
        for migration in migrations:
            schema_before, rows_before, order_before = schema_snapshot(conn), row_snapshot(conn), column_order(conn)
            engine(database_url).up(to=migration.version)
            engine(database_url).down(steps=1)
            assert schema_snapshot(conn) == schema_before, f"rollback of {migration.id} does not restore the schema"
            if "warning" not in migration.rollback.header:
                assert row_snapshot(conn) == rows_before, f"rollback of {migration.id} changed rows"
            if migration.name != "add_funnel_versioning":
                assert column_order(conn) == order_before
            engine(database_url).up(to=migration.version)
            fixture = migration.extras.get("fixture.sql")
            if fixture is not None:
                conn.execute(fixture.text)
        counts = dict(conn.execute(
            "SELECT 'tenant', count(*) FROM tenant UNION ALL SELECT 'lead', count(*) FROM lead "
            "UNION ALL SELECT 'funnel_step', count(*) FROM funnel_step UNION ALL SELECT 'visitor', count(*) "
            "FROM visitor UNION ALL SELECT 'funnel_publication', count(*) FROM funnel_publication").fetchall())
        assert counts["tenant"] == 3 and counts["funnel_step"] == 5 and counts["funnel_publication"] == 3
        assert counts["lead"] >= 3 + 6 and counts["visitor"] >= 3 + 5
        # Example 5's rollback re-adds funnel_step.funnel_id last: the only column-order difference
        engine(database_url).down(steps=3)
        order = column_order(conn)["funnel_step"]
        assert order[-1] == "funnel_id" and order.index("funnel_id") != 1
        assert conn.execute("SELECT count(*) FROM funnel_step WHERE funnel_id IS NOT NULL").fetchone()[0] == 5


def test_whole_set_up_and_down_all_via_cli(database_url, tmp_path):
    up = run_cli("--dir", str(MIGRATIONS), "up", database_url=database_url, cwd=tmp_path, env=KEY_ENV)
    assert up.returncode == 0, up.stderr
    assert PII_KEY not in up.stdout + up.stderr and HMAC_KEY not in up.stdout + up.stderr
    with connect(database_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"tenant", "workspace", "api_key", "visitor", "lead", "identity_link", "event", "legacy_user_table",
                "funnel", "funnel_step", "funnel_version", "funnel_publication"} <= tables
        valid = conn.execute("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                             "WHERE c.relname LIKE 'idx_event_%' AND i.indisvalid").fetchone()[0]
        assert valid == 7  # Example 3's six, built concurrently, and the event migration's own
        settings = conn.execute("SELECT count(*) FROM pg_db_role_setting").fetchone()[0]
        assert settings == 0  # keys are session settings only, never stored
        log = conn.execute("SELECT string_agg(coalesce(notes, '') || migration_name, ' ') FROM migration_log").fetchone()
        assert PII_KEY not in log[0] and HMAC_KEY not in log[0]

    down = run_cli("--dir", str(MIGRATIONS), "down", "--all", database_url=database_url, cwd=tmp_path, env=KEY_ENV)
    assert down.returncode == 0, down.stderr
    with connect(database_url) as conn:
        left = conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN "
                            "('r', 'v', 'm', 'S', 'p') ORDER BY 1").fetchall()
        assert [r[0] for r in left] == ["mercurio_migration_progress", "mercurio_migrations", "migration_log",
                                        "migration_log_id_seq"]
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_type WHERE typnamespace = 'public'::regnamespace "
                            "AND typtype <> 'c' AND typcategory <> 'A'").fetchone()[0] == 0


# --- PII: SQL and Python agree ------------------------------------------------------------------------------
def test_sql_and_python_pii_interoperate(database_url, keyed):
    from mercurio_migrate import pii

    engine(database_url).up(to="20250824_080000")
    values = ["  Alice@Example.com ", "alice@example.com", "+1 (555) 010-9999", "0015550109999",
              "Ünïcode@Example.com", "12345", "Ada Lovelace ✓", ""]
    with connect(database_url) as conn:
        for value in values:
            sql_fingerprint = conn.execute("SELECT hmac_sha256(%s, get_hmac_key())", (value,)).fetchone()[0]
            assert sql_fingerprint == pii.fingerprint(value, HMAC_KEY), value
            assert conn.execute("SELECT pii_normalize(%s)", (value,)).fetchone()[0] == pii.normalize(value)
            sql_ciphertext = conn.execute("SELECT encrypt_pii(%s)", (value,)).fetchone()[0]
            assert pii.decrypt(sql_ciphertext, PII_KEY) == value
            assert conn.execute("SELECT decrypt_pii(%s)", (pii.encrypt(value, PII_KEY),)).fetchone()[0] == value
        assert conn.execute("SELECT hmac_sha256(NULL, get_hmac_key()), encrypt_pii(NULL)").fetchone() == (None, None)

        ciphertext = pii.encrypt("alice@example.com", PII_KEY)
        version, kid, payload = ciphertext.split(".")
        tampered = f"{version}.{kid}.{payload[:30]}{'A' if payload[30] != 'A' else 'B'}{payload[31:]}"
        with pytest.raises(psycopg.errors.RaiseException, match="failed authentication"):
            conn.execute("SELECT decrypt_pii(%s)", (tampered,))
        with pytest.raises(psycopg.errors.RaiseException, match="no PII key with id"):
            conn.execute("SELECT decrypt_pii(%s)", (pii.encrypt("x", "r" * 40),))
        with pytest.raises(psycopg.errors.RaiseException, match="unsupported PII ciphertext version v9"):
            conn.execute("SELECT decrypt_pii('v9.00000000.AAAA')")

    # rotation: a retired key in mercurio.pii_old_keys still decrypts; encryption uses the current key
    old = "o" * 40
    with psycopg.connect(database_url, autocommit=True,
                         options=f"-c mercurio.pii_key={PII_KEY} -c mercurio.pii_old_keys=x{'y' * 40},{old}") as conn:
        assert conn.execute("SELECT decrypt_pii(%s)", (pii.encrypt("carol", old),)).fetchone()[0] == "carol"
        assert conn.execute("SELECT split_part(encrypt_pii('c'), '.', 2)").fetchone()[0] == pii.key_id(PII_KEY)

    # without keys: a clear error naming what to set, not "unrecognized configuration parameter"
    with psycopg.connect(database_url, autocommit=True, options="-c search_path=public") as conn:
        with pytest.raises(psycopg.errors.RaiseException) as info:
            conn.execute("SELECT encrypt_pii('x')")
        assert "mercurio.pii_key" in str(info.value) and "MERCURIO_PII_KEY" in (info.value.diag.message_hint or "")
        with pytest.raises(psycopg.errors.RaiseException, match="mercurio.hmac_key"):
            conn.execute("SELECT hmac_sha256('x', get_hmac_key())")
        assert conn.execute("SELECT current_setting('mercurio.pii_key', true)").fetchone()[0] is None


# --- seed defect: cross-tenant linkage ---------------------------------------------------------------------
SHARED = "a_SharedAnon01"


def _two_tenants_sharing_an_anonymous_id(conn) -> dict[str, tuple[int, int]]:
    scopes = {}
    for tenant in ("Tenant A", "Tenant B"):
        tenant_id = conn.execute("INSERT INTO tenant (name) VALUES (%s) RETURNING id", (tenant,)).fetchone()[0]
        workspace_id = conn.execute("INSERT INTO workspace (tenant_id, name) VALUES (%s, 'Main') RETURNING id",
                                    (tenant_id,)).fetchone()[0]
        scopes[tenant] = (tenant_id, workspace_id)
    conn.execute(
        "INSERT INTO legacy_user_table (tenant_id, workspace_id, email, anonymous_id, created_at) VALUES "
        "(%s, %s, 'alice@a.example', %s, '2024-01-01'), (%s, %s, 'bob@b.example', %s, '2024-02-01')",
        (*scopes["Tenant A"], SHARED, *scopes["Tenant B"], SHARED))
    return scopes


CROSSING_LINKS = """
    SELECT count(*) FROM identity_link il
    WHERE NOT EXISTS (SELECT 1 FROM visitor v WHERE v.anonymous_id = il.anonymous_id
                      AND v.tenant_id = il.tenant_id AND v.workspace_id = il.workspace_id)"""


def test_cross_tenant_linkage_reproduced_then_fixed(database_url, keyed):
    engine(database_url).up(to="20250824_081000")
    with connect(database_url) as conn:
        scopes = _two_tenants_sharing_an_anonymous_id(conn)
        engine(database_url).up(to="20250824_100000")
        # the defect, as the seed's Example 4 leaves it: one visitor, and tenant B's lead linked to it
        assert conn.execute("SELECT count(*) FROM visitor WHERE anonymous_id = %s", (SHARED,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM identity_link WHERE anonymous_id = %s", (SHARED,)).fetchone()[0] == 2
        assert conn.execute(CROSSING_LINKS).fetchone()[0] == 1
        verify = (MIGRATIONS / "20250824_110000_scope_visitor_keys_by_tenant" / "verify.sql").read_text()

        engine(database_url).up()
        visitors = conn.execute("SELECT tenant_id, workspace_id FROM visitor WHERE anonymous_id = %s ORDER BY 1",
                                (SHARED,)).fetchall()
        assert visitors == sorted([scopes["Tenant A"], scopes["Tenant B"]])
        assert conn.execute(CROSSING_LINKS).fetchone()[0] == 0
        conn.execute(verify)  # raises when a link crosses tenants or the constraints are missing
        lead_a = conn.execute("SELECT id FROM lead WHERE tenant_id = %s", (scopes["Tenant A"][0],)).fetchone()[0]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO identity_link (tenant_id, workspace_id, anonymous_id, lead_id) VALUES "
                         "(%s, %s, %s, %s)", (*scopes["Tenant B"], SHARED, lead_a))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO visitor (anonymous_id, tenant_id, workspace_id) VALUES ('a_Mismatched01', %s, %s)",
                         (scopes["Tenant A"][0], scopes["Tenant B"][1]))
        # both tenants can now hold the same client-generated id from the start
        conn.execute("INSERT INTO visitor (anonymous_id, tenant_id, workspace_id) VALUES ('a_BothTenants1', %s, %s), "
                     "('a_BothTenants1', %s, %s)", (*scopes["Tenant A"], *scopes["Tenant B"]))


def test_duplicate_leads_reproduced_then_merged(database_url, keyed):
    engine(database_url).up(to="20250824_081000")
    with connect(database_url) as conn:
        tenant_id = conn.execute("INSERT INTO tenant (name) VALUES ('T') RETURNING id").fetchone()[0]
        workspace_id = conn.execute("INSERT INTO workspace (tenant_id, name) VALUES (%s, 'W') RETURNING id",
                                    (tenant_id,)).fetchone()[0]
        conn.execute(
            "INSERT INTO legacy_user_table (tenant_id, workspace_id, email, phone, anonymous_id, created_at) VALUES "
            "(%(t)s, %(w)s, '  Erin@Example.com ', NULL, 'a_erinFirst001', '2024-01-01'),"
            "(%(t)s, %(w)s, 'erin@example.com', NULL, 'a_erinSecond01', '2024-02-01'),"
            "(%(t)s, %(w)s, NULL, '+1 (555) 010-0001', NULL, '2024-01-01'),"
            "(%(t)s, %(w)s, NULL, '0015550100001', NULL, '2024-03-01'),"
            "(%(t)s, %(w)s, 'other@example.com', '+1 555 010 0001', NULL, '2024-04-01')",
            {"t": tenant_id, "w": workspace_id})
        engine(database_url).up(to="20250824_090000")
        assert conn.execute("SELECT count(*) FROM lead").fetchone()[0] == 5  # the defect: 2 leads for Erin
        assert conn.execute("SELECT count(DISTINCT email_fingerprint) FROM lead").fetchone()[0] == 2
        engine(database_url).up()
        merged = conn.execute(
            "SELECT d.created_at::date::text, c.created_at::date::text FROM lead d JOIN lead c ON c.id = d.merged_into_id "
            "ORDER BY 1").fetchall()
        assert merged == [("2024-02-01", "2024-01-01"), ("2024-03-01", "2024-01-01")]
        canonical_links = conn.execute(
            "SELECT count(*) FROM identity_link il JOIN lead l ON l.id = il.lead_id").fetchone()[0]
        assert canonical_links == 4  # kept: the merge marks duplicates, deletes nothing
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO lead (tenant_id, workspace_id, email_enc, email_fingerprint) "
                         "VALUES (%s, %s, encrypt_pii('ERIN@example.com'), hmac_sha256('ERIN@example.com', "
                         "get_hmac_key()))", (tenant_id, workspace_id))
        engine(database_url).down(steps=1)
        assert conn.execute("SELECT count(*) FROM lead").fetchone()[0] == 5


def test_migration_with_pii_needs_keys_in_session(database_url, tmp_path):
    env = {k: v for k, v in KEY_ENV.items() if k != "PGOPTIONS"}
    env["PGOPTIONS"] = f"-c mercurio.pii_key={PII_KEY}"
    up = run_cli("--dir", str(MIGRATIONS), "up", "--to", "20250824_081000", database_url=database_url, cwd=tmp_path,
                 env=env)
    assert up.returncode == 0, up.stderr
    with connect(database_url) as conn:
        conn.execute("INSERT INTO tenant (name) VALUES ('T')")
        conn.execute("INSERT INTO workspace (tenant_id, name) SELECT id, 'W' FROM tenant")
        conn.execute("INSERT INTO legacy_user_table (tenant_id, workspace_id, email) SELECT tenant_id, id, 'a@b.c' "
                     "FROM workspace")
    failed = run_cli("--dir", str(MIGRATIONS), "up", database_url=database_url, cwd=tmp_path,
                     env=env | {"MERCURIO_HMAC_KEY": ""})
    assert failed.returncode != 0
    assert "MERCURIO_HMAC_KEY" in failed.stderr and "Traceback" not in failed.stderr
    assert PII_KEY not in failed.stdout + failed.stderr
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM lead").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM mercurio_migrations WHERE version = '20250824_090000'").fetchone()[0] == 0
