"""The public API: the example of docs/api.md runs as written, and the CLI's commands are the API's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mercurio_migrate
from mercurio_migrate import api

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_documented_example_runs_against_a_real_database(database_url, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/api.md has no example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0], encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DATABASE_URL": database_url})
    assert run.returncode == 0, run.stderr


def test_every_documented_function_exists_and_the_package_is_typed():
    documented = set(re.findall(r"^\| `(\w+)\(", DOC.read_text(encoding="utf-8"), re.M))
    assert documented == {"project", "status", "up", "down", "resolve", "log", "verify", "drift", "dump", "lint"}
    assert documented <= set(api.__all__)
    assert (Path(mercurio_migrate.__file__).parent / "py.typed").is_file()


def test_project_resolves_settings_as_the_cli_does(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.mercurio-migrate]\nmigrations_dir = "db/migrations"\n'
                                             'lock_timeout = "7s"\n')
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MERCURIO_LOCK_TIMEOUT", raising=False)
    settings = api.project(cwd=tmp_path, lock_retries=1)
    assert settings.migrations_dir == tmp_path / "db" / "migrations"
    assert settings.safety.lock_timeout == "7s" and settings.safety.lock_retries == 1
    assert settings.database_url is None
