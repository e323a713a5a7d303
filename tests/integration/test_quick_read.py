"""`status` and an up-to-date `up` read the history through libpq directly, without importing psycopg; the
result must be exactly what the psycopg path gives, and anything unusual must take the psycopg path."""

from __future__ import annotations

import json

from conftest import write_migration

NO_FAST_PATH = {"MERCURIO_NO_LIBPQ_FASTPATH": "1"}


def migrations(tmp_path, count=3):
    root = tmp_path / "m"
    for i in range(count):
        write_migration(root, f"20250101_00000{i}_t{i}", f"-- Purpose: table {i}\nCREATE TABLE t{i} (id int);\n",
                        f"DROP TABLE t{i};\n")
    return root


def imported_psycopg(result) -> bool:
    return any("psycopg" in line for line in result.stderr.splitlines() if line.startswith("import time:"))


def test_status_reads_without_psycopg_and_matches_the_psycopg_path(cli, db, tmp_path):
    root = migrations(tmp_path)
    assert cli("--dir", str(root), "up", "--to", "20250101_000001").returncode == 0
    db.execute("SET TIME ZONE 'UTC'")
    quick = cli("--dir", str(root), "--json", "status", env={"PYTHONPROFILEIMPORTTIME": "1"})
    slow = cli("--dir", str(root), "--json", "status", env={**NO_FAST_PATH, "PYTHONPROFILEIMPORTTIME": "1"})
    assert quick.returncode == 0 and slow.returncode == 0, quick.stderr[-500:] + slow.stderr[-500:]
    assert not imported_psycopg(quick)
    assert imported_psycopg(slow)  # the switch works, so the comparison means something
    assert json.loads(quick.stdout) == json.loads(slow.stdout)
    states = [m["state"] for m in json.loads(quick.stdout)["migrations"]]
    assert states == ["applied", "applied", "pending"]
    text_quick = cli("--dir", str(root), "status")
    text_slow = cli("--dir", str(root), "status", env=NO_FAST_PATH)
    assert text_quick.stdout == text_slow.stdout and "+0000" in text_quick.stdout


def test_applied_at_is_shown_in_the_sessions_time_zone_either_way(cli, db, database_url, tmp_path):
    root = migrations(tmp_path, 1)
    assert cli("--dir", str(root), "up").returncode == 0
    database = db.info.dbname
    db.execute(f'ALTER DATABASE "{database}" SET TimeZone = \'Asia/Kolkata\'')
    quick = json.loads(cli("--dir", str(root), "--json", "status").stdout)["migrations"][0]
    slow = json.loads(cli("--dir", str(root), "--json", "status", env=NO_FAST_PATH).stdout)["migrations"][0]
    assert quick["applied_at"] == slow["applied_at"] and quick["applied_at"].endswith("+05:30")


def test_up_to_date_up_needs_no_psycopg_and_pending_work_still_runs(cli, db, tmp_path):
    root = migrations(tmp_path, 2)
    first = cli("--dir", str(root), "up", env={"PYTHONPROFILEIMPORTTIME": "1", **NO_FAST_PATH})
    assert first.returncode == 0 and imported_psycopg(first)
    noop = cli("--dir", str(root), "--json", "up", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert noop.returncode == 0 and json.loads(noop.stdout) == {"applied": []}
    assert not imported_psycopg(noop)
    write_migration(root, "20250101_000009_later", "CREATE TABLE later (id int);\n")
    later = cli("--dir", str(root), "--json", "up")
    assert later.returncode == 0, later.stderr
    assert [s["version"] for s in json.loads(later.stdout)["applied"]] == ["20250101_000009"]


def test_up_to_date_up_still_refuses_drift_and_a_read_only_server(cli, db, tmp_path):
    root = migrations(tmp_path, 1)
    assert cli("--dir", str(root), "up").returncode == 0
    (root / "20250101_000000_t0" / "migration.sql").write_text("CREATE TABLE t0 (id bigint);\n")
    drift = cli("--dir", str(root), "up")
    assert drift.returncode == 1
    assert "applied migration files changed since they ran: 20250101_000000_t0 (migration.sql)" in drift.stderr
    (root / "20250101_000000_t0" / "migration.sql").write_text("-- Purpose: table 0\nCREATE TABLE t0 (id int);\n")
    db.execute(f'ALTER DATABASE "{db.info.dbname}" SET default_transaction_read_only = on')
    refused = cli("--dir", str(root), "up")
    assert refused.returncode == 1 and "read-only" in refused.stderr


def test_status_before_the_first_migration_lists_everything_pending_either_way(cli, db, tmp_path):
    root = migrations(tmp_path, 2)
    quick = cli("--dir", str(root), "--json", "status", env={"PYTHONPROFILEIMPORTTIME": "1"})
    slow = cli("--dir", str(root), "--json", "status", env=NO_FAST_PATH)
    assert quick.returncode == 0 and slow.returncode == 0, quick.stderr[-500:]
    assert not imported_psycopg(quick)
    assert json.loads(quick.stdout) == json.loads(slow.stdout)
    assert [m["state"] for m in json.loads(quick.stdout)["migrations"]] == ["pending", "pending"]


def test_a_url_with_its_own_options_reads_quickly_and_migrates_through_psycopg(cli, db, database_url, tmp_path):
    # the URL's options must be merged with the tool's settings (psycopg does it); reading the history
    # needs neither, so an up-to-date `up` still answers without psycopg
    url = database_url + "&options=-c%20search_path%3Dpublic"
    root = migrations(tmp_path, 2)
    first = cli("--dir", str(root), "--json", "up", database_url=url, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert first.returncode == 0, first.stderr[-500:]
    assert imported_psycopg(first) and len(json.loads(first.stdout)["applied"]) == 2
    noop = cli("--dir", str(root), "--json", "up", database_url=url, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert noop.returncode == 0 and json.loads(noop.stdout) == {"applied": []}
    assert not imported_psycopg(noop)
    down = cli("--dir", str(root), "--json", "down", database_url=url, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert down.returncode == 0, down.stderr[-500:]
    assert imported_psycopg(down) and [s["version"] for s in json.loads(down.stdout)["rolled_back"]] == [
        "20250101_000001"]
