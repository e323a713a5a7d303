"""A project without the mercurio profile gets the generic tool: its own tables (a `migration_log` of its own
among them) are left alone, no house lint rule, no PII key handling, no `preflight`; and the history table can
be named (docs/profile.md)."""

from __future__ import annotations

import json

from conftest import GENERIC, write_migration

# A foreign project's migrations: no Mercurio header, no tenant columns, integer keys, plain e-mail column. They
# take each way a file runs: two batched transactional ones, one whose row count is recorded (alone), one
# statement by statement (CREATE INDEX CONCURRENTLY).
MIGRATIONS = {
    "20240101_000001_create_crates": ("CREATE TABLE crates (id integer PRIMARY KEY, name text NOT NULL, email text);\n",
                                      "DROP TABLE crates;\n"),
    "20240101_000002_create_versions": (
        "BEGIN;\nCREATE TABLE versions (id serial PRIMARY KEY, crate_id integer NOT NULL REFERENCES crates (id), "
        "num text NOT NULL);\nCREATE INDEX versions_crate_id ON versions (crate_id);\nCOMMIT;\n",
        "BEGIN;\nDROP TABLE versions;\nCOMMIT;\n"),
    "20240101_000003_seed_crates": ("INSERT INTO crates (id, name) VALUES (1, 'serde'), (2, 'tokio');\n",
                                    "DELETE FROM crates WHERE id IN (1, 2);\n"),
    "20240101_000004_index_crate_names": ("CREATE INDEX CONCURRENTLY crates_name ON crates (name);\n",
                                          "DROP INDEX CONCURRENTLY crates_name;\n"),
}
VERSIONS = ["20240101_000001", "20240101_000002", "20240101_000003", "20240101_000004"]
HOUSE_RULES = {"header-fields", "tenant-columns", "tenant-first-index", "table-comment", "bigint-keys",
               "pii-encrypted", "transaction-wrapping"}
# the project's own migration_log, of a shape the seed's is not
OWN_LOG = """
CREATE TABLE migration_log (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), entry jsonb NOT NULL,
                            at timestamptz NOT NULL DEFAULT now());
INSERT INTO migration_log (entry) VALUES ('{"deploy": 41}');
"""
LOG_COLUMNS_SQL = ("SELECT column_name, data_type FROM information_schema.columns "
                   "WHERE table_schema = 'public' AND table_name = 'migration_log' ORDER BY ordinal_position")


def foreign_project(root):
    for folder, (migration, rollback) in MIGRATIONS.items():
        write_migration(root, folder, migration, rollback)
    return root


def applied(db, table: str = "public.mercurio_migrations") -> list[str]:
    return [row[0] for row in db.execute(f"SELECT version FROM {table} ORDER BY version")]


def test_a_project_s_own_migration_log_is_left_alone(cli, db, tmp_path):
    root = foreign_project(tmp_path / "migrations")
    db.execute(OWN_LOG)
    columns, rows = db.execute(LOG_COLUMNS_SQL).fetchall(), db.execute("SELECT * FROM migration_log").fetchall()

    up = cli("--dir", str(root), "up", env=GENERIC)
    assert up.returncode == 0, up.stderr
    assert applied(db) == VERSIONS
    assert db.execute("SELECT count(*) FROM crates").fetchone()[0] == 2
    assert db.execute(LOG_COLUMNS_SQL).fetchall() == columns
    assert db.execute("SELECT * FROM migration_log").fetchall() == rows

    down = cli("--dir", str(root), "down", "--all", env=GENERIC)
    assert down.returncode == 0, down.stderr
    assert applied(db) == [] and db.execute("SELECT to_regclass('crates')").fetchone()[0] is None
    marked = cli("--dir", str(root), "resolve", VERSIONS[0], "--applied", env=GENERIC)
    assert marked.returncode == 0, marked.stderr
    assert applied(db) == VERSIONS[:1]
    assert db.execute(LOG_COLUMNS_SQL).fetchall() == columns
    assert db.execute("SELECT * FROM migration_log").fetchall() == rows

    log = cli("--dir", str(root), "log", env=GENERIC)
    assert log.returncode == 2 and "Traceback" not in log.stderr
    assert "there is no migration_log" in log.stderr and "mercurio profile" in log.stderr


def test_without_the_profile_no_migration_log_is_created(cli, db, tmp_path):
    root = foreign_project(tmp_path / "migrations")
    up = cli("--dir", str(root), "up", env=GENERIC)
    assert up.returncode == 0, up.stderr
    assert applied(db) == VERSIONS
    assert db.execute("SELECT to_regclass('public.migration_log')").fetchone()[0] is None
    assert cli("--dir", str(root), "down", "--steps", "2", env=GENERIC).returncode == 0
    assert applied(db) == VERSIONS[:2]
    assert db.execute("SELECT to_regclass('public.migration_log')").fetchone()[0] is None


def test_without_the_profile_no_house_lint_rule(cli, tmp_path):
    root = foreign_project(tmp_path / "migrations")
    generic = cli("lint", "--format", "json", str(root), env=GENERIC)
    assert generic.returncode in (0, 1), generic.stderr
    rules = {f["rule"] for f in json.loads(generic.stdout)["findings"]}
    assert rules and not rules & HOUSE_RULES
    house = cli("lint", "--format", "json", str(root))  # the same files with the mercurio profile
    assert {"header-fields", "tenant-columns", "table-comment", "bigint-keys", "transaction-wrapping"} <= \
        {f["rule"] for f in json.loads(house.stdout)["findings"]}
    listed = cli("lint", "--list-rules", env=GENERIC)
    listed_ids = {line.split()[0] for line in listed.stdout.splitlines()}
    assert "require-concurrent-index-creation" in listed_ids and not listed_ids & HOUSE_RULES


def test_without_the_profile_pii_function_names_are_the_project_s_own(cli, db, tmp_path):
    root = tmp_path / "migrations"
    write_migration(root, "20240101_000001_hashing",
                    "CREATE FUNCTION encrypt_pii(value text) RETURNS text LANGUAGE sql AS $$ SELECT md5(value) $$;\n"
                    "CREATE TABLE contact (id bigint PRIMARY KEY, email_hash text);\n"
                    "INSERT INTO contact VALUES (1, encrypt_pii('a@example.org'));\n")
    no_keys = {**GENERIC, "MERCURIO_PII_KEY": "", "MERCURIO_HMAC_KEY": ""}
    up = cli("--dir", str(root), "up", env=no_keys)
    assert up.returncode == 0, up.stderr
    assert db.execute("SELECT email_hash = md5('a@example.org') FROM contact").fetchone()[0]


def test_preflight_belongs_to_the_mercurio_profile(cli, tmp_path):
    result = cli("preflight", env=GENERIC)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "preflight belongs to the mercurio profile" in result.stderr


def test_an_unknown_profile_stops_every_command_naming_the_file(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.mercurio-migrate]\nprofile = "mercury"\n', encoding="utf-8")
    for args in (["status"], ["lint"]):
        result = cli(*args, env=GENERIC)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{tmp_path / 'pyproject.toml'}: [tool.mercurio-migrate] profile = 'mercury'" in result.stderr


def test_a_configured_history_table_end_to_end(cli, db, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.mercurio-migrate]\nhistory_table = "ops.schema_history"\n',
                                             encoding="utf-8")
    foreign_project(tmp_path / "migrations")  # ./migrations of the working folder, as the project runs it

    up = cli("up", env=GENERIC)
    assert up.returncode == 0, up.stderr
    assert applied(db, "ops.schema_history") == VERSIONS
    assert db.execute("SELECT to_regclass('public.mercurio_migrations'), to_regclass('public.migration_log'), "
                      "to_regclass('public.mercurio_migration_progress')").fetchone() == (None, None, None)
    # the statement-by-statement migration kept its progress beside the history, and cleared it when recorded
    assert db.execute("SELECT count(*) FROM ops.schema_history_progress").fetchone()[0] == 0

    status = cli("--json", "status", env=GENERIC)
    assert status.returncode == 0, status.stderr
    assert [(m["version"], m["state"]) for m in json.loads(status.stdout)["migrations"]] == \
        [(v, "applied") for v in VERSIONS]

    down = cli("down", "--steps", "2", env=GENERIC)
    assert down.returncode == 0, down.stderr
    assert applied(db, "ops.schema_history") == VERSIONS[:2]
    assert db.execute("SELECT to_regclass('crates_name')").fetchone()[0] is None
    states = [m["state"] for m in json.loads(cli("--json", "status", env=GENERIC).stdout)["migrations"]]
    assert states == ["applied", "applied", "pending", "pending"]

    assert cli("up", env=GENERIC).returncode == 0
    assert applied(db, "ops.schema_history") == VERSIONS
    verified = cli("verify", env=GENERIC)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    dumped = cli("dump", "--live", env=GENERIC).stdout
    assert "CREATE TABLE public.crates" in dumped and "schema_history" not in dumped


def test_a_bad_history_table_is_refused_before_connecting(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.mercurio-migrate]\nhistory_table = "ops.select"\n',
                                             encoding="utf-8")
    result = cli("status", env=GENERIC, database_url="postgresql://nobody@127.0.0.1:9/none")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "history_table = 'ops.select'" in result.stderr and str(tmp_path / "pyproject.toml") in result.stderr
