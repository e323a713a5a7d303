"""Settings from flags, environment and pyproject.toml, resolved once per command.

Precedence: command-line flag, then environment variable, then ``[tool.mercurio-migrate]`` in the
working folder's pyproject.toml, then the default.

``profile`` (``MERCURIO_PROFILE``) switches on a product's own conventions on top of the generic tool; the one
profile is ``mercurio`` (docs/profile.md): Mercurio's house lint rules, the seed's ``migration_log``, the PII
keys and the ``preflight`` command. Without it, the tool is a generic PostgreSQL migration tool.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from mercurio_migrate.errors import UsageError
from mercurio_migrate.history import DEFAULT_HISTORY_TABLE, PROGRESS_SUFFIX

DEFAULT_DIR = "migrations"
MERCURIO = "mercurio"
PROFILES = (MERCURIO,)
NO_PROFILE = "none"  # says "no profile" where the pyproject names one (MERCURIO_PROFILE=none)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_MAX_IDENTIFIER = 63  # bytes: PostgreSQL truncates longer names
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
    profile: str | None = None  # "mercurio" or None (the generic tool)
    history_table: str = DEFAULT_HISTORY_TABLE  # schema.name, validated (history_table_name)

    @property
    def mercurio(self) -> bool:
        """Whether Mercurio's own conventions apply (the mercurio profile)."""
        return self.profile == MERCURIO


def _pyproject_section(start: Path) -> dict:
    """[tool.mercurio-migrate] of ``start``/pyproject.toml ({} when there is none)."""
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


def profile_name(project: dict, where: str) -> str | None:
    """The profile MERCURIO_PROFILE or the pyproject's ``profile`` names (None: no profile); ``where``: the
    pyproject.toml, for the message."""
    if os.environ.get("MERCURIO_PROFILE"):
        value, source = os.environ["MERCURIO_PROFILE"].strip(), "MERCURIO_PROFILE"
    elif "profile" in project:
        value, source = project["profile"], f"{where}: [tool.mercurio-migrate] profile"
    else:
        return None
    if value == NO_PROFILE:
        return None
    if value not in PROFILES:
        raise UsageError(f"{source} = {value!r} is not a known profile",
                         hint=f'Use profile = "{MERCURIO}" for Mercurio\'s conventions (docs/profile.md), or leave '
                              f'it out (or "{NO_PROFILE}") for the generic tool.')
    return value


def history_table_name(value: Any, source: str) -> str:
    """``schema.name`` (or ``name``, in public) of the history table, checked: lower-case identifiers that
    PostgreSQL reads as written, without quotes, and that leave room for the progress table's suffix."""
    if not isinstance(value, str):
        raise UsageError(f"{source} = {value!r} must be a string such as \"public.mercurio_migrations\"")
    parts = value.strip().split(".")
    if len(parts) == 1:
        parts.insert(0, "public")
    hint = ('Write "schema.table" (or "table", in public) with lower-case letters, digits and underscores, '
            'e.g. "ops.schema_history".')
    if len(parts) != 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise UsageError(f"{source} = {value!r} is not a table name of the form schema.table", hint=hint)
    from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

    for part in parts:
        if part in RESERVED_KEYWORDS or part in TYPE_FUNC_NAME_KEYWORDS:
            raise UsageError(f"{source} = {value!r}: {part!r} is an SQL keyword PostgreSQL does not take as a "
                             "name without quotes", hint=hint)
    schema, name = parts
    if len(schema) > _MAX_IDENTIFIER or len(name) + len(PROGRESS_SUFFIX) > _MAX_IDENTIFIER:
        raise UsageError(f"{source} = {value!r} is too long: a schema name has at most {_MAX_IDENTIFIER} "
                         f"characters, a table name at most {_MAX_IDENTIFIER - len(PROGRESS_SUFFIX)} (its "
                         f"progress table is named {name}{PROGRESS_SUFFIX})", hint=hint)
    return f"{schema}.{name}"


def resolve(database_url: str | None = None, migrations_dir: str | Path | None = None,
            cwd: Path | None = None, **safety_overrides: Any) -> Settings:
    cwd = cwd or Path.cwd()
    project = _pyproject_section(cwd)
    where = str(cwd / "pyproject.toml")
    profile = profile_name(project, where)
    history_table = DEFAULT_HISTORY_TABLE
    if os.environ.get("MERCURIO_HISTORY_TABLE"):
        history_table = history_table_name(os.environ["MERCURIO_HISTORY_TABLE"], "MERCURIO_HISTORY_TABLE")
    elif "history_table" in project:
        history_table = history_table_name(project["history_table"],
                                           f"{where}: [tool.mercurio-migrate] history_table")
    url = database_url or os.environ.get("DATABASE_URL") or None
    directory = (migrations_dir or os.environ.get("MERCURIO_MIGRATIONS_DIR")
                 or project.get("migrations_dir") or DEFAULT_DIR)
    path = Path(directory)
    if not path.is_absolute():
        path = cwd / path
    return Settings(database_url=url, migrations_dir=path, project=project,
                    safety=_safety(project, safety_overrides), profile=profile, history_table=history_table)
