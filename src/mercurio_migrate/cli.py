"""Command line: parses arguments, calls the engine, prints. No SQL and no business rules here.

Exit codes: 0 success; 1 the operation failed; 2 bad usage, configuration or layout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mercurio_migrate import __version__


class Context:
    def __init__(self, database_url: str | None, directory: str | None, as_json: bool):
        self.database_url = database_url
        self.directory = directory
        self.as_json = as_json
        self.safety_overrides: dict = {}

    def settings(self):
        from mercurio_migrate import config

        return config.resolve(self.database_url, self.directory, **self.safety_overrides)

    def engine(self):
        from mercurio_migrate.engine import Engine

        return Engine(self.settings(), on_event=self.on_event)

    @property
    def api(self):
        """The public API (mercurio_migrate.api), which every command calls."""
        from mercurio_migrate import api

        return api

    def on_event(self, event) -> None:
        from mercurio_migrate.output import message

        if event.kind == "statement" and not self.verbose_statements:
            return
        message(event.message, event.kind)

    @property
    def verbose_statements(self) -> bool:
        from mercurio_migrate.output import is_terminal

        return is_terminal(sys.stderr) or bool(os.environ.get("MERCURIO_VERBOSE"))


pass_context = click.make_pass_decorator(Context)


class LazyGroup(click.Group):
    """Subcommands that live in their own modules are imported only when run (fast start-up, fast --help)."""

    lazy_commands = {
        "verify": ("mercurio_migrate.commands.verify:verify", "Prove every rollback on a scratch database."),
        "drift": ("mercurio_migrate.commands.verify:drift", "Compare the live schema with what the migrations build."),
        "dump": ("mercurio_migrate.commands.verify:dump", "Write the migrated schema as canonical DDL."),
        "lint": ("mercurio_migrate.commands.lint:lint", "Check migrations against the guidelines and lock safety."),
        "explain": ("mercurio_migrate.commands.indexes:explain", "Check that queries in plans.sql use their index."),
        "indexes": ("mercurio_migrate.commands.indexes:indexes", "Index usage; unused, duplicate, redundant, INVALID indexes."),
        "preflight": ("mercurio_migrate.commands.preflight:preflight", "Data-quality report before the legacy migration (mercurio profile)."),
    }

    def _load(self, name: str):
        import importlib

        module, attribute = self.lazy_commands[name][0].split(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            return None

    def _installed(self) -> list[str]:
        import importlib.util

        names = []
        for name, (target, _) in self.lazy_commands.items():
            try:
                if importlib.util.find_spec(target.split(":")[0]) is not None:
                    names.append(name)
            except ModuleNotFoundError:
                continue
        return names

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._installed()))

    def get_command(self, ctx: click.Context, name: str):
        if name in self.commands:
            return self.commands[name]
        return self._load(name) if name in self.lazy_commands else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit=formatter.width - 20)))
            else:
                rows.append((name, self.lazy_commands[name][1]))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--database-url", envvar="DATABASE_URL", show_envvar=True, metavar="URL",
              help="PostgreSQL to migrate (libpq URI). Default: the embedded local server in .mercurio/.")
@click.option("--dir", "directory", envvar="MERCURIO_MIGRATIONS_DIR", show_envvar=True, metavar="PATH",
              help="Migrations folder. Default: ./migrations.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document on stdout.")
@click.version_option(__version__, prog_name="mercurio-migrate")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, directory: str | None, as_json: bool) -> None:
    """SQL-first PostgreSQL migrations in Mercurio's format."""
    global _database_url
    _database_url = database_url
    ctx.obj = Context(database_url, directory, as_json)


_database_url: str | None = None  # the command's, for _report to scrub its password from any message


# --- status, log ------------------------------------------------------------------------------------
@cli.command()
@pass_context
def status(obj: Context) -> None:
    """Every migration: version, name, state, applied_at, duration, purpose."""
    states = obj.api.status(obj.settings(), on_event=obj.on_event)
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json({"migrations": [
            {"version": s.version, "name": s.name, "state": s.state,
             "applied_at": s.applied_at.isoformat() if s.applied_at else None, "checksum": s.checksum,
             "purpose": s.purpose, "execution_ms": s.execution_ms, "records_processed": s.records_processed,
             "drifted_files": list(s.drifted_files), "header": s.header, "partial": s.partial}
            for s in states]})
        return
    from mercurio_migrate.output import table

    rows = [[s.version, s.name, s.state + (f" ({', '.join(s.drifted_files)})" if s.drifted_files else ""),
             s.applied_at.strftime("%Y-%m-%d %H:%M:%S%z") if s.applied_at else "",
             f"{s.execution_ms:.1f} ms" if s.execution_ms is not None else "", s.purpose] for s in states]
    if not rows:
        print("no migrations found")
        return
    table(["version", "name", "state", "applied_at", "duration", "purpose"], rows)
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    for s in states:
        if s.partial:
            print(f"{s.version}_{s.name}: {s.partial}")


@cli.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Newest rows to show.")
@pass_context
def log(obj: Context, limit: int) -> None:
    """Rows of migration_log, newest first."""
    rows = obj.api.log(obj.settings(), limit)
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json({"log": rows})
        return
    from mercurio_migrate.output import table

    if not rows:
        print("migration_log is empty")
        return
    table(["completed_at", "migration_name", "records_processed", "notes"],
          [[r["completed_at"], r["migration_name"], r["records_processed"], r["notes"]] for r in rows])


# --- up, down, resolve --------------------------------------------------------------------------------
def _print_run(obj: Context, result) -> None:
    key = "applied" if result.direction == "up" else "rolled_back"
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        if result.dry_run:
            emit_json({"dry_run": True, "plan": [p.as_dict() for p in result.plan]})
        else:
            document = {key: [s.as_dict() for s in result.steps]}
            if result.validation is not None:
                document["validation"] = result.validation.as_dict()
            if result.validation_each:
                document["validation_each"] = [{"version": v, **r.as_dict()} for v, r in result.validation_each]
            emit_json(document)
        return
    from mercurio_migrate.output import table

    if result.dry_run:
        if not result.plan:
            print("nothing to do")
        for step in result.plan:
            print(f"{step.version}_{step.name}  [{step.mode}]  {step.file}")
            for statement in step.statements:
                print("    " + statement.replace("\n", "\n    ") + ";")
        return
    if not result.steps:
        print("nothing to do: the database is up to date" if result.direction == "up" else "nothing to roll back")
        return
    verb = "applied" if result.direction == "up" else "rolled back"
    table(["version", "name", "mode", "duration", "records"],
          [[s.version, s.name, s.mode, f"{s.duration_ms:.1f} ms", s.records_processed] for s in result.steps],
          title=f"{verb} {len(result.steps)} migration(s)")
    if result.validation_each or result.validation is not None:
        from mercurio_migrate.validation import render

        for version, report in result.validation_each:
            print(f"\nchanges by {version}:\n" + render(report))
        if result.validation is not None:
            print("\nchanges by this run:\n" + render(result.validation))


def _check_writable(path: Path, option: str) -> None:
    """Before anything runs: an output file can be written where it is asked for."""
    from mercurio_migrate.errors import UsageError

    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; nothing was run", hint="Give a file path.")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {parent} does not exist; nothing was run",
                         hint="Create the folder first, or write the file elsewhere.")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable; nothing was run", hint="Write the file elsewhere.")


def safety_options(command):
    """Lock and timeout flags shared by `up` and `down` (defaults from env or pyproject.toml)."""
    options = [
        click.option("--lock-timeout", metavar="DURATION",
                     help="Longest wait for a table lock per statement, e.g. 5s (default 5s; 0 = forever)."),
        click.option("--statement-timeout", metavar="DURATION", help="Longest run of one statement (default 0 = none)."),
        click.option("--lock-retries", type=click.IntRange(min=0), metavar="N",
                     help="Retries of a migration that hit the lock timeout, with doubling backoff (default 3)."),
        click.option("--wait-for-clear", type=click.FloatRange(min=0), metavar="SECONDS",
                     help="When sessions would block us, wait up to SECONDS for them instead of refusing."),
        click.option("--no-preflight", "preflight", flag_value=False, default=None,
                     help="Skip the check for long or idle-in-transaction sessions and waiting locks."),
        click.option("--lock-wait", type=click.FloatRange(min=0), metavar="SECONDS",
                     help="Longest wait for the migration lock while another run holds it (default 600)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _take_safety(obj: Context, kwargs: dict) -> None:
    for key in ("lock_timeout", "statement_timeout", "lock_retries", "wait_for_clear", "preflight", "lock_wait"):
        obj.safety_overrides[key] = kwargs.pop(key, None)


@cli.command()
@click.option("--to", "to", metavar="VERSION", help="Apply pending migrations up to and including VERSION.")
@click.option("--dry-run", is_flag=True, help="Print the plan (migrations, transaction modes, statements); change nothing.")
@click.option("--allow-drift", is_flag=True, help="Run even if applied migration files changed since they ran.")
@click.option("--validate-each", is_flag=True,
              help="Report schema and row-count changes around every migration, not only the whole run.")
@click.option("--no-validate", is_flag=True, help="Skip the before/after schema and row-count report.")
@click.option("--dump", "dump_path", type=click.Path(dir_okay=False, writable=True, path_type=Path), metavar="FILE",
              help="After applying, write the database's schema as canonical DDL to FILE (as `dump --live`).")
@safety_options
@pass_context
def up(obj: Context, to: str | None, dry_run: bool, allow_drift: bool, validate_each: bool, no_validate: bool,
       dump_path: Path | None, **safety) -> None:
    """Apply pending migrations in order."""
    _take_safety(obj, safety)
    if dump_path is not None and not dry_run:
        _check_writable(dump_path, "--dump")
    result = obj.api.up(obj.settings(), on_event=obj.on_event, to=to, dry_run=dry_run, allow_drift=allow_drift, validate=not no_validate,
                             validate_each=validate_each, dump=dump_path is not None and not dry_run)
    if result.schema_sql is not None:
        dump_path.write_text(result.schema_sql, encoding="utf-8")
        if not obj.as_json:
            from mercurio_migrate.output import message

            message(f"wrote {dump_path} ({result.schema_sql.count(chr(10))} lines)")
    _print_run(obj, result)


@cli.command()
@click.option("--steps", type=int, metavar="N", help="Roll back the newest N applied migrations (default 1).")
@click.option("--to", "to", metavar="VERSION", help="Roll back every migration newer than VERSION.")
@click.option("--all", "all_", is_flag=True, help="Roll back every applied migration.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--allow-drift", is_flag=True, help="Run even if applied migration files changed since they ran.")
@safety_options
@pass_context
def down(obj: Context, steps: int | None, to: str | None, all_: bool, dry_run: bool, allow_drift: bool,
         **safety) -> None:
    """Roll back applied migrations, newest first, with their rollback.sql."""
    _take_safety(obj, safety)
    if sum(x is not None and x is not False for x in (steps, to, all_ or None)) > 1:
        raise click.UsageError("give only one of --steps, --to and --all")
    _print_run(obj, obj.api.down(obj.settings(), steps=steps, to=to, all=all_, dry_run=dry_run,
                                 allow_drift=allow_drift, on_event=obj.on_event))


@cli.command()
@click.argument("version")
@click.option("--applied", is_flag=True, help="Record VERSION as applied (with today's checksums).")
@click.option("--rolled-back", is_flag=True, help="Remove VERSION from the history.")
@pass_context
def resolve(obj: Context, version: str, applied: bool, rolled_back: bool) -> None:
    """Mark a migration applied or rolled back without running it."""
    if applied == rolled_back:
        raise click.UsageError("give --applied or --rolled-back" if not applied else
                               "give only one of --applied and --rolled-back: they say opposite things")
    state = obj.api.resolve(obj.settings(), version, applied=applied, on_event=obj.on_event)
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json({"resolved": {"version": state.version, "name": state.name, "state": state.state}})
    else:
        print(f"{state.version} {state.name}: {state.state}")


# --- new ------------------------------------------------------------------------------------------------
@cli.command()
@click.argument("name")
@pass_context
def new(obj: Context, name: str) -> None:
    """Create <UTC now>_<NAME>/ with migration.sql and rollback.sql from templates."""
    from mercurio_migrate.scaffold import create

    folder = create(obj.settings().migrations_dir, name)
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json({"created": str(folder)})
    else:
        print(f"created {folder}/migration.sql and rollback.sql")


# --- db -------------------------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """The embedded local PostgreSQL server (in .mercurio/)."""


def _db_report(obj: Context, data: dict) -> None:
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json(data)
    else:
        for key, value in data.items():
            print(f"{key}: {value}")


@db.command("start")
@pass_context
def db_start(obj: Context) -> None:
    """Create (first time) and start the local server."""
    from mercurio_migrate.embedded import local_cluster

    cluster = local_cluster()
    cluster.ensure_running()
    _db_report(obj, cluster.status())


@db.command("stop")
@pass_context
def db_stop(obj: Context) -> None:
    """Stop the local server."""
    from mercurio_migrate.embedded import local_cluster

    stopped = local_cluster().stop()
    _db_report(obj, {"stopped": stopped} if obj.as_json else {"server": "stopped" if stopped else "was not running"})


@db.command("status")
@pass_context
def db_status(obj: Context) -> None:
    """Whether the local server exists and runs."""
    from mercurio_migrate.embedded import local_cluster

    _db_report(obj, local_cluster().status())


@db.command("url")
@pass_context
def db_url(obj: Context) -> None:
    """Print the local server's libpq URI (starting it if needed)."""
    from mercurio_migrate.embedded import local_cluster

    url = local_cluster().ensure_running()
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json({"url": url})
    else:
        print(url)


# --- entry point ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    as_json = "--json" in (argv if argv is not None else sys.argv[1:])
    try:
        # without standalone mode, click returns the code a command passed to ctx.exit()
        returned = cli.main(args=argv, prog_name="mercurio-migrate", standalone_mode=False)
        if isinstance(returned, int) and returned:
            sys.exit(returned)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("interrupted", 130, as_json)
    except click.ClickException as exc:
        if as_json:
            from mercurio_migrate.output import emit_json

            emit_json({"error": {"type": "UsageError", "message": exc.format_message(), "exit_code": 2}})
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        _fail("interrupted; any migration in progress was rolled back by the server", 130, as_json)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message and an exit code
        _report(exc, as_json)
    sys.exit(0)


def _report(exc: Exception, as_json: bool) -> None:
    from mercurio_migrate.errors import MercurioError

    if not isinstance(exc, MercurioError):
        exc = _translate(exc)
    from mercurio_migrate.output import emit_json, message

    hide = _scrubber()
    if as_json:
        emit_json({"error": hide(exc.as_dict())})
    message(hide(exc.message), "error")
    if exc.hint:
        message(f"hint: {hide(exc.hint)}")
    sys.exit(exc.exit_code)


def _scrubber():
    """Removes the database URL's password, in every form it takes, from a message or a JSON document: the
    last net under every failure (each path already redacts what it knows to be a URL)."""
    url = _database_url or os.environ.get("DATABASE_URL")
    if not url:
        return lambda value: value
    from mercurio_migrate.redact import scrub, secrets_of

    secrets = secrets_of(url)

    def hide(value):
        if isinstance(value, str):
            return scrub(value, *secrets)
        if isinstance(value, dict):
            return {key: hide(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [hide(item) for item in value]
        return value

    return hide


def _translate(exc: Exception):
    """Failures that are not ours: the server going away, a file we cannot read, or a bug."""
    from mercurio_migrate.errors import ConnectionFailed, MercurioError

    module = type(exc).__module__ or ""
    if module.startswith("psycopg"):  # the server or the connection
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ConnectionFailed(f"database error: {text}",
                                hint="The connection may have been lost; nothing unfinished was recorded as applied. "
                                     "Run the command again.")
    if isinstance(exc, OSError):
        return MercurioError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
                             hint="Check the path and its permissions.")
    if os.environ.get("MERCURIO_DEBUG"):
        raise exc
    return MercurioError(f"internal error ({type(exc).__name__}: {exc})",
                         hint="This is a bug in mercurio-migrate; rerun with MERCURIO_DEBUG=1 for a traceback "
                              "and report it.")


def _fail(text: str, code: int, as_json: bool) -> None:
    from mercurio_migrate.output import emit_json, message

    if as_json:
        emit_json({"error": {"type": "Interrupted", "message": text, "exit_code": code}})
    message(text, "error")
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
