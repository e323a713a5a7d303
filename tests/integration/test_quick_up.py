"""`up` through libpq directly (no psycopg import) when every pending migration can be batched: the same
database, history, migration_log, output and validation report as the psycopg path; anything it does not
handle goes to the psycopg path before anything runs; a failure hands over what committed."""

from __future__ import annotations

import json

import psycopg

from conftest import run_past_first_retry, write_migration

PSYCOPG_PATH = {"MERCURIO_NO_QUICK_PATH": "1"}
IMPORTS = {"PYTHONPROFILEIMPORTTIME": "1"}


def imported_psycopg(result) -> bool:
    return any("psycopg" in line for line in result.stderr.splitlines() if line.startswith("import time:"))


def reference_set(tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_tenants", """-- Purpose: tenants
BEGIN;
CREATE TABLE tenant (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, timezone VARCHAR(50) DEFAULT 'UTC');
COMMENT ON TABLE tenant IS 'tenants';
COMMIT;
""", "DROP TABLE tenant;\n")
    write_migration(root, "20250101_000001_workspaces", """CREATE TABLE workspace (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenant(id),
    created_at TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX idx_workspace_tenant ON workspace(tenant_id, created_at DESC);
""", "DROP TABLE workspace;\n")
    write_migration(root, "20250101_000002_function", """CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.created_at := now(); RETURN NEW; END $$;
CREATE TRIGGER workspace_touch BEFORE INSERT ON workspace FOR EACH ROW EXECUTE FUNCTION touch();
""", "DROP TRIGGER workspace_touch ON workspace;\nDROP FUNCTION touch();\n")
    return root


def history(url: str) -> tuple[list, list]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, name, checksum, rollback_checksum, records_processed, transaction_mode, "
                            "applied_by, client_host, tool_version, execution_ms > 0, applied_at <= now() "
                            "FROM public.mercurio_migrations ORDER BY version").fetchall()
        log = conn.execute("SELECT migration_name, records_processed, regexp_replace(notes, '[0-9.]+ ms', 'N ms') "
                           "FROM public.migration_log ORDER BY id").fetchall()
    return rows, log


def without_times(document: dict) -> dict:
    for step in document.get("applied") or document["rolled_back"]:
        assert step.pop("duration_ms") > 0
    return document


def test_quick_up_needs_no_psycopg_and_gives_what_the_psycopg_path_gives(cli, database_url, other_url, tmp_path):
    root = reference_set(tmp_path)
    quick = cli("--dir", str(root), "--json", "up", env=IMPORTS)
    slow = cli("--dir", str(root), "--json", "up", database_url=other_url, env={**IMPORTS, **PSYCOPG_PATH})
    assert quick.returncode == 0 and slow.returncode == 0, quick.stderr[-800:] + slow.stderr[-800:]
    assert not imported_psycopg(quick)
    assert imported_psycopg(slow)  # the switch works, so the comparison means something
    assert without_times(json.loads(quick.stdout)) == without_times(json.loads(slow.stdout))
    assert history(database_url) == history(other_url)
    report = json.loads(quick.stdout)["validation"]
    created = {(d["kind"], d["name"]) for d in report["created"]}
    assert {("table", "tenant"), ("table", "workspace")} <= created, created
    assert report["new_foreign_keys"] and report["new_foreign_keys"][0]["table"] == "workspace"
    text = cli("--dir", str(root), "status")
    assert text.returncode == 0 and text.stdout.count("applied") >= 3


def test_what_the_quick_path_does_not_handle_goes_the_psycopg_way_before_anything_runs(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_rows", "INSERT INTO a VALUES (1), (2);\n")  # a row count to record
    result = cli("--dir", str(root), "--json", "up", env=IMPORTS)
    assert result.returncode == 0, result.stderr
    assert imported_psycopg(result)
    assert [s["records_processed"] for s in json.loads(result.stdout)["applied"]] == [0, 2]

    write_migration(root, "20250101_000002_checked", "CREATE TABLE b (id int);\n",
                    verify="SELECT count(*) = 0 FROM b;\n")
    checked = cli("--dir", str(root), "up", env=IMPORTS)
    assert checked.returncode == 0, checked.stderr
    assert imported_psycopg(checked)


def test_a_held_migration_lock_sends_up_the_psycopg_way_which_waits_and_says_so(cli, db, database_url, tmp_path):
    import subprocess
    import sys
    import time

    from conftest import TEST_KEYS

    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);\n")
    holder = psycopg.connect(database_url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(1296911687, 0)")
    env = {**__import__("os").environ, **TEST_KEYS, "DATABASE_URL": database_url}
    process = subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    holder.execute("SELECT pg_advisory_unlock(1296911687, 0)")
    holder.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "waiting for the migration lock" in stderr
    assert db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0] == 2


def test_a_failure_on_the_quick_path_hands_over_what_committed_and_reports_it_in_full(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_bad", "CREATE TABLE b (id int);\nALTER TABLE nosuch ADD COLUMN x int;\n")
    write_migration(root, "20250101_000002_c", "CREATE TABLE c (id int);\n")
    result = cli("--dir", str(root), "--json", "up")
    assert result.returncode == 1
    assert "20250101_000001_bad/migration.sql:2:1" in result.stderr
    assert 'relation "nosuch" does not exist' in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("applied 20250101_000000_a") == 1  # once, not again by the psycopg path
    assert [r[0] for r in db.execute("SELECT version FROM public.mercurio_migrations").fetchall()] == [
        "20250101_000000"]
    assert db.execute("SELECT to_regclass('public.b') IS NULL AND to_regclass('public.c') IS NULL").fetchone()[0]


def test_quick_down_needs_no_psycopg_and_records_what_the_psycopg_path_records(cli, database_url, other_url,
                                                                                tmp_path):
    root = reference_set(tmp_path)
    for url in (database_url, other_url):
        assert cli("--dir", str(root), "up", database_url=url).returncode == 0
    quick = cli("--dir", str(root), "--json", "down", "--all", env=IMPORTS)
    slow = cli("--dir", str(root), "--json", "down", "--all", database_url=other_url,
               env={**IMPORTS, **PSYCOPG_PATH})
    assert quick.returncode == 0 and slow.returncode == 0, quick.stderr[-800:] + slow.stderr[-800:]
    assert not imported_psycopg(quick) and imported_psycopg(slow)
    assert "[1-3/3] rolling back 3 migrations in one round trip" in quick.stderr
    assert without_times(json.loads(quick.stdout)) == without_times(json.loads(slow.stdout))
    assert history(database_url) == history(other_url)
    rows, log = history(database_url)
    notes = [n for _, _, n in log]
    assert rows == [] and len(notes) == 6
    assert all(n.startswith("rolled back by mercurio-migrate") and n.endswith(", N ms)") for n in notes[3:])

def test_a_rollback_that_times_out_on_the_quick_path_is_retried_and_steps_still_count(cli, db, database_url,
                                                                                      tmp_path):
    root = tmp_path / "m"
    for i in range(3):
        write_migration(root, f"20250101_00000{i}_t{i}", f"CREATE TABLE t{i} (id int);\n", f"DROP TABLE t{i};\n")
    assert cli("--dir", str(root), "up").returncode == 0
    blocker = psycopg.connect(database_url)
    blocker.execute("LOCK TABLE t1 IN ACCESS SHARE MODE")  # the second newest cannot drop its table yet
    code, stderr = run_past_first_retry(["--dir", str(root), "down", "--steps", "2"], database_url, blocker)
    assert code == 0, stderr
    # two rolled back (one by the quick path, one after the retry), the third still applied
    assert [r[0] for r in db.execute("SELECT version FROM public.mercurio_migrations").fetchall()] == [
        "20250101_000000"]
    assert db.execute("SELECT to_regclass('t0') IS NOT NULL AND to_regclass('t1') IS NULL").fetchone()[0]


def test_killing_up_in_the_middle_of_a_batch_leaves_schema_and_history_in_step(db, database_url, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import TEST_KEYS

    root = tmp_path / "m"
    count = 300
    for i in range(count):
        write_migration(root, f"20250101_{i // 60:02d}{i % 60:02d}00_t{i}",
                        f"CREATE TABLE t{i} (id int);\nSELECT pg_sleep(0.005);\n", f"DROP TABLE t{i};\n")
    env = {**os.environ, **TEST_KEYS, "DATABASE_URL": database_url}
    process = subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up", "--no-validate"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        made = db.execute("SELECT count(*) FROM pg_class WHERE relname ~ '^t[0-9]+$' AND relkind = 'r'").fetchone()[0]
        if made >= 20:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # the server ends that session when it next writes to the dead client; wait for it to go
    while time.monotonic() < deadline and db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'mercurio-migrate%'").fetchone()[0]:
        time.sleep(0.05)
    tables = {r[0] for r in db.execute("SELECT relname FROM pg_class WHERE relname ~ '^t[0-9]+$' AND relkind = 'r'")}
    recorded = {r[0] for r in db.execute("SELECT name FROM public.mercurio_migrations")}
    assert 20 <= len(tables) < count  # killed in the middle
    assert recorded == tables  # every table has its history row, and every row its table
    logged = db.execute("SELECT count(*) FROM public.migration_log").fetchone()[0]
    assert logged == len(recorded)
    again = subprocess.run([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up"], env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0] == count


def test_a_file_is_parsed_once_when_the_quick_path_hands_over(database_url, tmp_path, monkeypatch):
    """The quick path parses its share of the files itself; when it then leaves the run to psycopg (a
    statement it does not batch), that path reuses those parses instead of parsing the files again."""
    from mercurio_migrate import engine
    from mercurio_migrate.config import Settings

    root = tmp_path / "m"
    for i in range(12):
        write_migration(root, f"20250101_0000{i:02d}_t{i}", f"CREATE TABLE t{i} (id int);\n")
    write_migration(root, "20250101_000059_rows", "INSERT INTO t0 VALUES (1);\n")  # a row count: not batched
    parsed: list[str] = []
    real = engine.parse
    monkeypatch.setattr(engine, "parse", lambda text, path="<sql>", **kw: parsed.append(str(path)) or real(
        text, path, **kw))
    result = engine.Engine(Settings(database_url=database_url, migrations_dir=root)).up()
    assert len(result.steps) == 13
    assert parsed and len(parsed) == len(set(parsed)), sorted(parsed)
