"""Terminal rendering (rich): progress lines and tables written to a pseudo-terminal, in a child process; and
the plain text written when the output is not a terminal."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import run_on_terminal  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")


def on_terminal(code: str, **env: str) -> str:
    """What ``code`` writes (stdout and stderr) when both are a terminal."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    terminal = {"TERM": "xterm-256color", "COLUMNS": "200"}
    return run_on_terminal([sys.executable, "-c", textwrap.dedent(code)], env=base | terminal | env, timeout=60)[1]


def test_progress_lines_are_coloured_as_rich_colours_them():
    out = on_terminal("""
        from mercurio_migrate.output import message
        message("applied 20250101_000001_a in 2.0 ms", "done")
        message("plain line")
        message("disk nearly full", "warning")
    """)
    assert "\x1b[32mapplied 20250101_000001_a in 2.0 ms\x1b[0m\n" in out
    assert "plain line\n" in out and "\x1b[0mplain" not in out.replace("\x1b[0m\n", "\n")
    assert "\x1b[33mwarning: disk nearly full\x1b[0m\n" in out


def test_no_color_keeps_the_text_and_drops_the_colours():
    out = on_terminal("""
        from mercurio_migrate.output import message
        message("applied x", "done")
        message("failed", "error")
    """, NO_COLOR="1")
    assert "applied x\n" in out and "\x1b[32m" not in out
    assert "\x1b[1merror: failed\x1b[0m\n" in out  # bold stays, red goes


def test_control_characters_cannot_reach_the_terminal():
    out = on_terminal(r"""
        from mercurio_migrate.output import message
        message("ERROR: bad \x1b]0;owned\x07 title\nsecond line\ttab", "error")
    """)
    assert "\x1b]0;" not in out and "\x07" not in out
    assert "error: ERROR: bad \\x1b]0;owned\\x07 title\x1b[0m\n\x1b[1;31msecond line" in out  # each line in red


def test_a_dumb_terminal_gets_the_text_without_escape_codes():
    out = on_terminal("""
        from mercurio_migrate.output import message, table
        message("applied x", "done")
        message("failed", "error")
        table(["version"], [["20250101_000000"]])
    """, TERM="dumb")
    assert "applied x\n" in out and "error: failed\n" in out and "20250101_000000" in out
    assert "\x1b" not in out


def test_table_cells_are_text_not_markup_nor_control_codes():
    out = on_terminal(r"""
        from mercurio_migrate.output import table
        table(["purpose", "notes"], [["[/x] closes nothing", "[bold]not bold"], ["\x1b]0;owned\x07", None]])
    """)
    assert "[/x] closes nothing" in out and "[bold]not bold" in out
    assert "\x1b]0;" not in out and "\\x1b]0;owned\\x07" in out


def test_a_long_table_is_written_as_plain_columns():
    code = """
        from mercurio_migrate.output import table
        table(["version", "state"], [[f"20250101_{{i:06d}}", "applied"] for i in range({rows})], title="migrations")
    """
    short = on_terminal(code.format(rows=3))
    assert "┃" in short or "│" in short  # rich's box for a short table
    long = on_terminal(code.format(rows=200))
    assert "│" not in long and "┃" not in long
    lines = long.strip().splitlines()
    assert lines[0] == "migrations" and lines[1].split() == ["version", "state"]
    assert lines[-1].split() == ["20250101_000199", "applied"] and len(lines) == 202


def test_off_a_terminal_lines_and_tables_are_plain_text(capsys):
    from mercurio_migrate.output import message, table

    message("bad\x1b[31m value\tin a log", "error")
    table(["version", "state"], [["20250101_000000", "applied"], ["20250102_000000", None]], title="migrations")
    out, err = capsys.readouterr()
    assert err == "error: bad\x1b[31m value\tin a log\n"  # a log keeps the message as it came
    assert out == ("migrations\nversion          state\n20250101_000000  applied\n20250102_000000\n")
