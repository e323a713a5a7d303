"""indexes against a real database: usage counters, and unused, duplicate, redundant and INVALID indexes."""

from __future__ import annotations

import json

import psycopg


def _setup(db) -> None:
    db.execute("CREATE TABLE item (id bigint PRIMARY KEY, tenant_id bigint NOT NULL, code text, note text)")
    db.execute("INSERT INTO item SELECT g, g % 10, 'c' || (g % 50), 'n' FROM generate_series(1, 5000) g")
    db.execute("CREATE INDEX idx_item_tenant ON item (tenant_id)")
    db.execute("CREATE INDEX idx_item_tenant_again ON item (tenant_id)")  # duplicate
    db.execute("CREATE INDEX idx_item_tenant_code ON item (tenant_id, code)")  # makes idx_item_tenant redundant
    db.execute("CREATE INDEX idx_item_note ON item (note)")  # never used
    # a failed concurrent unique build over duplicates leaves an INVALID index behind
    try:
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY uq_item_code ON item (code)")
    except psycopg.errors.UniqueViolation:
        pass
    db.execute("ANALYZE item")
    db.execute("SET enable_seqscan = off")
    db.execute("SELECT * FROM item WHERE id = 17").fetchall()  # primary key scans
    plan = db.execute("EXPLAIN (FORMAT JSON) SELECT * FROM item WHERE tenant_id = 3 AND code = 'c3'").fetchone()[0]
    assert "idx_item_tenant_code" in json.dumps(plan)
    db.execute("SELECT * FROM item WHERE tenant_id = 3 AND code = 'c3'").fetchall()
    db.execute("SELECT pg_stat_force_next_flush()")  # counters reach pg_stat_user_indexes at the next statement
    db.execute("SELECT 1")


def test_unused_duplicate_redundant_and_invalid(cli, db):
    _setup(db)
    assert db.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'uq_item_code'::regclass").fetchone() \
        == (False,)
    result = cli("--json", "indexes")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_name = {i["index"]: i for i in report["indexes"]}
    assert set(by_name) == {"item_pkey", "idx_item_tenant", "idx_item_tenant_again", "idx_item_tenant_code",
                            "idx_item_note", "uq_item_code"}
    assert by_name["uq_item_code"]["findings"] == ["invalid"] and by_name["uq_item_code"]["valid"] is False
    assert "duplicate" in by_name["idx_item_tenant_again"]["findings"]
    assert "duplicate" not in by_name["idx_item_tenant"]["findings"]  # one of the pair is reported
    assert "redundant" in by_name["idx_item_tenant"]["findings"]
    assert "unused" in by_name["idx_item_note"]["findings"]
    # a primary key is never "unused": it enforces uniqueness
    assert by_name["item_pkey"]["findings"] == [] and by_name["item_pkey"]["constraint"] == "item_pkey"
    # usage counters come from pg_stat_user_indexes (flushed when the session that scanned ends or idles)
    assert by_name["idx_item_tenant_code"]["findings"] == [] and by_name["idx_item_tenant_code"]["scans"] >= 1
    counts = report["counts"]
    assert (counts["invalid"], counts["duplicate"], counts["redundant"]) == (1, 1, 2)  # both tenant_id indexes
    for index in report["indexes"]:
        assert set(index) >= {"table", "index", "scans", "tuples_read", "tuples_fetched", "size_bytes", "valid",
                              "findings", "definition"}
        assert index["size_bytes"] > 0 or not index["valid"]

    text = cli("indexes")
    assert text.returncode == 0
    assert "uq_item_code: INVALID" in text.stdout and "DROP INDEX CONCURRENTLY uq_item_code" in text.stdout
    assert "idx_item_tenant_again: same keys (tenant_id)" in text.stdout


def test_fail_on_exit_codes(cli, db):
    _setup(db)
    assert cli("indexes", "--fail-on", "invalid").returncode == 1
    assert cli("indexes", "--fail-on", "duplicate").returncode == 1
    db.execute("DROP INDEX uq_item_code")
    db.execute("DROP INDEX idx_item_tenant_again")
    assert cli("indexes", "--fail-on", "invalid,duplicate").returncode == 0
    bad = cli("indexes", "--fail-on", "slow")
    assert bad.returncode == 2 and "unknown finding" in bad.stderr and "Traceback" not in bad.stderr


def test_password_is_redacted(cli, database_url, db):
    _setup(db)
    url = database_url.replace("postgres@", "postgres:s3cret@", 1)
    result = cli("indexes", database_url=url)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr and "***" in result.stdout
