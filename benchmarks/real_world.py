"""Real-world migration sets: does mercurio-migrate ever do worse than psql on SQL nobody here wrote?

    python -m benchmarks.real_world --crates-io /work/.mirror/rust-lang+crates.io/repo \\
                                    --river /work/.mirror/riverqueue+river/repo

Each source is a git repository (bare mirror or checkout); its migrations are read from the commit HEAD names
(``--rev``) and laid out in our format in a temporary folder at run time: no third-party SQL is stored in this
repository. For every set the harness

1. lays the set out as ``YYYYMMDD_HHMMSS_snake_name/{migration.sql,rollback.sql}``, each file byte for byte the
   source's ``up.sql`` / ``down.sql`` (see "Versions" below for the folder names) — except River's, whose
   ``/* TEMPLATE: schema */`` placeholder is replaced as River replaces it before sending the SQL (with no
   schema configured: by nothing), since it also stands inside string literals where it is not a comment;
2. applies it with psql, the floor: one session of ``/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1``
   over a driver script that ``\\i``-includes every migration.sql in order, each between ``BEGIN;`` and
   ``COMMIT;`` — the way Diesel runs an ``up.sql`` (and River every migration) — except a Diesel migration whose
   ``metadata.toml`` says ``run_in_transaction = false``, which is included bare (Diesel applies that setting to
   both directions, and so does the harness for rollback.sql);
3. applies it with the tool under test (``python -m mercurio_migrate --dir SET up``, PYTHONPATH = ``--tool-src``,
   default /work/main/src) on a fresh database of the same server, times both (``--repeat`` pairs, each on
   fresh databases), and compares ``pg_dump --schema-only`` of the two databases (the tool's history tables
   ``mercurio_*`` and Diesel's ``__diesel_schema_migrations`` excluded; the tool runs as a project without a
   profile runs it, so a ``migration_log`` is the project's own);
4. runs ``down --all`` and then ``up`` again with the tool;
5. prints a report (``--report FILE`` writes it too).

When the tool fails, the harness does not stop at the first failure: it records the failure exactly as the tool
printed it (from its first ``error:`` line), then gets past it the way an operator would — the migrations before
the failing one applied with the tool (``up --to``), the failing one applied with psql (same wrapping as the
floor) and recorded with ``resolve VERSION --applied`` — and runs the tool again, so one run lists every
failure. Each failure is classed "tool only" (psql applies the same file in the same state), "psql fails too" or
"follows from the layout workaround" ("unchecked" when the run stopped before psql was tried). If the tool
cannot apply the whole set, both are also timed on the migrations before its first failure (``up --to``). ``down
--all`` is treated alike: ``down --to`` the failing migration, psql runs its rollback.sql, ``resolve VERSION
--rolled-back``, ``down --all`` again; a rollback psql cannot run either (the source's fault) is skipped the
same way, as psql's own ``down --all`` skips it. That psql ``down --all`` (one session, ON_ERROR_STOP off, every
rollback.sql newest first, wrapped as its up) runs on a database of its own and the report lists the rollbacks
it cannot run. A layout the tool rejects as a whole (exit 2 before anything runs) cannot be stepped over: the
harness reports it, then lays the set out again following the tool's own advice where it gives one (an empty
``rollback.sql``: "delete it") and says so in the report; the timings are then those of that layout. Last, a
table of minimal reproductions (our own SQL, one to four lines: ``REPROS``) runs each through psql and the tool
(``--no-repros`` skips it).

Versions. Diesel names a migration ``VERSION_name`` and orders by VERSION with its dashes removed, compared as
strings; crates.io has three spellings (``YYYYMMDDHHMMSS``, ``YYYY-MM-DD-HHMMSS``, ``YYYY-MM-DD-HHMMSS-NNNN``).
Our timestamp is the first 14 digits read as a date and time, with seconds, minutes or hours past their range
carried over (``20140929103760`` -> 2014-09-29 10:38:00): Diesel never required a real time. Diesel's
``00000000000000_diesel_initial_setup`` becomes 1970-01-01 00:00:00 (the Unix epoch: a real UTC date and time
that sorts before any other). River's ``NNN_name`` becomes 2000-01-01 00:00:00 plus NNN minutes. Where two
migrations would get the same timestamp, or a later one an earlier timestamp than Diesel's order gives it, the
later one is moved to one second after the one before it; the report lists every such move. Names are lowered
and every run of characters other than a-z and 0-9 becomes one underscore.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks.common import REPO, BenchError, Server, fmt_s, median

# The harness's own machinery (the throwaway server of benchmarks.common) imports mercurio_migrate lazily: take it
# from this tree, whatever the installed (editable) copy is doing; the tool under test runs in child processes
# with its own PYTHONPATH.
sys.path.insert(0, str(REPO / "src"))

DEFAULT_TOOL_SRC = Path("/work/main/src")
PSQL_BINDIR = Path("/usr/lib/postgresql/15/bin")
RIVER_MIGRATIONS = "riverdriver/riverpgxv5/migration/main"
DIESEL_MIGRATIONS = "migrations"
EPOCH = datetime(1970, 1, 1)
RIVER_BASE = datetime(2000, 1, 1)
RIVER_TEMPLATE = b"/* TEMPLATE: schema */"  # rivershared/sqlctemplate: `/\* TEMPLATE: (.*?) \*/`, schema -> "" here
# left out of the schema comparison: the tool's own tables (mercurio_migrations and any other public.mercurio_*
# it creates: the report lists those apart) and Diesel's history table
EXCLUDED_TABLES = ("public.mercurio_*", "public.__diesel_schema_migrations*")
TOOL_TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND c.relname LIKE 'mercurio\\_%'
ORDER BY 1"""
MAX_RECOVERIES = 60  # failures stepped over per phase before the harness gives up on a set


# --- the sources ---------------------------------------------------------------------------------------
@dataclass
class SourceMigration:
    source: str  # the source's folder or file stem, e.g. 2024-03-05-120032_add-crate-downloads-index
    order_key: str  # the source tool's ordering key
    stamp: datetime  # read from the source
    name: str  # ours: lower snake_case
    up: bytes
    down: bytes | None
    transactional: bool = True
    version: datetime | None = None  # ours, after collisions are resolved

    @property
    def folder(self) -> str:
        return f"{self.version:%Y%m%d_%H%M%S}_{self.name}"

    @property
    def version_text(self) -> str:
        return f"{self.version:%Y%m%d_%H%M%S}"


@dataclass
class SourceSet:
    label: str
    repository: Path
    commit: str
    subdir: str
    migrations: list[SourceMigration]
    notes: list[str] = field(default_factory=list)


def git(repository: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"git -C {repository} {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def extract(repository: Path, rev: str, subdir: str, into: Path) -> tuple[str, Path]:
    """(commit, folder) of ``subdir`` of ``rev`` unpacked under ``into`` with git archive (works on a bare mirror)."""
    commit = git(repository, "rev-parse", f"{rev}^{{commit}}").strip()
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(repository), "archive", commit, subdir], stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, capture_output=True)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise BenchError(f"could not extract {subdir} of {repository} at {commit}: {untar.stderr.decode()[-300:]}")
    return commit, into / subdir


def snake(name: str) -> str:
    out = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not out or not out[0].isalpha():
        out = f"m_{out}"
    return out


def stamp_of(digits: str) -> datetime:
    """Fourteen digits YYYYMMDDHHMMSS as a real date and time, time fields past their range carried over;
    all zeros is the Unix epoch."""
    if int(digits) == 0:
        return EPOCH
    day = datetime(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    return day + timedelta(hours=int(digits[8:10]), minutes=int(digits[10:12]), seconds=int(digits[12:14]))


def assign_versions(migrations: list[SourceMigration], notes: list[str]) -> None:
    """Sort by the source's own order and give each a unique, strictly increasing timestamp."""
    migrations.sort(key=lambda m: m.order_key)
    previous: datetime | None = None
    for m in migrations:
        version = m.stamp
        if previous is not None and version <= previous:
            version = previous + timedelta(seconds=1)
            notes.append(f"`{m.source}` would be {m.stamp:%Y%m%d_%H%M%S}, not after the migration before it in "
                         f"the source's order: moved to {version:%Y%m%d_%H%M%S}")
        m.version = previous = version


def read_diesel(repository: Path, rev: str, scratch: Path) -> SourceSet:
    commit, root = extract(repository, rev, DIESEL_MIGRATIONS, scratch / "crates_io_source")
    notes: list[str] = []
    migrations: list[SourceMigration] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            notes.append(f"`{DIESEL_MIGRATIONS}/{entry.name}` is not a migration folder (Diesel ignores it; not laid out)")
            continue
        if not (entry / "up.sql").is_file():
            notes.append(f"`{entry.name}` has no up.sql (not laid out)")
            continue
        version_text, _, raw_name = entry.name.partition("_")
        key = version_text.replace("-", "")  # Diesel's MigrationVersion: the part before "_", dashes removed
        if len(key) < 14 or not key[:14].isdigit():
            notes.append(f"`{entry.name}`: version {version_text!r} is not YYYYMMDDHHMMSS (not laid out)")
            continue
        stamp = stamp_of(key[:14])
        if key[:14] != f"{stamp:%Y%m%d%H%M%S}" and stamp != EPOCH:
            notes.append(f"`{entry.name}`: {key[:14]} is not a real time; read as {stamp:%Y-%m-%d %H:%M:%S}")
        transactional = True
        metadata = entry / "metadata.toml"
        if metadata.is_file():
            transactional = bool(tomllib.loads(metadata.read_text()).get("run_in_transaction", True))
        down = entry / "down.sql"
        extra = sorted(p.name for p in entry.iterdir() if p.name not in ("up.sql", "down.sql", "metadata.toml"))
        if extra:
            notes.append(f"`{entry.name}` also holds {', '.join(extra)} (not laid out)")
        migrations.append(SourceMigration(entry.name, key, stamp, snake(raw_name), (entry / "up.sql").read_bytes(),
                                          down.read_bytes() if down.is_file() else None, transactional))
    assign_versions(migrations, notes)
    return SourceSet("crates.io", repository, commit, DIESEL_MIGRATIONS, migrations, notes)


def read_river(repository: Path, rev: str, scratch: Path, subdir: str = RIVER_MIGRATIONS) -> SourceSet:
    commit, root = extract(repository, rev, subdir, scratch / "river_source")
    notes: list[str] = []
    found: dict[str, dict[str, bytes]] = {}
    for path in sorted(root.iterdir()):
        match = re.fullmatch(r"(\d+_.+)\.(up|down)\.sql", path.name)
        if not match:
            notes.append(f"`{subdir}/{path.name}` is not NNN_name.up.sql/.down.sql (not laid out)")
            continue
        found.setdefault(match[1], {})[match[2]] = path.read_bytes()
    migrations = []
    templated = 0
    for stem, files in found.items():
        number, _, raw_name = stem.partition("_")
        if "up" not in files:
            notes.append(f"`{stem}` has no .up.sql (not laid out)")
            continue
        stamp = RIVER_BASE + timedelta(minutes=int(number))
        up, down = files["up"], files.get("down")
        templated += (RIVER_TEMPLATE in up) + (down is not None and RIVER_TEMPLATE in down)
        migrations.append(SourceMigration(stem, f"{int(number):09d}", stamp, snake(raw_name),
                                          up.replace(RIVER_TEMPLATE, b""),
                                          down.replace(RIVER_TEMPLATE, b"") if down is not None else None))
    assign_versions(migrations, notes)
    if templated:
        notes.append(f"{templated} of the files hold River's `/* TEMPLATE: schema */` placeholder, some inside string "
                     "literals (`to_regclass('/* TEMPLATE: schema */river_migration')`), where it is not a comment: "
                     "as written they fail in psql. River replaces it with the configured schema before it sends "
                     "the SQL; the harness makes the same replacement with no schema configured (the empty string), "
                     "so these files are the SQL River runs, not the files byte for byte. Nothing else is changed")
    return SourceSet("river", repository, commit, subdir, migrations, notes)


def statement_free(data: bytes) -> bool:
    """Whether a file holds nothing but blanks and comments (checked with PostgreSQL's parser)."""
    try:
        from pglast import parser

        return not parser.parse_sql(data.decode("utf-8"))
    except Exception:  # noqa: BLE001 - a file that does not parse has something in it
        return False


def describe_rollbacks(source: SourceSet) -> list[str]:
    out = []
    for m in source.migrations:
        if m.down is None:
            out.append(f"`{m.source}`: no down file")
        elif not m.down.strip():
            out.append(f"`{m.source}`: down file empty ({len(m.down)} bytes)")
        elif statement_free(m.down):
            out.append(f"`{m.source}`: down file holds only comments ({len(m.down)} bytes)")
    return out


# --- the layout ----------------------------------------------------------------------------------------
def lay_out(source: SourceSet, target: Path, *, omit_empty_rollbacks: bool = False) -> Path:
    """Our folders, every file byte for byte the source's; ``omit_empty_rollbacks``: an empty down file gets no
    rollback.sql (what the tool's own message advises)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for m in source.migrations:
        folder = target / m.folder
        folder.mkdir()
        (folder / "migration.sql").write_bytes(m.up)
        if m.down is not None and not (omit_empty_rollbacks and not m.down.strip()):
            (folder / "rollback.sql").write_bytes(m.down)
    return target


def psql_include(path: Path) -> str:
    return "\\i '" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'\n"


def psql_driver(migrations: list[SourceMigration], layout: Path, file_name: str, out: Path) -> Path:
    """A psql script running ``file_name`` of each migration in order, wrapped the way the source's tool runs it."""
    lines = ["-- generated by benchmarks/real_world.py\n"]
    for m in migrations:
        include = psql_include(layout / m.folder / file_name)
        lines.append(f"BEGIN;\n{include}COMMIT;\n" if m.transactional else include)
    out.write_text("".join(lines))
    return out


# --- running -------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    code: int
    seconds: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def text(self) -> str:
        return (self.stderr.strip() or self.stdout.strip())

    @property
    def error(self) -> str:
        """What the tool printed from its first ``error:`` line on (progress lines before it dropped)."""
        lines = self.text.splitlines()
        first = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
        return "\n".join(lines[first:]) if first is not None else self.text


@dataclass
class Failure:
    phase: str  # layout | up | down --all | up again
    version: str  # the migration (folder) the tool named, or "" when it named none
    text: str  # what the tool printed, from its first "error:" line
    # tool only | psql fails too | follows from the layout workaround | unchecked (the run stopped before psql was
    # tried on it)
    kind: str = "unchecked"
    psql: str = ""  # what psql made of the same file in the same state


@dataclass
class SetReport:
    source: SourceSet
    layout_used: str = "byte for byte"
    psql_times: list[float] = field(default_factory=list)
    tool_times: list[float] = field(default_factory=list)
    tool_ok_first: bool | None = None
    prefix: int | None = None  # migrations timed when the whole set could not be: those before the first failure
    prefix_psql: list[float] = field(default_factory=list)
    prefix_tool: list[float] = field(default_factory=list)
    psql_down_failures: dict[str, str] | None = None  # folder -> psql's first error, in psql's own down --all
    psql_down_count: int = 0
    down_seconds: float | None = None
    up_again_seconds: float | None = None
    failures: list[Failure] = field(default_factory=list)
    schema_diff: list[str] | None = None
    tool_tables: list[str] = field(default_factory=list)  # the tool's own tables left in the migrated database
    schema_lines: int = 0
    round_trip_diff: list[str] | None = None
    rollback_notes: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    diff_files: list[str] = field(default_factory=list)

    def tool_only(self) -> list[Failure]:
        return [f for f in self.failures if f.kind == "tool only"]


_PSQL_ERROR = re.compile(r"^psql:(?P<path>.+?):(?P<line>\d+): ERROR:\s+(?P<message>.*)$", re.M)


class Harness:
    def __init__(self, server: Server, tool_src: Path, work: Path, repeat: int) -> None:
        self.server = server
        self.tool_src = tool_src
        self.work = work
        self.repeat = repeat
        self.psql = PSQL_BINDIR / "psql" if (PSQL_BINDIR / "psql").exists() else server.psql
        self.pg_dump = PSQL_BINDIR / "pg_dump" if (PSQL_BINDIR / "pg_dump").exists() else server.bindir / "pg_dump"

    # --- the two clients ------------------------------------------------------------------------------
    def run_psql(self, database: str, script: Path, stop_on_error: bool = True) -> Outcome:
        return self._run([str(self.psql), "-X", "-q", "-v", f"ON_ERROR_STOP={int(stop_on_error)}", "-d", database,
                          "-f", str(script)], self.server.env)

    def tool(self, layout: Path, database: str, *args: str) -> Outcome:
        env = self.server.env | {"DATABASE_URL": self.server.url(database), "PYTHONPATH": str(self.tool_src)}
        for name in ("MERCURIO_DEBUG", "MERCURIO_NO_QUICK_PATH", "MERCURIO_NO_LIBPQ_FASTPATH", "MERCURIO_VERBOSE",
                     "MERCURIO_PROFILE", "MERCURIO_HISTORY_TABLE"):  # a foreign project: the generic tool
            env.pop(name, None)
        return self._run([sys.executable, "-m", "mercurio_migrate", "--dir", str(layout), *args], env)

    def _run(self, cmd: list[str], env: dict) -> Outcome:
        started = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.work, timeout=1800)
        return Outcome(result.returncode, time.perf_counter() - started, result.stdout, result.stderr)

    def dump(self, database: str) -> str:
        cmd = [str(self.pg_dump), "--schema-only", "--no-owner", "--no-privileges", "-d", database]
        for pattern in EXCLUDED_TABLES:
            cmd += ["--exclude-table", pattern]
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.server.env, timeout=600)
        if result.returncode != 0:
            raise BenchError(f"pg_dump {database}: {result.stderr.strip()[-400:]}")
        # blank lines dropped, and pg_dump's \restrict / \unrestrict lines (a random key per dump since 15.14)
        return "\n".join(line for line in result.stdout.splitlines()
                         if line.strip() and not line.startswith(("\\restrict ", "\\unrestrict "))) + "\n"

    def fresh(self, prefix: str) -> str:
        return self.server.create_db(prefix)

    # --- one set ---------------------------------------------------------------------------------------
    def run_set(self, source: SourceSet) -> SetReport:
        report = SetReport(source)
        report.rollback_notes = describe_rollbacks(source)
        base = self.work / source.label.replace(".", "_")
        base.mkdir(parents=True, exist_ok=True)
        by_version = {m.version_text: m for m in source.migrations}
        layout = self.accepted_layout(report, source, base, by_version)
        if layout is None:
            return report
        up_driver = psql_driver(source.migrations, layout, "migration.sql", base / "psql_up.sql")

        # psql's own down --all: which rollbacks psql itself cannot run (ON_ERROR_STOP off: a failing rollback
        # aborts its transaction and psql goes on with the next, older one)
        with_rollback = [m for m in reversed(source.migrations) if (layout / m.folder / "rollback.sql").exists()]
        down_driver = psql_driver(with_rollback, layout, "rollback.sql", base / "psql_down.sql")
        floor_db = self.fresh("rw_floor")
        try:
            if self.run_psql(floor_db, up_driver).ok:
                down = self.run_psql(floor_db, down_driver, stop_on_error=False)
                report.psql_down_count = len(with_rollback)
                report.psql_down_failures = {}
                for match in _PSQL_ERROR.finditer(down.stderr):
                    folder = Path(match["path"]).parent.name
                    report.psql_down_failures.setdefault(folder, f"line {match['line']}: ERROR:  {match['message']}")
        finally:
            self.server.drop_db(floor_db)

        # timed pairs: psql on a fresh database, then the tool on another; the first pair's databases are kept
        kept: tuple[str, str] | None = None
        first: Outcome | None = None
        for round_ in range(self.repeat):
            psql_db, tool_db = self.fresh("rw_psql"), self.fresh("rw_tool")
            floor = self.run_psql(psql_db, up_driver)
            if not floor.ok:
                report.stopped.append(f"psql itself fails on this set (the floor):\n{floor.text[-2000:]}")
                self.server.drop_db(psql_db)
                self.server.drop_db(tool_db)
                if kept:
                    self.server.drop_db(kept[0])
                    self.server.drop_db(kept[1])
                return report
            ours = self.tool(layout, tool_db, "up")
            report.psql_times.append(floor.seconds)
            if ours.ok:
                report.tool_times.append(ours.seconds)
            if round_ == 0:
                report.tool_ok_first, first, kept = ours.ok, ours, (psql_db, tool_db)
            else:
                self.server.drop_db(psql_db)
                self.server.drop_db(tool_db)
            if not ours.ok:
                break  # a set the tool cannot apply whole is timed on the part it can (below)
        psql_db, tool_db = kept
        try:
            if not first.ok:
                self.record(report, "up", first, by_version)
                if not self.up_through(report, "up", layout, tool_db, by_version, source, base):
                    return report
                self.time_prefix(report, source, layout, base)
            self.compare(report, psql_db, tool_db, base, "after_up")

            started = time.perf_counter()
            rolled_back = self.down_through(report, layout, tool_db, by_version, base)
            report.down_seconds = time.perf_counter() - started
            if not rolled_back:
                return report
            again = self.tool(layout, tool_db, "up")
            report.up_again_seconds = again.seconds if again.ok else None
            if not again.ok:
                self.record(report, "up again", again, by_version)
                if not self.up_through(report, "up again", layout, tool_db, by_version, source, base):
                    return report
            report.round_trip_diff = self.compare(report, psql_db, tool_db, base, "after_round_trip", keep=False)
        finally:
            self.server.drop_db(psql_db)
            self.server.drop_db(tool_db)
        return report

    def accepted_layout(self, report: SetReport, source: SourceSet, base: Path, by_version) -> Path | None:
        """The set laid out byte for byte; if the tool rejects that layout as a whole (every command exits 2),
        each problem is a failure and the set is laid out again as the tool advises, where it advises."""
        layout = lay_out(source, base / "migrations")
        probe = self.probe(layout)
        if probe.code == 2 and "problem(s) in the migrations folder" in probe.text:
            named = self.named_versions(probe.error, by_version)
            folders = ", ".join(self.folder_of(v, by_version) for v in named) or "(the whole set)"
            report.failures.append(Failure(
                "layout", folders, probe.error, kind="tool only",
                psql="psql never reads a down file when it applies the ups; this is what `status`, `up` and `down` "
                     "print, and nothing runs"))
            if "rollback.sql is empty: delete it" in probe.text:
                layout = lay_out(source, base / "migrations", omit_empty_rollbacks=True)
                report.layout_used = ("byte for byte, except that an empty down file gets no rollback.sql "
                                      "(the tool refuses an empty rollback.sql and advises \"delete it\")")
                probe = self.probe(layout)
        if probe.code != 0:
            report.stopped.append(f"the tool refuses the layout; nothing more can run:\n{probe.error}")
            return None
        return layout

    def probe(self, layout: Path) -> Outcome:
        """`status` on an empty database: reads the layout, changes nothing."""
        database = self.fresh("rw_probe")
        try:
            return self.tool(layout, database, "status")
        finally:
            self.server.drop_db(database)

    def time_prefix(self, report: SetReport, source: SourceSet, layout: Path, base: Path) -> None:
        """When the tool cannot apply the whole set: time both on the migrations before its first failure."""
        failed = [f.version[:15] for f in report.failures if f.phase == "up" and f.version[:1].isdigit()]
        if not failed:
            return
        prefix = [m for m in source.migrations if m.version_text < min(failed)]
        if not prefix:
            return
        driver = psql_driver(prefix, layout, "migration.sql", base / "psql_up_prefix.sql")
        report.prefix = len(prefix)
        for _ in range(self.repeat):
            psql_db, tool_db = self.fresh("rw_ppsql"), self.fresh("rw_ptool")
            try:
                floor = self.run_psql(psql_db, driver)
                ours = self.tool(layout, tool_db, "up", "--to", prefix[-1].version_text)
                if not (floor.ok and ours.ok):
                    report.stopped.append(f"timing the first {len(prefix)} migrations failed:\n"
                                          f"{(floor.text if not floor.ok else ours.error)[-1500:]}")
                    return
                report.prefix_psql.append(floor.seconds)
                report.prefix_tool.append(ours.seconds)
            finally:
                self.server.drop_db(psql_db)
                self.server.drop_db(tool_db)

    # --- failures: name them, step over them -----------------------------------------------------------
    @staticmethod
    def named_versions(text: str, by_version: dict[str, SourceMigration]) -> list[str]:
        """Versions of the set named in a message (folder names or paths), in order of appearance, unique."""
        seen = []
        for match in re.finditer(r"(\d{8}_\d{6})_[a-z0-9_]+", text):
            version = match[1]
            if version in by_version and version not in seen:
                seen.append(version)
        return seen

    @staticmethod
    def folder_of(version: str, by_version: dict[str, SourceMigration]) -> str:
        return by_version[version].folder if version in by_version else ""

    def record(self, report: SetReport, phase: str, outcome: Outcome, by_version, version: str | None = None) -> Failure:
        named = self.named_versions(outcome.error, by_version)
        version = version or (named[0] if named else "")
        folder = self.folder_of(version, by_version)
        for failure in report.failures:
            if failure.phase == phase and failure.version == folder and folder:
                return failure
        failure = Failure(phase, folder, outcome.error)
        report.failures.append(failure)
        return failure

    def applied(self, database: str) -> set[str]:
        if not self.server.query(database, "SELECT to_regclass('public.mercurio_migrations') IS NOT NULL")[0][0]:
            return set()
        return {row[0] for row in self.server.query(database, "SELECT version FROM public.mercurio_migrations")}

    def psql_one(self, migration: SourceMigration, layout: Path, file_name: str, database: str, base: Path) -> Outcome:
        script = psql_driver([migration], layout, file_name, base / f"one_{migration.version_text}_{file_name}")
        return self.run_psql(database, script)

    def up_through(self, report: SetReport, phase: str, layout: Path, database: str, by_version, source: SourceSet,
                   base: Path) -> bool:
        """After a failed `up`: step over each failing migration — the tool applies the ones before it
        (`up --to`), psql applies it (wrapped as in the floor), `resolve --applied` records it — until the tool
        has applied the rest. False when it cannot go on (the reason is in report.stopped)."""
        order = [m.version_text for m in source.migrations]
        for _ in range(MAX_RECOVERIES):
            pending = [v for v in order if v not in self.applied(database)]
            if not pending:
                return True
            attempt = self.tool(layout, database, "up")
            if attempt.ok:
                return True
            named = [v for v in self.named_versions(attempt.error, by_version) if v in pending]
            if not named:
                report.stopped.append(f"{phase}: the tool fails naming no pending migration; stopped:\n{attempt.error}")
                return False
            version = min(named)
            failure = self.record(report, phase, attempt, by_version, version)
            before = [v for v in pending if v < version]
            if before:  # the tool applies everything before the failing one first
                prior = self.tool(layout, database, "up", "--to", before[-1])
                if not prior.ok:
                    continue  # another failure first: the next round names it
            migration = by_version[version]
            floor = self.psql_one(migration, layout, "migration.sql", database, base)
            if not floor.ok:
                failure.kind, failure.psql = "psql fails too", f"psql fails too: {floor.text[-600:]}"
                report.stopped.append(f"{phase}: psql cannot apply {migration.folder} either; stopped")
                return False
            failure.kind = "tool only"
            failure.psql = "psql applies the same file in the same state (wrapped as in the floor)"
            resolved = self.tool(layout, database, "resolve", version, "--applied")
            if not resolved.ok:
                report.stopped.append(f"{phase}: `resolve {version} --applied` failed:\n{resolved.error}")
                return False
        report.stopped.append(f"{phase}: more than {MAX_RECOVERIES} failures; stopped")
        return False

    def down_through(self, report: SetReport, layout: Path, database: str, by_version, base: Path) -> bool:
        """`down --all`; on a failure naming migration V: the tool rolls back everything newer (`down --to V`,
        the same treatment recursively), psql runs V's rollback.sql (wrapped as its up), `resolve V --rolled-back`
        records it, and `down --all` goes on. A rollback psql cannot run either is skipped the way psql's own
        down --all skips it (its transaction rolled back, the history row removed) and reported as the source's
        fault. False when the tool cannot go on."""
        phase = "down --all"

        def down_to(target: str | None, depth: int = 0) -> bool:
            for _ in range(MAX_RECOVERIES):
                attempt = self.tool(layout, database, "down", *(["--to", target] if target else ["--all"]))
                if attempt.ok:
                    return True
                applied = self.applied(database)
                named = [v for v in self.named_versions(attempt.error, by_version)
                         if v in applied and (target is None or v > target)]
                if not named:
                    report.stopped.append(f"{phase}: the tool fails naming no migration it should roll back; "
                                          f"stopped:\n{attempt.error}")
                    return False
                version = max(named)
                migration = by_version[version]
                failure = self.record(report, phase, attempt, by_version, version)
                laid_out = (layout / migration.folder / "rollback.sql").exists()
                if not laid_out:
                    failure.kind = "follows from the layout workaround"
                    failure.psql = ("the source's down file is empty, so no rollback.sql was laid out: psql has "
                                    "nothing to run")
                if depth >= MAX_RECOVERIES or not down_to(version, depth + 1):  # everything newer first
                    return False
                if laid_out:
                    floor = self.psql_one(migration, layout, "rollback.sql", database, base)
                    if floor.ok:
                        failure.kind = "tool only"
                        failure.psql = "psql runs the same rollback.sql in the same state (wrapped as its up)"
                    else:
                        failure.kind = "psql fails too"
                        failure.psql = f"psql fails too, in the same state: {floor.error[-600:]}"
                resolved = self.tool(layout, database, "resolve", version, "--rolled-back")
                if not resolved.ok:
                    report.stopped.append(f"{phase}: `resolve {version} --rolled-back` failed:\n{resolved.error}")
                    return False
            report.stopped.append(f"{phase}: more than {MAX_RECOVERIES} failures; stopped")
            return False

        return down_to(None)

    # --- schemas ---------------------------------------------------------------------------------------
    def compare(self, report: SetReport, psql_db: str, tool_db: str, base: Path, what: str,
                keep: bool = True) -> list[str]:
        ours, floor = self.dump(tool_db), self.dump(psql_db)
        diff = list(difflib.unified_diff(floor.splitlines(), ours.splitlines(), f"psql ({what})",
                                         f"mercurio-migrate ({what})", lineterm="", n=2))
        (base / f"schema_psql_{what}.sql").write_text(floor)
        (base / f"schema_tool_{what}.sql").write_text(ours)
        if diff:
            (base / f"schema_{what}.diff").write_text("\n".join(diff) + "\n")
            report.diff_files.append(str(base / f"schema_{what}.diff"))
        if keep:
            report.tool_tables = [row[0] for row in self.server.query(tool_db, TOOL_TABLES_SQL)]
            report.schema_diff = diff
            report.schema_lines = len(floor.splitlines())
        return diff


# --- minimal reproductions -----------------------------------------------------------------------------
# (what it shows, migration.sql, rollback.sql or None, the command that fails, where it comes from). Our own SQL:
# psql runs each migration.sql between BEGIN and COMMIT (then the rollback.sql so, for a `down` case) without an
# error. The first group is what the real sets above run into; the second probes neighbouring cases the sets do
# not hold, and controls that work.
REPROS: list[tuple[str, str, str | None, str, str]] = [
    ("last statement without ';', a comment on the next line (crates.io's add-expires-at-column)",
     "CREATE TABLE t (id int)\n-- a note\n", None, "up", "sets"),
    ("last statement without ';', a comment after it on the same line", "SELECT 1 -- a note", None, "up", "sets"),
    ("a comment before the final ';'", "SELECT 1 -- a note\n;", None, "up", "sets"),
    ("the same in a rollback.sql", "CREATE TABLE t (id int);", "DROP TABLE t -- a note", "down", "sets"),
    ("an empty rollback.sql (crates.io: five empty down.sql)", "CREATE TABLE t (id int);", "", "up", "sets"),
    ("a rollback.sql holding only a comment (crates.io: four such down.sql)", "CREATE TABLE t (id int);",
     "-- nothing to undo\n", "down", "sets"),
    ("a migration.sql holding only a comment", "-- nothing to do yet\n", None, "up", "probe"),
    ("COPY FROM stdin with its data in the file", "CREATE TABLE t (id int);\nCOPY t FROM stdin;\n1\n\\.\n", None,
     "up", "probe"),
    ("a psql meta-command (not SQL)", "\\set x 1\nCREATE TABLE t (id int);", None, "up", "probe"),
    ("SET ROLE to a role that cannot write the history", "CREATE TABLE t (id int);\nSET ROLE pg_monitor;", None,
     "up", "probe"),
    ("control: a block comment after the last statement, no ';'", "SELECT 1 /* a note */", None, "up", "probe"),
    ("control: last statement without ';', no comment", "CREATE TABLE t (id int)\n", None, "up", "probe"),
    ("control: a comment after the final ';'", "CREATE TABLE t (id int); -- a note", None, "up", "probe"),
    ("control: the trailing comment in an autocommit migration",
     "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY i ON t (id) -- a note", None, "up", "probe"),
]


def run_repros(harness: Harness) -> str:
    out = ["| # | case | files | psql | mercurio-migrate | what the tool printed |", "|---|---|---|---|---|---|"]
    for index, (title, up, down, command, origin) in enumerate(REPROS, 1):
        base = harness.work / f"repro_{index}"
        folder = base / "migrations" / "20250101_000000_repro"
        folder.mkdir(parents=True)
        (folder / "migration.sql").write_text(up)
        if down is not None:
            (folder / "rollback.sql").write_text(down)
        # the autocommit control runs bare in psql, as Diesel's run_in_transaction = false would
        transactional = "CONCURRENTLY" not in up
        migration = SourceMigration("repro", "", datetime(2025, 1, 1), "repro", up.encode(),
                                    down.encode() if down is not None else None, transactional,
                                    version=datetime(2025, 1, 1))
        psql_db, tool_db = harness.fresh("rw_rpsql"), harness.fresh("rw_rtool")
        try:
            floor = harness.psql_one(migration, folder.parent, "migration.sql", psql_db, base)
            if floor.ok and command == "down":
                floor = harness.psql_one(migration, folder.parent, "rollback.sql", psql_db, base)
            ours = harness.tool(folder.parent, tool_db, "up")
            if ours.ok and command == "down":
                ours = harness.tool(folder.parent, tool_db, "down")
            shown = "<br>".join(line.strip().replace("|", "\\|") for line in ours.error.split("\n")[:2]) \
                if not ours.ok else ""
            files = f"migration.sql `{up!r}`" + (f", rollback.sql `{down!r}`" if down is not None else "")
            psql = "ok" if floor.ok else "FAILS: " + floor.error.replace("\n", " ")[:200]
            out.append(f"| {index} | {title} ({'from the sets' if origin == 'sets' else 'probe'}) | {files}, "
                       f"`{command}` | {psql} | {'ok' if ours.ok else f'FAILS (exit {ours.code})'} | {shown} |")
        finally:
            harness.server.drop_db(psql_db)
            harness.server.drop_db(tool_db)
    return "\n".join(out) + "\n"


# --- the report ----------------------------------------------------------------------------------------
def tool_commit(tool_src: Path) -> str:
    root = tool_src.parent
    try:
        head = git(root, "rev-parse", "HEAD").strip()
        dirty = git(root, "status", "--porcelain", "--untracked-files=normal", "--", "src").strip()
    except BenchError as exc:
        return f"unknown ({exc})"
    return head + (" (src/ had uncommitted changes)" if dirty else "")


def harness_commit() -> str:
    try:
        head = git(REPO, "rev-parse", "HEAD").strip()
        edited = git(REPO, "status", "--porcelain", "--", "benchmarks").strip()
    except BenchError as exc:
        return f"benchmarks/real_world.py of {REPO} (commit unknown: {exc})"
    return f"benchmarks/real_world.py of {REPO} at commit {head}" + (" (benchmarks/ edited since)" if edited else "")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def diff_summary(diff: list[str] | None) -> str:
    if diff is None:
        return "not compared"
    if not diff:
        return "identical"
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    return f"{removed} line(s) only in psql's database, {added} only in ours"


def timing(values: list[float]) -> str:
    if not values:
        return "–"
    text = fmt_s(median(values))
    return text + (f" ({fmt_s(min(values))}–{fmt_s(max(values))}, {len(values)} runs)" if len(values) > 1 else "")


def ratio(floor: list[float], ours: list[float]) -> str:
    pairs = [t / p for p, t in zip(floor, ours) if p > 0]
    if not pairs or len(ours) != len(floor):
        return "–"
    text = f"{median(pairs):.2f}×"
    return text + (f" ({min(pairs):.2f}–{max(pairs):.2f})" if len(pairs) > 1 else "")


def fence(lines: list[str], limit: int, indent: str = "") -> list[str]:
    shown = lines[:limit] + ([f"... ({len(lines) - limit} more lines)"] if len(lines) > limit else [])
    return [f"{indent}```", *(indent + line for line in shown), f"{indent}```"]


def render(reports: list[SetReport], meta: dict[str, str], repros: str | None) -> str:
    out = ["# Real-world migration sets: mercurio-migrate against the psql floor", ""]
    out += [f"* {key}: {value}" for key, value in meta.items()]
    out += ["", "| set | migrations | psql up | mercurio-migrate up | ratio (pair by pair) | failures: tool only / "
                "psql fails too / from the layout workaround / unchecked | schema after up |",
            "|---|---|---|---|---|---|---|"]
    for r in reports:
        kinds = [sum(f.kind == k for f in r.failures)
                 for k in ("tool only", "psql fails too", "follows from the layout workaround", "unchecked")]
        ours = timing(r.tool_times) if r.tool_ok_first else "FAILED"
        rate = ratio(r.psql_times, r.tool_times) if r.tool_ok_first else "–"
        if r.prefix:
            ours += f"; first {r.prefix} migrations: {timing(r.prefix_tool)} against psql's {timing(r.prefix_psql)}"
            rate = f"{ratio(r.prefix_psql, r.prefix_tool)} on the first {r.prefix}"
        out.append(f"| {r.source.label} | {len(r.source.migrations)} | {timing(r.psql_times)} | {ours} | {rate} | "
                   f"{' / '.join(map(str, kinds))} | {diff_summary(r.schema_diff)} |")
    for r in reports:
        s = r.source
        out += ["", f"## {s.label}", "",
                f"Source: `{s.repository}` at commit `{s.commit}`, `{s.subdir}/`: {len(s.migrations)} migrations, "
                f"{sum(not m.transactional for m in s.migrations)} of them `run_in_transaction = false`. "
                f"Layout used: {r.layout_used}.", ""]
        if r.psql_times:
            out.append("psql times: " + ", ".join(fmt_s(t) for t in r.psql_times) + "; mercurio-migrate `up`: "
                       + (", ".join(fmt_s(t) for t in r.tool_times) if r.tool_ok_first else "failed") + ".")
        if r.prefix:
            out.append(f"The tool cannot apply the whole set, so both were also timed on the {r.prefix} migrations "
                       f"before its first failure (`up --to`): psql {', '.join(map(fmt_s, r.prefix_psql))}; "
                       f"ours {', '.join(map(fmt_s, r.prefix_tool))}.")
        if r.down_seconds is not None:
            out.append(f"`down --all`, the recoveries below included: {fmt_s(r.down_seconds)}; `up` again: "
                       f"{fmt_s(r.up_again_seconds) if r.up_again_seconds else 'failed, see below'}.")
        out.append("")
        if s.notes:
            out += ["Notes on the source and its layout:", ""] + [f"* {n}" for n in s.notes] + [""]
        if r.rollback_notes:
            out += ["Down files that are missing, empty or comment-only:", ""] + [f"* {n}" for n in r.rollback_notes]
            out.append("")
        if r.psql_down_failures is not None:
            out.append(f"psql's own `down --all` (one session over the {r.psql_down_count} rollback.sql files newest "
                       "first, each wrapped as its up, ON_ERROR_STOP off so that a failing rollback is skipped): "
                       + (f"{len(r.psql_down_failures)} fail:" if r.psql_down_failures else "all run."))
            out += [""] + [f"* `{folder}`: {error}" for folder, error in r.psql_down_failures.items()] + [""]
        if r.failures:
            out += [f"Failures of the tool ({len(r.failures)}: {len(r.tool_only())} where psql succeeds):", ""]
            for f in r.failures:
                out.append(f"* **{f.phase}** `{f.version or '(none named)'}` — {f.kind}" + (f"; {f.psql}" if f.psql else ""))
                out += [""] + fence(f.text.splitlines(), 30, "  ") + [""]
        else:
            out += ["No failures of the tool.", ""]
        if r.stopped:
            out += ["Stopped:", ""] + [f"* {line}" for line in r.stopped] + [""]
        if r.schema_diff is not None:
            out.append(f"Schema after `up`, psql's database against ours (pg_dump --schema-only, {r.schema_lines} "
                       f"lines): {diff_summary(r.schema_diff)}.")
            if r.schema_diff:
                out += [""] + fence(r.schema_diff, 80)
            out += ["", "The tool's own tables in the migrated database (left out of the comparison): "
                        + (", ".join(f"`{t}`" for t in r.tool_tables) or "none") + "."]
        if r.round_trip_diff is not None:
            out += ["", "After `down --all` and `up` again, ours against psql's single `up` (informational: a "
                        f"rollback need not restore column order): {diff_summary(r.round_trip_diff)}."]
            if r.round_trip_diff:
                out += [""] + fence(r.round_trip_diff, 60)
        if r.diff_files:
            out += ["", "Full diffs: " + ", ".join(f"`{p}`" for p in r.diff_files) + " (kept with --keep)."]
    if repros is not None:
        out += ["", "## Minimal reproductions", "",
                "Each is one migration folder of our own SQL on a fresh database; psql runs migration.sql between "
                "BEGIN and COMMIT (and then rollback.sql for a `down` case).", "", repros]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_world", description=__doc__.split("\n\n")[0])
    parser.add_argument("--crates-io", type=Path, help="git repository of rust-lang/crates.io (bare mirror is fine)")
    parser.add_argument("--river", type=Path, help="git repository of riverqueue/river")
    parser.add_argument("--rev", default="HEAD", help="commit of each source to read (default HEAD)")
    parser.add_argument("--tool-src", type=Path, default=DEFAULT_TOOL_SRC,
                        help="the src/ folder of the mercurio-migrate tree under test (default /work/main/src)")
    parser.add_argument("--tool-rev", metavar="REV",
                        help="test this commit of the tool's repository instead of the --tool-src working tree: its "
                             "src/ is exported (git archive) into the temporary folder, so uncommitted edits in the "
                             "working tree do not count")
    parser.add_argument("--repeat", type=int, default=3, help="timed psql/tool pairs per set (default 3)")
    parser.add_argument("--no-repros", action="store_true", help="skip the built-in minimal reproductions")
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (layouts, dumps, diffs)")
    args = parser.parse_args(argv)
    if not (args.crates_io or args.river):
        parser.error("give --crates-io DIR and/or --river DIR")
    if not (args.tool_src / "mercurio_migrate").is_dir():
        parser.error(f"--tool-src {args.tool_src}: no mercurio_migrate package there")

    work = Path(tempfile.mkdtemp(prefix="mercurio-real-world-"))
    os.chmod(work, 0o755)
    if args.tool_rev:
        repository = args.tool_src.resolve().parent
        commit, exported = extract(repository, args.tool_rev, "src", work / "tool")
        args.tool_src, under_test = exported, f"commit {commit} of {repository} (its src/ exported with git archive)"
    else:
        under_test = f"the working tree {args.tool_src}, at commit {tool_commit(args.tool_src)} at start"
    meta = {"tool under test": f"`PYTHONPATH={args.tool_src} {sys.executable} -m mercurio_migrate`: {under_test}",
            "harness": harness_commit()}
    meta["load average at start"] = load_average()
    started = time.perf_counter()
    server = Server()
    reports = []
    repros = None
    try:
        version = server.query("postgres", "SHOW server_version")[0][0]
        meta["server"] = f"PostgreSQL {version}, throwaway cluster under {server.root.parent}"
        harness = Harness(server, args.tool_src.resolve(), work, max(1, args.repeat))
        meta["psql"] = f"{harness.psql} (one session, -X -q -v ON_ERROR_STOP=1); pg_dump: {harness.pg_dump}"
        sources = []
        if args.crates_io:
            sources.append(read_diesel(args.crates_io, args.rev, work))
        if args.river:
            sources.append(read_river(args.river, args.rev, work))
        for source in sources:
            print(f"== {source.label}: {len(source.migrations)} migrations ...", file=sys.stderr, flush=True)
            reports.append(harness.run_set(source))
        if not args.no_repros:
            print("== minimal reproductions ...", file=sys.stderr, flush=True)
            repros = run_repros(harness)
    finally:
        server.close()
        if not args.tool_rev:
            meta["tool commit at end"] = tool_commit(args.tool_src)
        meta["wall time"] = fmt_s(time.perf_counter() - started)
        meta["load average at end"] = f"{load_average()} ({os.cpu_count()} processors; timings are noisy when busy)"
        if args.keep:
            meta["work folder"] = str(work)
    text = render(reports, meta, repros)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
        text = text.replace("(kept with --keep)", "(removed; rerun with --keep)")
    print(text)
    if args.report:
        args.report.write_text(text)
    clean = all(not r.tool_only() and not r.stopped and not r.schema_diff for r in reports)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
