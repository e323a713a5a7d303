import contextlib
import hashlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from mercurio_migrate.errors import LayoutError
from mercurio_migrate.layout import (
    SqlFile,
    check_folder_name,
    checksum,
    discover,
    drifted_files,
    is_recorded,
    parse_header,
)

HEADER = """-- Migration: Create tenant and workspace tables
-- Purpose: Establish multi-tenant foundation
-- Author: Development Team
-- Date: 2025-08-23
-- Requirements: 3.1, 3.2

BEGIN;
SELECT 1;
COMMIT;
"""


def make(root: Path, folder: str, files: dict[str, bytes | str]) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (path / name).write_bytes(data)
    return path


def test_discovers_migrations_in_version_order_with_metadata(tmp_path):
    make(tmp_path, "20250823_144000_second", {"migration.sql": "SELECT 2;"})
    make(tmp_path, "20250823_143000_first", {"migration.sql": HEADER, "rollback.sql": "SELECT 0;",
                                             "fixture.sql": "SELECT 3;"})
    found = discover(tmp_path)
    assert [m.id for m in found.migrations] == ["20250823_143000_first", "20250823_144000_second"]
    first = found.migrations[0]
    assert first.header["purpose"] == "Establish multi-tenant foundation"
    assert first.header["requirements"] == "3.1, 3.2"
    assert first.rollback is not None and found.migrations[1].rollback is None
    assert set(first.extras) == {"fixture.sql"}
    assert len(first.migration.checksum) == 64


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("20251340_250000_x", "not a real date and time"),
        ("20250230_120000_x", "not a real date and time"),
        ("2025082_143000_x", "must be YYYYMMDD_HHMMSS"),
        ("20250823_143000_Bad-Name", "bad characters"),
        ("20250823_143000_double__underscore", "bad characters"),
        ("20250823_143000_" + "a" * 90, "limit is 100"),
    ],
)
def test_bad_folder_names_are_rejected_with_the_reason(folder, expected):
    result = check_folder_name(folder)
    assert isinstance(result, str) and expected in result


def test_valid_folder_name_gives_version_and_name():
    assert check_folder_name("20250823_143000_create_tenant_tables") == ("20250823_143000", "create_tenant_tables")


def test_every_layout_error_is_reported_at_once(tmp_path):
    make(tmp_path, "20251340_250000_x", {"migration.sql": "SELECT 1;"})
    make(tmp_path, "20250101_000000_no_file", {"rollback.sql": "SELECT 1;"})
    make(tmp_path, "20250101_000001_empty", {"migration.sql": "  \n\n"})
    make(tmp_path, "20250101_000002_dup_a", {"migration.sql": "SELECT 1;"})
    make(tmp_path, "20250101_000002_dup_b", {"migration.sql": "SELECT 1;"})
    make(tmp_path, "20250101_000003_Bad", {"migration.sql": "SELECT 1;"})
    make(tmp_path, "20250101_000004_latin1", {"migration.sql": b"SELECT 'caf\xe9';\n"})
    make(tmp_path, "20250101_000005_binary", {"migration.sql": b"\x00\x01\x02"})
    make(tmp_path, "20250101_000006_stray", {"migration.sql": "SELECT 1;", "notes.txt": "x"})
    with pytest.raises(LayoutError) as caught:
        discover(tmp_path)
    problems = caught.value.problems
    text = "\n".join(str(p) for p in problems)
    assert caught.value.exit_code == 2
    assert "20251340_250000_x: timestamp 20251340_250000 is not a real date" in text
    assert "20250101_000000_no_file: migration.sql is missing" in text
    assert "20250101_000001_empty/migration.sql: migration.sql is empty" in text
    assert "duplicate version 20250101_000002" in text
    assert "20250101_000003_Bad: name 'Bad' has bad characters" in text
    assert "20250101_000004_latin1/migration.sql: is not UTF-8 (invalid byte 0xe9 at line 1)" in text
    assert "20250101_000005_binary/migration.sql: contains NUL bytes" in text
    stray = [p for p in problems if p.path.endswith("notes.txt")]
    assert stray and stray[0].severity == "warning"
    assert sum(p.severity == "error" for p in problems) == 7


def test_stray_file_alone_is_only_a_warning(tmp_path):
    make(tmp_path, "20250101_000000_ok", {"migration.sql": "SELECT 1;", "draft.sql.bak": "x"})
    found = discover(tmp_path)
    assert len(found.migrations) == 1
    assert [w.severity for w in found.warnings] == ["warning"]


def test_missing_directory_is_a_layout_error(tmp_path):
    with pytest.raises(LayoutError, match="does not exist"):
        discover(tmp_path / "nope")


def test_header_parsing_stops_at_first_statement_and_joins_repeated_keys():
    text = "-- Rollback: x\n-- WARNING: loses a\n-- WARNING: loses b\n\nBEGIN;\n-- Purpose: not a header\n"
    header = parse_header(text)
    assert header == {"rollback": "x", "warning": "loses a\nloses b"}


class StillReading(Exception):
    """Not an OSError (TimeoutError is one): the reader's own `except OSError` must not swallow it."""


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: reading a FIFO waits for a writer, /dev/zero never ends."""
    def expire(signum, frame):
        raise StillReading(f"still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_fifo_and_device_files_are_refused_unread_with_the_other_problems(tmp_path):
    os.mkfifo(make(tmp_path, "20250101_000000_fifo", {}) / "migration.sql")
    (make(tmp_path, "20250101_000001_zero", {}) / "migration.sql").symlink_to("/dev/zero")
    os.mkfifo(make(tmp_path, "20250101_000002_fixture_fifo", {"migration.sql": "SELECT 1;"}) / "fixture.sql")
    (make(tmp_path, "20250101_000003_dangling", {}) / "migration.sql").symlink_to(tmp_path / "nowhere.sql")
    make(tmp_path, "20250101_000004_missing", {"rollback.sql": "SELECT 1;"})
    # a symbolic link to a regular file is read; a stray FIFO is only named, never opened
    (tmp_path / "_shared.sql").write_text("SELECT 1;\n")
    linked = make(tmp_path, "20250101_000005_linked", {})
    (linked / "migration.sql").symlink_to(tmp_path / "_shared.sql")
    os.mkfifo(linked / "notes.txt")
    with deadline(10), pytest.raises(LayoutError) as caught:
        discover(tmp_path)
    problems = {Path(p.path).relative_to(tmp_path).as_posix(): p.message for p in caught.value.problems}
    not_regular = "not a regular file, so it is not read; put the SQL in a regular file (a symbolic link to one is fine)"
    assert problems == {
        "20250101_000000_fifo/migration.sql": f"is a named pipe (FIFO), {not_regular}",
        "20250101_000001_zero/migration.sql": f"is a character device, {not_regular}",
        "20250101_000002_fixture_fifo/fixture.sql": f"is a named pipe (FIFO), {not_regular}",
        "20250101_000003_dangling/migration.sql": "is a symbolic link to nothing (its target does not exist)",
        "20250101_000004_missing": "migration.sql is missing",
        "20250101_000005_linked/notes.txt": "stray file in a migration folder (ignored)",
    }
    assert caught.value.exit_code == 2


SQL = "-- Purpose: x\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n"
BOM = b"\xef\xbb\xbf"


def _file(tmp_path, data: bytes) -> SqlFile:
    shutil.rmtree(tmp_path / "m", ignore_errors=True)
    make(tmp_path, "m/20250101_000000_a", {"migration.sql": data})
    return discover(tmp_path / "m").migrations[0].migration


@pytest.mark.parametrize("spelling", ["crlf", "bom", "bom+crlf"])
def test_checksum_ignores_line_endings_and_a_bom(tmp_path, spelling):
    data = SQL.encode()
    if "crlf" in spelling:
        data = data.replace(b"\n", b"\r\n")
    if "bom" in spelling:
        data = BOM + data
    file = _file(tmp_path, data)
    assert file.checksum == hashlib.sha256(SQL.encode()).hexdigest()  # as sha256sum of the LF file gives it
    assert file.raw_checksum == hashlib.sha256(data).hexdigest()
    assert file.text == SQL.replace("\n", "\r\n" if "crlf" in spelling else "\n")  # what runs is unchanged
    assert checksum(data) == file.checksum != checksum(data.replace(b"(1)", b"(2)"))


def test_what_0_1_0_recorded_is_accepted_whatever_line_endings_the_file_has_now(tmp_path):
    lf, crlf = SQL.encode(), SQL.encode().replace(b"\n", b"\r\n")
    mixed = SQL.encode().replace(b"\n", b"\r\n", 1)
    # 0.1.0 recorded sha256 of the file's bytes as they were when the migration ran
    for applied_as in (lf, crlf, BOM + lf, BOM + crlf):
        recorded = hashlib.sha256(applied_as).hexdigest()
        for now in (lf, crlf, BOM + lf, BOM + crlf):
            assert is_recorded(_file(tmp_path, now), recorded), (applied_as, now)
    assert is_recorded(_file(tmp_path, mixed), hashlib.sha256(mixed).hexdigest())
    assert is_recorded(_file(tmp_path, BOM + mixed), hashlib.sha256(BOM + mixed).hexdigest())
    changed = _file(tmp_path, crlf.replace(b"(1)", b"(2)"))
    assert not any(is_recorded(changed, hashlib.sha256(x).hexdigest()) for x in (lf, crlf, BOM + lf, BOM + crlf))
    assert not is_recorded(changed, None)
    assert _file(tmp_path, lf).raw_checksum is None  # an LF file without a BOM: one checksum, sha256sum's


def _migration(tmp_path, migration: str, rollback: str | None = None):
    shutil.rmtree(tmp_path / "m", ignore_errors=True)
    files = {"migration.sql": migration} | ({"rollback.sql": rollback} if rollback is not None else {})
    make(tmp_path, "m/20250101_000000_a", files)
    return discover(tmp_path / "m").migrations[0]


def test_drift_says_when_only_whitespace_at_line_ends_changed(tmp_path):
    recorded = checksum(SQL.encode())
    rollback = checksum(b"DROP TABLE a;\n")
    assert drifted_files(_migration(tmp_path, SQL, "DROP TABLE a;\n"), recorded, rollback) == ()
    assert drifted_files(_migration(tmp_path, SQL.replace(";\n", ";  \t\n"), "DROP TABLE a;\n"), recorded,
                         rollback) == ("migration.sql (whitespace at line ends only)",)
    # a final line break removed or added
    assert drifted_files(_migration(tmp_path, SQL[:-1], "DROP TABLE a;"), recorded, rollback) == (
        "migration.sql (whitespace at line ends only)", "rollback.sql (whitespace at line ends only)")
    assert drifted_files(_migration(tmp_path, SQL + "\n", "DROP TABLE a;\n"), recorded, rollback) == (
        "migration.sql (whitespace at line ends only)",)
    # recorded by 0.1.0 from a CRLF file, spaces added since
    assert drifted_files(_migration(tmp_path, SQL.replace(";\n", "; \r\n"), "DROP TABLE a;\n"),
                         hashlib.sha256(SQL.replace("\n", "\r\n").encode()).hexdigest(), rollback) == (
        "migration.sql (whitespace at line ends only)",)
    # anything else is a plain change; so is a rollback.sql added or deleted since
    assert drifted_files(_migration(tmp_path, SQL.replace("(1)", "(2)"), "DROP TABLE a;\n"), recorded,
                         rollback) == ("migration.sql",)
    assert drifted_files(_migration(tmp_path, SQL.replace("a (id", "a  (id"), "DROP TABLE a;\n"), recorded,
                         rollback) == ("migration.sql",)
    assert drifted_files(_migration(tmp_path, SQL), recorded, rollback) == ("rollback.sql",)
    assert drifted_files(_migration(tmp_path, SQL, "DROP TABLE a;\n"), recorded, None) == ("rollback.sql",)
