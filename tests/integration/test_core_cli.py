"""The core commands end to end: the real CLI in a subprocess against a real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from conftest import MIGRATIONS, write_migration


def tables(db) -> set[str]:
    rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def history(db) -> list[tuple[str, str]]:
    return db.execute("SELECT version, name FROM public.mercurio_migrations ORDER BY version").fetchall()


def test_shipped_migrations_up_status_down_all_up_noop(cli, db):
    first = cli("--dir", str(MIGRATIONS), "up")
    assert first.returncode == 0, first.stderr
    assert "create_tenant_tables" in first.stdout and "applied" in first.stdout
    status = cli("--dir", str(MIGRATIONS), "--json", "status")
    assert status.returncode == 0, status.stderr
    states = json.loads(status.stdout)["migrations"]
    assert states and all(m["state"] == "applied" for m in states)
    assert {"version", "name", "state", "applied_at", "checksum", "purpose"} <= set(states[0])
    assert {"tenant", "workspace", "api_key", "visitor", "lead", "identity_link"} <= tables(db)

    down = cli("--dir", str(MIGRATIONS), "--json", "down", "--all")
    assert down.returncode == 0, down.stderr
    rolled = json.loads(down.stdout)["rolled_back"]
    assert [r["version"] for r in rolled] == sorted((m["version"] for m in states), reverse=True)
    # the progress table came with the first statement-by-statement migration (the seed's Example 3), empty now
    assert tables(db) == {"mercurio_migrations", "mercurio_migration_progress", "migration_log"}
    assert db.execute("SELECT count(*) FROM mercurio_migration_progress").fetchone()[0] == 0

    again = cli("--dir", str(MIGRATIONS), "--json", "up")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["applied"]) == len(states)
    noop = cli("--dir", str(MIGRATIONS), "--json", "up")
    assert noop.returncode == 0 and json.loads(noop.stdout) == {"applied": []}
    # the tool's own rows (some rollbacks of the reference set log a row of their own, as the seed's does)
    log_rows = db.execute("SELECT count(*) FROM migration_log WHERE notes LIKE '%by mercurio-migrate%'").fetchone()[0]
    assert log_rows == 3 * len(states)


def test_syntax_error_mid_file_names_file_line_column_and_runs_nothing(cli, db, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_ok", "CREATE TABLE a (id int);")
    write_migration(tmp_path / "m", "20250101_000001_broken",
                    "BEGIN;\nCREATE TABLE b (id int);\nCREATE TABLE c (id int) WITHH (fillfactor = 70);\nCOMMIT;\n")
    result = cli("--dir", str(tmp_path / "m"), "up")
    assert result.returncode == 1
    assert "20250101_000001_broken/migration.sql:3:25" in result.stderr
    assert 'syntax error at or near "WITHH"' in result.stderr
    assert "Traceback" not in result.stderr
    assert tables(db) == set()  # the valid first migration did not run either


def test_runtime_error_rolls_back_the_whole_migration_and_names_the_statement(cli, db, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_ok", "CREATE TABLE a (id int);")
    write_migration(tmp_path / "m", "20250101_000001_fails",
                    "-- Migration: x\nBEGIN;\nCREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n"
                    "CREATE INDEX idx_missing\n  ON missing_table (id);\nCOMMIT;\n")
    result = cli("--dir", str(tmp_path / "m"), "--json", "up")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["cause"]["file"].endswith("20250101_000001_fails/migration.sql")
    assert (error["cause"]["line"], error["cause"]["column"]) == (5, 1)
    assert error["cause"]["pg_message"] == 'relation "missing_table" does not exist'
    assert error["cause"]["statement"] == "CREATE INDEX idx_missing"
    assert "rolled back" in error["state"]
    assert tables(db) == {"a", "mercurio_migrations", "migration_log"}
    assert history(db) == [("20250101_000000", "ok")]


def test_error_detail_and_hint_from_postgresql_are_shown(cli, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_dup",
                    "CREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1), (1);\n")
    result = cli("--dir", str(tmp_path / "m"), "up")
    assert result.returncode == 1
    assert "migration.sql:2:1" in result.stderr
    assert "duplicate key value violates unique constraint" in result.stderr
    assert "DETAIL: Key (id)=(1) already exists." in result.stderr


CONCURRENT = """-- Migration: concurrent indexes
BEGIN;
CREATE INDEX CONCURRENTLY idx_t_a ON t (a);
CREATE UNIQUE INDEX CONCURRENTLY idx_t_b ON t (b);
CREATE INDEX CONCURRENTLY idx_t_c ON t (c);
COMMIT;
"""


def test_concurrent_migration_failing_half_way_drops_invalid_index_and_resumes(cli, db, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_table",
                    "CREATE TABLE t (a int, b int, c int);\nINSERT INTO t VALUES (1, 1, 1), (2, 1, 2);\n")
    write_migration(tmp_path / "m", "20250101_000001_indexes", CONCURRENT)
    failed = cli("--dir", str(tmp_path / "m"), "up")
    assert failed.returncode == 1
    assert "cannot run inside a transaction block" in failed.stderr  # the warning
    assert "its own BEGIN/COMMIT (line 2, line 6) are skipped" in failed.stderr
    assert "migration.sql:4:1" in failed.stderr and "could not create unique index" in failed.stderr
    assert "idx_t_b" in failed.stderr and "dropped" in failed.stderr
    indexes = dict(db.execute("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                              "WHERE i.indrelid = 't'::regclass").fetchall())
    assert indexes == {"idx_t_a": True}
    assert history(db) == [("20250101_000000", "table")]

    db.execute("UPDATE t SET b = 2 WHERE a = 2")
    built_before = db.execute("SELECT 'idx_t_a'::regclass::oid").fetchone()[0]
    resumed = cli("--dir", str(tmp_path / "m"), "up")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: statements 1–1 committed in an interrupted run" in resumed.stderr
    assert db.execute("SELECT 'idx_t_a'::regclass::oid").fetchone()[0] == built_before  # not built again
    indexes = dict(db.execute("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                              "WHERE i.indrelid = 't'::regclass").fetchall())
    assert indexes == {"idx_t_a": True, "idx_t_b": True, "idx_t_c": True}
    assert [v for v, _ in history(db)] == ["20250101_000000", "20250101_000001"]


def test_drift_is_shown_and_refused_unless_allowed_and_missing_is_shown(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    assert cli("--dir", str(root), "up").returncode == 0
    (root / "20250101_000000_a" / "migration.sql").write_text("CREATE TABLE a (id bigint);")
    write_migration(root, "20250101_000002_c", "CREATE TABLE c (id int);")
    status = json.loads(cli("--dir", str(root), "--json", "status").stdout)["migrations"]
    assert [(m["version"], m["state"]) for m in status] == [
        ("20250101_000000", "drifted"), ("20250101_000001", "applied"), ("20250101_000002", "pending")]
    refused = cli("--dir", str(root), "up")
    assert refused.returncode == 1
    assert "20250101_000000_a (migration.sql)" in refused.stderr and "--allow-drift" in refused.stderr
    assert "c" not in tables(db)
    assert cli("--dir", str(root), "up", "--allow-drift").returncode == 0
    assert "c" in tables(db)

    shutil.rmtree(root / "20250101_000001_b")
    status = json.loads(cli("--dir", str(root), "--json", "status").stdout)["migrations"]
    assert ("20250101_000001", "missing") in [(m["version"], m["state"]) for m in status]


def test_checksums_leave_out_line_endings_and_bom_and_what_0_1_0_recorded_still_matches(cli, db, tmp_path):
    import hashlib

    root = tmp_path / "m"
    sql, rollback = "CREATE TABLE a (id int);\nCOMMENT ON TABLE a IS 'x';\n", "DROP TABLE a;\n"
    crlf_bom = b"\xef\xbb\xbf" + sql.encode().replace(b"\n", b"\r\n")
    folder = write_migration(root, "20250101_000000_a", sql, rollback)
    migration = folder / "migration.sql"
    migration.write_bytes(crlf_bom)
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);\r\n", "DROP TABLE b;")

    def recorded() -> list[tuple[str, str]]:
        return db.execute("SELECT checksum, rollback_checksum FROM public.mercurio_migrations "
                          "ORDER BY version").fetchall()

    def states() -> list[str]:
        return [m["state"] for m in json.loads(cli("--dir", str(root), "--json", "status").stdout)["migrations"]]

    sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    assert cli("--dir", str(root), "up").returncode == 0
    # what is recorded is the checksum of the LF text without a BOM, as `sha256sum` gives it for an LF file
    assert recorded() == [(sha(sql.encode()), sha(rollback.encode())),
                          (sha(b"CREATE TABLE b (id int);\n"), sha(b"DROP TABLE b;"))]
    migration.write_text(sql)  # a checkout with other line endings, an editor that drops the BOM
    assert states() == ["applied", "applied"]

    # a database that 0.1.0 migrated holds sha256 of the bytes as they were: not drifted after the upgrade, with
    # the file as it was or converted since
    db.execute("UPDATE public.mercurio_migrations SET checksum = %s WHERE version = '20250101_000000'",
               (sha(crlf_bom),))
    migration.write_bytes(crlf_bom)
    assert states() == ["applied", "applied"]
    migration.write_text(sql)
    assert states() == ["applied", "applied"]
    assert cli("--dir", str(root), "up").returncode == 0
    # recorded again (here by `resolve`), it is recorded the new way
    assert cli("--dir", str(root), "resolve", "20250101_000000", "--rolled-back").returncode == 0
    assert cli("--dir", str(root), "resolve", "20250101_000000", "--applied").returncode == 0
    assert recorded()[0][0] == sha(sql.encode())

    # any other change is still a drift, and says nothing about whitespace
    migration.write_text(sql.replace("'x'", "'y'"))
    assert states() == ["drifted", "applied"]
    refused = cli("--dir", str(root), "up")
    assert refused.returncode == 1 and "20250101_000000_a (migration.sql)" in refused.stderr
    assert "whitespace" not in refused.stderr


def test_ten_concurrent_up_processes_apply_each_migration_exactly_once(database_url, db, tmp_path):
    root = tmp_path / "m"
    for i in range(6):
        write_migration(root, f"20250101_00000{i}_t{i}",
                        f"CREATE TABLE t{i} (id int);\nSELECT pg_sleep(0.05);\nINSERT INTO t{i} VALUES ({i});\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MERCURIO_MIGRATIONS_DIR"}
    env["DATABASE_URL"] = database_url
    procs = [subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "--json", "up"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(10)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, [o[1] for o in outputs]
    applied = [a["version"] for out, _ in outputs for a in json.loads(out)["applied"]]
    assert sorted(applied) == [f"20250101_00000{i}" for i in range(6)]
    assert len(history(db)) == 6
    assert db.execute("SELECT count(*) FROM migration_log").fetchone()[0] == 6
    for i in range(6):
        assert db.execute(f"SELECT count(*) FROM t{i}").fetchone()[0] == 1
    waited = [err for _, err in outputs if "waiting: waiting for the migration lock" in err]
    assert waited, "no process reported that it waited for the lock"


def test_down_refuses_before_running_anything_when_a_rollback_is_missing(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);")
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    assert cli("--dir", str(root), "up").returncode == 0
    result = cli("--dir", str(root), "down", "--all")
    assert result.returncode == 1
    assert "20250101_000000_a: has no rollback.sql" in result.stderr
    assert {"a", "b"} <= tables(db)
    assert len(history(db)) == 2
    one = cli("--dir", str(root), "down")
    assert one.returncode == 0, one.stderr
    assert "b" not in tables(db)


def test_up_to_down_to_and_steps(cli, db, tmp_path):
    root = tmp_path / "m"
    for i in range(4):
        write_migration(root, f"20250101_00000{i}_t{i}", f"CREATE TABLE t{i} (id int);", f"DROP TABLE t{i};")
    assert cli("--dir", str(root), "up", "--to", "20250101_000001").returncode == 0
    assert [v for v, _ in history(db)] == ["20250101_000000", "20250101_000001"]
    assert cli("--dir", str(root), "up", "--to", "20250101_000003_t3").returncode == 0
    assert len(history(db)) == 4
    assert cli("--dir", str(root), "down", "--steps", "2").returncode == 0
    assert len(history(db)) == 2
    assert cli("--dir", str(root), "down", "--to", "20250101_000000").returncode == 0
    assert [v for v, _ in history(db)] == ["20250101_000000"]
    unknown = cli("--dir", str(root), "up", "--to", "20990101_000000")
    assert unknown.returncode == 2 and "unknown migration version" in unknown.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n")
    result = cli("--dir", str(root), "--json", "up", "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True
    assert plan["plan"][0]["mode"] == "own-transaction"
    assert plan["plan"][0]["statements"] == ["CREATE TABLE a (id int)"]
    assert tables(db) == set()


def test_migration_log_accepts_the_seeds_insert_verbatim_and_counts_records(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_data",
                    "BEGIN;\nCREATE TABLE src (id int);\nINSERT INTO src SELECT generate_series(1, 25);\n"
                    "UPDATE src SET id = id + 1 WHERE id <= 10;\nSELECT count(*) FROM src;\n"
                    "INSERT INTO migration_log (migration_name, records_processed, completed_at)\n"
                    "VALUES ('migrate_legacy_user_data', (SELECT COUNT(*) FROM src), NOW());\nCOMMIT;\n")
    result = cli("--dir", str(root), "--json", "up")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"][0]["records_processed"] == 25 + 10 + 1
    rows = db.execute("SELECT migration_name, records_processed FROM migration_log ORDER BY id").fetchall()
    assert rows == [("migrate_legacy_user_data", 25), ("20250101_000000_data", 36)]
    log = json.loads(cli("--dir", str(root), "--json", "log", "--limit", "1").stdout)["log"]
    assert len(log) == 1


def test_history_records_checksums_user_host_and_tool_version(cli, db, tmp_path):
    root = tmp_path / "m"
    folder = write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    assert cli("--dir", str(root), "up").returncode == 0
    import hashlib

    row = db.execute("SELECT checksum, rollback_checksum, applied_by, client_host, tool_version, transaction_mode "
                     "FROM public.mercurio_migrations").fetchone()
    assert row[0] == hashlib.sha256((folder / "migration.sql").read_bytes()).hexdigest()
    assert row[1] == hashlib.sha256((folder / "rollback.sql").read_bytes()).hexdigest()
    import socket

    assert row[2] == "postgres" and row[3] == socket.gethostname() and row[4] and row[5] == "transaction"


def test_resolve_marks_without_running(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    result = cli("--dir", str(root), "resolve", "20250101_000000", "--applied")
    assert result.returncode == 0, result.stderr
    assert history(db) == [("20250101_000000", "a")] and "a" not in tables(db)
    assert cli("--dir", str(root), "resolve", "20250101_000000", "--rolled-back").returncode == 0
    assert history(db) == []
    assert cli("--dir", str(root), "resolve", "20250101_000000").returncode == 2


def test_layout_errors_exit_2_and_run_nothing(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);")
    write_migration(root, "20251340_250000_x", "CREATE TABLE x (id int);")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 2
    assert "20251340_250000_x: timestamp 20251340_250000 is not a real date and time" in result.stderr
    assert tables(db) == set()


def test_password_never_appears_in_output(cli, tmp_path):
    url = "postgresql://app:Sup3rS3cretPw@127.0.0.1:1/mercurio"
    write_migration(tmp_path / "m", "20250101_000000_a", "SELECT 1;")
    for args in (("up",), ("--json", "status"), ("--json", "up", "--dry-run")):
        result = cli("--dir", str(tmp_path / "m"), *args, database_url=url)
        assert result.returncode == 1
        assert "Sup3rS3cretPw" not in result.stdout + result.stderr
        assert "app:***@127.0.0.1:1" in result.stderr


def test_new_creates_folder_from_templates(cli, tmp_path):
    result = cli("--dir", str(tmp_path / "m"), "new", "add_tenant_timezone")
    assert result.returncode == 0, result.stderr
    folders = list((tmp_path / "m").iterdir())
    assert len(folders) == 1 and folders[0].name.endswith("_add_tenant_timezone")
    text = (folders[0] / "migration.sql").read_text()
    for key in ("-- Migration:", "-- Purpose:", "-- Author:", "-- Date:", "-- Requirements:", "BEGIN;", "COMMIT;"):
        assert key in text
    assert (folders[0] / "rollback.sql").exists()
    bad = cli("--dir", str(tmp_path / "m"), "new", "Bad-Name")
    assert bad.returncode == 2 and "bad characters" in bad.stderr
