"""Every bad input we know of, tried through the real CLI: a clear message, the documented exit code,
no traceback, nothing lost. Each case also records what the user saw; `scripts/reliability_report.py`
turns those records into the table in docs/reliability.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import write_migration

RECORD = os.environ.get("MERCURIO_RELIABILITY_RECORD")


def check(result, case: str, exit_code: int, *needles: str) -> None:
    """Assert the outcome and record it for docs/reliability.md."""
    output = result.stdout + result.stderr
    assert result.returncode == exit_code, output
    assert "Traceback" not in output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    if RECORD:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        shown = next((line for line in lines if needles and needles[0] in line), lines[0] if lines else "")
        # temporary test folders (the test cluster's too, in /dev/shm or /tmp) would only be noise in the
        # documentation
        shown = re.sub(r"/tmp/[^\s:'\"]*?/m/", "migrations/", shown)
        shown = re.sub(r"(/tmp|/dev/shm)/[^\s:'\"\\]*", "…", shown)
        shown = re.sub(r"%2F(tmp|dev%2Fshm)%2F[^\s:&'\"]*", "…", shown)
        with open(RECORD, "a") as handle:
            handle.write(json.dumps({"case": case, "exit": result.returncode, "shown": shown}) + "\n")


def folder(tmp_path, name="20250101_000000_a", sql="CREATE TABLE a (id int);", rollback="DROP TABLE a;", **extra):
    return write_migration(tmp_path / "m", name, sql, rollback, **extra).parent


@pytest.mark.parametrize(("case", "name", "files", "needle"), [
    ("folder with an impossible timestamp", "20251340_250000_x", {"migration.sql": b"SELECT 1;"},
     "timestamp 20251340_250000 is not a real date and time"),
    ("folder name with bad characters", "20250101_000000_Add-Column", {"migration.sql": b"SELECT 1;"},
     "has bad characters"),
    ("folder name without a timestamp", "add_column", {"migration.sql": b"SELECT 1;"}, "must be YYYYMMDD_HHMMSS"),
    ("missing migration.sql", "20250101_000000_a", {"rollback.sql": b"SELECT 1;"}, "migration.sql is missing"),
    ("empty migration.sql", "20250101_000000_a", {"migration.sql": b"\n  \n"}, "migration.sql is empty"),
    ("binary migration.sql", "20250101_000000_a", {"migration.sql": b"\x89PNG\r\n\x1a\n\x00\x00"},
     "is not UTF-8"),
    ("migration.sql in Latin-1", "20250101_000000_a", {"migration.sql": b"SELECT 'caf\xe9';"},
     "is not UTF-8 (invalid byte 0xe9 at line 1)"),
])
def test_layout_faults_exit_2(cli, db, tmp_path, case, name, files, needle):
    path = tmp_path / "m" / name
    path.mkdir(parents=True)
    for file, data in files.items():
        (path / file).write_bytes(data)
    check(cli("--dir", str(tmp_path / "m"), "up"), case, 2, needle, "nothing was run")


@pytest.mark.parametrize(("case", "make", "needle"), [
    ("migration.sql is a named pipe (FIFO)", lambda path: os.mkfifo(path), "is a named pipe (FIFO), not a regular file"),
    ("migration.sql is a link to /dev/zero", lambda path: path.symlink_to("/dev/zero"),
     "is a character device, not a regular file"),
])
def test_migration_sql_that_is_not_a_regular_file(cli, db, tmp_path, case, make, needle):
    path = tmp_path / "m" / "20250101_000000_a"
    path.mkdir(parents=True)
    make(path / "migration.sql")
    # before the fix: a FIFO waited for a writer, /dev/zero was read until memory ran out
    check(cli("--dir", str(tmp_path / "m"), "up", timeout=30), case, 2, needle, "nothing was run")


def _without_root_file_access() -> list[str]:
    """A prefix that runs a command with the permission checks any user meets. The tests run as root, who
    reads every folder whatever its mode: as root, the command keeps uid 0 (its database role and files)
    but loses the two capabilities that bypass permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and no setpriv to drop root's file access: an unreadable folder cannot be made")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def test_unreadable_migration_folder_is_reported_with_the_other_layout_errors(cli, db, database_url, tmp_path):
    root = folder(tmp_path)
    locked = root / "20250102_000000_locked"
    write_migration(root, locked.name, "CREATE TABLE locked (id int);")
    (root / "20250103_000000_empty").mkdir()
    prefix = _without_root_file_access()
    locked.chmod(0)
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", "import os, sys; os.listdir(sys.argv[1])", str(locked)],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            pytest.skip(f"the folder stays readable here ({' '.join(prefix) or 'not root'}): nothing to test")
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MERCURIO_MIGRATIONS_DIR")}
        result = subprocess.run([*prefix, sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up"],
                                capture_output=True, text=True, timeout=60, env={**env, "DATABASE_URL": database_url})
    finally:
        locked.chmod(0o755)
    check(result, "migration folder the user cannot read (chmod 000)", 2, "20250102_000000_locked: cannot be read",
          "Permission denied", "read and search permission", "20250103_000000_empty: migration.sql is missing",
          "nothing was run")
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is None


def test_duplicate_version(cli, tmp_path):
    folder(tmp_path, "20250101_000000_a")
    root = folder(tmp_path, "20250101_000000_b", "SELECT 1;")
    check(cli("--dir", str(root), "up"), "two folders with the same version", 2, "duplicate version 20250101_000000")


def test_stray_file_is_a_warning_only(cli, tmp_path):
    root = folder(tmp_path)
    (root / "20250101_000000_a" / "notes.txt").write_text("x")
    check(cli("--dir", str(root), "up"), "stray file in a migration folder", 0, "stray file in a migration folder")


def test_missing_migrations_directory(cli, tmp_path):
    check(cli("--dir", str(tmp_path / "nope"), "status"), "migrations directory does not exist", 2,
          "migrations directory does not exist")


def test_comment_only_migration(cli, tmp_path):
    root = folder(tmp_path, sql="-- Migration: nothing yet\n-- TODO\n")
    check(cli("--dir", str(root), "up"), "migration.sql with only comments", 2, "holds no SQL statements")


def test_syntax_error(cli, db, tmp_path):
    root = folder(tmp_path, sql="CREATE TABLE a (id int);\nCREATE TABEL b (id int);\n")
    check(cli("--dir", str(root), "up"), "SQL syntax error", 1, "migration.sql:2:8", 'syntax error at or near "TABEL"')
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is None


def test_reference_to_a_missing_object(cli, db, tmp_path):
    root = folder(tmp_path, sql="CREATE TABLE a (id int);\nALTER TABLE nope ADD COLUMN x int;\n")
    check(cli("--dir", str(root), "up"), "migration references an object that does not exist", 1,
          "migration.sql:2:1", 'relation "nope" does not exist', "rolled back")
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is None


def test_copy_from_stdin(cli, tmp_path):
    root = folder(tmp_path, sql="CREATE TABLE a (id int);\nCOPY a FROM STDIN;\n")
    check(cli("--dir", str(root), "up"), "COPY FROM STDIN in a migration", 2, "COPY … FROM STDIN")


@pytest.mark.parametrize(("case", "line", "needle", "advice"), [
    ("psql \\connect in migration.sql", "\\connect mercurio", "migration.sql:2:1: psql meta-command `\\connect "
     "mercurio` is not SQL", "its own DATABASE_URL"),
    ("psql \\i (include) in migration.sql", "\\i tables.sql", "migration.sql:2:1: psql meta-command `\\i "
     "tables.sql` is not SQL", "Put the SQL of that file here"),
    ("psql \\set variable in migration.sql", "\\set tenant 42", "migration.sql:2:1: psql meta-command `\\set "
     "tenant 42` is not SQL", "Write the value into the SQL"),
    ("pg_dump's \\restrict line in migration.sql", "\\restrict 3ZkQx9Lr0aBcDeF",
     "migration.sql:2:1: psql meta-command `\\restrict 3ZkQx9Lr0aBcDeF` is not SQL", "Delete the \\restrict line"),
])
def test_psql_meta_command(cli, db, tmp_path, case, line, needle, advice):
    root = folder(tmp_path, sql=f"CREATE TABLE a (id int);\n{line}\nCREATE TABLE b (id int);\n")
    check(cli("--dir", str(root), "up"), case, 2, needle, advice)
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is None


def test_copy_from_stdin_with_inline_data(cli, db, tmp_path):
    root = folder(tmp_path, sql="CREATE TABLE a (id int, name text);\n"
                                "COPY public.a (id, name) FROM stdin;\n1\tacme\n2\tglobex\n\\.\n")
    check(cli("--dir", str(root), "up"), "COPY FROM stdin with its data inline (pg_dump output)", 2,
          "migration.sql:2:1: COPY … FROM stdin followed by its data (from line 3)", "INSERT … VALUES")
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is None


def test_failing_rollback_keeps_the_migration_applied(cli, db, tmp_path):
    root = folder(tmp_path, rollback="DROP TABLE a;\nDROP TABLE not_there;\n")
    assert cli("--dir", str(root), "up").returncode == 0
    check(cli("--dir", str(root), "down"), "a rollback that fails", 1, "rollback.sql:2:1",
          'table "not_there" does not exist')
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is not None
    assert db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0] == 1


def test_down_without_rollback(cli, tmp_path):
    root = folder(tmp_path, rollback=None)
    assert cli("--dir", str(root), "up").returncode == 0
    check(cli("--dir", str(root), "down"), "down of a migration without rollback.sql", 1, "has no rollback.sql")


def test_unreachable_server(cli, tmp_path):
    root = folder(tmp_path)
    check(cli("--dir", str(root), "up", database_url="postgresql://app@127.0.0.1:1/mercurio"),
          "unreachable server", 1, "cannot connect to postgresql://app@127.0.0.1:1/mercurio", "server is running")


def test_invalid_database_url(cli, tmp_path):
    root = folder(tmp_path)
    check(cli("--dir", str(root), "up", database_url="postgresql://app:pw@host/db?colour=blue"),
          "malformed DATABASE_URL", 2, "not valid", "app:***@host")


@pytest.mark.parametrize(("case", "password", "needle"), [
    ("DATABASE_URL password with a space and a '#' (libpq refuses the URL)", "Secret1 #Secret2", "not valid"),
    ("DATABASE_URL password with a '/' (libpq would read a port)", "Secret1/Secret2", "Percent-encode"),
    ("DATABASE_URL password with an '@' (libpq would read a host)", "Secret1@Secret2", "Percent-encode"),
])
def test_database_url_password_libpq_cannot_take(cli, tmp_path, case, password, needle):
    root = folder(tmp_path)
    result = cli("--dir", str(root), "up", database_url=f"postgresql://app:{password}@127.0.0.1:1/db")
    check(result, case, 2, "app:***@127.0.0.1:1/db", needle)
    assert "Secret" not in result.stdout + result.stderr


def test_malformed_pii_key(cli, db, tmp_path):
    root = folder(tmp_path, sql="CREATE TABLE a AS SELECT encrypt_pii('x') AS v;")
    key = "abcdefghijklmnopqrstuvwxyz012345\tKeyPiece0000000"
    result = cli("--dir", str(root), "up", env={"MERCURIO_PII_KEY": key})
    check(result, "PII key with a tab in it, needed by a migration", 2, "MERCURIO_PII_KEY is not a usable key",
          "nothing was run")
    assert "KeyPiece" not in result.stdout + result.stderr
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is None


def test_database_that_does_not_exist(cli, pg_cluster, tmp_path):
    root = folder(tmp_path)
    check(cli("--dir", str(root), "up", database_url=pg_cluster.url("no_such_db")), "database that does not exist",
          1, 'database "no_such_db" does not exist', "createdb")


def test_wrong_password_is_never_echoed(cli, pg_cluster, database_url, tmp_path):
    hba = pg_cluster.data_dir / "pg_hba.conf"
    original = hba.read_text()
    role = f"pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_cluster.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-password-123'")
        hba.write_text(f"local all {role} scram-sha-256\n" + original)
        admin.execute("SELECT pg_reload_conf()")
    try:
        database = database_url.split("/")[-1].split("?")[0]
        url = f"postgresql://{role}:Wr0ngSecret99@/{database}?host={pg_cluster.socket_dir}"
        root = folder(tmp_path)
        result = cli("--dir", str(root), "--json", "up", database_url=url)
        check(result, "wrong password", 1, "password authentication failed", f"{role}:***@")
        assert "Wr0ngSecret99" not in result.stdout + result.stderr
    finally:
        with psycopg.connect(pg_cluster.conninfo("postgres"), autocommit=True) as admin:
            hba.write_text(original)
            admin.execute("SELECT pg_reload_conf()")
            admin.execute(f"DROP ROLE {role}")


def test_read_only_database(cli, db, database_url, tmp_path):
    database = database_url.split("/")[-1].split("?")[0]
    db.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    root = folder(tmp_path)
    check(cli("--dir", str(root), "up"), "read-only database (as on a replica)", 1, "is read-only",
          "primary server")
    assert cli("--dir", str(root), "status").returncode == 0  # reading still works


def test_insufficient_privileges(cli, pg_cluster, db, database_url, tmp_path):
    role = f"ro_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        database = database_url.split("/")[-1].split("?")[0]
        url = f"postgresql://{role}@/{database}?host={pg_cluster.socket_dir}"
        root = folder(tmp_path)
        check(cli("--dir", str(root), "up", database_url=url), "user without CREATE privilege", 1,
              "permission denied for schema public", "privilege")
    finally:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")


def test_history_checksum_edited_by_hand(cli, db, tmp_path):
    root = folder(tmp_path)
    assert cli("--dir", str(root), "up").returncode == 0
    db.execute("UPDATE public.mercurio_migrations SET checksum = 'edited'")
    check(cli("--dir", str(root), "up"), "history checksum edited by hand", 1, "changed since they ran",
          "--allow-drift")


def test_applied_file_resaved_with_crlf_line_endings_and_a_bom(cli, db, tmp_path):
    root = folder(tmp_path, sql="CREATE TABLE a (id int);\nCOMMENT ON TABLE a IS 'x';\n")
    assert cli("--dir", str(root), "up").returncode == 0
    path = root / "20250101_000000_a" / "migration.sql"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    check(cli("--dir", str(root), "up"), "applied migration.sql re-saved with CRLF line endings and a BOM", 0,
          "nothing to do: the database is up to date")
    states = json.loads(cli("--dir", str(root), "--json", "status").stdout)["migrations"]
    assert [m["state"] for m in states] == ["applied"]


def test_applied_file_with_trailing_spaces_added(cli, db, tmp_path):
    root = folder(tmp_path, sql="CREATE TABLE a (id int);\nCOMMENT ON TABLE a IS 'x';\n")
    assert cli("--dir", str(root), "up").returncode == 0
    path = root / "20250101_000000_a" / "migration.sql"
    path.write_text("CREATE TABLE a (id int);   \nCOMMENT ON TABLE a IS 'x';\t\n")
    check(cli("--dir", str(root), "up"), "applied migration.sql with spaces added at line ends", 1,
          "20250101_000000_a (migration.sql (whitespace at line ends only))", "harmless")


def test_history_row_deleted_by_hand(cli, db, tmp_path):
    root = folder(tmp_path)
    assert cli("--dir", str(root), "up").returncode == 0
    db.execute("DELETE FROM public.mercurio_migrations")
    check(cli("--dir", str(root), "up"), "history row deleted by hand", 1, 'relation "a" already exists',
          "resolve VERSION --applied")


def test_folder_renamed_after_being_applied(cli, db, tmp_path):
    root = folder(tmp_path)
    assert cli("--dir", str(root), "up").returncode == 0
    (root / "20250101_000000_a").rename(root / "20250101_000000_create_a")
    check(cli("--dir", str(root), "up"), "folder renamed (same version) after being applied", 0,
          "applied as 'a', the folder is now named 'create_a'")
    (root / "20250101_000000_create_a").rename(root / "20250102_000000_create_a")
    check(cli("--dir", str(root), "up"), "folder renamed with a new timestamp after being applied", 1,
          "identical to applied ones whose folders are gone", "resolve NEW_VERSION --applied")
    assert db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0] == 1


def test_version_in_database_but_not_on_disk(cli, db, tmp_path):
    root = folder(tmp_path)
    assert cli("--dir", str(root), "up").returncode == 0
    shutil.rmtree(root / "20250101_000000_a")
    folder(tmp_path, "20250102_000000_b", "CREATE TABLE b (id int);")
    check(cli("--dir", str(root), "up"), "version applied in the database but absent from disk", 0,
          "recorded as applied but its folder is not on disk")
    states = json.loads(cli("--dir", str(root), "--json", "status").stdout)["migrations"]
    assert [(m["version"], m["state"]) for m in states] == [("20250101_000000", "missing"),
                                                            ("20250102_000000", "applied")]


def test_missing_pii_key(cli, tmp_path):
    root = folder(tmp_path, sql="SELECT get_hmac_key();")
    check(cli("--dir", str(root), "up", env={"MERCURIO_HMAC_KEY": "", "MERCURIO_PII_KEY": ""}),
          "migration needs a PII key that is not set", 2, "MERCURIO_HMAC_KEY is not set", "nothing was run")


def test_bad_pyproject(cli, tmp_path):
    root = folder(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.mercurio-migrate\nlock_timeout = 5")
    check(cli("--dir", str(root), "status"), "malformed pyproject.toml", 2, "not valid TOML")


def test_unknown_version(cli, tmp_path):
    root = folder(tmp_path)
    check(cli("--dir", str(root), "up", "--to", "20990101_000000"), "unknown --to version", 2,
          "unknown migration version")


def test_unknown_command_and_option(cli):
    check(cli("migrate"), "unknown command", 2, "No such command")
    check(cli("up", "--fast"), "unknown option", 2, "No such option")


def test_resolve_with_both_applied_and_rolled_back(cli, db, tmp_path):
    root = folder(tmp_path)
    assert cli("--dir", str(root), "up").returncode == 0
    check(cli("--dir", str(root), "resolve", "20250101_000000", "--applied", "--rolled-back"),
          "resolve with both --applied and --rolled-back", 2, "give only one of --applied and --rolled-back")
    reversed_order = cli("--dir", str(root), "resolve", "20250101_000000", "--rolled-back", "--applied")
    assert reversed_order.returncode == 2 and "give only one of" in reversed_order.stderr
    assert db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0] == 1


def test_unwritable_migrations_folder_for_new(cli, tmp_path):
    root = tmp_path / "m"
    root.write_text("a file, not a folder")
    check(cli("--dir", str(root), "new", "add_x"), "`new` where the migrations path is a file", 1,
          "error:")
    assert Path(root).read_text() == "a file, not a folder"
