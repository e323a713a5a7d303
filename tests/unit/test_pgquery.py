"""pgquery: libpg_query called through ctypes gives exactly what pglast gives, trees and errors alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mercurio_migrate import pgquery

REPO = Path(__file__).resolve().parents[2]
TEXTS = [p.read_text() for p in sorted(REPO.joinpath("migrations").glob("*/*.sql"))] + [
    "SELECT 'é' || $$;$$;\nCREATE TABLE t (id int);",
    "DO $body$ BEGIN RAISE NOTICE 'ü;'; END $body$;",
    "-- only a comment",
    "",
]
BROKEN = ["SELEC 1;", "SELECT 'é', 'ü' FROM;", "CREATE TABLE t (id int", "SELECT 'never closed"]


def pglast_outcome(text: str):
    from pglast.parser import ParseError, parse_sql_json

    try:
        return ("tree", parse_sql_json(text))
    except ParseError as exc:
        return ("error", exc.args[0], exc.args[1] if len(exc.args) > 1 else None)


def native_outcome(text: str):
    try:
        return ("tree", pgquery.parse_json(text))
    except pgquery.ParseFailed as exc:
        return ("error", exc.message, exc.offset)


def test_the_parser_is_found_in_pglasts_extension_module():
    assert pgquery.native() is not None  # else every parse falls back to importing pglast (correct, slower)


@pytest.mark.parametrize("text", TEXTS + BROKEN)
def test_the_native_call_gives_pglasts_tree_or_error(text):
    assert native_outcome(text) == pglast_outcome(text)


def test_without_the_native_parser_pglast_is_used(monkeypatch):
    monkeypatch.setattr(pgquery, "native", lambda: None)
    for text in TEXTS[:3] + BROKEN:
        assert native_outcome(text) == pglast_outcome(text)


def test_parsing_imports_no_pglast_module():
    code = ("import sys; from mercurio_migrate import pgquery; pgquery.parse_json('SELECT 1');"
            "print(sorted(m for m in sys.modules if m.startswith('pglast')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_many_parses_do_not_leak_memory():
    import resource

    text = TEXTS[0] * 4
    for _ in range(200):
        pgquery.parse_json(text)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2000):
        pgquery.parse_json(text)
        with pytest.raises(pgquery.ParseFailed):
            pgquery.parse_json("SELEC 1;")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # kB: the results are freed
