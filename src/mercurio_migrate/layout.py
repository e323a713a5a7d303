"""Migration folders on disk -> Migration records. All layout errors are collected and raised at once.

A migration is a folder ``YYYYMMDD_HHMMSS_snake_case_name/`` (UTC timestamp, at most 100 characters)
holding ``migration.sql`` (required), ``rollback.sql`` (optional) and optionally ``fixture.sql``,
``verify.sql`` and ``plans.sql``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from mercurio_migrate.errors import WHITESPACE_ONLY, LayoutError, LayoutProblem

MAX_FOLDER_NAME = 100
KNOWN_FILES = ("migration.sql", "rollback.sql", "fixture.sql", "verify.sql", "plans.sql")
IGNORED_FILES = ("README.md", "README", "NOTES.md", ".gitkeep")
HEADER_KEYS = ("migration", "purpose", "author", "date", "requirements", "rollback", "warning", "irreversible")

_FOLDER = re.compile(r"^(?P<date>\d{8})_(?P<time>\d{6})_(?P<name>.+)$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


# NamedTuples, not dataclasses: every command reads a thousand folders into these, and defining a frozen
# dataclass costs as much as reading a hundred of them.
class SqlFile(NamedTuple):
    path: str
    text: str
    checksum: str  # see checksum(): line endings and a leading BOM do not count
    # sha256 of the bytes as they are, when that differs from ``checksum`` (the file has a BOM or CRLF line
    # endings): what mercurio-migrate 0.1.0 recorded, still accepted for migrations it applied
    raw_checksum: str | None = None

    @property
    def header(self) -> dict[str, str]:
        return _header_of(self.text)


class Migration(NamedTuple):
    version: str  # YYYYMMDD_HHMMSS
    name: str
    folder: str  # its path
    migration: SqlFile
    rollback: SqlFile | None
    extras: dict[str, SqlFile]  # fixture.sql, verify.sql, plans.sql

    @property
    def id(self) -> str:
        return f"{self.version}_{self.name}"

    @property
    def header(self) -> dict[str, str]:
        return self.migration.header

    @property
    def purpose(self) -> str:
        return self.header.get("purpose", "")

    @property
    def irreversible(self) -> str | None:
        """Why the migration cannot be rolled back, when its migration.sql or rollback.sql declares it with a
        header line ``-- Irreversible: reason`` (None: it can)."""
        reason = self.migration.header.get("irreversible")
        if reason is None and self.rollback is not None:
            reason = self.rollback.header.get("irreversible")
        return reason if reason is None else (reason or "no reason given")


class MigrationSet(NamedTuple):
    directory: Path
    migrations: tuple[Migration, ...]
    warnings: tuple[LayoutProblem, ...]

    def by_version(self) -> dict[str, Migration]:
        return {m.version: m for m in self.migrations}


def parse_header(text: str) -> dict[str, str]:
    """The leading ``-- Key: value`` comment lines of a file. Repeated keys (e.g. WARNING) are joined."""
    header: dict[str, str] = {}
    position, end = 0, len(text)
    while position < end:  # line by line up to the first statement, without splitting the whole file
        newline = text.find("\n", position)
        if newline == -1:
            newline = end
        line = text[position:newline].strip()
        position = newline + 1
        if not line:
            continue
        if not line.startswith("--"):
            break
        colon = line.find(":")
        key = line[2:colon].strip().lower()
        # "-- Key: value" with one of the known keys; any other comment line is not a header line
        if colon < 0 or key not in HEADER_KEYS:
            continue
        value = line[colon + 1:].strip()
        header[key] = f"{header[key]}\n{value}" if key in header else value
    return header


@functools.lru_cache(maxsize=4096)
def _header_of(text: str) -> dict[str, str]:
    return parse_header(text)


def _plainly_valid(folder_name: str) -> tuple[str, str] | None:
    """(version, name) when the name is well formed, checked with string methods only (the common case, a
    thousand times a command); None sends it to the full check, which says what is wrong."""
    if not (len(folder_name) > 16 and folder_name[8] == "_" and folder_name[15] == "_" and folder_name.isascii()
            and folder_name[:8].isdigit() and folder_name[9:15].isdigit()):
        return None
    name = folder_name[16:]
    # lower snake_case: a-z first, then a-z, 0-9 and single inner underscores
    if not (name[0].isalpha() and name.islower() and name.replace("_", "").isalnum() and "__" not in name
            and not name.endswith("_")):
        return None
    date, time = folder_name[:8], folder_name[9:15]
    try:
        datetime(int(date[:4]), int(date[4:6]), int(date[6:]), int(time[:2]), int(time[2:4]), int(time[4:]))
    except ValueError:
        return None
    return f"{date}_{time}", name


def check_folder_name(folder_name: str) -> tuple[str, str] | str:
    """(version, name) for a valid folder name, else a message saying what is wrong."""
    if len(folder_name) > MAX_FOLDER_NAME:
        return f"folder name is {len(folder_name)} characters long; the limit is {MAX_FOLDER_NAME}"
    plain = _plainly_valid(folder_name)
    if plain is not None:
        return plain
    match = _FOLDER.match(folder_name)
    if not match:
        return "folder name must be YYYYMMDD_HHMMSS_snake_case_name (a UTC timestamp, then a lower snake_case name)"
    date, time = match["date"], match["time"]
    stamp = f"{date}_{time}"
    try:  # cheaper than strptime, which matters when a thousand folders are read on every command
        datetime(int(date[:4]), int(date[4:6]), int(date[6:]), int(time[:2]), int(time[2:4]), int(time[4:]))
    except ValueError:
        return f"timestamp {stamp} is not a real date and time (expected YYYYMMDD_HHMMSS in UTC)"
    name = match["name"]
    if not _NAME.match(name):
        return (
            f"name {name!r} has bad characters: use lower snake_case "
            "(a-z, 0-9 and single underscores, starting with a letter)"
        )
    return stamp, name


# --- checksums ------------------------------------------------------------------------------------------
# The history records each file's checksum when its migration runs; a file whose checksum changed since has
# drifted. Line endings and a leading UTF-8 BOM do not count: a checkout that converts line endings (git's
# core.autocrlf, an editor on Windows) or an editor that adds a BOM does not make an applied migration drift.

_BOM = b"\xef\xbb\xbf"


def checksum(data: bytes) -> str:
    """sha256 (hex) of a file's bytes with a leading UTF-8 BOM dropped and CRLF line endings read as LF."""
    if data.startswith(_BOM):
        data = data[3:]
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


def _spellings(text: str) -> set[str]:
    """The checksums 0.1.0 (sha256 of the bytes as they were) would have recorded for ``text`` (LF line
    endings, no BOM) saved with LF or CRLF line endings, with or without a BOM."""
    lf = text.encode("utf-8")
    crlf = lf.replace(b"\n", b"\r\n")
    return {hashlib.sha256(prefix + data).hexdigest() for data in (lf, crlf) for prefix in (b"", _BOM)}


def is_recorded(file: SqlFile, recorded: str | None) -> bool:
    """Whether ``recorded`` (a checksum from the history) is this file's: its checksum today, or one that
    0.1.0 recorded of the same file, with the same or other line endings or BOM."""
    if recorded is None:
        return False
    if recorded == file.checksum or recorded == file.raw_checksum:
        return True
    # rarely reached (a drifted file, or one applied by 0.1.0 and converted since): a few hashes of one file
    return recorded in _spellings(file.text.replace("\r\n", "\n"))


def whitespace_only_drift(file: SqlFile, recorded: str) -> bool:
    """Whether the file as recorded differed from today's only in whitespace at line ends, as far as a
    checksum can tell: spaces or tabs added at line ends since, or a final line break added or removed. (A
    checksum cannot give back what was removed, so trailing spaces deleted since show as a plain change.)"""
    text = file.text.replace("\r\n", "\n")
    trimmed = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    candidates = set()
    for base in (text, trimmed):
        candidates.update((base, base + "\n", base[:-1] if base.endswith("\n") else base))
    candidates.discard(text)
    return any(recorded in _spellings(candidate) for candidate in candidates)


def drifted_files(migration: Migration, recorded: str, recorded_rollback: str | None) -> tuple[str, ...]:
    """The files of an applied migration that changed since it ran, given the checksums recorded then:
    "migration.sql", "rollback.sql" (also when it was added or deleted since), each followed by
    " (whitespace at line ends only)" when that is all that changed."""
    drifted = []
    for name, file, before in (("migration.sql", migration.migration, recorded),
                               ("rollback.sql", migration.rollback, recorded_rollback)):
        if file is None or before is None:
            if (file is None) != (before is None):  # added or deleted since
                drifted.append(name)
        elif not is_recorded(file, before):
            drifted.append(f"{name} {WHITESPACE_ONLY}" if whitespace_only_drift(file, before) else name)
    return tuple(drifted)


_CHUNK = 1 << 16


def _read_bytes(path: str) -> bytes:
    """The whole file. os.open and os.read, not open(): a buffered file object costs twice the system calls'
    time, and a thousand folders are read on every command."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        data = os.read(descriptor, _CHUNK)
        if len(data) < _CHUNK:  # a short read of a regular file is its end
            return data
        chunks = [data]
        while data:
            data = os.read(descriptor, _CHUNK)
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _read_sql(path: str, problems: list[LayoutProblem]) -> SqlFile | None:
    try:
        data = _read_bytes(path)
    except OSError as exc:
        problems.append(LayoutProblem(path, f"cannot be read ({exc.strerror}): check its owner and permissions"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(
            LayoutProblem(path, f"is not UTF-8 (invalid byte 0x{data[exc.start]:02x} at line {line}); "
                                "re-save the file as UTF-8")
        )
        return None
    if "\x00" in text:
        problems.append(LayoutProblem(path, "contains NUL bytes: it is a binary file, not SQL"))
        return None
    if text.startswith("\ufeff") or b"\r\n" in data:  # what the checksum leaves out: the rare case
        return SqlFile(path, text.removeprefix("\ufeff"), checksum(data), hashlib.sha256(data).hexdigest())
    return SqlFile(path, text, hashlib.sha256(data).hexdigest())


def _not_a_file(path: str) -> str:
    """What a directory entry that is not a regular file (nor a symbolic link to one) is, for the message."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a symbolic link to nothing (its target does not exist)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror}): check its owner and permissions"
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")
    # reading a pipe waits for a writer, /dev/zero never ends: such a file is refused before it is opened
    return (f"is {kind}, not a regular file, so it is not read; put the SQL in a regular file "
            "(a symbolic link to one is fine)")


def _load_folder(folder: str, version: str, name: str, problems: list[LayoutProblem],
                 warnings: list[LayoutProblem]) -> Migration | None:
    """One folder. Read on every command, a thousand at a time: names and file types from one listing, files
    opened by path (no per-entry stat), no Path objects per file."""
    files: dict[str, SqlFile] = {}
    ok = True
    strays = []
    try:
        # scandir gives each entry's type from the listing itself (a stat only for a symbolic link)
        with os.scandir(folder) as listing:
            entries = [(entry.name, entry.is_file()) for entry in listing]
    except OSError as exc:
        problems.append(LayoutProblem(folder, f"cannot be read ({exc.strerror}): give the user running "
                                              "mercurio-migrate read and search permission on it (chmod u+rx)"))
        return None
    for entry, is_file in entries:
        if entry in KNOWN_FILES:
            path = f"{folder}/{entry}"
            if not is_file:
                problems.append(LayoutProblem(path, _not_a_file(path)))
            sql = _read_sql(path, problems) if is_file else None
            if sql is None:
                ok = False
            else:
                files[entry] = sql
        elif not (entry.startswith(".") or entry in IGNORED_FILES):
            strays.append(entry)
    if strays:
        warnings.extend(LayoutProblem(f"{folder}/{entry}", "stray file in a migration folder (ignored)", "warning")
                        for entry in sorted(strays))
    migration = files.pop("migration.sql", None)
    if migration is None:
        if ok:
            problems.append(LayoutProblem(folder, "migration.sql is missing"))
        return None
    if not migration.text or migration.text.isspace():
        problems.append(LayoutProblem(migration.path, "migration.sql is empty"))
        return None
    rollback = files.pop("rollback.sql", None)  # may hold no statement: rolling back then only records it
    if not ok:
        return None
    return Migration(version, name, folder, migration, rollback, files)


def discover(directory: Path | str) -> MigrationSet:
    """Read every migration folder under ``directory``; raise LayoutError listing every fault."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LayoutError([LayoutProblem(str(directory), "migrations directory does not exist "
                                                         "(create it, or pass --dir / set MERCURIO_MIGRATIONS_DIR)")])
    problems: list[LayoutProblem] = []
    warnings: list[LayoutProblem] = []
    migrations: list[Migration] = []
    seen: dict[str, str] = {}
    try:
        with os.scandir(directory) as listing:
            entries = sorted((entry.name, entry.path, entry.is_dir()) for entry in listing
                             if not entry.name.startswith((".", "_")))
    except OSError as exc:
        raise LayoutError([LayoutProblem(str(directory), f"cannot be read ({exc.strerror}): give the user running "
                                                         "mercurio-migrate read and search permission on it "
                                                         "(chmod u+rx)")]) from None
    for entry_name, entry_path, is_dir in entries:
        if not is_dir:
            if entry_name not in IGNORED_FILES:
                warnings.append(LayoutProblem(entry_path, "stray file in the migrations directory (ignored)", "warning"))
            continue
        checked = check_folder_name(entry_name)
        if isinstance(checked, str):
            problems.append(LayoutProblem(entry_path, checked))
            continue
        version, name = checked
        if version in seen:
            problems.append(LayoutProblem(entry_path, f"duplicate version {version}: also used by {seen[version]}"))
            continue
        seen[version] = entry_name
        migration = _load_folder(entry_path, version, name, problems, warnings)
        if migration is not None:
            migrations.append(migration)
    if problems:
        raise LayoutError(problems + warnings)
    migrations.sort(key=lambda m: m.version)
    return MigrationSet(directory=directory, migrations=tuple(migrations), warnings=tuple(warnings))
