"""`up` reports what the run changed (schema, row counts, foreign keys) and runs each folder's verify.sql."""

from __future__ import annotations

import json

from conftest import write_migration


def test_up_reports_created_objects_row_counts_and_new_foreign_keys(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_parent", "CREATE TABLE parent (id bigint PRIMARY KEY);\n"
                                                    "INSERT INTO parent SELECT generate_series(1, 7);")
    write_migration(root, "20250101_000001_child",
                    "CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id));\n"
                    "INSERT INTO child VALUES (1, 1), (2, 2);")
    result = cli("--dir", str(root), "--json", "up", "--validate-each")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    whole = document["validation"]
    assert {d["name"] for d in whole["created"] if d["kind"] == "table"} == {"parent", "child"}
    rows = {r["table"]: r for r in whole["rows"]}
    assert rows["parent"]["after"]["rows"] == 7 and rows["child"]["after"]["rows"] == 2
    assert [fk["table"] for fk in whole["new_foreign_keys"]] == ["child"]
    each = {entry["version"]: entry for entry in document["validation_each"]}
    assert [d["name"] for d in each["20250101_000000"]["created"] if d["kind"] == "table"] == ["parent"]
    assert [d["name"] for d in each["20250101_000001"]["created"] if d["kind"] == "table"] == ["child"]

    text = cli("--dir", str(root), "up")
    assert "nothing to do" in text.stdout


def test_text_output_shows_the_changes_of_the_run(cli, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_t", "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (2);")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 0, result.stderr
    assert "changes by this run:" in result.stdout and "table t" in result.stdout
    assert "t: absent -> 2" in result.stdout


VERIFY_OK = "SELECT count(*) = 3 FROM t;\nSELECT NOT EXISTS (SELECT 1 FROM t WHERE id IS NULL);\n"


def test_verify_sql_passing_lets_the_migration_commit(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_t", "BEGIN;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (2), (3);\n"
                                               "COMMIT;\n", verify=VERIFY_OK)
    result = cli("--dir", str(root), "up")
    assert result.returncode == 0, result.stderr
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 3


def test_verify_sql_false_rolls_back_the_whole_transactional_migration(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_t", "BEGIN;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (NULL);\n"
                                               "COMMIT;\n", verify="SELECT true;\n\n" + VERIFY_OK)
    result = cli("--dir", str(root), "--json", "up")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["cause"]["file"].endswith("20250101_000000_t/verify.sql")
    assert error["cause"]["line"] == 3
    assert "assertion failed: the query returned False" in error["message"]
    assert db.execute("SELECT to_regclass('t')").fetchone()[0] is None
    assert db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0] == 0


def test_verify_sql_that_raises_fails_the_migration(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_t", "CREATE TABLE t (id int);",
                    verify="DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM t) THEN\n"
                           "  RAISE EXCEPTION 't is empty'; END IF; END $$;\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 1
    assert "verify.sql:1:1: t is empty" in result.stderr
    assert db.execute("SELECT to_regclass('t')").fetchone()[0] is None


def test_verify_sql_null_and_empty_results_fail(cli, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_t", "CREATE TABLE t (id int);", verify="SELECT NULL::boolean;")
    assert "returned NULL" in cli("--dir", str(root), "up").stderr
    write_migration(root, "20250101_000000_t", "CREATE TABLE t (id int);", verify="SELECT true FROM t;")
    assert "returned no row" in cli("--dir", str(root), "up").stderr


def test_up_dump_writes_the_schema_and_refreshes_it_when_nothing_is_pending(cli, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_t", "CREATE TABLE t (id bigint PRIMARY KEY, note text DEFAULT 'x');")
    schema = tmp_path / "schema.sql"
    result = cli("--dir", str(root), "up", "--dump", str(schema))
    assert result.returncode == 0, result.stderr
    text = schema.read_text()
    assert "CREATE TABLE" in text and "note text DEFAULT 'x'::text" in text
    assert "mercurio_migrations" not in text
    schema.write_text("stale")
    assert cli("--dir", str(root), "up", "--dump", str(schema), "--no-validate").returncode == 0
    assert schema.read_text() == text


def test_the_partial_after_capture_reports_what_a_full_one_does(cli, other_url, tmp_path):
    from conftest import MIGRATIONS

    partial = cli("--dir", str(MIGRATIONS), "--json", "up")  # the after-capture only names new relations
    full = cli("--dir", str(MIGRATIONS), "--json", "up", "--dump", str(tmp_path / "schema.sql"),
               database_url=other_url)  # --dump needs the whole schema: a full after-capture
    assert partial.returncode == 0 and full.returncode == 0, partial.stderr[-800:] + full.stderr[-800:]
    report, expected = json.loads(partial.stdout)["validation"], json.loads(full.stdout)["validation"]
    assert report == expected
    assert len(report["created"]) > 20 and report["new_foreign_keys"] and report["rows"]


def test_after_a_long_run_the_report_snapshot_is_planned_again(database_url, tmp_path, monkeypatch):
    """The after-snapshot is planned again once REPLAN_AFTER migrations ran, and only then; the report is the
    same."""
    from mercurio_migrate import engine, snapshot
    from mercurio_migrate.config import Settings

    seen = []
    real = snapshot._start_snapshot
    monkeypatch.setattr(snapshot, "_start_snapshot",
                        lambda conn, statement, arguments, replan=False:
                        seen.append(replan) or real(conn, statement, arguments, replan))
    monkeypatch.setattr(engine, "REPLAN_AFTER", 3)
    reports = []
    for run, count in enumerate((2, 3, 3)):
        root = tmp_path / f"m{run}"
        for i in range(count):
            write_migration(root, f"2025010{run + 1}_00000{i}_t{i}", f"CREATE TABLE r{run}_t{i} (id int PRIMARY KEY);")
        seen.clear()
        result = engine.Engine(Settings(database_url=database_url, migrations_dir=root)).up()
        assert seen == [False, count >= 3], (count, seen)
        assert len(result.steps) == count
        reports.append(sorted(d["name"].split("_", 1)[1] for d in result.validation.as_dict()["created"]))
    assert reports[1] == reports[2] == ["t0", "t1", "t2"]
