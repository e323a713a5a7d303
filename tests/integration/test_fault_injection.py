"""Crash survival: die at every statement boundary of every shipped migration, then recover.

For each migration M of the reference set, a database holding everything before M is cloned from a
template; a forked child runs `up --to M` and dies at fault point k (SIGKILL of the process, or the
server terminating its connection). Then: the schema is exactly the before- or after-state of M
(transactional migrations), the history claims M only if M completed, no advisory lock survives the
dead session, and a plain `up` completes the work with no INVALID index left. k grows until the
child runs to completion, so every point of every migration is tried.
"""

from __future__ import annotations

import os
import time
import uuid

import psycopg
import pytest

from conftest import MIGRATIONS, TEST_KEYS
from mercurio_migrate import config, faults, snapshot
from mercurio_migrate.engine import Engine
from mercurio_migrate.layout import discover
from mercurio_migrate.sqlscript import Mode, parse


@pytest.fixture(scope="module")
def keys_env():
    saved = {k: os.environ.get(k) for k in TEST_KEYS}
    os.environ.update(TEST_KEYS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def admin(cluster):
    return psycopg.connect(cluster.conninfo("postgres"), autocommit=True)


def engine_for(cluster, name: str) -> Engine:
    settings = config.resolve(cluster.url(name), MIGRATIONS, preflight=False, lock_retries=0)
    return Engine(settings)


def wait_until_alone(conn, database: str, timeout: float = 10.0) -> None:
    """A killed client's backend exits when it sees the closed socket; wait for that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()[0]:
            return
        time.sleep(0.02)
    raise AssertionError(f"sessions on {database} did not end")


def run_child(cluster, database: str, version: str, point: int, action: str) -> int:
    pid = os.fork()
    if pid == 0:  # child: run the engine in-process and die at the armed point
        code = 0
        try:
            faults.arm(point, action)
            engine_for(cluster, database).up(to=version)
        except BaseException:  # noqa: BLE001 - the child reports only through its exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


ROW_COUNTS_SQL = """
SELECT c.oid::regclass::text,
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND c.relname NOT IN ('mercurio_migrations', 'mercurio_migration_progress', 'migration_log')
"""


def schema_of(cluster, database: str) -> tuple[snapshot.Snapshot, dict[str, str]]:
    """The schema and every table's row count (the tool's append-only tables left out)."""
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as conn:
        return snapshot.take(conn), dict(conn.execute(ROW_COUNTS_SQL).fetchall())


def real_differences(a, b) -> list[str]:
    found = [str(d) for d in snapshot.diff(a[0], b[0]) if d.severity != "note"]
    return found + [f"rows of {t}: {a[1].get(t)} -> {b[1].get(t)}" for t in set(a[1]) | set(b[1])
                    if a[1].get(t) != b[1].get(t)]


def history_of(conn) -> set[str]:
    if conn.execute("SELECT to_regclass('public.mercurio_migrations')").fetchone()[0] is None:
        return set()
    return {r[0] for r in conn.execute("SELECT version FROM public.mercurio_migrations").fetchall()}


def test_every_fault_point_of_the_shipped_migrations(pg_cluster, keys_env):
    migrations = discover(MIGRATIONS).migrations
    work = f"fi_{uuid.uuid4().hex[:8]}"
    tried = passed = 0
    with admin(pg_cluster) as conn:
        conn.execute(f'CREATE DATABASE "{work}"')
        engine = engine_for(pg_cluster, work)
        with engine.session(lock=True) as session:  # the tool's tables exist before any migration runs
            engine.ensure_tables(session)
        try:
            for migration in migrations:
                started = time.monotonic()
                before = schema_of(pg_cluster, work)
                engine.up(to=migration.version)
                after = schema_of(pg_cluster, work)
                engine.down(steps=1)
                assert not real_differences(before, schema_of(pg_cluster, work)), f"{migration.id}: rollback"
                transactional = parse(migration.migration.text).mode in (Mode.TOOL_TRANSACTION,
                                                                        Mode.OWN_TRANSACTION)
                for action in ("kill", "terminate"):
                    point = 1
                    while True:
                        status = run_child(pg_cluster, work, migration.version, point, action)
                        wait_until_alone(conn, work)
                        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                            engine.down(steps=1)  # every point of this action tried: back to the start
                            break
                        tried += 1
                        where = f"{migration.id}, {action} at point {point}"
                        with psycopg.connect(pg_cluster.conninfo(work), autocommit=True) as db:
                            claimed = migration.version in history_of(db)
                            locks = db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                               ).fetchone()[0]
                        assert locks == 0, f"{where}: advisory lock left behind"
                        current = schema_of(pg_cluster, work)
                        if transactional:
                            expected = after if claimed else before
                            assert not real_differences(expected, current), (
                                f"{where}: history {'claims' if claimed else 'does not claim'} the migration, "
                                f"but the database differs: {real_differences(expected, current)}")
                        elif claimed:
                            assert not real_differences(after, current), f"{where}: claimed but not complete"
                        engine.up(to=migration.version)
                        with psycopg.connect(pg_cluster.conninfo(work), autocommit=True) as db:
                            assert migration.version in history_of(db), f"{where}: recovery did not apply"
                            invalid = db.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0]
                            progress = 0 if db.execute("SELECT to_regclass('public.mercurio_migration_progress')"
                                                       ).fetchone()[0] is None else db.execute(
                                "SELECT count(*) FROM public.mercurio_migration_progress").fetchone()[0]
                        assert invalid == 0, f"{where}: INVALID index left after recovery"
                        assert progress == 0, f"{where}: statement progress left after the migration was recorded"
                        assert not real_differences(after, schema_of(pg_cluster, work)), f"{where}: recovery"
                        engine.down(steps=1)
                        passed += 1
                        point += 1
                engine.up(to=migration.version)
                print(f"{migration.id}: {time.monotonic() - started:.1f} s, {tried} points so far", flush=True)
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{work}" WITH (FORCE)')
    print(f"\nfault injection: {tried} fault points tried, {passed} passed "
          f"({len(migrations)} migrations, actions kill and terminate)")
    report = os.environ.get("MERCURIO_FAULT_REPORT")
    if report:
        with open(report, "w") as handle:
            handle.write(f"{tried}\t{passed}\t{len(migrations)}\n")
    assert tried == passed and tried >= 4 * len(migrations)
