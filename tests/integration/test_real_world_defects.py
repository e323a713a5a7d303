"""Defects that third-party migration sets and an adversarial run found (issue 17, items 1–11 and the lock
wait of 18): each test reproduces one against the real server and asserts on the database's state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest

from conftest import TEST_KEYS, run_past_first_retry, write_migration


def applied(db) -> list[str]:
    if db.execute("SELECT to_regclass('public.mercurio_migrations')").fetchone()[0] is None:
        return []
    return [r[0] for r in db.execute("SELECT version FROM public.mercurio_migrations ORDER BY 1").fetchall()]


def exists(db, name: str) -> bool:
    return db.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


# --- 1: comments where the tool used to append its own SQL ------------------------------------------
TRAILING = {
    "comment_before_semicolon": ("CREATE TABLE a (id int) -- note\n;\n", "DROP TABLE a -- note\n;\n"),
    "no_semicolon_then_comment": ("CREATE TABLE b (id int)\n-- note\n", "DROP TABLE b\n-- note\n"),
    "inline_comment_no_semicolon": ("CREATE TABLE c (id int) -- note", "DROP TABLE c -- note"),
    "own_transaction": ("BEGIN;\nCREATE TABLE d (id int) -- note\n;\nCOMMIT -- done\n",
                        "BEGIN;\nDROP TABLE d -- note\n;\nCOMMIT\n-- done\n"),
    "block_comment": ("CREATE TABLE e (id int) /* note */", "DROP TABLE e /* note */"),
    "counted_rows": ("CREATE TABLE f (id int);\nINSERT INTO f VALUES (1) -- one row\n",
                     "DROP TABLE f -- gone\n"),
    "autocommit": ("CREATE TABLE g (id int);\nCREATE INDEX CONCURRENTLY g_id ON g (id) -- note\n",
                   "DROP INDEX CONCURRENTLY g_id -- note\n;\nDROP TABLE g\n-- note\n"),
    "as_written": ("BEGIN;\nCREATE TABLE h (id int) -- note\n;\nCOMMIT;\nBEGIN;\nINSERT INTO h VALUES (1) -- x\n;\n"
                   "COMMIT\n-- end\n", "DROP TABLE h -- note\n"),
}


def trailing_comment_set(root):
    for i, (name, (up, down)) in enumerate(TRAILING.items()):
        write_migration(root, f"20250101_0000{i:02d}_{name}", up, down)
    return root


def test_comments_at_the_end_of_statements_apply_on_every_path(cli, db, tmp_path):
    """A comment before the final ';' and a last statement without ';' followed by a comment, in every mode:
    batched, alone, autocommit, as written; rolled back and verified too (psql runs all of these)."""
    root = trailing_comment_set(tmp_path / "m")
    up = cli("--dir", str(root), "up")
    assert up.returncode == 0, up.stderr
    assert len(applied(db)) == len(TRAILING)
    assert all(exists(db, t) for t in "abcdefgh") and exists(db, "g_id")
    assert db.execute("SELECT count(*) FROM h").fetchone()[0] == 1
    one = cli("--dir", str(root), "down")  # one at a time: not batched
    assert one.returncode == 0, one.stderr
    down = cli("--dir", str(root), "down", "--all")  # several: batched where they can be
    assert down.returncode == 0, down.stderr
    assert applied(db) == [] and not any(exists(db, t) for t in "abcdefgh")
    verify = cli("--dir", str(root), "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_syntax_error_after_a_trailing_comment_points_into_the_file(cli, db, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_a", "CREATE TABLE a (id int) -- fine\n;\nSELECT * FROM nope -- x\n")
    result = cli("--dir", str(tmp_path / "m"), "up")
    assert result.returncode == 1
    assert "migration.sql:3:15: relation \"nope\" does not exist" in result.stderr
    assert applied(db) == [] and not exists(db, "a")


# --- 2, 5: statement-by-statement migrations commit part by part and resume ---------------------------------
def test_a_lock_timeout_retry_never_runs_a_committed_statement_again(db, database_url, tmp_path):
    db.execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0); CREATE TABLE blocked (x int)")
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_bump",
                    "UPDATE counter SET n = n + 1;\nCREATE INDEX CONCURRENTLY blocked_x ON blocked (x);\n",
                    "DROP INDEX CONCURRENTLY blocked_x;\nUPDATE counter SET n = n - 1;\n")
    blocker = psycopg.connect(database_url)
    blocker.execute("LOCK TABLE blocked IN ACCESS EXCLUSIVE MODE")
    code, output = run_past_first_retry(["--dir", str(root), "up"], database_url, blocker)
    assert code == 0, output
    assert "what committed before it is not run again" in output
    assert db.execute("SELECT n FROM counter").fetchone()[0] == 1
    assert applied(db) == ["20250101_000000"] and exists(db, "blocked_x")


def test_retries_exhausted_leave_the_exact_state_and_the_next_run_resumes(cli, db, database_url, tmp_path):
    db.execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0); CREATE TABLE blocked (x int)")
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_bump",
                    "UPDATE counter SET n = n + 1;\nCREATE INDEX CONCURRENTLY blocked_x ON blocked (x);\n")
    blocker = psycopg.connect(database_url)
    blocker.execute("LOCK TABLE blocked IN ACCESS EXCLUSIVE MODE")
    try:
        failed = cli("--dir", str(root), "up", "--lock-timeout", "200ms", "--lock-retries", "2", "--no-preflight",
                     env={"MERCURIO_RETRY_BACKOFF": "0.05"})
    finally:
        blocker.close()
    assert failed.returncode == 1
    assert "statements 1–1 (lines 1–1) committed" in failed.stderr and "resolve" not in failed.stderr
    assert db.execute("SELECT n FROM counter").fetchone()[0] == 1
    status = json.loads(cli("--dir", str(root), "--json", "status").stdout)["migrations"][0]
    assert status["state"] == "partial" and "statements 1–1 committed" in status["partial"]
    resumed = cli("--dir", str(root), "up")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: statements 1–1 committed" in resumed.stderr
    assert db.execute("SELECT n FROM counter").fetchone()[0] == 1  # not 3, not 4
    assert applied(db) == ["20250101_000000"] and exists(db, "blocked_x")
    assert db.execute("SELECT count(*) FROM mercurio_migration_progress").fetchone()[0] == 0


def run_killed_at(database_url: str, root, label: str) -> str:
    """Run `up` with fault injection, killed (SIGKILL) at the fault point named ``label``; returns the trace."""
    trace = root.parent / "trace.txt"
    env = {**os.environ, **TEST_KEYS, "DATABASE_URL": database_url, "MERCURIO_FAULT_TRACE": str(trace)}
    # a dry pass with a point past the end lists the points; then the run is killed at the one named
    trace.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up", "--no-preflight"],
                   env={**env, "MERCURIO_FAULT_AT": "100000", "MERCURIO_FAULT_TRACE": str(trace)},
                   capture_output=True, text=True, timeout=60)
    points = [line.split("\t") for line in trace.read_text().splitlines()]
    number = next(n for n, name in points if name == label)
    return number


def test_a_killed_statement_by_statement_migration_resumes_after_its_last_committed_statement(db, database_url,
                                                                                            tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_side",
                    "CREATE TABLE side (id int);\nINSERT INTO side VALUES (1);\n"
                    "CREATE INDEX CONCURRENTLY side_id ON side (id);\n")
    probe = tmp_path / "probe"
    write_migration(probe, "20250101_000000_side", (root / "20250101_000000_side" / "migration.sql").read_text())
    scratch = database_url.rsplit("/", 1)
    number = run_killed_at(database_url, probe, "20250101_000000:after-line-2")
    db.execute("DROP TABLE IF EXISTS side; DROP TABLE IF EXISTS mercurio_migrations, mercurio_migration_progress, "
               "migration_log")
    del scratch
    env = {**os.environ, **TEST_KEYS, "DATABASE_URL": database_url, "MERCURIO_FAULT_AT": number}
    killed = subprocess.run([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up", "--no-preflight"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9
    assert applied(db) == [] and db.execute("SELECT count(*) FROM side").fetchone()[0] == 1
    env.pop("MERCURIO_FAULT_AT")
    resumed = subprocess.run([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert "relation \"side\" already exists" not in resumed.stderr
    assert db.execute("SELECT count(*) FROM side").fetchone()[0] == 1  # the INSERT did not run twice
    assert applied(db) == ["20250101_000000"] and exists(db, "side_id")


def test_an_unnamed_concurrent_index_is_recognised_after_a_crash_and_not_built_twice(db, database_url, tmp_path):
    db.execute("CREATE TABLE big (id int)")
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_big_index", "CREATE INDEX CONCURRENTLY ON big (id);\n")
    probe = tmp_path / "probe"
    write_migration(probe, "20250101_000000_big_index", "CREATE INDEX CONCURRENTLY ON big (id);\n")
    number = run_killed_at(database_url, probe, "20250101_000000:ran-line-1")  # built, not yet recorded
    db.execute("DROP INDEX big_id_idx; DROP TABLE mercurio_migrations, mercurio_migration_progress, migration_log")
    env = {**os.environ, **TEST_KEYS, "DATABASE_URL": database_url, "MERCURIO_FAULT_AT": number}
    killed = subprocess.run([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up", "--no-preflight"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9 and exists(db, "big_id_idx") and applied(db) == []
    env.pop("MERCURIO_FAULT_AT")
    resumed = subprocess.run([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    indexes = [r[0] for r in db.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'big'::regclass")]
    assert indexes == ["big_id_idx"]  # no big_id_idx1
    assert applied(db) == ["20250101_000000"]


def test_a_commit_in_the_middle_of_a_file_resumes_after_the_committed_block(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_blocks",
                    "BEGIN;\nCREATE TABLE t1 (id int PRIMARY KEY);\nINSERT INTO t1 VALUES (1);\nCOMMIT;\n"
                    "BEGIN;\nINSERT INTO t1 VALUES (1);\nCOMMIT;\n")
    failed = cli("--dir", str(root), "up")
    assert failed.returncode == 1
    assert "statements 1–3 (lines 1–3) committed" in failed.stderr or "committed and are recorded" in failed.stderr
    assert "duplicate key" in failed.stderr and "--applied" not in failed.stderr
    (root / "20250101_000000_blocks" / "migration.sql").write_text(
        "BEGIN;\nCREATE TABLE t1 (id int PRIMARY KEY);\nINSERT INTO t1 VALUES (1);\nCOMMIT;\n"
        "BEGIN;\nINSERT INTO t1 VALUES (2);\nCOMMIT;\n")
    changed = cli("--dir", str(root), "up")
    assert changed.returncode == 1 and "changed since an interrupted run committed part of it" in changed.stderr
    clear = cli("--dir", str(root), "resolve", "20250101_000000", "--rolled-back")
    assert clear.returncode == 0, clear.stderr
    db.execute("DROP TABLE t1")
    again = cli("--dir", str(root), "up")
    assert again.returncode == 0, again.stderr
    assert [r[0] for r in db.execute("SELECT id FROM t1 ORDER BY 1")] == [1, 2]


# --- 3: CONCURRENTLY statements are skipped only when this tool started them ------------------------------
def test_a_concurrent_index_whose_name_is_taken_fails_instead_of_being_skipped(cli, db, tmp_path):
    db.execute("CREATE TABLE mine (x int); CREATE TABLE other (y int); CREATE INDEX taken ON other (y)")
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_idx", "CREATE INDEX CONCURRENTLY taken ON mine (x);\n",
                    "DROP INDEX CONCURRENTLY taken;\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 1
    assert 'relation "taken" already exists' in result.stderr
    assert applied(db) == []
    assert db.execute("SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = 'taken'::regclass"
                      ).fetchone()[0] == "other"


def test_dropping_a_misspelt_index_concurrently_fails(cli, db, tmp_path):
    db.execute("CREATE TABLE t (x int); CREATE INDEX right_name ON t (x)")
    write_migration(tmp_path / "m", "20250101_000000_drop", "DROP INDEX CONCURRENTLY wrong_name;\n")
    result = cli("--dir", str(tmp_path / "m"), "up")
    assert result.returncode == 1 and 'index "wrong_name" does not exist' in result.stderr
    assert applied(db) == [] and exists(db, "right_name")


# --- 6: a role a migration takes does not leak --------------------------------------------------------
@pytest.mark.parametrize("mode", ["transaction", "autocommit"])
def test_set_role_does_not_leak_into_the_bookkeeping_or_later_migrations(cli, db, tmp_path, mode):
    db.execute("DO $$ BEGIN CREATE ROLE mm_app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    db.execute("GRANT CREATE, USAGE ON SCHEMA public TO mm_app")
    root = tmp_path / "m"
    extra = "CREATE INDEX CONCURRENTLY as_app_id ON as_app (id);\n" if mode == "autocommit" else ""
    write_migration(root, "20250101_000000_as_app", f"SET ROLE mm_app;\nCREATE TABLE as_app (id int);\n{extra}")
    write_migration(root, "20250101_000001_later", "CREATE TABLE later (id int);\n")
    result = cli("--dir", str(root), "up")
    try:
        assert result.returncode == 0, result.stderr
        owners = dict(db.execute("SELECT relname, pg_get_userbyid(relowner) FROM pg_class "
                                 "WHERE relname IN ('as_app', 'later')").fetchall())
        assert owners == {"as_app": "mm_app", "later": db.info.user}
        recorded_by = {r[0] for r in db.execute("SELECT applied_by FROM mercurio_migrations")}
        assert recorded_by == {db.info.user}
    finally:
        db.execute("DROP TABLE IF EXISTS as_app, later")
        db.execute("REVOKE ALL ON SCHEMA public FROM mm_app")


# --- 8: a migration that releases the migration lock is not recorded ---------------------------------
def test_a_migration_releasing_the_migration_lock_is_refused_and_not_recorded(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_unlock", "CREATE TABLE t (id int);\nSELECT pg_advisory_unlock_all();\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 1
    assert "released the migration lock" in result.stderr
    assert applied(db) == [] and not exists(db, "t")


def test_a_version_already_recorded_is_an_error_never_an_update(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n")
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);\n")
    assert cli("--dir", str(root), "up", "--to", "20250101_000000").returncode == 0
    # another runner, unaware of the lock, records b meanwhile: the insert must fail, not overwrite
    db.execute("CREATE FUNCTION sneak() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "
               "mercurio_migrations SELECT '20250101_000001', 'b', 'x', NULL, now(), 0, 0, 'transaction', 'other', "
               "NULL, 'other'; END $$")
    db.execute("CREATE EVENT TRIGGER sneak_in ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION sneak()")
    try:
        result = cli("--dir", str(root), "up")
    finally:
        db.execute("DROP EVENT TRIGGER sneak_in")
    assert result.returncode == 1 and "already recorded as applied" in result.stderr
    assert not exists(db, "b")
    assert db.execute("SELECT applied_by FROM mercurio_migrations WHERE version = '20250101_000001'"
                      ).fetchall() == []


# --- 9, 10: refused before anything runs ---------------------------------------------------------------
def test_an_unwritable_dump_path_is_refused_before_anything_runs(cli, db, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_a", "CREATE TABLE a (id int);\n")
    result = cli("--dir", str(tmp_path / "m"), "up", "--dump", "/nonexistent/x.sql")
    assert result.returncode == 2 and "does not exist; nothing was run" in result.stderr
    assert applied(db) == [] and not exists(db, "a")


def test_a_migration_that_rolls_back_its_own_transaction_is_an_error(cli, db, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_oops", "BEGIN;\nCREATE TABLE t1 (id int);\nROLLBACK;\n")
    result = cli("--dir", str(tmp_path / "m"), "up")
    assert result.returncode != 0
    assert "migration.sql:3:1: ROLLBACK undoes the migration's own transaction" in result.stderr
    assert applied(db) == [] and not exists(db, "t1")


# --- 11: the validation report never fails a run ---------------------------------------------------------
def test_a_locked_table_no_migration_touches_is_named_and_the_run_goes_on(cli, db, database_url, tmp_path):
    db.execute("CREATE TABLE busy (id int); INSERT INTO busy VALUES (1)")
    write_migration(tmp_path / "m", "20250101_000000_a", "CREATE TABLE a (id int);\n")
    holder = psycopg.connect(database_url)
    holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
    try:
        result = cli("--dir", str(tmp_path / "m"), "up", "--no-preflight")
    finally:
        holder.close()
    assert result.returncode == 0, result.stderr
    assert "could not count the rows of busy (locked by" in result.stderr
    assert applied(db) == ["20250101_000000"]


# --- 18: the wait for the migration lock is bounded ------------------------------------------------------
def test_the_wait_for_the_migration_lock_is_bounded_and_names_the_holder(cli, db, database_url, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_a", "CREATE TABLE a (id int);\n")
    holder = psycopg.connect(database_url, autocommit=True, application_name="other-deploy")
    holder.execute("SELECT pg_advisory_lock(1296911687, 0)")
    pid = holder.info.backend_pid
    try:
        started = time.monotonic()
        result = cli("--dir", str(tmp_path / "m"), "up", "--lock-wait", "1")
        took = time.monotonic() - started
    finally:
        holder.close()
    assert result.returncode == 1 and took < 20
    assert f"still held by pid {pid} (other-deploy" in result.stderr
    assert "nothing was run" in result.stderr and applied(db) == []
