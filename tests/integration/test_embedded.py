"""The zero-set-up path: no DATABASE_URL, the tool creates and starts its own server in .mercurio/."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import MIGRATIONS, run_cli, write_migration
from mercurio_migrate.embedded import POINTER_FILE, clusters_dir, find_bindir


def test_up_on_the_embedded_default_then_db_commands():
    # pytest's tmp_path is private to root (0700); the server's unprivileged user must reach the folder
    work = Path(tempfile.mkdtemp(prefix="mercurio-embedded-", dir="/tmp"))
    os.chmod(work, 0o755)
    try:
        first = run_cli("--dir", str(MIGRATIONS), "up", cwd=work)
        assert first.returncode == 0, first.stderr
        assert (work / ".mercurio" / "pgdata" / "PG_VERSION").is_file()
        assert stat.S_IMODE((work / ".mercurio" / "pgdata").stat().st_mode) == 0o700
        status = json.loads(run_cli("--dir", str(MIGRATIONS), "--json", "status", cwd=work).stdout)
        assert status["migrations"] and all(m["state"] == "applied" for m in status["migrations"])

        url = run_cli("db", "url", cwd=work)
        assert url.returncode == 0 and url.stdout.startswith("postgresql://postgres@/mercurio?host=")
        db_status = json.loads(run_cli("--json", "db", "status", cwd=work).stdout)
        assert db_status["running"] is True and db_status["initialized"] is True

        # several processes starting the stopped server at once: all succeed
        assert run_cli("db", "stop", cwd=work).returncode == 0
        assert json.loads(run_cli("--json", "db", "status", cwd=work).stdout)["running"] is False
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        procs = [subprocess.Popen([sys.executable, "-m", "mercurio_migrate", "--dir", str(MIGRATIONS), "--json",
                                   "status"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        results = [(p.wait(timeout=120), p.communicate()) for p in procs]
        assert [code for code, _ in results] == [0, 0, 0, 0], [err for _, (_, err) in results]
    finally:
        run_cli("db", "stop", cwd=work)
        shutil.rmtree(work, ignore_errors=True)


def _work_folder(parent: str = "/tmp") -> Path:
    """A working folder the server's unprivileged user can reach (pytest's tmp_path is private to root)."""
    work = Path(tempfile.mkdtemp(prefix="mercurio-embedded-", dir=parent))
    os.chmod(work, 0o755)
    return work


def _tiny_migrations(work: Path) -> Path:
    root = work / "tiny-migrations"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id bigint PRIMARY KEY);", "DROP TABLE a;")
    return root


def _stop_and_remove(work: Path, *projects: Path) -> None:
    for project in projects:
        if project.exists():
            run_cli("db", "stop", cwd=project)
            pointer = project / ".mercurio" / POINTER_FILE
            if pointer.is_file():
                shutil.rmtree(pointer.read_text().strip(), ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def _server_processes(data_dir: Path) -> list[int]:
    """The postmaster of the cluster in ``data_dir`` and its children."""
    postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


def test_the_embedded_server_ignores_the_callers_environment():
    """PGPORT (libpq would look for another socket) and secrets in the environment: the URL names its port,
    and no server process inherits MERCURIO_PII_KEY or any other variable it does not need."""
    work = _work_folder()
    secret = "environment-secret-1234567890-abcdefghijkl"
    env = {"PGPORT": "1", "MERCURIO_PII_KEY": secret, "SOME_API_TOKEN": secret}
    try:
        result = run_cli("--dir", str(_tiny_migrations(work)), "up", cwd=work, env=env)
        assert result.returncode == 0, result.stderr
        url = run_cli("db", "url", cwd=work, env=env)
        assert url.returncode == 0, url.stderr
        psql = subprocess.run([str(find_bindir() / "psql"), url.stdout.strip(), "-Atc", "SELECT count(*) FROM a"],
                              capture_output=True, text=True, env={**os.environ, **env})
        assert psql.returncode == 0 and psql.stdout.strip() == "0", psql.stderr
        for pid in _server_processes(work / ".mercurio" / "pgdata"):
            try:  # a backend may end between the listing and the read
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (ProcessLookupError, FileNotFoundError):
                continue
            assert secret.encode() not in environ and secret.encode() not in cmdline, pid
            assert b"PGPORT=" not in environ
    finally:
        _stop_and_remove(work, work)


def test_working_folders_whose_path_holds_quotes_commas_or_shell_characters():
    """A quote or a space: the cluster lives in .mercurio/ as usual (postgresql.conf quotes the socket
    folder). A comma (libpq would split the socket folder as a list of hosts), a double quote, '$(…)' or a
    backslash (pg_ctl hands the data folder to /bin/sh): the cluster lives under clusters_dir(), named by
    .mercurio/cluster, and nothing in the folder's name is run."""
    work = _work_folder()
    marker = Path("/tmp") / f"{work.name}-ran"  # pg_ctl's shell runs in / (a folder name holds no '/')
    in_place = work / "it's a project"
    elsewhere = work / f'it\'s, a "project" $(cd tmp; touch {marker.name}) `cd tmp; touch {marker.name}` \\'
    try:
        for project, moved in ((in_place, False), (elsewhere, True)):
            project.mkdir()
            result = run_cli("--dir", str(_tiny_migrations(work)), "up", cwd=project)
            assert result.returncode == 0, result.stderr
            status = json.loads(run_cli("--dir", str(_tiny_migrations(work)), "--json", "status", cwd=project).stdout)
            assert [m["state"] for m in status["migrations"]] == ["applied"]
            pointer = project / ".mercurio" / POINTER_FILE
            assert pointer.is_file() is moved
            assert (project / ".mercurio" / "pgdata" / "PG_VERSION").is_file() is not moved
            if moved:
                assert Path(pointer.read_text().strip()).parent == clusters_dir()
        assert not marker.exists()
    finally:
        _stop_and_remove(work, in_place, elsewhere)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as a separate user")
def test_the_embedded_default_works_in_a_folder_the_server_user_cannot_reach():
    """As root in a folder under a mode-700 root-owned folder (as /root/project, or mktemp -d): the README's
    first command works; the cluster lives under clusters_dir(), .mercurio/ keeps the pointer and the
    development keys."""
    work = Path(tempfile.mkdtemp(prefix="mercurio-private-"))  # mode 0700, owned by root
    project = work / "project"
    project.mkdir()
    try:
        first = run_cli("--dir", str(MIGRATIONS), "up", cwd=project)
        assert first.returncode == 0, first.stderr
        home = project / ".mercurio"
        root = Path((home / POINTER_FILE).read_text().strip())
        assert root.parent == clusters_dir() and (root / "pgdata" / "PG_VERSION").is_file()
        assert not (home / "pgdata").exists()
        assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o600
        status = json.loads(run_cli("--dir", str(MIGRATIONS), "--json", "status", cwd=project).stdout)
        assert status["migrations"] and all(m["state"] == "applied" for m in status["migrations"])
        db_status = json.loads(run_cli("--json", "db", "status", cwd=project).stdout)
        assert db_status["running"] is True and db_status["root"] == str(root)
    finally:
        _stop_and_remove(work, project)


def test_verify_as_the_first_command_of_a_fresh_folder_generates_the_development_keys():
    """The shipped set needs PII keys; on the embedded default `verify` generates the development keys as
    `up` does, instead of failing when it is the first command run in a folder."""
    work = _work_folder()
    env = {name: "" for name in ("MERCURIO_PII_KEY", "MERCURIO_HMAC_KEY", "MERCURIO_PII_OLD_KEYS")}
    try:
        shutil.copytree(MIGRATIONS, work / "migrations")
        result = run_cli("verify", cwd=work, env=env, timeout=300)
        assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
        assert "generated development PII keys" in result.stdout + result.stderr
        assert (work / ".mercurio" / "keys").is_file()
    finally:
        _stop_and_remove(work, work)
