"""Lock timeouts, retries, the pre-flight check and application_name, against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg

from conftest import TEST_KEYS, run_past_first_retry, write_migration

ALTER = "ALTER TABLE t ADD COLUMN x int;"


def setup_table(db, tmp_path):
    db.execute("CREATE TABLE t (id int)")
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_alter", ALTER, "ALTER TABLE t DROP COLUMN x;")
    return root


def hold_lock(database_url, mode="ACCESS SHARE"):
    conn = psycopg.connect(database_url, application_name="blocker-app")
    conn.execute(f"LOCK TABLE t IN {mode} MODE")  # psycopg opened a transaction: idle in transaction now
    return conn


def applied(db) -> list[str]:
    if db.execute("SELECT to_regclass('public.mercurio_migrations')").fetchone()[0] is None:
        return []
    return [r[0] for r in db.execute("SELECT version FROM public.mercurio_migrations").fetchall()]


def test_lock_timeout_retries_then_fails_naming_the_blocking_session(cli, db, database_url, tmp_path):
    root = setup_table(db, tmp_path)
    blocker = hold_lock(database_url)
    try:
        pid = blocker.info.backend_pid
        result = cli("--dir", str(root), "up", "--lock-timeout", "200ms", "--lock-retries", "2", "--no-preflight",
                     env={"MERCURIO_RETRY_BACKOFF": "0.1"})
    finally:
        blocker.close()
    assert result.returncode == 1
    assert "retry 1 of 2" in result.stderr and "retry 2 of 2" in result.stderr
    assert "lock_timeout (200ms) expired 3 time(s) waiting for a lock on t" in result.stderr
    assert f"pid {pid}" in result.stderr and "application_name=blocker-app" in result.stderr
    assert "holds AccessShareLock on t" in result.stderr
    assert applied(db) == []
    assert db.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'").fetchone()[0] == 1


def test_lock_timeout_retry_succeeds_once_the_blocker_goes(db, database_url, tmp_path):
    root = setup_table(db, tmp_path)
    blocker = hold_lock(database_url)
    # the lock is released only once the tool has hit the timeout
    code, stderr = run_past_first_retry(["--dir", str(root), "up"], database_url, blocker)
    assert code == 0, stderr
    assert "blocked by pid" in stderr
    assert applied(db) == ["20250101_000000"]


def test_preflight_refuses_while_a_session_is_idle_in_transaction(cli, db, database_url, tmp_path):
    root = setup_table(db, tmp_path)
    blocker = hold_lock(database_url)
    try:
        time.sleep(2.2)  # idle in transaction longer than the pre-flight's 2 s allowance
        refused = cli("--dir", str(root), "up")
        assert refused.returncode == 1
        assert "1 session(s) would block the migration" in refused.stderr
        assert f"pid {blocker.info.backend_pid}" in refused.stderr and "idle in transaction" in refused.stderr
        assert "--wait-for-clear" in refused.stderr
        assert applied(db) == []
        env = {**os.environ, **TEST_KEYS, "DATABASE_URL": database_url}
        process = subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up",
                                    "--wait-for-clear", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=env)
        for line in process.stderr:  # end the blocking session only once the tool says it waits for it
            if "waiting up to 30 s for 1 session(s) to clear" in line:
                break
        blocker.close()
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert applied(db) == ["20250101_000000"]
    finally:
        blocker.close()


def test_no_preflight_skips_the_check_and_a_free_table_is_fine(cli, db, database_url, tmp_path):
    root = setup_table(db, tmp_path)
    other = psycopg.connect(database_url, autocommit=True)
    try:
        other.execute("SELECT 1")  # an idle (not in transaction) session does not block anything
        result = cli("--dir", str(root), "up")
        assert result.returncode == 0, result.stderr
    finally:
        other.close()


def test_the_tool_sets_application_name_and_timeouts_on_its_session(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_probe",
                    "CREATE TABLE probe AS SELECT current_setting('application_name') AS app, "
                    "current_setting('lock_timeout') AS lock_timeout, "
                    "current_setting('statement_timeout') AS statement_timeout;")
    result = cli("--dir", str(root), "up", "--lock-timeout", "3s", "--statement-timeout", "1min")
    assert result.returncode == 0, result.stderr
    app, lock_timeout, statement_timeout = db.execute("SELECT * FROM probe").fetchone()
    assert app.startswith("mercurio-migrate") and lock_timeout == "3s" and statement_timeout == "1min"


def test_statement_timeout_stops_a_runaway_statement(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_slow", "CREATE TABLE s (id int);\nSELECT pg_sleep(5);\n")
    started = time.monotonic()
    result = cli("--dir", str(root), "up", "--statement-timeout", "300ms")
    assert time.monotonic() - started < 4.5
    assert result.returncode == 1
    assert "canceling statement due to statement timeout" in result.stderr and "migration.sql:2:1" in result.stderr
    assert db.execute("SELECT to_regclass('s')").fetchone()[0] is None


def test_bad_timeout_values_are_usage_errors(cli, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_a", "SELECT 1;")
    result = cli("--dir", str(tmp_path / "m"), "up", "--lock-timeout", "five seconds")
    assert result.returncode == 2 and "not a PostgreSQL duration" in result.stderr
