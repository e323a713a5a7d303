"""lint as a user meets it: exit codes, output formats, configuration, suppression, docs kept in sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mercurio_migrate.errors import UsageError
from mercurio_migrate.lint import lint_paths, load_config

REPO = Path(__file__).resolve().parents[2]
HEADER = "-- Migration: m\n-- Purpose: p\n-- Author: a\n-- Date: 2025-08-23\n-- Requirements: 1\n\n"
UNSAFE = HEADER + "BEGIN;\nSET LOCAL lock_timeout = '5s';\nCREATE INDEX t_a ON t (a);\nCOMMIT;\n"
ROLLBACK = "BEGIN;\nSET LOCAL lock_timeout = '5s';\nDROP INDEX IF EXISTS t_a;\nCOMMIT;\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mercurio_migrate", "lint", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def folder(root: Path, migration: str, rollback: str | None = ROLLBACK,
           name: str = "20250823_143000_add_index") -> Path:
    path = root / "migrations" / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "migration.sql").write_text(migration)
    if rollback is not None:
        (path / "rollback.sql").write_text(rollback)
    return path


def test_exit_1_on_error_findings_and_0_when_clean(tmp_path):
    folder(tmp_path, UNSAFE)
    failed = run(cwd=tmp_path)  # default: ./migrations
    assert failed.returncode == 1, failed.stderr
    assert "[require-concurrent-index-creation]" in failed.stdout and "fix: " in failed.stdout
    clean = run("--ignore", "require-concurrent-index-creation,require-statement-timeout", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 error(s)" in clean.stdout


def test_bad_path_and_unknown_rule_exit_2_without_traceback(tmp_path):
    missing = run("nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    unknown = run("--select", "no-such-rule", cwd=tmp_path)
    assert unknown.returncode == 2 and "no-such-rule" in unknown.stderr and "Traceback" not in unknown.stderr


def test_json_output_carries_every_field(tmp_path):
    folder(tmp_path, UNSAFE)
    result = run("--format", "json", "migrations", cwd=tmp_path)
    document = json.loads(result.stdout)
    finding = next(f for f in document["findings"] if f["rule"] == "require-concurrent-index-creation")
    assert finding == {"rule": "require-concurrent-index-creation", "severity": "error",
                       "file": "migrations/20250823_143000_add_index/migration.sql", "line": 9, "column": 1,
                       "message": finding["message"], "fix": finding["fix"]}
    assert "t" in finding["message"] and "CONCURRENTLY" in finding["fix"]


def test_sarif_has_the_required_2_1_0_structure(tmp_path):
    folder(tmp_path, UNSAFE)
    document = json.loads(run("--format", "sarif", cwd=tmp_path).stdout)
    assert document["version"] == "2.1.0" and document["$schema"].endswith("sarif-2.1.0.json")
    (run_,) = document["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] and isinstance(driver["rules"], list)
    rule_ids = [r["id"] for r in driver["rules"]]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    assert run_["results"]
    for result in run_["results"]:
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert not location["artifactLocation"]["uri"].startswith("/")  # repository-relative for code scanning
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1


def test_suppression_on_a_statement_with_reason(tmp_path):
    suppressed = UNSAFE.replace("CREATE INDEX", "-- mercurio-lint: ignore require-concurrent-index-creation "
                                                "table holds 12 rows\nCREATE INDEX")
    root = folder(tmp_path, suppressed).parent
    result = lint_paths([root], load_config({}))
    assert not [f for f in result.findings if f.rule == "require-concurrent-index-creation"]
    assert result.suppressed == 1
    no_reason = UNSAFE.replace("CREATE INDEX", "-- mercurio-lint: ignore require-concurrent-index-creation\nCREATE INDEX")
    folder(tmp_path, no_reason)
    result = lint_paths([root], load_config({}))
    assert {f.rule for f in result.findings} >= {"require-concurrent-index-creation", "invalid-suppression"}


def test_trailing_suppression_and_ignore_file(tmp_path):
    trailing = UNSAFE.replace("CREATE INDEX t_a ON t (a);",
                              "CREATE INDEX t_a ON t (a); -- mercurio-lint: ignore require-concurrent-index-creation tiny")
    root = folder(tmp_path, trailing).parent
    assert not [f for f in lint_paths([root], load_config({})).findings if f.rule == "require-concurrent-index-creation"]
    whole = "-- mercurio-lint: ignore-file rollback-present data fix, restored from backup\n" + HEADER + "SELECT 1;\n"
    folder(tmp_path, whole, rollback=None, name="20250824_000000_fix")
    assert not [f for f in lint_paths([root], load_config({})).findings if f.rule == "rollback-present"]


def test_pyproject_configuration(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.mercurio-migrate.lint]\n'
        'severity = { "require-concurrent-index-creation" = "warning", "prefer-identity" = "error" }\n'
        'tenant_exempt_tables = ["tenant", "workspace", "audit"]\n'
        'ignore = ["require-statement-timeout"]\n')
    folder(tmp_path, UNSAFE.replace("CREATE INDEX t_a ON t (a);",
                                    "CREATE TABLE audit (id BIGSERIAL PRIMARY KEY);\n"
                                    "COMMENT ON TABLE audit IS 'log - external ID: au_{id}';\n"
                                    "CREATE INDEX t_a ON t (a);"))
    result = run("--format", "json", cwd=tmp_path)
    findings = json.loads(result.stdout)["findings"]
    by_rule = {f["rule"]: f["severity"] for f in findings}
    assert by_rule["require-concurrent-index-creation"] == "warning"
    assert by_rule["prefer-identity"] == "error"  # off by default, enabled by the severity table
    assert "tenant-columns" not in by_rule and "require-statement-timeout" not in by_rule
    assert result.returncode == 1  # prefer-identity is now an error


def test_bad_configuration_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown key"):
        load_config({"lint": {"sevrity": {}}})
    with pytest.raises(UsageError, match="use one of"):
        load_config({"lint": {"severity": {"drop-column": "fatal"}}})
    with pytest.raises(UsageError, match="unknown rule"):
        load_config({}, ignore="drop-colum")


def test_select_and_ignore():
    assert set(load_config({}, select="drop-column,prefer-identity").severities) == {"drop-column", "prefer-identity"}
    everything = load_config({}, select="all", ignore="drop-column").severities
    assert "prefer-text-field" in everything and "drop-column" not in everything
    assert "prefer-text-field" not in load_config({}).severities


def test_single_files_and_folders(tmp_path):
    path = folder(tmp_path, UNSAFE, rollback="DROP INDEX t_a;\n")
    only_rollback = lint_paths([path / "rollback.sql"], load_config({}))
    assert only_rollback.findings and {Path(f.file).name for f in only_rollback.findings} == {"rollback.sql"}
    loose = tmp_path / "adhoc.sql"
    loose.write_text("ALTER TABLE t RENAME COLUMN a TO b;\n")
    assert {f.rule for f in lint_paths([loose], load_config({})).findings} >= {"rename-column"}
    whole_folder = lint_paths([path], load_config({}))
    assert {Path(f.file).name for f in whole_folder.findings} == {"migration.sql", "rollback.sql"}


def test_existing_tables_come_from_earlier_migrations(tmp_path):
    folder(tmp_path, HEADER + "BEGIN;\nCREATE TABLE t (a VARCHAR(10));\nCOMMIT;\n", name="20250101_000000_create")
    root = folder(tmp_path, HEADER + "BEGIN;\nALTER TABLE t ALTER COLUMN a TYPE VARCHAR(20);\n"
                  "ALTER TABLE t ALTER COLUMN a TYPE INTEGER USING a::integer;\nCOMMIT;\n").parent
    changes = [f for f in lint_paths([root], load_config({}, select="column-type-change")).findings]
    assert [f.line for f in changes] == [9]  # widening a varchar is metadata-only; the cast rewrites


def test_syntax_error_is_a_finding_not_a_crash(tmp_path):
    root = folder(tmp_path, HEADER + "CREATE TABLE (;\n").parent
    result = lint_paths([root], load_config({}))
    (error,) = [f for f in result.findings if f.rule == "syntax-error"]
    assert error.line == 7 and error.severity == "error"


def test_a_path_that_is_neither_a_file_nor_a_directory_is_refused_unread(tmp_path):
    import os

    os.mkfifo(tmp_path / "x.sql")
    for path in (tmp_path / "x.sql", Path("/dev/zero")):
        with pytest.raises(UsageError, match="not a regular file nor a directory, so it is not read"):
            lint_paths([path], load_config({}))


def test_a_loose_file_is_read_as_migration_files_are(tmp_path):
    bom = tmp_path / "bom.sql"
    bom.write_bytes("\ufeffALTER TABLE t RENAME COLUMN a TO b;\n".encode())
    (rename,) = [f for f in lint_paths([bom], load_config({})).findings if f.rule == "rename-column"]
    assert (rename.line, rename.column) == (1, 1)
    for name, data, problem in (("latin1.sql", b"SELECT '\xe9';\n", "is not UTF-8 (invalid byte 0xe9 at line 1)"),
                                ("binary.sql", b"SELECT 1;\x00\n", "contains NUL bytes")):
        (tmp_path / name).write_bytes(data)
        refused = run(name, cwd=tmp_path)
        assert refused.returncode == 2 and f"{name}: {problem}" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_psql_input_is_named_as_such_with_what_to_do(tmp_path):
    root = folder(tmp_path, HEADER + "CREATE TABLE t (id bigint);\n\\connect other\n").parent
    (error,) = [f for f in lint_paths([root], load_config({})).findings if f.rule == "syntax-error"]
    assert (error.line, error.column) == (8, 1)
    assert error.message.startswith("psql meta-command `\\connect other` is not SQL") and "DATABASE_URL" in error.fix
    root = folder(tmp_path / "copy", HEADER + "COPY t (id) FROM stdin;\n1\n2\n\\.\n").parent
    (error,) = [f for f in lint_paths([root], load_config({})).findings if f.rule == "syntax-error"]
    assert (error.line, error.column) == (7, 1) and "COPY … FROM stdin followed by its data" in error.message


def test_docs_are_generated_from_the_rules():
    from mercurio_migrate.lint.docs import generate, generated_part

    committed = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    assert generated_part(committed) == generate(), \
        "docs/lint.md is stale: run python -m mercurio_migrate.lint.docs --write docs/lint.md"
    from mercurio_migrate.lint.rules import registry

    for rule_id in registry():
        assert f"### `{rule_id}`" in committed


def test_timestamp_to_timestamptz_under_a_utc_session_is_not_a_rewrite(tmp_path):
    """PostgreSQL converts timestamp <-> timestamptz without rewriting while the session's time zone is UTC
    (crates.io's migrations do it so: 206 false findings before)."""
    folder(tmp_path, HEADER + "BEGIN;\nCREATE TABLE t (a TIMESTAMP, b TIMESTAMPTZ);\nCOMMIT;\n",
           name="20250101_000000_create")
    root = folder(tmp_path, HEADER + "BEGIN;\nSET LOCAL timezone = 'UTC';\n"
                  "ALTER TABLE t ALTER COLUMN a TYPE TIMESTAMP WITH TIME ZONE;\n"
                  "ALTER TABLE t ALTER COLUMN b TYPE timestamp;\n"
                  "SET LOCAL timezone = 'Europe/Paris';\n"
                  "ALTER TABLE t ALTER COLUMN a TYPE timestamp;\nCOMMIT;\n").parent
    changes = [f for f in lint_paths([root], load_config({}, select="column-type-change")).findings]
    assert [f.line for f in changes] == [12]  # only the change made under Europe/Paris rewrites


def test_rollbacks_that_verify_proves_complete_are_not_reported(tmp_path):
    """Shapes crates.io and another project use, each complete (verify agrees): an index on a materialized
    view dropped with the view; an unnamed UNIQUE re-added under the name PostgreSQL gives it; a drop and
    re-create in the migration."""
    folder(tmp_path, HEADER + "BEGIN;\nCREATE TABLE t (id int, email text);\n"
           "ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email);\nCREATE INDEX t_id ON t (id);\nCOMMIT;\n",
           rollback="BEGIN;\nDROP TABLE t;\nCOMMIT;\n", name="20250101_000000_create")
    root = folder(tmp_path, HEADER + "BEGIN;\nCREATE MATERIALIZED VIEW mv AS SELECT id FROM t;\n"
                  "CREATE UNIQUE INDEX mv_id ON mv (id);\nALTER TABLE t DROP CONSTRAINT t_email_key;\n"
                  "DROP INDEX t_id;\nCREATE INDEX t_id ON t (id, email);\nCOMMIT;\n",
                  rollback="BEGIN;\nDROP INDEX t_id;\nCREATE INDEX t_id ON t (id);\nALTER TABLE t ADD UNIQUE (email);\n"
                           "DROP MATERIALIZED VIEW mv;\nCOMMIT;\n", name="20250102_000000_change").parent
    findings = lint_paths([root], load_config({}, select="rollback-completeness")).findings
    assert [f.message for f in findings if "20250102" in f.file] == []
