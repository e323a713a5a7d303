import re
from pathlib import Path

import pytest

from mercurio_migrate.errors import SqlError
from mercurio_migrate.sqlscript import Mode, line_column, parse

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "migration-examples.md"


def seed_file(path: str) -> str:
    blocks = dict(re.findall(r"#### File: `([^`]+)`\n```sql\n(.*?)```", SEED.read_text(), re.S))
    return blocks[path]


def test_semicolons_in_strings_comments_and_function_bodies_do_not_split():
    text = (
        "SELECT 'a;b';\n"
        "-- a comment; with a semicolon\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END; $$;\n"
        "/* block; comment */ SELECT E'x\\';y';\n"
    )
    script = parse(text, "f.sql")
    assert [s.kind for s in script.statements] == ["SelectStmt", "CreateFunctionStmt", "SelectStmt"]
    assert [s.line for s in script.statements] == [1, 3, 4]
    assert script.statements[1].text.endswith("END; $$")
    assert script.mode is Mode.TOOL_TRANSACTION


def test_own_begin_commit_is_replaced_by_the_tools_transaction_keeping_options():
    script = parse("BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE t (id int);\nSAVEPOINT a;\nCOMMIT;\n")
    assert script.mode is Mode.OWN_TRANSACTION
    assert [s.kind for s in script.body] == ["CreateStmt", "TransactionStmt"]
    assert script.begin_statement == "BEGIN ISOLATION LEVEL SERIALIZABLE"


def test_seed_example_3_runs_statement_by_statement_without_its_begin_commit():
    script = parse(seed_file("20250823_145000_add_event_system_indexes/migration.sql"))
    assert script.mode is Mode.AUTOCOMMIT
    assert len(script.statements) == 8
    assert [s.kind for s in script.body] == ["IndexStmt"] * 6
    assert all(s.non_transactional for s in script.body)
    assert script.body[0].first_line == "CREATE INDEX CONCURRENTLY idx_event_tenant_timestamp"


@pytest.mark.parametrize("path", [
    "20250823_143000_create_tenant_tables/migration.sql",
    "20250823_144000_create_identity_system/migration.sql",
    "20250824_090000_migrate_legacy_user_data/migration.sql",
    "20250824_100000_add_funnel_versioning/migration.sql",
    "20250824_100000_add_funnel_versioning/rollback.sql",
])
def test_other_seed_files_run_as_their_own_transaction(path):
    assert parse(seed_file(path)).mode is Mode.OWN_TRANSACTION


@pytest.mark.parametrize("sql", [
    "VACUUM t", "DROP INDEX CONCURRENTLY i", "REINDEX INDEX CONCURRENTLY i", "REINDEX (CONCURRENTLY) TABLE t",
    "CREATE DATABASE x", "ALTER SYSTEM SET work_mem = '8MB'", "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
    "CLUSTER",
])
def test_statements_that_cannot_run_in_a_transaction_are_detected(sql):
    assert parse(sql).mode is Mode.AUTOCOMMIT


@pytest.mark.parametrize("sql", ["ANALYZE t", "CREATE INDEX i ON t (a)", "CLUSTER t USING i", "DROP INDEX i"])
def test_transaction_safe_statements_are_not_flagged(sql):
    assert parse(sql).mode is Mode.TOOL_TRANSACTION


def test_several_transaction_blocks_run_as_written():
    assert parse("BEGIN; SELECT 1; COMMIT; BEGIN; SELECT 2; COMMIT;").mode is Mode.AS_WRITTEN
    assert parse("CREATE TABLE a (); BEGIN; SELECT 2; COMMIT;").mode is Mode.AS_WRITTEN


def test_syntax_error_names_file_line_and_column():
    with pytest.raises(SqlError) as caught:
        parse("SELECT 1;\n\n  SELECT * FRM t;\n", "m/migration.sql")
    error = caught.value
    assert (error.location.file, error.location.line, error.location.column) == ("m/migration.sql", 3, 12)
    assert 'syntax error at or near "FRM"' in error.message
    assert "SELECT * FRM t;" in error.message


def test_line_column_counts_characters_not_bytes():
    text = "SELECT 'é';\nSELECT 'ü', x;"
    assert line_column(text, text.index("x")) == (2, 13)


SEED_FILES = sorted(Path(__file__).resolve().parents[2].joinpath("migrations").glob("*/*.sql"))


def test_parsing_ahead_in_a_child_gives_exactly_what_parsing_here_gives():
    from mercurio_migrate.sqlscript import ParseAhead, parse_outcome

    texts = [p.read_text() for p in SEED_FILES] + ["SELECT 'é' || $$;$$;\nCREATE TABLE t (id int);", "SELEC 1;"]
    ahead = ParseAhead(texts)
    assert ahead._pid is not None  # a child really ran: the comparison below means something
    for text in texts:
        assert ahead.outcome(text) == parse_outcome(text, keep_trees=False)
    assert ahead.outcome("never sent") is None
    for path in SEED_FILES:
        text = path.read_text()
        assert parse(text, path, outcome=ahead.outcome(text)) == parse(text, path)
    with pytest.raises(SqlError) as raised:
        parse("SELEC 1;", "x.sql", outcome=ahead.outcome("SELEC 1;"))
    assert str(raised.value.location) == "x.sql:1:1"


def test_parsing_ahead_steps_aside_when_it_cannot_fork(monkeypatch):
    from mercurio_migrate.sqlscript import ParseAhead

    monkeypatch.setenv("MERCURIO_NO_PARSE_AHEAD", "1")
    ahead = ParseAhead(["SELECT 1"])
    assert ahead._pid is None and ahead.outcome("SELECT 1") is None and ahead.outcomes() is None


def test_a_failed_fork_leaves_no_pipe_open(monkeypatch):
    import os

    from mercurio_migrate.sqlscript import ParseAhead

    def no_fork():
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    before = set(os.listdir("/proc/self/fd"))
    for choose_later in (False, True):
        ahead = ParseAhead(["SELECT 1"], choose_later=choose_later)
        assert ahead._pid is None and ahead.outcome("SELECT 1") is None
    assert set(os.listdir("/proc/self/fd")) == before


def test_a_child_that_fails_is_ignored_and_the_parent_parses_itself(monkeypatch):
    from mercurio_migrate import sqlscript

    def broken(text, keep_trees=True):
        raise RuntimeError("the child breaks")

    monkeypatch.setattr(sqlscript, "parse_outcome", broken)  # the forked child inherits the broken parser
    ahead = sqlscript.ParseAhead(["SELECT 1"])
    assert ahead._pid is not None
    assert ahead.outcome("SELECT 1") is None


def test_parsing_ahead_of_a_later_choice_parses_just_the_chosen_files():
    from mercurio_migrate.sqlscript import ParseAhead, parse_outcome

    texts = ["SELECT 1;", "CREATE TABLE t (id int);", "SELEC 1;"]
    ahead = ParseAhead(texts, choose_later=True)
    assert ahead._pid is not None
    ahead.choose([1, 2])
    assert ahead.outcome(texts[1]) == parse_outcome(texts[1], keep_trees=False)
    assert ahead.outcome(texts[2]) == parse_outcome(texts[2]) and ahead.outcome(texts[2])[0] == "error"
    assert ahead.outcome(texts[0]) is None  # not chosen: parsed in-process by the caller
    ahead.close()


def test_a_child_told_nothing_or_never_read_is_ended_and_reaped():
    import os

    from mercurio_migrate.sqlscript import ParseAhead

    for chosen in ([], [0], None):
        ahead = ParseAhead(["SELECT 1;" * 20000], choose_later=True)  # an outcome larger than a pipe's buffer
        pid = ahead._pid
        assert pid is not None
        if chosen is not None:
            ahead.choose(chosen)
        ahead.close()
        assert ahead._pid is None
        try:
            os.waitpid(pid, os.WNOHANG)
            reaped = False
        except ChildProcessError:
            reaped = True
        assert reaped
