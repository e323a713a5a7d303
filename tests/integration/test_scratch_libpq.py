"""verify, drift and dump drive their scratch database through libpq directly (mercurio_migrate.libpq.Session),
without importing psycopg: what they report must be exactly what the psycopg path reports, and a statement's
result and error must read the same on both drivers."""

from __future__ import annotations

import json

from conftest import write_migration
from mercurio_migrate import libpq
from mercurio_migrate.database import connect, send_script

NO_LIBPQ = {"MERCURIO_NO_LIBPQ_FASTPATH": "1"}
IMPORTS = {"PYTHONPROFILEIMPORTTIME": "1"}
A, B, C = "20250101_000001_create_a", "20250101_000002_index_a", "20250101_000003_checked_a"


def imported_psycopg(result) -> bool:
    return any(line.rsplit("|", 1)[-1].strip() == "psycopg" for line in result.stderr.splitlines()
               if line.startswith("import time:"))


def broken_set(root):
    write_migration(root, A, "CREATE TABLE a (id int PRIMARY KEY, note text);\n"
                             "DROP TABLE IF EXISTS nothing_here;\n", "DROP TABLE a;",
                    fixture="INSERT INTO a VALUES (1, 'one'), (2, 'two');")
    write_migration(root, B, "CREATE INDEX IF NOT EXISTS idx_note ON a (note);", "SELECT 1;")  # leaves it behind
    write_migration(root, C, "ALTER TABLE a ADD COLUMN flag text DEFAULT 'f';",
                    "ALTER TABLE a DROP COLUMN flag; DELETE FROM a WHERE id = 2;",
                    verify="SELECT 'f'::text;\nSELECT count(*) = 2 FROM a;\n")


def comparable(report: dict) -> dict:
    return report | {"scratch_database": None, "timings": None}


def test_verify_without_psycopg_reports_what_the_psycopg_path_reports(cli, tmp_path):
    root = tmp_path / "m"
    broken_set(root)
    quick = cli("--dir", str(root), "--json", "verify", "--data", env=IMPORTS)
    slow = cli("--dir", str(root), "--json", "verify", "--data", env=NO_LIBPQ | IMPORTS)
    assert quick.returncode == slow.returncode == 1, quick.stderr[-800:] + slow.stderr[-800:]
    assert not imported_psycopg(quick)
    assert imported_psycopg(slow)  # the switch works, so the comparison means something
    report = json.loads(quick.stdout)
    assert comparable(report) == comparable(json.loads(slow.stdout))
    messages = [f["message"] for m in report["migrations"] for f in m["findings"] if f["severity"] == "error"]
    assert messages[0] == f"index idx_note left behind by rollback of {B}"
    assert f"table a: 1 of 2 row(s) lost or changed by rollback of {C} (rows 2 -> 1)" in messages
    # the server's NOTICE (DROP TABLE IF EXISTS skipping) is not the tool's output on either driver
    assert "NOTICE" not in quick.stderr and "NOTICE" not in slow.stderr


def test_verify_sql_results_read_the_same_on_a_libpq_session(cli, tmp_path):
    root = tmp_path / "m"
    write_migration(root, A, "CREATE TABLE a (id int);", "DROP TABLE a;", verify="SELECT 'f'::text;\nSELECT false;\n")
    write_migration(root, B, "CREATE TABLE b (id int);", "DROP TABLE b;", verify="SELECT true FROM b;")
    for env in ({}, NO_LIBPQ):
        report = json.loads(cli("--dir", str(root), "--json", "verify", env=env).stdout)
        (finding,) = report["migrations"][0]["findings"]
        assert "verify.sql:2:1: assertion failed: the query returned False" in finding["message"], env
    write_migration(root, A, "CREATE TABLE a (id int);", "DROP TABLE a;", verify="SELECT 'f'::text;")
    for env in ({}, NO_LIBPQ):
        report = json.loads(cli("--dir", str(root), "--json", "verify", env=env).stdout)
        assert report["migrations"][0]["status"] == "ok"  # text 'f' is not false
        assert "assertion failed: the query returned no row" in report["migrations"][1]["findings"][0]["message"]


def test_drift_and_dump_without_psycopg_match_the_psycopg_path(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, A, "CREATE TABLE a (id int PRIMARY KEY, note text DEFAULT 'x');", "DROP TABLE a;")
    assert cli("--dir", str(root), "up").returncode == 0
    db.execute("ALTER TABLE a ALTER COLUMN note DROP DEFAULT")
    quick = cli("--dir", str(root), "--json", "drift", env=IMPORTS)
    slow = cli("--dir", str(root), "--json", "drift", env=NO_LIBPQ | IMPORTS)
    assert quick.returncode == slow.returncode == 1
    assert not imported_psycopg(quick) and imported_psycopg(slow)
    assert json.loads(quick.stdout) == json.loads(slow.stdout)
    assert [d["text"] for d in json.loads(quick.stdout)["differences"]] == [
        "column a.note: default 'x'::text -> none"]
    dump_quick = cli("--dir", str(root), "dump", env=IMPORTS)
    dump_slow = cli("--dir", str(root), "dump", env=NO_LIBPQ)
    assert dump_quick.returncode == 0 and not imported_psycopg(dump_quick)
    assert dump_quick.stdout == dump_slow.stdout and "DEFAULT 'x'::text" in dump_quick.stdout


SCRIPTS = [
    "SELECT 1; SELECT true, 2; SELECT NULL::int; SELECT WHERE false; SHOW search_path",
    "CREATE TABLE t (x int PRIMARY KEY); INSERT INTO t VALUES (1), (2); UPDATE t SET x = x + 10; "
    "SELECT x FROM t ORDER BY x; DELETE FROM t WHERE x = 11; DROP TABLE t",
    "SELECT 1;\nSELECT nope\n  FROM missing",  # an error with a position
    "CREATE TABLE u (x int PRIMARY KEY); INSERT INTO u VALUES (1); INSERT INTO u VALUES (1); SELECT 2",  # detail
    "DO $$ BEGIN RAISE EXCEPTION 'custom' USING DETAIL = 'the detail', HINT = 'the hint'; END $$",  # context
    "",
]
DIAG = ("sqlstate", "message_primary", "message_detail", "message_hint", "statement_position", "context",
        "schema_name", "table_name", "constraint_name", "severity")


def test_send_script_gives_the_same_results_and_errors_on_both_drivers(database_url):
    conn = connect(database_url)
    session = libpq.Session.open(database_url, "test")
    assert session is not None
    try:
        for script in SCRIPTS:
            ours, theirs = send_script(session, script), send_script(conn, script)
            assert [r._replace(error=None) for r in ours] == [r._replace(error=None) for r in theirs], script
            for mine, psycopg_result in zip(ours, theirs):
                if psycopg_result.error is not None:
                    assert {f: getattr(mine.error.diag, f) for f in DIAG} == {
                        f: getattr(psycopg_result.error.diag, f) for f in DIAG}, script
                    assert mine.error.sqlstate == psycopg_result.error.sqlstate
            if session.in_transaction():
                session.rows("ROLLBACK")
            if conn.info.transaction_status:
                conn.execute("ROLLBACK")
        failed = send_script(session, SCRIPTS[2])[-1]
        assert not failed.ok and failed.error.statement_position == str(SCRIPTS[2].index("missing") + 1)
        assert failed.error.message_primary == 'relation "missing" does not exist'
    finally:
        session.close()
        conn.close()


def test_session_execute_gives_booleans_and_integers_as_psycopg_does(database_url):
    sql = "SELECT true, false, 1::int2, 2::int4, 3::int8, 4::oid, 'x'::text, NULL::bool, 'f'::text, 1.5::numeric"
    conn = connect(database_url)
    session = libpq.Session.open(database_url, "test")
    try:
        ours = session.execute(sql).fetchone()
        theirs = conn.execute(sql).fetchone()
        assert ours[:9] == theirs[:9]
        assert [type(v) for v in ours[:9]] == [type(v) for v in theirs[:9]]
        assert ours[9] == "1.5"  # other types as text: the tool's own reads need no more
        assert session.execute("SELECT 1 WHERE false").fetchone() is None
    finally:
        session.close()
        conn.close()


def test_a_session_on_another_database_of_the_same_server(database_url, pg_cluster):
    session = libpq.Session.open(database_url, "test", database="postgres")
    try:
        assert session.rows("SELECT current_database()") == [("postgres",)]
    finally:
        session.close()
