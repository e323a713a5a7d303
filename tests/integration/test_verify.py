"""verify, drift and dump against real scratch databases: broken migration sets are caught exactly,
correct ones give no false reports, and the target database is never touched."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import MIGRATIONS, write_migration
from mercurio_migrate.config import Settings
from mercurio_migrate.drift import drift, dump
from mercurio_migrate.engine import Engine
from mercurio_migrate.snapshot import diff, take, to_sql
from mercurio_migrate.verify import verify

# The shipped PII functions read their keys from session settings.
KEYS_ENV = {"PGOPTIONS": "-c mercurio.pii_key=verify-test-pii-key-0123456789abcdef "
                         "-c mercurio.hmac_key=verify-test-hmac-key-0123456789abcdef",
            "MERCURIO_PII_KEY": "verify-test-pii-key-0123456789abcdef",
            "MERCURIO_HMAC_KEY": "verify-test-hmac-key-0123456789abcdef"}

A = "20250101_000001_create_a"



B = "20250101_000002_change_a"


def engine_for(database_url: str, folder: Path) -> Engine:
    """An engine with the mercurio profile (the shipped migrations write to its migration_log)."""
    return Engine(Settings(database_url=database_url, migrations_dir=folder, profile="mercurio"))


def errors(report) -> list[str]:
    return [f.message for f in report.findings if f.severity == "error"]


def base_table(root: Path, fixture: str | None = None) -> None:
    extras = {"fixture": fixture} if fixture else {}
    write_migration(root, A, "CREATE TABLE a (id int PRIMARY KEY, note text, timezone varchar(64) DEFAULT 'UTC');",
                    "DROP TABLE a;", **extras)


def test_rollback_that_leaves_an_index(database_url, db, tmp_path):
    base_table(tmp_path)
    write_migration(tmp_path, B, "CREATE INDEX idx_x ON a (note);", "SELECT 1;")
    report = verify(engine_for(database_url, tmp_path))
    assert not report.ok
    first, second = report.migrations
    assert first.status == "ok" and first.findings == []
    assert second.status == "failed"
    assert [f.message for f in second.findings][0] == f"index idx_x left behind by rollback of {B}"
    assert second.findings[1].phase == "reapply"
    assert 'relation "idx_x" already exists' in second.findings[1].message
    assert take(db).objects == take(db).objects and [o.kind for o in take(db).objects] == ["schema"]


def test_rollback_that_leaves_a_function(database_url, tmp_path):
    base_table(tmp_path)
    write_migration(tmp_path, B, "CREATE OR REPLACE FUNCTION a_count() RETURNS bigint LANGUAGE sql "
                                 "AS 'SELECT count(*) FROM a'; CREATE TABLE b (id int);", "DROP TABLE b;")
    report = verify(engine_for(database_url, tmp_path))
    # re-applying succeeds (CREATE OR REPLACE) and the final rollback repeats nothing already said
    assert errors(report) == [f"function a_count() left behind by rollback of {B}"]
    assert report.final == []


def test_rollback_that_leaves_a_column_added_by_alter_table(database_url, tmp_path):
    base_table(tmp_path)
    write_migration(tmp_path, B, "ALTER TABLE a ADD COLUMN region text;", "SELECT 1;")
    report = verify(engine_for(database_url, tmp_path))
    assert errors(report)[0] == f"column a.region left behind by rollback of {B}"
    assert 'column "region" of relation "a" already exists' in errors(report)[1]


def test_rollback_that_does_not_restore_a_changed_default(database_url, tmp_path):
    base_table(tmp_path)
    write_migration(tmp_path, B, "ALTER TABLE a ALTER COLUMN timezone DROP DEFAULT;",
                    "ALTER TABLE a ALTER COLUMN timezone SET NOT NULL;")
    report = verify(engine_for(database_url, tmp_path))
    assert errors(report) == [
        f"column a.timezone not restored by rollback of {B}: default 'UTC'::character varying -> none",
        f"column a.timezone not restored by rollback of {B}: not null no -> yes",
        f"column a.timezone differs when {B} is re-applied after its rollback: not null no -> yes",
    ]


ROWS = "INSERT INTO a (id, note) VALUES (1, 'one'), (2, 'two'), (3, NULL);"


def test_rollback_that_drops_a_column_holding_rows(database_url, tmp_path):
    base_table(tmp_path, fixture=ROWS)
    write_migration(tmp_path, B, "CREATE TABLE b (id int);", "DROP TABLE b; ALTER TABLE a DROP COLUMN note;")
    report = verify(engine_for(database_url, tmp_path), data=True)
    assert errors(report) == [
        f"column a.note missing after rollback of {B} (it existed before the migration)",
        f"column a.note: 2 value(s) lost: dropped by rollback of {B}",
        f"column a.note is missing when {B} is re-applied after its rollback",
    ]
    # without --data only the schema is checked
    plain = errors(verify(engine_for(database_url, tmp_path)))
    assert errors(report)[0] in plain and not any("value(s) lost" in e for e in plain)


MOVE = ("ALTER TABLE a ADD COLUMN body text; UPDATE a SET body = note; ALTER TABLE a DROP COLUMN note;"
        "ALTER TABLE a ADD COLUMN note text; ALTER TABLE a DROP COLUMN body;")
FORGETFUL_ROLLBACK = "ALTER TABLE a ADD COLUMN body text; ALTER TABLE a DROP COLUMN note; " \
                     "ALTER TABLE a RENAME COLUMN body TO note;"


def test_rollback_that_loses_values_is_named_with_table_and_column(database_url, tmp_path):
    base_table(tmp_path, fixture=ROWS)
    write_migration(tmp_path, B, "UPDATE a SET note = upper(note);", "SELECT 1;")
    report = verify(engine_for(database_url, tmp_path), data=True)
    (finding,) = [f for f in report.findings if f.severity == "error"]
    assert finding.message == (f"table a: 2 of 3 row(s) lost or changed by rollback of {B} (rows 3 -> 3; "
                               "values changed in note)")
    assert finding.details["columns_changed"] == ["note"]
    assert finding.details["checksum_before"] != finding.details["checksum_after"]


def test_rows_inserted_by_a_fixture_and_deleted_by_the_rollback(database_url, tmp_path):
    base_table(tmp_path)
    write_migration(tmp_path, B, "CREATE TABLE b (id int);", "DROP TABLE b; DELETE FROM a WHERE id > 1;",
                    fixture="INSERT INTO a (id) VALUES (1), (2), (3); INSERT INTO b VALUES (1);")
    report = verify(engine_for(database_url, tmp_path), data=True)
    assert errors(report) == [f"table a: 2 of 3 row(s) inserted by fixture.sql lost or changed by rollback of {B}"]


def test_loss_declared_by_a_warning_line_is_expected_not_an_error(database_url, tmp_path):
    base_table(tmp_path, fixture=ROWS)
    write_migration(tmp_path, B, "UPDATE a SET note = upper(note);",
                    "-- Rollback: keep upper-case notes\n-- WARNING: notes stay upper-case\nSELECT 1;")
    report = verify(engine_for(database_url, tmp_path), data=True)
    assert report.ok
    (finding,) = report.migrations[1].findings
    assert finding.severity == "expected"
    assert finding.message.endswith('(expected: the rollback declares "WARNING: notes stay upper-case")')


def test_correct_sets_give_no_reports_and_column_order_is_only_a_note(database_url, db, tmp_path):
    scratch_databases = "SELECT datname FROM pg_database WHERE datname LIKE 'mercurio_verify_%'"
    kept = db.execute(scratch_databases).fetchall()  # by earlier tests' --keep
    base_table(tmp_path, fixture=ROWS)
    write_migration(tmp_path, B, "ALTER TABLE a ADD COLUMN body text; UPDATE a SET body = note; "
                                 "ALTER TABLE a DROP COLUMN note; CREATE INDEX idx_body ON a (body);",
                    "-- Rollback: restore note\nALTER TABLE a ADD COLUMN note text; UPDATE a SET note = body; "
                    "ALTER TABLE a DROP COLUMN body;",
                    fixture="INSERT INTO a (id, body) VALUES (4, 'four');")
    report = verify(engine_for(database_url, tmp_path), data=True)
    assert report.ok and report.reached_start
    assert [m.status for m in report.migrations] == ["ok", "ok"]
    assert [(f.severity, f.message) for f in report.findings] == [
        ("note", f"table a: column order (id, note, timezone) -> (id, timezone, note) after rollback of {B} "
                 "(PostgreSQL cannot restore column order)"),
    ]
    # a second run gives the same result in a scratch database of its own; the target stays empty
    again = verify(engine_for(database_url, tmp_path), data=True)
    same = {"scratch_database": None, "timings": None}  # where the time went differs from run to run
    assert again.as_dict() | same == report.as_dict() | same
    assert again.scratch_database != report.scratch_database
    assert [o.kind for o in take(db).objects] == ["schema"]
    assert db.execute(scratch_databases).fetchall() == kept


def test_not_reversible_is_a_warning_and_an_error_with_strict(cli, tmp_path):
    folder = tmp_path / "migrations"
    base_table(folder)
    write_migration(folder, B, "CREATE TABLE b (id int);")
    result = cli("--dir", str(folder), "verify")
    assert result.returncode == 0, result.stderr
    assert f"{B}  NOT REVERSIBLE" in result.stdout
    assert f"warning: {B} is not reversible: it has no rollback.sql" in result.stdout
    assert f"the final rollback stops at {B}" in result.stdout
    strict = cli("--dir", str(folder), "--json", "verify", "--strict")
    assert strict.returncode == 1
    data = json.loads(strict.stdout)
    assert data["ok"] is False and data["errors"] == 1
    assert [m["status"] for m in data["migrations"]] == ["ok", "failed"]
    assert data["migrations"][1]["findings"][0]["phase"] == "reversible"


def test_cli_json_shape_and_exit_code_on_a_broken_set(cli, tmp_path):
    folder = tmp_path / "migrations"
    base_table(folder)
    write_migration(folder, B, "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';", "SELECT 1;")
    result = cli("--dir", str(folder), "--json", "verify", "--keep")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"ok", "data", "strict", "base", "rebuilt_after", "migrations", "final", "errors",
                         "warnings", "scratch_database", "timings"}
    assert data["base"] == [] and data["rebuilt_after"] == []
    assert set(data["timings"]) >= {"total", "scratch database", "migrations", "snapshots"}
    (finding,) = data["migrations"][1]["findings"]
    assert finding == {"severity": "error", "phase": "rollback", "migration": B,
                       "message": f"function f() left behind by rollback of {B}",
                       "difference": {"kind": "function", "name": "f()", "status": "added", "change": "added",
                                      "severity": "difference", "text": "function f(): added"}}
    kept = data["scratch_database"]
    assert kept["kept"] is True and kept["name"] in kept["url"]
    text = cli("--dir", str(folder), "verify")
    assert text.returncode == 1
    assert f"error: function f() left behind by rollback of {B}" in text.stdout
    assert "verify: FAILED (1 error(s))" in text.stdout


C = "20250101_000003_add_c"


def test_from_round_trips_only_the_later_migrations_and_rolls_back_to_their_start(database_url, tmp_path):
    # A's rollback leaves an index: before --from it is applied unchecked, so that is not reported
    write_migration(tmp_path, A, "CREATE TABLE a (id int PRIMARY KEY, note text); CREATE INDEX idx_a ON a (note);",
                    "DROP TABLE a CASCADE; CREATE TABLE a_leftover (id int);")
    write_migration(tmp_path, B, "ALTER TABLE a ADD COLUMN region text;", "ALTER TABLE a DROP COLUMN region;")
    write_migration(tmp_path, C, "CREATE INDEX idx_region ON a (region);", "SELECT 1;")
    report = verify(engine_for(database_url, tmp_path), start=B)
    assert report.base == [A]
    assert [m.id for m in report.migrations] == [B, C]
    assert [m.status for m in report.migrations] == ["ok", "failed"]
    assert errors(report)[0] == f"index idx_region left behind by rollback of {C}"
    assert not any(A in e for e in errors(report))
    # the whole set, for contrast, reports A's leftover
    assert f"table a_leftover left behind by rollback of {A}" in errors(verify(engine_for(database_url, tmp_path)))


def test_from_ends_with_the_state_the_base_built(database_url, tmp_path):
    write_migration(tmp_path, A, "CREATE TABLE a (id int PRIMARY KEY);", "DROP TABLE a;")
    write_migration(tmp_path, B, "CREATE TABLE b (id int);", "DROP TABLE b;")
    report = verify(engine_for(database_url, tmp_path), start=B)
    assert report.ok and report.reached_start and report.final == []
    assert report.as_dict()["base"] == [A]


def test_from_with_data_runs_the_base_fixtures_that_later_ones_rely_on(database_url, tmp_path):
    base_table(tmp_path, fixture=ROWS)
    write_migration(tmp_path, B, "CREATE TABLE b (id int PRIMARY KEY);", "DROP TABLE b; DELETE FROM a WHERE id = 1;",
                    fixture="INSERT INTO b SELECT id FROM a;")
    report = verify(engine_for(database_url, tmp_path), start=B, data=True)
    assert report.base == [A]
    # the rows A's fixture inserted exist, so B's rollback is caught deleting one of them
    assert errors(report) == [f"table a: 1 of 3 row(s) lost or changed by rollback of {B} (rows 3 -> 2)"]


def test_from_reports_a_base_migration_that_fails_to_apply(database_url, tmp_path):
    write_migration(tmp_path, A, "CREATE TABLE a (id int);", "DROP TABLE a;")
    write_migration(tmp_path, B, "ALTER TABLE nope ADD COLUMN x int;", "SELECT 1;")
    write_migration(tmp_path, C, "CREATE TABLE c (id int);", "DROP TABLE c;")
    report = verify(engine_for(database_url, tmp_path), start=C)
    assert not report.ok
    (check,) = report.migrations
    assert check.id == B and check.status == "failed"
    (message,) = errors(report)
    assert message.startswith(f"{B} (before --from, applied unchecked) failed to apply:")
    assert 'relation "nope" does not exist' in message


def test_from_with_data_reports_a_base_fixture_that_fails(database_url, tmp_path):
    write_migration(tmp_path, A, "CREATE TABLE a (id int PRIMARY KEY);", "DROP TABLE a;",
                    fixture="INSERT INTO a VALUES (1);\nINSERT INTO nope VALUES (2);")
    write_migration(tmp_path, B, "CREATE TABLE b (id int);", "DROP TABLE b;")
    report = verify(engine_for(database_url, tmp_path), start=B, data=True)
    (check,) = report.migrations
    assert check.id == A and check.status == "failed"
    (message,) = errors(report)
    assert message.startswith(f"{A} (before --from, applied unchecked) fixture.sql failed:")
    assert 'fixture.sql:2:13: relation "nope" does not exist' in message


def test_from_on_the_command_line(cli, tmp_path):
    folder = tmp_path / "migrations"
    write_migration(folder, A, "CREATE TABLE a (id int);", "DROP TABLE a;")
    write_migration(folder, B, "CREATE TABLE b (id int);", "DROP TABLE b;")
    write_migration(folder, C, "CREATE TABLE c (id int);", "DROP TABLE c;")
    result = cli("--dir", str(folder), "verify", "--from", B)
    assert result.returncode == 0, result.stderr
    assert f"applied first, unchecked (before --from): {A}" in result.stdout
    statuses = [line.split() for line in result.stdout.splitlines() if line.startswith("  2025")]
    assert statuses == [[B, "OK"], [C, "OK"]]
    assert "rolling everything back: back to the state before --from, OK" in result.stdout
    data = json.loads(cli("--dir", str(folder), "--json", "verify", "--from", "20250101_000002", "--to", B).stdout)
    assert data["base"] == [A] and [m["id"] for m in data["migrations"]] == [B]
    unknown = cli("--dir", str(folder), "verify", "--from", "20990101_000000")
    assert unknown.returncode == 2
    assert "unknown migration version '20990101_000000' (--from)" in unknown.stderr
    after = cli("--dir", str(folder), "verify", "--from", C, "--to", B)
    assert after.returncode == 2
    assert f"--from {C} comes after --to {B}: nothing would be verified" in after.stderr
    assert "Traceback" not in unknown.stderr + after.stderr


def test_shipped_migrations_verify_ok_with_fixtures(database_url, db):
    os.environ.update(KEYS_ENV)  # libpq reads PGOPTIONS from the process environment
    try:
        engine = engine_for(database_url, MIGRATIONS)
        report = verify(engine, data=True)
    finally:
        for key in KEYS_ENV:
            os.environ.pop(key, None)
    on_disk = sorted(p.name for p in MIGRATIONS.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert [m.id for m in report.migrations] == on_disk
    assert errors(report) == [], errors(report)
    assert all(m.status == "ok" for m in report.migrations)
    assert report.reached_start
    assert [o.kind for o in take(db).objects] == ["schema"]


def test_drift_names_a_hand_made_change(database_url, db, tmp_path):
    base_table(tmp_path)
    engine = engine_for(database_url, tmp_path)
    engine.up()
    assert drift(engine).differences == []
    db.execute("ALTER TABLE a ALTER COLUMN timezone DROP DEFAULT; CREATE INDEX idx_hand ON a (note)")
    report = drift(engine)
    assert not report.ok
    assert [str(d) for d in report.differences] == [
        "index idx_hand: added", "column a.timezone: default 'UTC'::character varying -> none"]


def test_drift_and_dump_commands(cli, db, tmp_path):
    folder = tmp_path / "migrations"
    base_table(folder)
    assert cli("--dir", str(folder), "up").returncode == 0
    assert cli("--dir", str(folder), "drift").returncode == 0
    db.execute("ALTER TABLE a ADD COLUMN hand text")
    result = cli("--dir", str(folder), "--json", "drift")
    assert result.returncode == 1
    assert [d["text"] for d in json.loads(result.stdout)["differences"]] == ["column a.hand: added"]
    out = tmp_path / "schema.sql"
    assert cli("--dir", str(folder), "dump", "--output", str(out)).returncode == 0
    sql = out.read_text()
    assert "CREATE TABLE public.a (" in sql and "hand" not in sql
    assert cli("--dir", str(folder), "dump", "--live").stdout.count("hand text") == 1


def test_dump_of_the_shipped_schema_replays_to_the_same_objects(database_url, db, other_url):
    os.environ.update(KEYS_ENV)
    try:
        sql, _ = dump(engine_for(database_url, MIGRATIONS))
        migrated = engine_for(other_url, MIGRATIONS)
        migrated.up()
        with migrated.session(lock=False) as conn:
            original = take(conn, exclude_tables=migrated.store.tool_tables)
    finally:
        for key in KEYS_ENV:
            os.environ.pop(key, None)
    db.execute(sql)
    replayed = take(db)
    assert to_sql(original) == sql
    assert {o.key for o in replayed.objects} == {o.key for o in original.objects}
    # PostgreSQL deparses a re-parsed `x IN (...)` on varchar (CHECK, index predicate) with other casts;
    # nothing else may differ
    for d in diff(original, replayed):
        assert d.kind in ("constraint", "index") and d.attr == "definition", str(d)
        assert "ANY" in d.before and "ANY" in d.after


def test_a_failing_fixture_is_reported_with_its_file_line_and_column(cli, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_t", "CREATE TABLE t (id int PRIMARY KEY);", "DROP TABLE t;",
                    fixture="INSERT INTO t VALUES (1);\nINSERT INTO nope VALUES (2);\n")
    result = cli("--dir", str(root), "verify", "--data")
    assert result.returncode == 1
    assert "fixture.sql of 20250101_000000_t failed:" in result.stdout + result.stderr
    assert "20250101_000000_t/fixture.sql:2:13: relation \"nope\" does not exist" in result.stdout + result.stderr


def test_scratch_database_without_the_target_database(database_url, db, tmp_path):
    """The maintenance session runs on the target database; without that database on `postgres`: the same
    findings either way."""
    scratch_databases = "SELECT datname FROM pg_database WHERE datname LIKE 'mercurio_verify_%'"
    kept = db.execute(scratch_databases).fetchall()  # by earlier tests' --keep
    base_table(tmp_path)
    write_migration(tmp_path, B, "CREATE INDEX idx_x ON a (note); CREATE TABLE c (id int);", "DROP TABLE c;")
    expected = [f"index idx_x left behind by rollback of {B}"]
    assert errors(verify(engine_for(database_url, tmp_path)))[:1] == expected
    missing = database_url.replace("/t_", "/never_created_", 1)
    assert errors(verify(engine_for(missing, tmp_path)))[:1] == expected
    assert db.execute(scratch_databases).fetchall() == kept


def test_scratch_database_without_createdb_says_what_the_role_needs(database_url, db, tmp_path):
    from mercurio_migrate.errors import MercurioError

    db.execute("DROP ROLE IF EXISTS verify_no_createdb; CREATE ROLE verify_no_createdb LOGIN")
    base_table(tmp_path)
    url = database_url.replace("postgresql://postgres@", "postgresql://verify_no_createdb@", 1)
    try:
        verify(engine_for(url, tmp_path))
    except MercurioError as exc:
        assert "permission denied" in exc.message and "CREATEDB" in exc.hint
    else:
        raise AssertionError("verify ran without CREATEDB")
    finally:
        db.execute("DROP ROLE verify_no_createdb")


def test_a_layout_error_leaves_no_scratch_database(cli, db, tmp_path):
    """The command starts creating the scratch database before it reads the folder: it is dropped all the same."""
    scratch_databases = "SELECT datname FROM pg_database WHERE datname LIKE 'mercurio_verify_%'"
    kept = db.execute(scratch_databases).fetchall()
    folder = tmp_path / "migrations"
    write_migration(folder, "20251399_000000_not_a_date", "CREATE TABLE t (id int);", "DROP TABLE t;")
    result = cli("--dir", str(folder), "verify")
    assert result.returncode == 2, result.stderr
    assert db.execute(scratch_databases).fetchall() == kept


def test_a_killed_runs_scratch_database_is_dropped_by_the_next_run_and_a_kept_one_stays(database_url, db, tmp_path):
    """Scratch databases carry their owner session in their name and comment: one whose owner died (a killed
    verify) is dropped by the next run; one kept with --keep, and one whose owner still runs, stay."""
    import subprocess
    import sys

    base_table(tmp_path)
    killed = subprocess.run([sys.executable, "-c", (
        "import os, sys\nfrom mercurio_migrate.scratch import Scratch\n"
        "s = Scratch(sys.argv[1]); s.create(); print(s.name, flush=True); os._exit(0)"), database_url],
        capture_output=True, text=True, timeout=60)
    orphan = killed.stdout.strip()
    assert orphan.startswith("mercurio_verify_") and killed.returncode == 0, killed.stderr
    names = {r[0] for r in db.execute("SELECT datname FROM pg_database")}
    assert orphan in names
    kept = verify(engine_for(database_url, tmp_path), keep=True)
    assert any(orphan in w for w in kept.warnings), kept.warnings
    names = {r[0] for r in db.execute("SELECT datname FROM pg_database")}
    assert orphan not in names and kept.scratch_database in names
    again = verify(engine_for(database_url, tmp_path))
    assert not any("killed" in w for w in again.warnings)
    assert kept.scratch_database in {r[0] for r in db.execute("SELECT datname FROM pg_database")}
    db.execute(f'DROP DATABASE "{kept.scratch_database}" WITH (FORCE)')


def test_every_defect_is_found_in_one_run_past_a_failed_rollback(database_url, tmp_path):
    """A rollback that fails does not end verify: the scratch database is rebuilt up to that migration and the
    later ones are checked too; every migration is listed with its status; the final rollback stops after the
    rebuilt one, saying so."""
    base_table(tmp_path)
    write_migration(tmp_path, B, "CREATE TABLE b (id int);", "DROP TABLE not_there;")
    write_migration(tmp_path, "20250103_000000_c", "CREATE TABLE c (id int); CREATE INDEX idx_c ON c (id);",
                    "DROP TABLE c;\nCREATE INDEX idx_c_left ON a (id);")
    write_migration(tmp_path, "20250104_000000_d", "CREATE TABLE d (id int);", "DROP TABLE d;")
    report = verify(engine_for(database_url, tmp_path))
    statuses = {m.id: m.status for m in report.migrations}
    assert statuses == {A: "ok", B: "failed", "20250103_000000_c": "failed", "20250104_000000_d": "ok"}, statuses
    found = errors(report)
    assert any(f"rollback of {B} failed" in e and "not_there" in e for e in found), found
    assert any("index idx_c_left left behind by rollback of 20250103_000000_c" in e for e in found), found
    assert report.rebuilt_after == [B]
    assert any(f.severity == "note" and f"stops after {B}" in f.message for f in report.final)


def test_definitions_compare_as_a_reader_would_and_real_changes_show_a_diff(database_url, tmp_path):
    """A function restored with another layout is restored; one restored with another body is an error that
    shows a unified diff; a view's select list in its table's new column order (SELECT *) and a constant
    folded from 'now' are notes."""
    base_table(tmp_path)
    write_migration(tmp_path, B,
                    "CREATE FUNCTION same() RETURNS int LANGUAGE sql AS $$SELECT 1 + 2$$;\n"
                    "CREATE FUNCTION other() RETURNS int LANGUAGE sql AS $$SELECT 1$$;\n"
                    "CREATE VIEW everything AS SELECT * FROM a;\n"
                    "CREATE VIEW recent AS SELECT id, 'now'::timestamptz AS seen FROM a;\n",
                    "DROP VIEW recent; DROP VIEW everything; DROP FUNCTION other(); DROP FUNCTION same();")
    write_migration(tmp_path, "20250103_000000_reshape",
                    "DROP VIEW everything;\nDROP FUNCTION same();\nDROP FUNCTION other();\n"
                    "ALTER TABLE a DROP COLUMN note;\nCREATE VIEW everything AS SELECT * FROM a;\n",
                    "DROP VIEW everything;\nALTER TABLE a ADD COLUMN note text;\n"
                    "CREATE VIEW everything AS SELECT * FROM a;\n"
                    "CREATE FUNCTION same() RETURNS int LANGUAGE sql AS $$\n    SELECT 1\n      + 2\n$$;\n"
                    "CREATE FUNCTION other() RETURNS int LANGUAGE sql AS $$SELECT 2$$;\n")
    report = verify(engine_for(database_url, tmp_path))
    found = [(f.severity, f.message) for f in report.findings]
    assert not any("same()" in m for _, m in found), found
    (other,) = [m for s, m in found if "other()" in m]
    assert "not restored by rollback of 20250103_000000_reshape" in other
    assert "-AS $function$SELECT 1$function$" in other and "+AS $function$SELECT 2$function$" in other
    view = [(s, m) for s, m in found if m.startswith("view everything")]
    assert view and all(s == "note" for s, _ in view), view
    assert any("SELECT * is expanded" in m for _, m in view), view
    recent = [(s, m) for s, m in found if m.startswith("view recent")]
    assert recent and all(s == "note" and "folded from 'now'" in m for s, m in recent), recent
