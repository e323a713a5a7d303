"""Rollbacks that undo nothing (issue 19): an empty or comment-only rollback.sql runs as a no-op, as Diesel
and golang-migrate run it, saying so; a migration may declare itself irreversible, and then `down` refuses
naming the reason and `verify` reports it as a warning (an error with --strict)."""

from __future__ import annotations

import json

from conftest import write_migration


def applied(db) -> list[str]:
    return [r[0] for r in db.execute("SELECT version FROM public.mercurio_migrations ORDER BY 1").fetchall()]


def test_an_empty_or_comment_only_rollback_only_removes_the_history_row(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n", "")
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);\n", "-- nothing to undo\n")
    assert cli("--dir", str(root), "status").returncode == 0
    up = cli("--dir", str(root), "up")
    assert up.returncode == 0, up.stderr
    down = cli("--dir", str(root), "down", "--all")
    assert down.returncode == 0, down.stderr
    assert "20250101_000001_b/rollback.sql holds no statement" in down.stderr
    assert "20250101_000000_a/rollback.sql holds no statement" in down.stderr
    assert applied(db) == []
    assert db.execute("SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')").fetchone()[0] == 2


def test_a_declared_irreversible_migration_is_refused_by_down_naming_the_reason(cli, db, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n", "DROP TABLE a;\n")
    write_migration(root, "20250101_000001_drop_col",
                    "-- Migration: drop a legacy column\n-- Irreversible: the column's data is gone for good\n"
                    "ALTER TABLE a ADD COLUMN legacy text;\nALTER TABLE a DROP COLUMN legacy;\n")
    assert cli("--dir", str(root), "up").returncode == 0
    down = cli("--dir", str(root), "down")
    assert down.returncode == 1
    assert "20250101_000001_drop_col: declared irreversible (the column's data is gone for good)" in down.stderr
    assert applied(db) == ["20250101_000000", "20250101_000001"]


def test_verify_reports_an_irreversible_migration_as_a_warning_and_an_error_with_strict(cli, tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id int);\n", "DROP TABLE a;\n")
    write_migration(root, "20250101_000001_b", "CREATE TABLE b (id int);\n",
                    "-- Irreversible: b is shared with another service\n")
    loose = cli("--dir", str(root), "--json", "verify")
    assert loose.returncode == 0, loose.stdout + loose.stderr
    findings = [f for m in json.loads(loose.stdout)["migrations"] for f in m["findings"]]
    assert any(f["severity"] == "warning" and "declared irreversible (b is shared with another service)"
               in f["message"] for f in findings), findings
    strict = cli("--dir", str(root), "verify", "--strict")
    assert strict.returncode == 1
