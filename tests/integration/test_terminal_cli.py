"""The CLI with a terminal for its output (a pseudo-terminal), against a real PostgreSQL: what a user at a
keyboard sees, rendered differently from a pipe."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import TEST_KEYS, write_migration

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import run_on_terminal  # noqa: E402

from mercurio_migrate.output import RICH_TABLE_ROWS  # noqa: E402


def on_terminal(database_url: str, *args: str, check: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "MERCURIO_MIGRATIONS_DIR")}
    env |= TEST_KEYS | {"DATABASE_URL": database_url, "TERM": "xterm-256color", "COLUMNS": "160"}
    return run_on_terminal([sys.executable, "-m", "mercurio_migrate", *args], env=env, timeout=120, check=check)[1]


def test_up_and_a_long_status_on_a_terminal(database_url, db, tmp_path):
    count = RICH_TABLE_ROWS + 10
    for i in range(count):
        write_migration(tmp_path / "m", f"20250101_{i // 60:04d}{i % 60:02d}_table_{i}",
                        f"BEGIN;\nCREATE TABLE t_{i} (id int);\nCOMMIT;\n", f"BEGIN;\nDROP TABLE t_{i};\nCOMMIT;\n")
    up = on_terminal(database_url, "--dir", str(tmp_path / "m"), "up")
    assert "\x1b[32mapplied 20250101_000000_table_0 in " in up  # green, as rich colours it
    assert db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0] == count

    status = on_terminal(database_url, "--dir", str(tmp_path / "m"), "status")
    rows = [line.split() for line in status.splitlines() if line.startswith("20250101_")]
    assert len(rows) == count and all("applied" in row for row in rows)
    assert not any(box in status for box in "│┃━─")  # plain columns past RICH_TABLE_ROWS


def test_a_short_status_on_a_terminal_is_a_rich_table(database_url, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_one", "-- Purpose: [/x] and [bold] as written\n"
                    "CREATE TABLE one (id int);")
    status = on_terminal(database_url, "--dir", str(tmp_path / "m"), "status")
    assert "20250101_000000" in status and "pending" in status
    assert any(box in status for box in "│┃")
    assert "[/x] and [bold] as written" in status and "Traceback" not in status  # text, not rich markup


def test_a_server_error_cannot_drive_the_terminal(database_url, tmp_path):
    write_migration(tmp_path / "m", "20250101_000000_raises",
                    "DO $$ BEGIN RAISE EXCEPTION 'bad %', chr(27) || ']0;owned' || chr(7); END $$;")
    out = on_terminal(database_url, "--dir", str(tmp_path / "m"), "up", check=False)
    assert "bad" in out and "Traceback" not in out
    assert "\x1b]0;" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07" in out
