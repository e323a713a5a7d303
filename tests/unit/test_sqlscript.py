from pathlib import Path

import pytest

from conftest import seed_file
from mercurio_migrate.errors import PsqlInputError, SqlError
from mercurio_migrate.sqlscript import Mode, line_column, parse


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


@pytest.mark.parametrize(("text", "line", "column", "command", "advice"), [
    ("CREATE TABLE a (id int);\n\\set n 5\nSELECT :n;\n", 2, 1, "`\\set n 5`", "write the value into the SQL"),
    ("CREATE TABLE a (id int)\n\\connect other_db\n", 2, 1, "`\\connect other_db`", "its own DATABASE_URL"),
    ("\\c other_db\n", 1, 1, "`\\c other_db`", "over that one connection"),
    ("SELECT 1;\n  \\i schema/tables.sql\n", 2, 3, "`\\i schema/tables.sql`", "put the SQL of that file here"),
    ("SELECT 1;\n\\ir tables.sql\n", 2, 1, "`\\ir tables.sql`", "put the SQL of that file here"),
    ("--\n-- PostgreSQL database dump\n--\n\n\\restrict QJ6b2Zz8kX0aBcD\n\nSET statement_timeout = 0;\n", 5, 1,
     "`\\restrict QJ6b2Zz8kX0aBcD`", "delete the \\restrict line and the \\unrestrict line"),
    ("SET statement_timeout = 0;\n\\unrestrict QJ6b2Zz8kX0aBcD\n", 2, 1, "`\\unrestrict", "15.14"),
    ("SELECT format('CREATE INDEX ON %I (id)', t) FROM ts \\gexec\n", 1, 53, "`\\gexec`", "write those statements"),
    ("SELECT 1;\n\\timing on\n", 2, 1, "`\\timing on`", "delete this line"),
])
def test_psql_meta_commands_are_named_with_what_to_do_instead(text, line, column, command, advice):
    with pytest.raises(PsqlInputError) as caught:
        parse(text, "m/migration.sql")
    error = caught.value
    assert (error.location.file, error.location.line, error.location.column) == ("m/migration.sql", line, column)
    assert f"psql meta-command {command}" in error.message and "is not SQL" in error.message
    assert advice.lower() in (error.message + error.hint).lower()
    assert error.exit_code == 2


def test_only_a_backslash_where_the_parser_stops_counts_not_one_in_a_string_or_body():
    body = ("SELECT 'C:\\temp\\x', E'a\\\\b';\n"
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\nSELECT '\\connect x'\n$$;\n"
            "COMMENT ON FUNCTION f() IS $c$\n\\set x 1\n$c$;\n")
    assert len(parse(body).statements) == 3  # valid SQL: the backslashes are string contents
    with pytest.raises(PsqlInputError) as caught:
        parse(body + "\\set y 2\n", "f.sql")
    assert str(caught.value.location) == "f.sql:8:1" and "`\\set y 2`" in caught.value.message
    with pytest.raises(SqlError) as plain:  # a syntax error elsewhere stays a syntax error
        parse(body + "SELEC 1;\n", "f.sql")
    assert not isinstance(plain.value, PsqlInputError) and 'syntax error at or near "SELEC"' in plain.value.message


PG_DUMP_DATA = ("SET client_encoding = 'UTF8';\n\n"
                "COPY public.tenant (id, name) FROM stdin;\n"
                "{rows}\\.\n\n"
                "SELECT pg_catalog.setval('public.tenant_id_seq', 2, true);\n")


@pytest.mark.parametrize("rows", ["1\tacme\n2\tglobex\n", "", "\\N\tnobody\n", "select\t1\nfoo\tbar\n"])
def test_copy_from_stdin_with_inline_data_names_the_copy_and_what_to_do(rows):
    with pytest.raises(PsqlInputError) as caught:
        parse(PG_DUMP_DATA.format(rows=rows), "m/migration.sql")
    error = caught.value
    assert (error.location.line, error.location.column) == (3, 1)  # the COPY
    assert "COPY … FROM stdin followed by its data (from line 4)" in error.message
    assert "INSERT … VALUES" in error.hint and "server" in error.hint
    assert error.exit_code == 2


def test_a_syntax_error_after_a_copy_from_a_server_file_is_a_plain_syntax_error():
    with pytest.raises(SqlError) as caught:
        parse("COPY public.tenant FROM '/srv/tenant.tsv';\n1\tacme\n", "f.sql")
    assert not isinstance(caught.value, PsqlInputError)
    with pytest.raises(PsqlInputError) as copy:  # the same data after FROM stdin is psql's
        parse("COPY public.tenant FROM stdin;\n1\tacme\n", "f.sql")
    assert "COPY … FROM stdin followed by its data (from line 2)" in copy.value.message


def test_line_column_counts_characters_not_bytes():
    text = "SELECT 'é';\nSELECT 'ü', x;"
    assert line_column(text, text.index("x")) == (2, 13)


SEED_FILES = sorted(Path(__file__).resolve().parents[2].joinpath("migrations").glob("*/*.sql"))


def test_a_trailing_comment_is_not_part_of_a_statements_text():
    """The text the tool sends ends with the statement's code: a ';' or SQL of the tool's after it can never land
    inside a comment (a comment before the final ';', or after a last statement without ';')."""
    cases = {
        "CREATE TABLE a (id int) -- note\n;": "CREATE TABLE a (id int)",
        "CREATE TABLE b (id int)\n-- note\n": "CREATE TABLE b (id int)",
        "CREATE TABLE c (id int) /* note */": "CREATE TABLE c (id int)",
        "CREATE TABLE d (id int) -- a\n-- b\n/* c */\n": "CREATE TABLE d (id int)",
        "SELECT '--x'": "SELECT '--x'",
        "SELECT $$ -- $$": "SELECT $$ -- $$",
        "SELECT 'é' -- é\n": "SELECT 'é'",
    }
    for text, expected in cases.items():
        assert [s.text for s in parse(text).statements] == [expected], text

