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

from conftest import MIGRATIONS, run_cli


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


def test_unreachable_working_folder_gives_a_clear_error(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as a separate user")
    result = run_cli("--dir", str(MIGRATIONS), "status", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "MERCURIO_HOME" in result.stderr
    assert "Traceback" not in result.stderr
