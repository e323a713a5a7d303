"""Test session fixtures: one throwaway PostgreSQL cluster (temporary folder, Unix socket), torn down at the end.

Each test that needs a database gets a fresh one (`database_url`), so tests never see each other's state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "seed" / "migration-examples.md"  # beside a clone of ours, not needed by it
MIGRATIONS = REPO / "migrations"
# the seed's five examples and two rollbacks, kept byte for byte in migrations/ (test_reference_schema checks
# them against the seed document when it is there): tests read them from here, needing nothing outside the repo
sys.path.insert(0, str(REPO / "benchmarks"))
from lint_corpus import SEED_FILES  # noqa: E402, F401 - re-exported for the tests


def seed_file(path: str) -> str:
    """One of SEED_FILES as the seed document holds it (its text without the final newline)."""
    return (MIGRATIONS / path).read_text(encoding="utf-8").rstrip("\n")


# Keys for the shipped PII migrations in tests only (real keys come from the environment, never from git)
TEST_KEYS = {"MERCURIO_PII_KEY": "test-only-pii-key-000000000000000000000000",
             "MERCURIO_HMAC_KEY": "test-only-hmac-key-00000000000000000000000"}
# The CLI runs from a temporary folder, where no pyproject.toml names a profile: by default the tests run it
# with the mercurio profile, as this repository's pyproject.toml sets it. Tests of the generic tool pass GENERIC:
# the environment names no profile, so the working folder's pyproject.toml (if any) decides, as for any project.
MERCURIO_PROFILE = {"MERCURIO_PROFILE": "mercurio"}
GENERIC = {"MERCURIO_PROFILE": ""}


def _cluster_parent() -> str:
    """MERCURIO_TEST_DIR, else /dev/shm when it has room to spare (the throwaway cluster then never waits
    on a slow shared disk: 5:49 against 7:15 for the whole suite here), else /tmp."""
    from mercurio_migrate.embedded import throwaway_parent

    return throwaway_parent("MERCURIO_TEST_DIR", 2 * 1024**3)


@pytest.fixture(scope="session")
def pg_cluster():
    from mercurio_migrate.embedded import Cluster

    root = Path(tempfile.mkdtemp(prefix="mercurio-test-", dir=_cluster_parent()))
    os.chmod(root, 0o755)
    cluster = Cluster(root / "cluster", durable=False, database="postgres")
    cluster.ensure_running()
    yield cluster
    cluster.destroy()
    shutil.rmtree(root, ignore_errors=True)


def _fresh_database(cluster):
    """A new empty database on the session cluster (generator: yields its URL, then drops it)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield cluster.url(name)
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_cluster):
    """A fresh, empty database on the session cluster; dropped after the test."""
    yield from _fresh_database(pg_cluster)


@pytest.fixture
def other_url(pg_cluster):
    """A second fresh database, for tests that compare two."""
    yield from _fresh_database(pg_cluster)


@pytest.fixture
def db(database_url):
    """An autocommit connection to the test's database, for asserting on its state."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def run_cli(*args: str, database_url: str | None = None, cwd: Path | None = None, env: dict | None = None,
            timeout: int = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MERCURIO_MIGRATIONS_DIR")}
    full_env.update(MERCURIO_PROFILE)
    if database_url:
        full_env["DATABASE_URL"] = database_url
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "mercurio_migrate", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


@pytest.fixture
def cli(database_url, tmp_path):
    """run_cli bound to the test's database, run from a temporary working folder."""

    def runner(*args: str, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("database_url", database_url)
        kwargs.setdefault("cwd", tmp_path)
        kwargs["env"] = {**TEST_KEYS, **(kwargs.get("env") or {})}
        return run_cli(*args, **kwargs)

    return runner


def run_past_first_retry(args: list[str], database_url: str, blocker, at_retry=None) -> tuple[int, str]:
    """Run the CLI while ``blocker`` (a connection) holds a lock the run needs, and close the blocker once
    the tool announces its first lock-timeout retry (``at_retry()`` is called then, before it is closed).
    (exit code, everything the tool wrote to stderr)."""
    env = {**os.environ, **TEST_KEYS, **MERCURIO_PROFILE, "DATABASE_URL": database_url, "MERCURIO_RETRY_BACKOFF": "0.3"}
    process = subprocess.Popen([sys.executable, "-m", "mercurio_migrate", *args, "--lock-timeout", "200ms",
                                "--lock-retries", "5", "--no-preflight"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if "retry 1 of 5" in line:
                if at_retry is not None:
                    at_retry()
                break
    finally:
        blocker.close()
    _, rest = process.communicate(timeout=60)
    return process.returncode, "".join(seen) + rest


def write_migration(root: Path, folder: str, migration: str, rollback: str | None = None, **extras: str) -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "migration.sql").write_text(migration, encoding="utf-8")
    if rollback is not None:
        (path / "rollback.sql").write_text(rollback, encoding="utf-8")
    for name, text in extras.items():
        (path / f"{name}.sql").write_text(text, encoding="utf-8")
    return path
