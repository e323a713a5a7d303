"""Secrets stay secret: PII keys and DSN passwords never appear in any output, log or table."""

from __future__ import annotations

import subprocess

from conftest import MIGRATIONS, TEST_KEYS
from mercurio_migrate.embedded import find_bindir


def test_pii_keys_appear_in_no_output_and_nowhere_in_the_database(cli, db, database_url, pg_cluster, tmp_path):
    runs = [
        cli("--dir", str(MIGRATIONS), "up", "--validate-each"),
        cli("--dir", str(MIGRATIONS), "--json", "status"),
        cli("--dir", str(MIGRATIONS), "log"),
        cli("--dir", str(MIGRATIONS), "--json", "up", "--dry-run"),
        cli("--dir", str(MIGRATIONS), "down", "--steps", "3"),
        cli("--dir", str(MIGRATIONS), "--json", "up"),
        cli("--dir", str(MIGRATIONS), "up", "--dry-run", env={"MERCURIO_VERBOSE": "1"}),
    ]
    for result in runs:
        assert result.returncode == 0, result.stderr
        everything = result.stdout + result.stderr
        for key in TEST_KEYS.values():
            assert key not in everything
    # the whole database, schema and data, as text: no key anywhere
    database = database_url.split("/")[-1].split("?")[0]
    dump = subprocess.run([str(find_bindir() / "pg_dump"), "-h", str(pg_cluster.socket_dir), "-U", "postgres",
                           database], capture_output=True, text=True, check=True).stdout
    assert "encrypt_pii" in dump  # the dump is real
    for key in TEST_KEYS.values():
        assert key not in dump
    settings = db.execute("SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c "
                          "WHERE c LIKE 'mercurio.%'").fetchone()[0]
    assert settings == 0
    server_log = (pg_cluster.log_file).read_text(errors="replace")
    for key in TEST_KEYS.values():
        assert key not in server_log


def test_keys_reach_the_session_but_not_pg_stat_activity(cli, db, tmp_path):
    root = tmp_path / "m"
    (root / "20250101_000000_probe").mkdir(parents=True)
    (root / "20250101_000000_probe" / "migration.sql").write_text(
        "CREATE TABLE probe AS SELECT a.query, a.application_name,\n"
        "  current_setting('mercurio.hmac_key', true) IS NOT NULL AS has_key\n"
        "FROM pg_stat_activity a WHERE a.pid = pg_backend_pid();\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 0, result.stderr
    query, application_name, has_key = db.execute("SELECT * FROM probe").fetchone()
    assert has_key is True
    for key in TEST_KEYS.values():
        assert key not in query and key not in application_name
