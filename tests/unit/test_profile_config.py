"""The mercurio profile and the history table's name: how config resolves them, and which lint rules and
tool tables follow from them (docs/profile.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mercurio_migrate import config
from mercurio_migrate.errors import UsageError
from mercurio_migrate.history import HistoryStore
from mercurio_migrate.lint import load_config
from mercurio_migrate.lint.rules import for_profile, registry

REPO = Path(__file__).resolve().parents[2]
HOUSE_RULES = {"header-fields", "tenant-columns", "tenant-first-index", "table-comment", "bigint-keys",
               "pii-encrypted", "transaction-wrapping"}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    for name in ("MERCURIO_PROFILE", "MERCURIO_HISTORY_TABLE"):
        monkeypatch.delenv(name, raising=False)


def project(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.mercurio-migrate]\n{body}\n", encoding="utf-8")
    return tmp_path


# --- profile --------------------------------------------------------------------------------------------
def test_no_profile_by_default(tmp_path):
    settings = config.resolve(cwd=tmp_path)
    assert settings.profile is None and not settings.mercurio
    assert config.resolve(cwd=project(tmp_path, 'lock_timeout = "3s"')).profile is None


def test_profile_from_pyproject_and_environment(tmp_path, monkeypatch):
    assert config.resolve(cwd=project(tmp_path, 'profile = "mercurio"')).mercurio
    monkeypatch.setenv("MERCURIO_PROFILE", "none")  # the environment wins, and can say "no profile"
    assert config.resolve(cwd=tmp_path).profile is None
    monkeypatch.setenv("MERCURIO_PROFILE", "mercurio")
    assert config.resolve(cwd=project(tmp_path, "")).profile == "mercurio"


def test_this_repository_uses_the_mercurio_profile():
    assert config.resolve(cwd=REPO).profile == "mercurio"


def test_an_unknown_profile_is_a_usage_error_naming_the_file(tmp_path, monkeypatch):
    with pytest.raises(UsageError) as raised:
        config.resolve(cwd=project(tmp_path, 'profile = "mercury"'))
    assert raised.value.exit_code == 2
    assert str(tmp_path / "pyproject.toml") in raised.value.message and "'mercury'" in raised.value.message
    assert "mercurio" in raised.value.hint
    monkeypatch.setenv("MERCURIO_PROFILE", "acme")
    with pytest.raises(UsageError, match="MERCURIO_PROFILE = 'acme' is not a known profile"):
        config.resolve(cwd=tmp_path)


# --- history_table --------------------------------------------------------------------------------------
def test_history_table_default_and_configured(tmp_path, monkeypatch):
    assert config.resolve(cwd=tmp_path).history_table == "public.mercurio_migrations"
    assert config.resolve(cwd=project(tmp_path, 'history_table = "ops.schema_history"')).history_table == \
        "ops.schema_history"
    assert config.resolve(cwd=project(tmp_path, 'history_table = "schema_history"')).history_table == \
        "public.schema_history"
    monkeypatch.setenv("MERCURIO_HISTORY_TABLE", "audit.migrations")
    assert config.resolve(cwd=tmp_path).history_table == "audit.migrations"


@pytest.mark.parametrize("value, why", [
    ('"Ops.History"', "not a table name of the form schema.table"),
    ('"a.b.c"', "not a table name of the form schema.table"),
    ('"ops."', "not a table name of the form schema.table"),
    ('"ops.my-history"', "not a table name of the form schema.table"),
    ('"1ops.history"', "not a table name of the form schema.table"),
    ('"public.select"', "'select' is an SQL keyword"),
    ('"ops.' + "h" * 55 + '"', "too long"),
    ("42", "must be a string"),
])
def test_a_bad_history_table_is_a_usage_error_naming_the_file(tmp_path, value, why):
    with pytest.raises(UsageError) as raised:
        config.resolve(cwd=project(tmp_path, f"history_table = {value}"))
    assert raised.value.exit_code == 2
    assert why in raised.value.message
    assert f"{tmp_path / 'pyproject.toml'}: [tool.mercurio-migrate] history_table" in raised.value.message


def test_the_store_names_the_tool_tables():
    default = HistoryStore()
    assert default.progress_table == "public.mercurio_migration_progress"  # the name databases already have
    assert default.tool_tables == ("public.mercurio_migrations", "public.mercurio_migration_progress")
    assert HistoryStore(migration_log=True).tool_tables[-1] == "public.migration_log"
    custom = HistoryStore("ops.schema_history")
    assert custom.tool_tables == ("ops.schema_history", "ops.schema_history_progress")
    assert "CREATE SCHEMA IF NOT EXISTS ops;" in custom.history_ddl
    assert "CREATE SCHEMA" not in default.history_ddl


def test_without_migration_log_no_statement_touches_one():
    store = HistoryStore("ops.schema_history")
    assert store.missing_tables_ddl(False, False) == store.history_ddl
    assert "NULL::text" in store.tables_exist_sql and "migration_log" not in store.tables_exist_sql
    for direction in ("up", "down"):
        prepared = store.batch_prepare_sql("t0k3n", direction, None)
        assert "migration_log" not in prepared and "ops.schema_history" in prepared
    with_log = HistoryStore(migration_log=True)
    assert "CREATE TABLE IF NOT EXISTS migration_log" in with_log.missing_tables_ddl(True, False)
    assert "INSERT INTO public.migration_log" in with_log.batch_prepare_sql("t0k3n", "up", "public.migration_log")


# --- lint rules -----------------------------------------------------------------------------------------
def test_house_rules_are_exactly_mercurio_s():
    assert {rule_id for rule_id, rule in registry().items() if rule.profile == "mercurio"} == HOUSE_RULES
    assert {rule.profile for rule in registry().values()} == {None, "mercurio"}


def test_rule_selection_per_profile():
    generic = for_profile(None)
    assert not HOUSE_RULES & set(generic)
    assert {"require-concurrent-index-creation", "rollback-present", "rollback-completeness",
            "syntax-error"} <= set(generic)
    assert for_profile("mercurio") == registry()
    assert not HOUSE_RULES & set(load_config({}).severities)
    assert not HOUSE_RULES & set(load_config({}, select="all").severities)
    assert HOUSE_RULES <= set(load_config({}, profile="mercurio").severities)


def test_naming_a_house_rule_without_the_profile_says_whose_it_is():
    with pytest.raises(UsageError) as raised:
        load_config({}, select="drop-column,tenant-columns")
    assert "tenant-columns: rule(s) of the mercurio profile" in raised.value.message
    assert 'profile = "mercurio"' in raised.value.hint
    with pytest.raises(UsageError, match="header-fields: rule"):
        load_config({"lint": {"severity": {"header-fields": "off"}}})
