"""Several transactional migrations in one message: each is still its own transaction with its history row,
failures are located in the right file, lock timeouts are retried alone, nothing leaks from one to the next."""

from __future__ import annotations

import json

import psycopg
import pytest

from conftest import run_past_first_retry, write_migration


def applied(db) -> list[str]:
    if db.execute("SELECT to_regclass('public.mercurio_migrations')").fetchone()[0] is None:
        return []
    return [r[0] for r in db.execute("SELECT version FROM public.mercurio_migrations ORDER BY version").fetchall()]


def relations(db) -> set[str]:
    return {r[0] for r in db.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'").fetchall()}


def test_a_failure_inside_a_batch_keeps_the_earlier_migrations_and_names_the_statement(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_first", "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n")
    write_migration(root, "20250101_000001_second", "CREATE TABLE b (id int);\n")
    write_migration(root, "20250101_000002_third", "BEGIN;\nCREATE TABLE c (id int);\nSELECT nosuch FROM a;\nCOMMIT;\n")
    write_migration(root, "20250101_000003_fourth", "CREATE TABLE d (id int);\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 1
    assert "[1-4/4] applying 4 migrations in one round trip" in result.stderr
    assert "20250101_000002_third/migration.sql:3:8" in result.stderr
    assert 'column "nosuch" does not exist' in result.stderr
    assert "Traceback" not in result.stderr
    assert applied(db) == ["20250101_000000", "20250101_000001"]
    assert relations(db) == {"public.a", "public.b", "public.mercurio_migrations", "public.migration_log"}

    (root / "20250101_000002_third" / "migration.sql").write_text("CREATE TABLE c (id int);\n")
    again = cli("--dir", str(root), "up")
    assert again.returncode == 0, again.stderr
    assert applied(db) == ["20250101_000000", "20250101_000001", "20250101_000002", "20250101_000003"]


def batch_with_a_blocked_alter(db, database_url, tmp_path):
    """Three migrations that batch together, the second altering a table another session holds a lock on;
    (their folder, that session)."""
    db.execute("CREATE TABLE t (id int)")
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_before", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_alter", "ALTER TABLE t ADD COLUMN x int;\n")
    write_migration(root, "20250101_000002_after", "CREATE TABLE b (id int);\n")
    blocker = psycopg.connect(database_url, application_name="blocker-app")
    blocker.execute("LOCK TABLE t IN ACCESS SHARE MODE")
    return root, blocker


def test_a_lock_timeout_inside_a_batch_is_retried_for_that_migration_alone(db, database_url, tmp_path):
    root, blocker = batch_with_a_blocked_alter(db, database_url, tmp_path)
    at_retry = []  # the first migration is committed by the time the retry is announced
    code, stderr = run_past_first_retry(["--dir", str(root), "up"], database_url, blocker,
                                        at_retry=lambda: at_retry.append(applied(db)))
    assert code == 0, stderr
    assert at_retry == [["20250101_000000"]]
    assert "20250101_000001_alter/migration.sql:1:1" in stderr
    assert applied(db) == ["20250101_000000", "20250101_000001", "20250101_000002"]
    assert db.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'").fetchone()[0] == 2


def test_each_batched_migration_is_timed_and_stamped_by_the_server(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_slow", "SELECT pg_sleep(0.3);\n")
    write_migration(root, "20250101_000001_quick", "CREATE TABLE a (id int);\n")
    before = db.execute("SELECT clock_timestamp()").fetchone()[0]
    result = cli("--dir", str(root), "--json", "up")
    assert result.returncode == 0, result.stderr
    assert "[1-2/2]" in result.stderr
    durations = {s["version"]: s["duration_ms"] for s in json.loads(result.stdout)["applied"]}
    recorded = dict(db.execute("SELECT version, execution_ms FROM public.mercurio_migrations").fetchall())
    assert durations["20250101_000000"] >= 300 > durations["20250101_000001"]
    assert {v: float(ms) for v, ms in recorded.items()} == durations
    slow_at, quick_at = [r[0] for r in db.execute(
        "SELECT applied_at FROM public.mercurio_migrations ORDER BY version").fetchall()]
    # stamped when each finished, not with the one now() of the whole message
    assert (slow_at - before).total_seconds() >= 0.3 and quick_at > slow_at
    notes = [r[0] for r in db.execute("SELECT notes FROM migration_log ORDER BY id").fetchall()]
    assert notes[0].startswith("applied by mercurio-migrate") and notes[0].endswith(f"{durations['20250101_000000']:.1f} ms)")


def test_settings_and_temp_tables_do_not_leak_from_one_batched_migration_into_the_next(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_wander", "CREATE SCHEMA other;\nSET search_path TO other;\n"
                                                     "SET lock_timeout = '1h';\nCREATE TEMP TABLE scratch (id int);\n"
                                                     "CREATE TABLE in_other (id int);\n")
    write_migration(root, "20250101_000001_next", """CREATE TABLE in_public (id int);
DO $$
BEGIN
    IF to_regclass('pg_temp.scratch') IS NOT NULL THEN RAISE EXCEPTION 'temp table leaked'; END IF;
    IF current_setting('lock_timeout') <> '5s' THEN
        RAISE EXCEPTION 'lock_timeout leaked: %', current_setting('lock_timeout');
    END IF;
END
$$;
""")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 0, result.stderr
    assert "[1-2/2]" in result.stderr
    assert {"other.in_other", "public.in_public", "public.migration_log"} <= relations(db)
    assert "other.migration_log" not in relations(db)  # the tool's own row went to its table, not search_path's
    assert db.execute("SELECT count(*) FROM public.migration_log").fetchone()[0] == 2


def test_a_deferred_constraint_failing_at_commit_names_the_migration(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_first", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_deferred", """CREATE TABLE p (id int PRIMARY KEY);
CREATE TABLE c (p_id int REFERENCES p DEFERRABLE INITIALLY DEFERRED);
DO $$ BEGIN INSERT INTO c VALUES (1); END $$;
""")
    write_migration(root, "20250101_000002_after", "CREATE TABLE b (id int);\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 1
    assert "20250101_000001_deferred" in result.stderr
    assert "committing it failed" in result.stderr and "violates foreign key constraint" in result.stderr
    assert "Traceback" not in result.stderr
    assert applied(db) == ["20250101_000000"]
    assert relations(db) == {"public.a", "public.mercurio_migrations", "public.migration_log"}


def test_a_message_the_server_refuses_whole_falls_back_to_one_migration_at_a_time(cli, db, tmp_path):
    if db.info.server_version >= 160000:
        pytest.skip("needs a server older than the parser the tool uses (IS JSON is PostgreSQL 16 syntax)")
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_first", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_newer_syntax", "CREATE TABLE b (id int);\nSELECT '{}' IS JSON;\n")
    write_migration(root, "20250101_000002_after", "CREATE TABLE c (id int);\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 1
    # the server parses a whole message before running any of it: the error belongs to the second file
    assert "20250101_000001_newer_syntax/migration.sql:2:" in result.stderr
    assert "syntax error" in result.stderr
    assert applied(db) == ["20250101_000000"]
    assert relations(db) == {"public.a", "public.mercurio_migrations", "public.migration_log"}


def test_rollbacks_are_batched_too_and_recorded(cli, db, tmp_path):
    root = tmp_path / "m"
    for i in range(3):
        write_migration(root, f"20250101_00000{i}_t{i}", f"CREATE TABLE t{i} (id int);\n", f"DROP TABLE t{i};\n")
    assert cli("--dir", str(root), "up").returncode == 0
    result = cli("--dir", str(root), "down", "--all")
    assert result.returncode == 0, result.stderr
    assert "[1-3/3] rolling back 3 migrations in one round trip" in result.stderr
    assert applied(db) == []
    assert relations(db) == {"public.mercurio_migrations", "public.migration_log"}
    notes = [r[0] for r in db.execute("SELECT notes FROM migration_log ORDER BY id").fetchall()]
    assert len(notes) == 6 and all(n.startswith("rolled back by") for n in notes[3:])


def test_a_migration_that_deallocates_prepared_statements_runs_alone(cli, db, tmp_path):
    # a batch records its migrations through statements it prepares at the start of the message: a
    # migration that could drop them (DEALLOCATE ALL) must not share a message with others
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);\n")
    write_migration(root, "20250101_000002_dealloc", "PREPARE mine AS SELECT 1;\nDEALLOCATE ALL;\n")
    write_migration(root, "20250101_000003_c", "CREATE TABLE c (id int);\n")
    write_migration(root, "20250101_000004_d", "CREATE TABLE d (id int);\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 0, result.stderr
    assert "[1-2/5] applying 2 migrations in one round trip" in result.stderr
    assert "[3/5] applying 20250101_000002_dealloc" in result.stderr
    assert "[4-5/5] applying 2 migrations in one round trip" in result.stderr
    assert applied(db) == [f"20250101_00000{i}" for i in range(5)]
    assert db.execute("SELECT count(*) FROM migration_log WHERE notes LIKE 'applied by mercurio-migrate%'"
                      ).fetchone()[0] == 5


def test_ctrl_c_during_a_batch_stops_at_once_and_names_exactly_what_committed(db, database_url, tmp_path):
    """Ctrl-C while a batch runs: the running statement is cancelled at once, and the report (exit 130) names
    the migrations that committed: exactly those the history holds, each with its table."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import TEST_KEYS

    root = tmp_path / "m"
    for i in range(40):
        write_migration(root, f"20250101_{i:06d}_t{i}", f"CREATE TABLE t{i} (id int);\nSELECT pg_sleep(0.05);\n")
    env = {**os.environ, **TEST_KEYS, "DATABASE_URL": database_url}
    process = subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stderr:
        if "in one round trip" in line:
            break
    time.sleep(0.6)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert time.monotonic() - sent < 3, "Ctrl-C took effect late"
    assert process.returncode == 130, rest
    done = applied(db)
    assert 0 < len(done) < 40, done
    assert f"interrupted: {len(done)} migration(s) committed and recorded" in rest
    tables = {r.split(".")[1] for r in relations(db)} - {"mercurio_migrations", "migration_log"}
    assert tables == {f"t{int(v.split('_')[1])}" for v in done}


def test_a_retried_batch_reports_every_migration_once_and_in_the_validation_report(db, database_url, tmp_path):
    """A lock timeout inside a batch: every migration's progress line is printed once, and the run's
    validation report names what the migrations before the retried one created too (one path: nothing
    committed on another path is left out)."""
    root, blocker = batch_with_a_blocked_alter(db, database_url, tmp_path)
    code, stderr = run_past_first_retry(["--dir", str(root), "--json", "up"], database_url, blocker)
    assert code == 0, stderr
    done = [line for line in stderr.splitlines() if line.startswith("applied ")]
    assert sorted(done) == sorted(set(done)) and len(done) == 3, done
    assert applied(db) == ["20250101_000000", "20250101_000001", "20250101_000002"]


def test_the_validation_report_names_what_every_migration_of_the_run_created(cli, db, database_url, tmp_path):
    root, blocker = batch_with_a_blocked_alter(db, database_url, tmp_path)
    import os
    import subprocess
    import sys

    from conftest import TEST_KEYS

    env = {**os.environ, **TEST_KEYS, "DATABASE_URL": database_url, "MERCURIO_RETRY_BACKOFF": "0.3"}
    process = subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "--json", "up",
                                "--lock-timeout", "200ms", "--lock-retries", "5", "--no-preflight"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stderr:
        if "retry 1 of 5" in line:
            break
    blocker.close()
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    created = {d["name"] for d in json.loads(out)["validation"]["created"] if d["kind"] == "table"}
    assert {"a", "b"} <= created, created
