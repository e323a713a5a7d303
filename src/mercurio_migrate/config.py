"""Settings from flags, environment and pyproject.toml, resolved once per command."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mercurio_migrate.errors import UsageError

DEFAULT_DIR = "migrations"


@dataclass(frozen=True)
class Settings:
    database_url: str | None  # None: the embedded local cluster
    migrations_dir: Path
    project: dict = field(default_factory=dict)  # [tool.mercurio-migrate] of pyproject.toml

    @property
    def embedded(self) -> bool:
        return self.database_url is None


def _pyproject_section(start: Path) -> dict:
    path = start / "pyproject.toml"
    if not path.is_file():
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}", hint="Fix the file or remove [tool.mercurio-migrate].") from None
    section = data.get("tool", {}).get("mercurio-migrate", {})
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [tool.mercurio-migrate] must be a table")
    return section


def resolve(database_url: str | None = None, migrations_dir: str | Path | None = None,
            cwd: Path | None = None) -> Settings:
    cwd = cwd or Path.cwd()
    project = _pyproject_section(cwd)
    url = database_url or os.environ.get("DATABASE_URL") or None
    directory = (migrations_dir or os.environ.get("MERCURIO_MIGRATIONS_DIR")
                 or project.get("migrations_dir") or DEFAULT_DIR)
    path = Path(directory)
    if not path.is_absolute():
        path = cwd / path
    return Settings(database_url=url, migrations_dir=path, project=project)
