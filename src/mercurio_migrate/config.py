"""Settings from flags, environment and pyproject.toml, resolved once per command.

Precedence: command-line flag, then environment variable, then ``[tool.mercurio-migrate]`` in the
working folder's pyproject.toml, then the default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from mercurio_migrate.errors import UsageError

DEFAULT_DIR = "migrations"
_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


# Settings, like the other records read on every command, are NamedTuples: a frozen dataclass costs more
# to define than a whole `status` may spend on its own work.
class Safety(NamedTuple):
    """Lock and timeout behaviour of `up` and `down`."""

    lock_timeout: str = "5s"  # how long one DDL statement may wait for a table lock
    statement_timeout: str = "0"  # 0: no limit (data migrations can be long)
    lock_retries: int = 3  # retries of a migration that hit lock_timeout
    retry_backoff: float = 1.0  # seconds before the first retry; doubled each time
    preflight: bool = True  # refuse to start while sessions would block us or be blocked
    wait_for_clear: float | None = None  # instead of refusing, wait up to this many seconds
    long_transaction_seconds: float = 60.0  # a transaction older than this blocks the pre-flight
    allow_pooler: bool = False  # accept a connection through a (session-pooling) proxy
    lock_wait: float = 600.0  # seconds to wait for the migration lock while another run holds it


class Settings(NamedTuple):
    database_url: str | None  # None: the embedded local cluster
    migrations_dir: Path
    project: MappingProxyType | dict = MappingProxyType({})  # [tool.mercurio-migrate] of pyproject.toml
    safety: Safety = Safety()


def _pyproject_section(start: Path) -> dict:
    path = start / "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}", hint="Re-save the file as UTF-8.") from None
    if "mercurio-migrate" not in text:  # no section of ours: not worth a TOML parser on every command
        return {}
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}", hint="Fix the file or remove [tool.mercurio-migrate].") from None
    section = data.get("tool", {}).get("mercurio-migrate", {})
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [tool.mercurio-migrate] must be a table")
    return section


_SAFETY_SOURCES: dict[str, tuple[str, type]] = {
    "lock_timeout": ("MERCURIO_LOCK_TIMEOUT", str),
    "statement_timeout": ("MERCURIO_STATEMENT_TIMEOUT", str),
    "lock_retries": ("MERCURIO_LOCK_RETRIES", int),
    "retry_backoff": ("MERCURIO_RETRY_BACKOFF", float),
    "preflight": ("MERCURIO_PREFLIGHT", bool),
    "wait_for_clear": ("MERCURIO_WAIT_FOR_CLEAR", float),
    "long_transaction_seconds": ("MERCURIO_LONG_TRANSACTION_SECONDS", float),
    "allow_pooler": ("MERCURIO_ALLOW_POOLER", bool),
    "lock_wait": ("MERCURIO_LOCK_WAIT", float),
}


def _convert(name: str, value: Any, kind: type, source: str) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        converted = kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: {name} = {value!r} is not a valid {kind.__name__}") from None
    if name.endswith("_timeout") and not _DURATION.match(str(converted).strip()):
        raise UsageError(f"{source}: {name} = {value!r} is not a PostgreSQL duration",
                         hint="Use e.g. 5s, 500ms, 2min, or 0 for no limit.")
    if kind in (int, float) and converted < 0:
        raise UsageError(f"{source}: {name} must not be negative")
    return converted


def _safety(project: dict, overrides: dict[str, Any]) -> Safety:
    values: dict[str, Any] = {}
    for name, (env, kind) in _SAFETY_SOURCES.items():
        if overrides.get(name) is not None:
            values[name] = _convert(name, overrides[name], kind, f"--{name.replace('_', '-')}")
        elif os.environ.get(env):
            values[name] = _convert(name, os.environ[env], kind, env)
        elif name in project:
            values[name] = _convert(name, project[name], kind, "[tool.mercurio-migrate] in pyproject.toml")
    return Safety(**values)


def resolve(database_url: str | None = None, migrations_dir: str | Path | None = None,
            cwd: Path | None = None, **safety_overrides: Any) -> Settings:
    cwd = cwd or Path.cwd()
    project = _pyproject_section(cwd)
    url = database_url or os.environ.get("DATABASE_URL") or None
    directory = (migrations_dir or os.environ.get("MERCURIO_MIGRATIONS_DIR")
                 or project.get("migrations_dir") or DEFAULT_DIR)
    path = Path(directory)
    if not path.is_absolute():
        path = cwd / path
    return Settings(database_url=url, migrations_dir=path, project=project,
                    safety=_safety(project, safety_overrides))
