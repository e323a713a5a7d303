"""Plan, apply and roll back migrations under an advisory lock. Returns result objects; prints nothing.

The engine reads the files and the history, decides what runs (refusing drift, renamed folders, files that
cannot run), takes the migration lock, and hands the migrations to the executor (executor.py), which runs
them on the command's one connection. Progress and warnings are reported through ``on_event(Event)``; the
CLI decides how to show them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mercurio_migrate import faults, history, locks, migration_lock, planner
from mercurio_migrate.config import Settings
from mercurio_migrate.database import connect, in_failed_or_open_transaction, literal, send_script
from mercurio_migrate.errors import LockTimeout, MercurioError, SqlError, UsageError
from mercurio_migrate.executor import HINTS, Event, Executor, Progress, StepResult, sql_error
from mercurio_migrate.layout import Migration, MigrationSet, SqlFile, discover
from mercurio_migrate.planner import (
    APPLIED,
    DRIFTED,
    MISSING,
    PARTIAL,
    PENDING,
    MigrationState,
    PlannedStep,
    RunResult,
)
from mercurio_migrate.sqlscript import Script, parse

__all__ = ["APPLIED", "DRIFTED", "Engine", "Event", "MISSING", "MigrationState", "PARTIAL", "PENDING", "PlannedStep",
           "RunResult", "StepResult", "run_or_raise", "run_unrecorded"]

# migrations after which the validation report's snapshot is planned again (see snapshot.take's replan):
# benchmarks/snapshot_plan.py measures both ways
REPLAN_AFTER = 500


class Engine:
    def __init__(self, settings: Settings, on_event: Callable[[Event], None] | None = None):
        self.settings = settings
        self._on_event = on_event or (lambda event: None)
        self._extra_options: dict[str, str] = {}
        self._options_used: dict[str, str] = {}
        self.store = history.HistoryStore.for_settings(settings)
        # migration_log (mercurio profile only; None: no migration_log row is written), schema-qualified once
        # the connection has seen it
        self._log_table = history.MIGRATION_LOG_TABLE if settings.mercurio else None
        self._tables: tuple[bool, bool, bool] | None = None  # (history, migration_log, progress) as last read
        self._verify_scripts: dict[str, Script] = {}
        self._parsed: dict[tuple[str, str], Script] = {}  # (path, text): a file parsed once per command
        self._locked: object | None = None  # the connection holding the migration lock, while it does

    # --- plumbing ---------------------------------------------------------------------------------
    def emit(self, kind: str, message: str, **data) -> None:
        self._on_event(Event(kind, message, data))

    def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        from mercurio_migrate.embedded import local_cluster

        return local_cluster().ensure_running()

    def migrations(self) -> MigrationSet:
        found = discover(self.settings.migrations_dir)
        for warning in found.warnings:
            self.emit("warning", str(warning), path=warning.path)
        return found

    def connection_options(self) -> dict[str, str]:
        """Session settings sent at connection start (never as SET statements, which a server may log), so
        `RESET ALL` after each migration keeps them. With the mercurio profile, PII keys ride along when the
        environment (or, on the embedded default, its development keys file) has them."""
        safety = self.settings.safety
        options = {"lock_timeout": safety.lock_timeout, "statement_timeout": safety.statement_timeout}
        if not self.settings.mercurio:
            return options | self._extra_options
        from mercurio_migrate import keys

        for env_name, setting in keys.SETTING_FOR_ENV.items():
            value = os.environ.get(env_name) if self.settings.database_url else keys.lookup(env_name)
            if value:
                options[setting] = value
        options.update(self._extra_options)
        return options

    def _require_keys(self, conn, scripts: list[Script]) -> None:
        """Before anything runs: the PII keys these scripts need are in the session, or we say what is missing
        (mercurio profile only)."""
        if not self.settings.mercurio:
            return
        from mercurio_migrate import keys

        needed = keys.session_settings(self.settings, scripts)
        for text in needed.messages:
            self.emit("warning", text)
        missing = {k: v for k, v in needed.items() if self._options_used.get(k) != v}
        if missing:
            self._extra_options.update(missing)
            raise _Reconnect()

    @contextmanager
    def session(self, *, lock: bool) -> Iterator[object]:
        self._options_used = self.connection_options()
        conn = connect(self.database_url(), options=self._options_used)
        try:
            if lock:
                migration_lock.acquire(conn, self.settings.safety, self.emit)
                self._locked = conn
            faults.point(conn, "locked")
            yield conn
        finally:
            self._locked = None
            try:
                if not conn.closed:
                    if in_failed_or_open_transaction(conn):
                        conn.execute("ROLLBACK")
                    if lock:
                        migration_lock.release(conn)
            except Exception:  # noqa: BLE001 - the connection is gone; the server released the lock with it
                pass
            finally:
                conn.close()

    def preflight(self, conn) -> list[locks.Session]:
        """Refuse (or wait) while other sessions would block our DDL or be blocked by it."""
        safety = self.settings.safety
        found = locks.blockers(conn, safety.long_transaction_seconds)
        if not found:
            return []
        if safety.wait_for_clear:
            deadline = time.monotonic() + safety.wait_for_clear
            self.emit("lock_wait", f"waiting up to {safety.wait_for_clear:g} s for {len(found)} session(s) to "
                                   "clear:\n  " + "\n  ".join(s.describe() for s in found))
            while found and time.monotonic() < deadline:
                time.sleep(0.25)
                found = locks.blockers(conn, safety.long_transaction_seconds)
            if not found:
                return []
        raise LockTimeout(
            f"{len(found)} session(s) would block the migration or be blocked by it:\n  "
            + "\n  ".join(s.describe() for s in found),
            hint="Let them finish or end them (SELECT pg_terminate_backend(pid)), wait with --wait-for-clear SECONDS, "
                 "or skip this check with --no-preflight.")

    # --- state ------------------------------------------------------------------------------------
    def _tables_exist(self, conn) -> tuple[bool, bool, bool]:
        has_history, log_table, has_progress = conn.execute(self.store.tables_exist_sql).fetchone()
        if self.store.migration_log:
            self._log_table = log_table or history.MIGRATION_LOG_TABLE
        self._tables = (has_history, log_table is not None, has_progress)
        return self._tables

    def ensure_tables(self, conn, known: tuple[bool, bool, bool] | None = None) -> None:
        """Create the history table (and, with the mercurio profile, migration_log) if absent (call under the
        migration lock). ``known``: what ``_tables_exist`` said on this connection under the same lock."""
        # the progress table comes when a statement-by-statement migration first runs (Executor)
        ddl = self.store.missing_tables_ddl(*(known or self._tables_exist(conn))[:2])
        if ddl:
            run_or_raise(conn, f"BEGIN;{ddl}COMMIT;", "creating mercurio-migrate's tables")
            self._tables_exist(conn)

    def read_history(self, conn) -> dict[str, history.HistoryRow]:
        tables = self._tables_exist(conn)
        if not tables[0]:
            return {}
        rows = conn.execute(self.store.select_history_sql).fetchall()
        return {row[0]: history.HistoryRow(*row[:5], float(row[5]), *row[6:]) for row in rows}

    def read_progress(self, conn) -> dict[str, list[Progress]]:
        """Statement progress of unfinished statement-by-statement migrations, by version (read after
        read_history on the same connection)."""
        if not (self._tables or self._tables_exist(conn))[2]:
            return {}
        found: dict[str, list[Progress]] = {}
        for row in conn.execute(self.store.select_progress_sql).fetchall():
            found.setdefault(row[0], []).append(Progress(*row))
        return found

    def status(self) -> list[MigrationState]:
        found = self.migrations()
        with self.session(lock=False) as conn:
            applied = self.read_history(conn)
            progress = self.read_progress(conn)
        return planner.compute_states(found, applied, progress=progress)

    def log(self, limit: int = 50) -> list[dict]:
        if not self.store.migration_log:
            raise UsageError("there is no migration_log: the tool keeps one only with the mercurio profile",
                             hint="`status` shows the history of this project. For Mercurio's migration_log, set "
                                  'profile = "mercurio" under [tool.mercurio-migrate] in pyproject.toml '
                                  "(docs/profile.md).")
        with self.session(lock=False) as conn:
            if not self._tables_exist(conn)[1]:
                return []
            rows = conn.execute(self.store.select_log_sql(self._log_table), (limit,)).fetchall()
        return [
            {"migration_name": r[0], "records_processed": r[1], "completed_at": r[2].isoformat() if r[2] else None,
             "notes": r[3]}
            for r in rows
        ]

    def parse_all(self, files: list[tuple[Migration, SqlFile]]) -> list[Script]:
        """planner.parse_files, each file parsed once per command."""
        return planner.parse_files(files, self._parsed)

    def _warn(self, warnings: list[str]) -> None:
        for text in warnings:
            self.emit("warning", text)

    # --- commands ---------------------------------------------------------------------------------
    def up(self, **kwargs) -> RunResult:
        """Apply pending migrations (``to``, ``dry_run``, ``allow_drift``, ``validate``, ``validate_each``,
        ``dump``)."""
        try:
            return self._up(**kwargs)
        except _Reconnect:  # keys generated for the embedded server: the session must carry them from the start
            return self._up(**kwargs)

    def down(self, **kwargs) -> RunResult:
        """Roll back (``steps`` | ``to`` | ``all_``, ``dry_run``, ``allow_drift``)."""
        try:
            return self._down(**kwargs)
        except _Reconnect:
            return self._down(**kwargs)

    def _up(self, *, to: str | None = None, dry_run: bool = False, allow_drift: bool = False,
            validate: bool = True, validate_each: bool = False, dump: bool = False) -> RunResult:
        found = self.migrations()
        with self.session(lock=not dry_run) as conn:
            applied = self.read_history(conn)
            self._warn(planner.check_changes(found, applied, allow_drift))
            pending = planner.pending(found, applied, to)
            self._warn(planner.out_of_order(pending, applied))
            scripts = self.parse_all([(m, m.migration) for m in pending])
            plan = tuple(planner.plan_entry(m, s) for m, s in zip(pending, scripts))
            if dry_run:
                return RunResult("up", (), plan, True)
            self._require_keys(conn, scripts)
            self.parse_verify_scripts(pending)
            if not pending:
                return RunResult("up", (), plan, False, schema_sql=self._schema_sql(conn) if dump else None)
            if self.settings.safety.preflight:
                self.preflight(conn)
            self.ensure_tables(conn, self._tables)
            from mercurio_migrate import validation

            first = last = self._capture(conn) if (validate or validate_each) else None
            items = list(zip(pending, scripts))
            each = []
            if validate_each:
                steps = []
                for index in range(len(items)):
                    steps += self.run_steps(conn, items[index:index + 1], "up")
                    current = self._capture(conn)
                    each.append((items[index][0].version, validation.compare(last, current)))
                    last = current
            else:
                steps = self.run_steps(conn, items, "up")
            report = schema_sql = None
            if first is not None:
                # a partial capture (new relations only named) serves the report; --dump needs the whole schema
                final = last if validate_each else self._capture(
                    conn, since=None if dump else first, replan=len(steps) >= REPLAN_AFTER)
                report = validation.compare(first, final)
                if dump:
                    schema_sql = self._schema_sql(conn, final.schema)
            elif dump:
                schema_sql = self._schema_sql(conn)
        return RunResult("up", tuple(steps), plan, False, report, tuple(each), schema_sql)

    def _capture(self, conn, **kwargs):
        """validation.capture, saying which tables it could not count (locked by another session)."""
        from mercurio_migrate import validation

        captured = validation.capture(conn, exclude_tables=self.store.tool_tables, **kwargs)
        for table, reason in captured.uncounted.items():
            self.emit("warning", f"validation report: could not count the rows of {table} ({reason}); its count "
                                 "is left out", table=table)
        return captured

    def _schema_sql(self, conn, schema=None) -> str:
        from mercurio_migrate import snapshot

        return snapshot.to_sql(schema if schema is not None else snapshot.take(conn, exclude_tables=self.store.tool_tables))

    def _down(self, *, steps: int | None = None, to: str | None = None, all_: bool = False,
              dry_run: bool = False, allow_drift: bool = False) -> RunResult:
        count = 1 if steps is None else steps
        if count < 1 and not (all_ or to):
            raise UsageError("--steps must be at least 1")
        found = self.migrations()
        with self.session(lock=not dry_run) as conn:
            applied = self.read_history(conn)
            migrations, warnings = planner.rollback_choice(found, applied, count=count, to=to, all_=all_,
                                                           allow_drift=allow_drift)
            self._warn(warnings)
            scripts = self.parse_all([(m, m.rollback) for m in migrations])
            plan = tuple(planner.plan_entry(m, s) for m, s in zip(migrations, scripts))
            if dry_run:
                return RunResult("down", (), plan, True)
            self._require_keys(conn, scripts)
            if migrations and self.settings.safety.preflight:
                self.preflight(conn)
            if migrations:
                self.ensure_tables(conn, self._tables)
            results = self.run_steps(conn, list(zip(migrations, scripts)), "down")
        return RunResult("down", tuple(results), plan, False)

    def resolve(self, version: str, *, applied: bool) -> MigrationState:
        found = self.migrations()
        with self.session(lock=True) as conn:
            history_rows = self.read_history(conn)
            version = planner.find_version(found, history_rows, version)
            migration = found.by_version().get(version)
            self.ensure_tables(conn)
            executor = self.executor(conn)
            if applied:
                if migration is None:
                    raise UsageError(f"{version}: no such folder on disk; cannot mark it applied")
                if version in history_rows:  # re-record today's checksums (after a deliberate edit)
                    finish = [self.store.update_checksums_sql().format(
                        version=literal(conn, version), name=literal(conn, migration.name),
                        checksum=literal(conn, migration.migration.checksum),
                        rollback_checksum=literal(conn, migration.rollback.checksum if migration.rollback else None)),
                        *self._log_sql(conn, migration.id, "checksums re-recorded by mercurio-migrate resolve (not run)")]
                else:
                    finish = executor.record_sql(migration, "up", 0, "resolved", duration_ms=0.0,
                                                 note="marked applied by mercurio-migrate resolve (not run)",
                                                 clear_progress=self._tables[2])
            else:
                progress = self.read_progress(conn).get(version)
                if version not in history_rows and not progress:
                    raise UsageError(f"{version} is not applied; nothing to mark rolled back")
                name = migration.name if migration else history_rows[version].name
                finish = [self.store.delete_applied_sql().format(version=literal(conn, version)),
                          *([self.store.clear_progress_sql().format(version=literal(conn, version))]
                            if self._tables[2] else []),
                          *self._log_sql(conn, f"{version}_{name}",
                                         "marked rolled back by mercurio-migrate resolve (not run)")]
            run_or_raise(conn, "BEGIN;\n" + ";\n".join(finish) + ";\nCOMMIT;", f"resolving {version}")
            states = planner.compute_states(found, self.read_history(conn), progress=self.read_progress(conn))
        return next(s for s in states if s.version == version) if any(s.version == version for s in states) else \
            MigrationState(version, "", "rolled back", None, None, "", "")

    def _log_sql(self, conn, migration_id: str, note: str) -> list[str]:
        """The migration_log row of a resolve ([] without the mercurio profile)."""
        if self._log_table is None:
            return []
        return [self.store.insert_log_sql(self._log_table).format(
            migration_name=literal(conn, migration_id), records="0", notes=literal(conn, note))]

    # --- execution --------------------------------------------------------------------------------
    def executor(self, conn) -> Executor:
        return Executor(conn, self.settings, self.emit, self.store, self._log_table, self._verify_script,
                        check_lock=conn is self._locked)

    def run_steps(self, conn, items: list[tuple[Migration, Script]], direction: str) -> list[StepResult]:
        """Run migrations in order on ``conn`` (under the migration lock, the tool's tables in place)."""
        return self.executor(conn).run_steps(items, direction)

    def run_one(self, conn, migration: Migration, script: Script, direction: str) -> StepResult:
        return self.executor(conn).run_one(migration, script, direction)

    def parse_verify_scripts(self, migrations: list[Migration]) -> None:
        """Parse the verify.sql of these migrations now, so that running them parses nothing between two
        migrations."""
        self._verify_scripts = {m.version: parse(f.text, f.path) for m in migrations if (f := m.extras.get("verify.sql"))}

    def _verify_script(self, migration: Migration) -> Script | None:
        if migration.version in self._verify_scripts:
            return self._verify_scripts[migration.version]
        if "verify.sql" in migration.extras:
            return parse(migration.extras["verify.sql"].text, migration.extras["verify.sql"].path)
        return None


def run_or_raise(conn, sql: str, what: str) -> None:
    """Run the tool's own SQL (one message); a failure is rolled back and reported as ``what failed: …``."""
    results = send_script(conn, sql)
    if results and not results[-1].ok:
        if in_failed_or_open_transaction(conn):
            conn.execute("ROLLBACK")
        error = results[-1].error
        raise MercurioError(f"{what} failed: {error.diag.message_primary or error}",
                            hint=error.diag.message_hint or HINTS.get(error.diag.sqlstate or ""))


def run_unrecorded(conn, script: Script) -> SqlError | None:
    """Run a file that is not a migration (fixture.sql): in one transaction when it allows it, else statement
    by statement; nothing is recorded. Returns the failure, located like a migration's, or None."""
    from mercurio_migrate.message import Message
    from mercurio_migrate.sqlscript import Mode

    body = script.body
    if not body:
        return None
    transactional = script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION)
    messages = []
    if transactional:
        message = Message()
        message.add(script.begin_statement)
        message.add_file_statements(body)
        message.add("COMMIT")
        messages.append(message)
    else:
        for statement in body:
            message = Message()
            message.add(statement.text, statement)
            messages.append(message)
    for message in messages:
        results = send_script(conn, message.sql)
        if results and results[-1].ok:
            continue
        if in_failed_or_open_transaction(conn):
            conn.execute("ROLLBACK")
        index = len(results) - 1
        error = results[-1].error
        statement = message.entries[index].statement
        return sql_error(script, statement, error, message.offset_in_statement(index, error.diag.statement_position))
    return None


class _Reconnect(Exception):
    """Internal: the session must be reopened with more settings (development keys just generated)."""
