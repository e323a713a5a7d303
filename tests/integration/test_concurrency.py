"""Runners racing each other: N = 10 and 50 concurrent `up`, `up` racing `down`, and a pooler in between."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import write_migration
from mercurio_migrate.embedded import server_user


def spawn(args: list[str], database_url: str, extra_env: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MERCURIO_MIGRATIONS_DIR"}
    env.update(DATABASE_URL=database_url, **(extra_env or {}))
    return subprocess.Popen([sys.executable, "-m", "mercurio_migrate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def migration_set(root: Path, count: int) -> Path:
    """``count`` migrations, each creating a table; the second builds an index CONCURRENTLY on the first's
    table (a runner waiting for the migration lock inside a transaction would deadlock with it)."""
    for i in range(count):
        if i == 1:
            write_migration(root, f"20250101_0000{i:02d}_t{i}",
                            f"CREATE TABLE t{i} (id int);\nINSERT INTO t{i} VALUES ({i});\n"
                            "CREATE INDEX CONCURRENTLY idx_t0 ON t0 (id);\n",
                            f"DROP INDEX CONCURRENTLY idx_t0;\nDROP TABLE t{i};\n")
            continue
        write_migration(root, f"20250101_0000{i:02d}_t{i}",
                        f"BEGIN;\nCREATE TABLE t{i} (id int);\nINSERT INTO t{i} VALUES ({i});\nCOMMIT;\n",
                        f"BEGIN;\nDROP TABLE t{i};\nCOMMIT;\n")
    return root


def consistent(db, count: int) -> set[str]:
    """Every migration is in the history exactly when its table (and the second one's index) exists;
    returns the applied versions."""
    applied = {r[0] for r in db.execute("SELECT version FROM public.mercurio_migrations").fetchall()}
    indexed = db.execute("SELECT to_regclass('idx_t0') IS NOT NULL").fetchone()[0]
    assert indexed == ("20250101_000001" in applied), "idx_t0: index and history disagree"
    for i in range(count):
        exists = db.execute(f"SELECT to_regclass('t{i}') IS NOT NULL").fetchone()[0]
        assert exists == (f"20250101_0000{i:02d}" in applied), f"t{i}: table and history disagree"
        if exists:
            assert db.execute(f"SELECT count(*) FROM t{i}").fetchone()[0] == 1
    return applied


@pytest.mark.parametrize("runners", [10, 50])
def test_many_concurrent_up_runs_apply_each_migration_exactly_once(database_url, db, tmp_path, runners):
    root = migration_set(tmp_path / "m", 5)
    procs = [spawn(["--dir", str(root), "--json", "up"], database_url) for _ in range(runners)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * runners, [err for _, err in outputs if err][:3]
    applied = sorted(a["version"] for out, _ in outputs for a in json.loads(out)["applied"])
    assert applied == [f"20250101_0000{i:02d}" for i in range(5)]
    assert len(consistent(db, 5)) == 5
    assert db.execute("SELECT count(*) FROM migration_log").fetchone()[0] == 5
    assert db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0


def test_up_racing_down_keeps_history_and_schema_consistent(database_url, db, tmp_path):
    root = migration_set(tmp_path / "m", 6)
    first = spawn(["--dir", str(root), "up"], database_url)
    assert first.wait(timeout=60) == 0
    procs = []
    for i in range(12):
        args = ["--dir", str(root), "--json", "down", "--steps", "2"] if i % 2 else ["--dir", str(root), "--json", "up"]
        procs.append(spawn(args, database_url))
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 12, [err for _, err in outputs if err][:3]
    for out, _ in outputs:
        document = json.loads(out)
        assert set(document) <= {"applied", "rolled_back", "validation"}
    consistent(db, 6)
    ups = sum(len(json.loads(o).get("applied", [])) for o, _ in outputs)
    downs = sum(len(json.loads(o).get("rolled_back", [])) for o, _ in outputs)
    applied_now = db.execute("SELECT count(*) FROM public.mercurio_migrations").fetchone()[0]
    assert applied_now == 6 + ups - downs


PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@pytest.fixture
def pgbouncer(pg_cluster, database_url):
    """A PgBouncer in front of the test cluster; yields a function (pool_mode) -> URL through it."""
    if not os.path.exists(PGBOUNCER):
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    user = server_user()
    work = Path(tempfile.mkdtemp(prefix="mercurio-pgb-", dir="/tmp"))
    os.chmod(work, 0o755)
    if not user.is_current:
        os.chown(work, user.uid, user.gid)
    processes = []
    database = database_url.split("/")[-1].split("?")[0]

    def start(pool_mode: str, port: int) -> str:
        ini = work / f"{pool_mode}.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={pg_cluster.socket_dir} port=5432\n"
            "[pgbouncer]\n"
            f"listen_addr =\nlisten_port = {port}\nunix_socket_dir = {work}\n"
            f"auth_type = trust\nauth_file = {work / 'users.txt'}\npool_mode = {pool_mode}\n"
            f"logfile = {work / pool_mode}.log\npidfile = {work / pool_mode}.pid\n"
            "ignore_startup_parameters = options,extra_float_digits\n"
        )
        (work / "users.txt").write_text('"postgres" ""\n')
        extra = {} if user.is_current else {"user": user.uid, "group": user.gid, "extra_groups": []}
        processes.append(subprocess.Popen([PGBOUNCER, str(ini)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, **extra))
        socket = work / f".s.PGSQL.{port}"
        deadline = time.monotonic() + 10
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert socket.exists(), (work / f"{pool_mode}.log").read_text() if (work / f"{pool_mode}.log").exists() else ""
        return f"postgresql://postgres@/{database}?host={work}&port={port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
    shutil.rmtree(work, ignore_errors=True)


def test_transaction_pooling_pgbouncer_is_refused_with_a_clear_message(pgbouncer, db, tmp_path):
    root = migration_set(tmp_path / "m", 2)
    url = pgbouncer("transaction", 6542)
    result = subprocess.run([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "up"],
                            capture_output=True, text=True, env={**os.environ, "DATABASE_URL": url})
    assert result.returncode == 1
    assert "connected through a proxy or connection pooler (port 6542; the server listens on 5432)" in result.stderr
    assert "MERCURIO_ALLOW_POOLER" in result.stderr and "Traceback" not in result.stderr
    assert db.execute("SELECT to_regclass('t0')").fetchone()[0] is None


def test_session_pooling_pgbouncer_works_when_allowed(pgbouncer, db, tmp_path):
    root = migration_set(tmp_path / "m", 2)
    url = pgbouncer("session", 6543)
    env = {**os.environ, "DATABASE_URL": url, "MERCURIO_ALLOW_POOLER": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(root), "--json", "up"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(5)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [e for _, e in outputs]
    assert len(consistent(db, 2)) == 2
