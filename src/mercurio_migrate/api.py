"""The public Python API: every command of the CLI as a function that returns data and prints nothing.

    from mercurio_migrate import api

    project = api.project("migrations", database_url="postgresql://app@db/app")
    result = api.up(project)
    for step in result.steps:
        print(step.version, step.duration_ms)

Every function takes a ``Settings`` (``api.project(...)`` builds one the way the CLI does: flags given
here, then the environment, then ``[tool.mercurio-migrate]`` in ``pyproject.toml``) and returns the same
records the CLI renders as text or JSON. Failures raise ``MercurioError`` subclasses (``exit_code`` says
what the CLI would exit with); none is caught here. ``on_event`` receives progress and warnings as
``Event(kind, message, data)`` — the CLI prints them; by default they are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercurio_migrate.config import Settings
from mercurio_migrate.engine import Engine, Event, MigrationState, RunResult
from mercurio_migrate.errors import MercurioError

if TYPE_CHECKING:
    from mercurio_migrate.drift import DriftReport
    from mercurio_migrate.lint import LintResult
    from mercurio_migrate.verify import VerifyReport

__all__ = ["Event", "MercurioError", "MigrationState", "RunResult", "Settings", "down", "drift", "dump", "lint",
           "log", "project", "resolve", "status", "up", "verify"]

OnEvent = Callable[[Event], None]


def project(migrations_dir: str | Path | None = None, *, database_url: str | None = None,
            cwd: str | Path | None = None, **safety: Any) -> Settings:
    """The settings of a project: ``migrations_dir`` (default ``./migrations`` or pyproject's
    ``migrations_dir``), ``database_url`` (default ``DATABASE_URL``, else the embedded local server), and
    the lock and timeout settings of `up`/`down` by name (``lock_timeout="5s"``, ``lock_retries=3``,
    ``lock_wait=600``, ``preflight=False``, …). ``cwd``: where pyproject.toml and relative paths are read
    (default: the current folder)."""
    from mercurio_migrate import config

    return config.resolve(database_url, migrations_dir, cwd=Path(cwd) if cwd is not None else None, **safety)


def _engine(settings: Settings, on_event: OnEvent | None) -> Engine:
    return Engine(settings, on_event=on_event)


def status(settings: Settings, *, on_event: OnEvent | None = None) -> list[MigrationState]:
    """Every migration on disk or in the history, oldest first, with its state: ``applied``, ``pending``,
    ``partial`` (an interrupted statement-by-statement run committed part of it), ``drifted``, ``missing``."""
    return _engine(settings, on_event).status()


def up(settings: Settings, *, to: str | None = None, dry_run: bool = False, allow_drift: bool = False,
       validate: bool = True, validate_each: bool = False, dump: bool = False,
       on_event: OnEvent | None = None) -> RunResult:
    """Apply pending migrations in order (up to and including ``to``). ``dry_run``: the plan only.
    ``validate``: the before/after schema and row-count report (``result.validation``); ``dump``: the
    migrated schema as canonical DDL (``result.schema_sql``)."""
    return _engine(settings, on_event).up(to=to, dry_run=dry_run, allow_drift=allow_drift, validate=validate,
                                          validate_each=validate_each, dump=dump)


def down(settings: Settings, *, steps: int | None = None, to: str | None = None, all: bool = False,  # noqa: A002
         dry_run: bool = False, allow_drift: bool = False, on_event: OnEvent | None = None) -> RunResult:
    """Roll back applied migrations newest first: ``steps`` of them (default 1), those newer than ``to``, or
    ``all``."""
    given = sum(x is not None and x is not False for x in (steps, to, all or None))
    if given > 1:
        from mercurio_migrate.errors import UsageError

        raise UsageError("give only one of steps, to and all")
    return _engine(settings, on_event).down(steps=steps, to=to, all_=all, dry_run=dry_run, allow_drift=allow_drift)


def resolve(settings: Settings, version: str, *, applied: bool, on_event: OnEvent | None = None) -> MigrationState:
    """Record ``version`` as applied (``applied=True``; on an applied one: today's checksums) or rolled back,
    without running it."""
    return _engine(settings, on_event).resolve(version, applied=applied)


def log(settings: Settings, limit: int = 50) -> list[dict]:
    """The newest rows of migration_log (mercurio profile; without it, UsageError: there is none)."""
    return _engine(settings, None).log(limit)


def verify(settings: Settings, *, to: str | None = None, start: str | None = None, data: bool = False,
           strict: bool = False, keep: bool = False) -> VerifyReport:
    """Apply, roll back and re-apply every migration (from ``start``, up to ``to``) in a scratch database
    on the target's server, comparing the catalog each time; the target is never written. ``report.ok``
    is False when any error was found."""
    from mercurio_migrate.verify import verify as run

    return run(_engine(settings, None), to=to, start=start, data=data, strict=strict, keep=keep)


def drift(settings: Settings) -> DriftReport:
    """The target's schema against a scratch database migrated to the versions the target has applied."""
    from mercurio_migrate.drift import drift as run

    return run(_engine(settings, None))


def dump(settings: Settings, *, to: str | None = None, live: bool = False) -> tuple[str, list[str]]:
    """(canonical DDL of the schema the migrations build — or of the target itself with ``live`` —, warnings)."""
    from mercurio_migrate.drift import dump as run

    return run(_engine(settings, None), to=to, live=live)


def lint(settings: Settings, paths: Iterable[str | Path] | None = None, *, select: str | None = None,
         ignore: str | None = None) -> LintResult:
    """Lint migration folders or SQL files (default: the project's migrations folder) with the rules the
    project's configuration selects (``select`` / ``ignore``: comma-separated rule ids on top of it)."""
    from mercurio_migrate.lint import lint_paths, load_config

    config = load_config(dict(settings.project), select=select, ignore=ignore, profile=settings.profile)
    return lint_paths([Path(p) for p in paths] if paths else [settings.migrations_dir], config)
