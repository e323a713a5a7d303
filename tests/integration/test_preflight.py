"""Dirty legacy data: the pre-flight report before Example 4, and Example 4 end to end on generated users."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import MIGRATIONS, REPO, run_cli
from tests.integration.test_reference_schema import KEY_ENV, connect

GENERATOR = REPO / "scripts" / "generate_legacy_users.py"


def _cli(database_url, tmp_path, *args):
    return run_cli("--dir", str(MIGRATIONS), *args, database_url=database_url, cwd=tmp_path, env=KEY_ENV)


def _scope(conn, tenant: str) -> tuple[int, int]:
    tenant_id = conn.execute("INSERT INTO tenant (name) VALUES (%s) RETURNING id", (tenant,)).fetchone()[0]
    workspace_id = conn.execute("INSERT INTO workspace (tenant_id, name) VALUES (%s, 'Main') RETURNING id",
                                (tenant_id,)).fetchone()[0]
    return tenant_id, workspace_id


def test_preflight_lists_each_kind_of_dirty_row(database_url, tmp_path):
    assert _cli(database_url, tmp_path, "up", "--to", "20250824_081000").returncode == 0
    with connect(database_url) as conn:
        (t1, w1), (t2, w2) = _scope(conn, "A"), _scope(conn, "B")
        rows = [
            (t1, w1, "ok@example.com", None, "a_goodGoodGood"),               # clean
            (t1, w1, "bad@example.com", None, "a_short"),                     # invalid anonymous id
            (t1, None, "nows@example.com", None, None),                      # missing workspace
            (t1, w2, "wrongws@example.com", None, None),                     # workspace of tenant B
            (t1, w1, "  Dup@Example.com ", None, None),                      # duplicate e-mail …
            (t1, w1, "dup@example.com", None, None),                         # … after normalisation
            (t2, w2, "dup@example.com", None, None),                         # same e-mail, other tenant: fine
            (t1, w1, None, "+1 (555) 010-0001", None),                       # duplicate phone …
            (t1, w1, None, "0015550100001", None),                           # … in another format
            (t2, w2, "shared@example.com", None, "a_goodGoodGood"),          # anonymous id of tenant A's user
        ]
        ids = [conn.execute("INSERT INTO legacy_user_table (tenant_id, workspace_id, email, phone, anonymous_id) "
                            "VALUES (%s, %s, %s, %s, %s) RETURNING id", row).fetchone()[0] for row in rows]

    result = _cli(database_url, tmp_path, "--json", "preflight")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    categories = report["categories"]

    def ids_of(category):
        return sorted(sorted(f["ids"]) for f in categories[category]["findings"])

    assert report["rows_checked"] == 10 and report["ok"] is False
    assert ids_of("invalid_anonymous_id") == [[ids[1]]]
    assert ids_of("missing_tenant_workspace") == [[ids[2]]]
    assert ids_of("unknown_tenant_workspace") == [[ids[3]]]
    assert ids_of("duplicate_email") == [[ids[4], ids[5]]]
    assert ids_of("duplicate_phone") == [[ids[7], ids[8]]]
    assert ids_of("shared_anonymous_id") == [[ids[0], ids[9]]]
    assert "dup@example.com" not in result.stdout  # PII is masked in the report
    assert categories["duplicate_email"]["findings"][0]["detail"]["email"] == "d***@example.com"

    text = _cli(database_url, tmp_path, "preflight")
    assert text.returncode == 1
    assert "invalid_anonymous_id: 1 row(s)" in text.stdout and f"id {ids[1]}: anonymous_id='a_short'" in text.stdout

    # the seed defect: one such row aborts the whole data migration
    failed = _cli(database_url, tmp_path, "up")
    assert failed.returncode == 1 and "visitor_anonymous_id_check" in failed.stderr
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM lead").fetchone()[0] == 0
        # the documented remedy for errors; duplicates and shared ids are left to the follow-up migrations
        conn.execute("UPDATE legacy_user_table SET anonymous_id = NULL WHERE id = %s", (ids[1],))
        conn.execute("DELETE FROM legacy_user_table WHERE id IN (%s, %s)", (ids[2], ids[3]))
    remaining = _cli(database_url, tmp_path, "preflight", "--errors-only")
    assert remaining.returncode == 0, remaining.stdout
    assert "duplicate_email: 1 group(s)" in remaining.stdout
    assert _cli(database_url, tmp_path, "preflight").returncode == 1  # without --errors-only, duplicates count
    assert _cli(database_url, tmp_path, "up").returncode == 0


def test_preflight_clean_and_missing_table(database_url, tmp_path):
    missing = _cli(database_url, tmp_path, "preflight")
    assert missing.returncode == 2 and "legacy_user_table does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert _cli(database_url, tmp_path, "up", "--to", "20250824_081000").returncode == 0
    with connect(database_url) as conn:
        tenant_id, workspace_id = _scope(conn, "A")
        conn.execute("INSERT INTO legacy_user_table (tenant_id, workspace_id, email, anonymous_id) VALUES "
                     "(%s, %s, 'a@example.com', 'a_abcdefABCDEF')", (tenant_id, workspace_id))
    clean = _cli(database_url, tmp_path, "preflight")
    assert clean.returncode == 0 and "result: clean" in clean.stdout


def test_example_4_end_to_end_with_generated_legacy_users(database_url, tmp_path):
    assert _cli(database_url, tmp_path, "up", "--to", "20250824_081000").returncode == 0
    generated = subprocess.run([sys.executable, str(GENERATOR), "600", "--dirty-fraction", "0.05"],
                               env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True, timeout=60)
    assert generated.returncode == 0, generated.stderr
    assert "inserted 600 legacy users" in generated.stdout

    report = json.loads(_cli(database_url, tmp_path, "--json", "preflight", "--limit", "1000").stdout)
    categories = report["categories"]
    invalid = [f["ids"][0] for f in categories["invalid_anonymous_id"]["findings"]]
    no_workspace = [f["ids"][0] for f in categories["missing_tenant_workspace"]["findings"]]
    assert invalid and no_workspace and categories["duplicate_email"]["count"] > 0
    assert categories["duplicate_phone"]["count"] > 0 and categories["shared_anonymous_id"]["count"] > 0

    with connect(database_url) as conn:
        # the report names exactly the rows the visitor CHECK rejects
        rejected = conn.execute("SELECT array_agg(id ORDER BY id) FROM legacy_user_table "
                                "WHERE anonymous_id !~ '^a_[a-zA-Z0-9]{12}$'").fetchone()[0]
        assert sorted(invalid) == rejected
        conn.execute("UPDATE legacy_user_table SET anonymous_id = NULL WHERE id = ANY(%s)", (invalid,))
        conn.execute("DELETE FROM legacy_user_table WHERE id = ANY(%s)", (no_workspace,))
        pending = conn.execute("SELECT count(*) FROM legacy_user_table WHERE migrated_at IS NULL").fetchone()[0]
        expected_leads = conn.execute("SELECT count(*) FROM legacy_user_table WHERE email IS NOT NULL "
                                      "OR phone IS NOT NULL").fetchone()[0]

    up = _cli(database_url, tmp_path, "up")
    assert up.returncode == 0, up.stderr
    with connect(database_url) as conn:
        log = conn.execute("SELECT records_processed FROM migration_log "
                           "WHERE migration_name = 'migrate_legacy_user_data'").fetchall()
        assert log == [(pending,)]
        assert conn.execute("SELECT count(*) FROM legacy_user_table WHERE migrated_at IS NULL").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM lead").fetchone()[0] == expected_leads
        assert conn.execute("SELECT count(*) FROM lead WHERE merged_into_id IS NOT NULL").fetchone()[0] > 0
        # every link stays inside its tenant, shared anonymous ids included
        conn.execute((MIGRATIONS / "20250824_110000_scope_visitor_keys_by_tenant" / "verify.sql").read_text())
        # the application reads back what SQL encrypted
        from mercurio_migrate import pii

        row = conn.execute("SELECT l.email_enc, u.email FROM lead l JOIN legacy_user_table u ON "
                           "l.email_fingerprint = hmac_sha256(u.email, get_hmac_key()) AND l.created_at = u.created_at "
                           "WHERE u.email IS NOT NULL LIMIT 1").fetchone()
        assert pii.decrypt(row[0], KEY_ENV["MERCURIO_PII_KEY"]) == row[1]

    # and Example 4's rollback returns the legacy rows for another run
    down = _cli(database_url, tmp_path, "down", "--to", "20250824_081000")
    assert down.returncode == 0, down.stderr
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM lead").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM visitor").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM legacy_user_table WHERE migrated_at IS NULL").fetchone()[0] == pending
