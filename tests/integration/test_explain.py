"""explain on real scratch databases: the shipped plans.sql pass, a query that cannot use its index fails
naming file:line and the index, every index the reference set creates is covered, the target is untouched."""

from __future__ import annotations

import json

import pytest

from conftest import MIGRATIONS, TEST_KEYS, write_migration
from mercurio_migrate.config import Settings
from mercurio_migrate.engine import Engine
from mercurio_migrate.errors import LayoutError
from mercurio_migrate.explain import explain, load_plans
from mercurio_migrate.layout import discover

TABLE = "20250101_000001_create_item"
ITEM = """CREATE TABLE tenant (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE item (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenant(id),
    code varchar(20) NOT NULL CHECK (code ~ '^it_[a-z]{6}$'),
    kind text NOT NULL CHECK (kind IN ('a', 'b', 'c')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_item_tenant_created ON item (tenant_id, created_at DESC);
CREATE INDEX idx_item_code ON item (code);
"""


@pytest.fixture
def keys(monkeypatch):
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)


def test_shipped_plans_pass_and_cover_every_index(cli, db):
    result = cli("--dir", str(MIGRATIONS), "--json", "explain")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["failed"] == 0
    assert report["volume"]["event"] >= 20000 and report["skipped_tables"] == {}
    used = {name for q in report["queries"] for name in q["used"]}
    for query in report["queries"]:
        assert set(query["expected"]) <= set(query["used"]), query
        assert query["execution_ms"] is not None and query["buffers"]["shared_hit"] >= 0
        assert ":" in query["file"] or query["line"] > 0
    # the target database is never touched
    assert db.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone()[0] == 0

    # coverage: build the reference schema in the target, and read every index it creates from the catalog
    assert cli("--dir", str(MIGRATIONS), "up").returncode == 0
    created = {r[0] for r in db.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relnamespace = 'public'::regnamespace "
        "AND t.relname NOT IN ('mercurio_migrations', 'migration_log') "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u'))")}
    assert created, "the reference set creates indexes"
    assert created - used == set(), f"indexes no plans.sql query uses: {sorted(created - used)}"
    expected = {n for q in report["queries"] for n in q["expected"]}
    assert created <= expected


def test_query_that_cannot_use_its_index_fails_naming_file_line_and_index(cli, tmp_path):
    plans = """-- expect-index: idx_item_tenant_created
SELECT id FROM item WHERE tenant_id = 2 ORDER BY created_at DESC LIMIT 10;

-- a function on the column hides it from the index
-- expect-index: idx_item_code
SELECT id FROM item WHERE upper(code) = 'IT_AAAAAB';
"""
    write_migration(tmp_path / "m", TABLE, ITEM, plans=plans)
    result = cli("--dir", str(tmp_path / "m"), "explain", "--rows", "5000")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout and "plans.sql:6" in result.stdout and "idx_item_code" in result.stdout
    assert "OK   " in result.stdout and "plans.sql:2" in result.stdout
    assert "explain: FAILED (1 of 2)" in result.stdout
    assert "Traceback" not in result.stderr


def test_report_shape_and_generated_values(database_url, tmp_path, keys):
    plans = """-- expect-index: idx_item_code
SELECT id, kind FROM item WHERE code = 'it_aaaaab';
"""
    write_migration(tmp_path, TABLE, ITEM, plans=plans)
    report = explain(Engine(Settings(database_url=database_url, migrations_dir=tmp_path)), rows=3000, keep=True)
    try:
        assert report.ok, [c.reason for c in report.checks]
        # tenant is referenced by item and has no parent: a scope table of rows/20
        assert report.volume == {"tenant": 150, "item": 3000}
        check = report.checks[0]
        assert check.used == ["idx_item_code"] and check.query.line == 2
        document = report.as_dict()
        assert set(document) >= {"ok", "queries", "failed", "volume", "timings_ms", "scratch_database"}
        assert document["queries"][0]["status"] == "OK"
        assert document["scratch_database"]["kept"] is True
        import psycopg

        with psycopg.connect(report.scratch_url.replace("***", ""), autocommit=True) as conn:
            # CHECK (code ~ '^it_[a-z]{6}$') and CHECK (kind IN …) were satisfied by the generator
            assert conn.execute("SELECT count(*) FROM item WHERE code ~ '^it_[a-z]{6}$'").fetchone()[0] == 3000
            assert conn.execute("SELECT count(DISTINCT kind) FROM item").fetchone()[0] == 3
            assert conn.execute("SELECT count(*) FROM item i LEFT JOIN tenant t ON t.id = i.tenant_id "
                                "WHERE t.id IS NULL").fetchone()[0] == 0
    finally:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{report.scratch_database}" WITH (FORCE)')


def test_missing_annotation_and_unknown_index_are_reported(cli, tmp_path):
    write_migration(tmp_path / "a", TABLE, ITEM, plans="SELECT 1;\n-- expect-index: idx_item_code\nCREATE TABLE x ();\n")
    found = discover(tmp_path / "a")
    with pytest.raises(LayoutError) as raised:
        load_plans(list(found.migrations))
    text = raised.value.message
    assert "plans.sql:1" in text and "-- expect-index:" in text
    assert "plans.sql:3" in text and "CreateStmt is not a query" in text
    result = cli("--dir", str(tmp_path / "a"), "explain")
    assert result.returncode == 2 and "Traceback" not in result.stderr

    write_migration(tmp_path / "b", TABLE, ITEM, plans="-- expect-index: idx_nope\nSELECT id FROM item WHERE id = 1;\n")
    result = cli("--dir", str(tmp_path / "b"), "--json", "explain", "--rows", "1000")
    assert result.returncode == 1
    query = json.loads(result.stdout)["queries"][0]
    assert query["status"] == "FAIL" and "no index named idx_nope" in query["reason"]
