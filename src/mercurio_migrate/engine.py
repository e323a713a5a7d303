"""Plan, apply and roll back migrations under an advisory lock. Returns result objects; prints nothing.

Progress and warnings are reported through ``on_event(Event)``; the CLI decides how to show them.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from mercurio_migrate import __version__, faults, history, locks
from mercurio_migrate.background import Background
from mercurio_migrate.config import Settings
from mercurio_migrate.database import (
    APPLICATION_NAME,
    BOOL_OID,
    client_host,
    connect,
    in_failed_or_open_transaction,
    libpq_options,
    literal,
    quoter,
    send_script,
)
from mercurio_migrate.errors import (
    ConnectionFailed,
    DriftError,
    LockTimeout,
    MercurioError,
    MigrationFailed,
    SqlError,
    UsageError,
)
from mercurio_migrate.layout import Migration, MigrationSet, SqlFile, discover
from mercurio_migrate.sqlscript import Mode, ParseAhead, Script, Statement, parse, relation_names

if TYPE_CHECKING:
    from mercurio_migrate import libpq

LOCK_NAMESPACE = 1296911687  # 'MMIG': first key of the advisory lock, the second is 0
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired
# the migration lock, tried, with what decides whether this server can be migrated (the port as text)
_LOCK_SQL = (f"SELECT pg_try_advisory_lock({LOCK_NAMESPACE}, 0), current_setting('port'), pg_is_in_recovery(), "
             "current_setting('transaction_read_only') = 'on'")
# migrations after which the validation report's snapshot is planned again (see snapshot.take's replan):
# benchmarks/snapshot_plan.py measures both ways at 200, 500 and 1,000 (a new plan lost at 200, won at 1,000)
REPLAN_AFTER = 500
# of the files `up` will most likely run through the quick path, the share (%) this process parses itself while
# the parse-ahead child parses the rest (the child starts first: this process still reads the history and
# takes the lock). Against 0 %, paired ad hoc on 2 cores: 0.96x the time at 1,000 migrations, no difference at 200.
PARENT_PARSE_SHARE = 40
# results of a transactional migration around its body: BEGIN and the two step markers; then the history
# row, the migration_log row, RESET ALL, DISCARD TEMP and COMMIT
OPENING_RESULTS, FINISH_RESULTS = 3, 5
# in a batch: BEGIN and the start marker; then the record (history, migration_log, time), RESET ALL, DISCARD
# TEMP and COMMIT
BATCH_OPENING_RESULTS, BATCH_FINISH_RESULTS = 2, 4
# a batch (several migrations in one message) is bounded so that progress stays visible and messages small
MAX_BATCH_MIGRATIONS, MAX_BATCH_CHARS = 500, 1_000_000

# statements that would drop a batch's prepared bookkeeping (DEALLOCATE ALL): such a migration runs alone
_DROPS_PREPARED = frozenset({"DeallocateStmt", "DiscardStmt"})

APPLIED, PENDING, DRIFTED, MISSING = "applied", "pending", "drifted", "missing"


# The engine's results are NamedTuples (immutable records, cheap to define and to build: status makes one
# per migration, and a frozen dataclass costs more to define than status spends on its own work).
class Event(NamedTuple):
    kind: str  # lock_wait | lock_acquired | start | statement | skip | warning | done
    message: str
    data: dict


class MigrationState(NamedTuple):
    version: str
    name: str
    state: str
    applied_at: datetime | None
    execution_ms: float | None
    checksum: str
    purpose: str
    records_processed: int | None = None
    drifted_files: tuple[str, ...] = ()
    header: dict | None = None

    def as_dict(self) -> dict:
        data = self._asdict()
        data["header"] = dict(self.header or {})
        data["applied_at"] = self.applied_at.isoformat() if self.applied_at else None
        data["drifted_files"] = list(self.drifted_files)
        return data


class PlannedStep(NamedTuple):
    version: str
    name: str
    file: str
    mode: str
    statements: tuple[str, ...]

    def as_dict(self) -> dict:
        return self._asdict() | {"statements": list(self.statements)}


class StepResult(NamedTuple):
    version: str
    name: str
    duration_ms: float
    records_processed: int
    mode: str
    skipped_statements: int = 0

    def as_dict(self) -> dict:
        return self._asdict()


class RunResult(NamedTuple):
    direction: str  # up | down
    steps: tuple[StepResult, ...]
    plan: tuple[PlannedStep, ...]
    dry_run: bool
    validation: object | None = None  # validation.ValidationReport of the whole run
    validation_each: tuple = ()  # (version, ValidationReport) per migration with --validate-each
    schema_sql: str | None = None  # canonical DDL of the migrated database (up --dump)


def _now_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class Engine:
    def __init__(self, settings: Settings, on_event: Callable[[Event], None] | None = None):
        self.settings = settings
        self._on_event = on_event or (lambda event: None)
        self._extra_options: dict[str, str] = {}
        self._options_used: dict[str, str] = {}
        self._log_table = history.MIGRATION_LOG_TABLE  # schema-qualified once the connection has seen it
        self._tables: tuple[bool, bool] | None = None  # (history table, migration_log) as read_history found them
        self._verify_scripts: dict[str, Script] = {}
        self._parsed: dict[tuple[str, str], Script] = {}  # (path, text): a file parsed once per command

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
        `RESET ALL` after each migration keeps them. PII keys ride along when the environment (or, on the
        embedded default, its development keys file) has them."""
        from mercurio_migrate import keys

        safety = self.settings.safety
        options = {"lock_timeout": safety.lock_timeout, "statement_timeout": safety.statement_timeout}
        for env_name, setting in keys.SETTING_FOR_ENV.items():
            value = os.environ.get(env_name) if self.settings.database_url else keys.lookup(env_name)
            if value:
                options[setting] = value
        options.update(self._extra_options)
        return options

    def _require_keys(self, conn, scripts: list[Script]) -> None:
        """Before anything runs: the PII keys these scripts need are in the session, or we say what is missing."""
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
                self._acquire_lock(conn)
            faults.point(conn, "locked")
            yield conn
        finally:
            try:
                if not conn.closed:
                    if in_failed_or_open_transaction(conn):
                        conn.execute("ROLLBACK")
                    if lock:
                        conn.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_NAMESPACE,))
            except Exception:  # noqa: BLE001 - the connection is gone; the server released the lock with it
                pass
            finally:
                conn.close()

    def _acquire_lock(self, conn) -> None:
        got, server_port, in_recovery, read_only = conn.execute(_LOCK_SQL).fetchone()
        if in_recovery or read_only:
            if got:
                conn.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_NAMESPACE,))
            what = "a read-only replica (in recovery)" if in_recovery else "read-only (default_transaction_read_only)"
            raise ConnectionFailed(f"the database {conn.info.dbname!r} on {conn.info.host} is {what}: nothing can be "
                                   "migrated there", hint="Point DATABASE_URL at the primary server.")
        client_port = conn.info.port or server_port
        if str(client_port) != server_port and not self.settings.safety.allow_pooler:
            if got:
                conn.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_NAMESPACE,))
            raise ConnectionFailed(
                f"connected through a proxy or connection pooler (port {client_port}; the server listens on "
                f"{server_port}): under transaction pooling the migration lock and session settings would not "
                "hold, so concurrent runs could collide",
                hint="Connect straight to PostgreSQL for migrations, or, if the pooler uses session pooling, "
                     "set MERCURIO_ALLOW_POOLER=1.")
        if got:
            return
        holder = conn.execute(
            "SELECT a.pid, a.application_name, a.state, a.query_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = %s::bigint::oid AND l.objid = 0 AND l.objsubid = 2 AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            (LOCK_NAMESPACE,),
        ).fetchone()
        who = f"pid {holder[0]} ({holder[1] or 'no application_name'}, {holder[2]})" if holder else "another session"
        self.emit("lock_wait", f"waiting for the migration lock held by {who}", holder_pid=holder[0] if holder else None)
        started = time.perf_counter()
        # the wait for another run is not a table lock: lock_timeout must not cut it short
        conn.execute("BEGIN")
        conn.execute("SET LOCAL lock_timeout = 0")
        conn.execute("SELECT pg_advisory_lock(%s, 0)", (LOCK_NAMESPACE,))
        conn.execute("COMMIT")
        self.emit("lock_acquired", f"migration lock acquired after {time.perf_counter() - started:.1f} s")

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
    def _tables_exist(self, conn) -> tuple[bool, bool]:
        has_history, log_table = conn.execute(history.TABLES_EXIST_SQL).fetchone()
        self._log_table = log_table or history.MIGRATION_LOG_TABLE
        return has_history, log_table is not None

    def ensure_tables(self, conn, known: tuple[bool, bool] | None = None) -> None:
        """Create the history table and migration_log when absent (call under the migration lock).
        ``known``: what ``_tables_exist`` said on this connection under the same lock."""
        ddl = history.missing_tables_ddl(*(known or self._tables_exist(conn)))
        if ddl:
            run_or_raise(conn, f"BEGIN;{ddl}COMMIT;", "creating mercurio-migrate's tables")
            self._tables_exist(conn)

    def read_history(self, conn) -> dict[str, history.HistoryRow]:
        self._tables = self._tables_exist(conn)
        if not self._tables[0]:
            return {}
        rows = conn.execute(history.SELECT_HISTORY_SQL).fetchall()
        return {row[0]: history.HistoryRow(*row[:5], float(row[5]), *row[6:]) for row in rows}

    @staticmethod
    def compute_states(found: MigrationSet, applied: dict[str, history.HistoryRow], *,
                       describe: bool = True) -> list[MigrationState]:
        """Each migration's state. ``describe=False``: without purpose and header (read from every file's
        comments: status shows them; up and down only check the states)."""
        states: list[MigrationState] = []
        on_disk = found.by_version()
        for version in sorted(set(on_disk) | set(applied)):
            migration = on_disk.get(version)
            row = applied.get(version)
            if migration is None:
                states.append(MigrationState(version, row.name, MISSING, row.applied_at, row.execution_ms,
                                             row.checksum, "", row.records_processed, header={}))
                continue
            header = migration.header if describe else {}
            purpose = header.get("purpose", "") if describe else ""
            if row is None:
                states.append(MigrationState(version, migration.name, PENDING, None, None,
                                             migration.migration.checksum, purpose, header=header))
                continue
            drifted = []
            if row.checksum != migration.migration.checksum:
                drifted.append("migration.sql")
            rollback_checksum = migration.rollback.checksum if migration.rollback else None
            if row.rollback_checksum != rollback_checksum:
                drifted.append("rollback.sql")
            states.append(MigrationState(version, migration.name, DRIFTED if drifted else APPLIED, row.applied_at,
                                         row.execution_ms, migration.migration.checksum, purpose,
                                         row.records_processed, tuple(drifted), header))
        return states

    def open_quickly(self) -> libpq.Session | None:
        """A libpq session for the quick paths, with the command's session settings (those connect() sends)
        unless the URL carries options of its own: such a session (``options`` None) may read the history
        but not migrate. None when libpq cannot be loaded or the server cannot be reached (psycopg then
        connects and explains)."""
        from mercurio_migrate import libpq

        url = self.database_url()
        return libpq.Session.open(url, f"{APPLICATION_NAME} {__version__}",
                                  libpq_options(url, self.connection_options()))

    def _open_in_background(self) -> Background[libpq.Session | None]:
        return Background(self.open_quickly, name="mercurio-connect")

    def _discover_alongside(self, job: Background | None, release: Callable | None = None) -> tuple[MigrationSet, object]:
        """The migration files, read and hashed while ``job`` (connecting, reading the history) runs in its
        thread; then the job's result, joined. If reading the files fails, the job is waited for and its
        value freed with ``release``."""
        try:
            found = self.migrations()
        except BaseException:
            if job is not None:
                job.discard(release)
            raise
        return found, (job.result() if job is not None else None)

    def read_history_quickly(self, *, writable: bool = False, session: libpq.Session | None = None
                             ) -> dict[str, history.HistoryRow] | None:
        """The history through libpq directly, without importing psycopg ({} before the first migration);
        None when that is not possible (no libpq to load, any failure) or, with ``writable``, when the server
        is a replica or read-only: the caller then takes the ordinary path, which explains any problem.
        ``session``: one the caller opened (open_quickly) and closes; otherwise one is opened and closed here."""
        from mercurio_migrate import libpq

        own = session is None
        if own:
            session = libpq.Session.open(self.database_url(), f"{APPLICATION_NAME} {__version__}")
            if session is None:
                return None
        try:
            flags = session.rows(history.SERVER_FLAGS_SQL)
            if not flags or (writable and "t" in flags[0][1:]):
                return None
            if flags[0][0] != "t":
                return {}
            rows = session.rows(history.SELECT_HISTORY_JSON_SQL)
            return None if not rows else history.rows_from_json(rows[0][0], session.parameter("TimeZone"))
        except libpq.Failed:
            return None
        finally:
            if own:
                session.close()

    def status(self) -> list[MigrationState]:
        found, applied = self._discover_alongside(Background(self.read_history_quickly, name="mercurio-history"))
        if applied is None:
            with self.session(lock=False) as conn:
                applied = self.read_history(conn)
        return self.compute_states(found, applied)

    def log(self, limit: int = 50) -> list[dict]:
        with self.session(lock=False) as conn:
            if not self._tables_exist(conn)[1]:
                return []
            rows = conn.execute(history.SELECT_LOG_SQL, (limit,)).fetchall()
        return [
            {"migration_name": r[0], "records_processed": r[1], "completed_at": r[2].isoformat() if r[2] else None,
             "notes": r[3]}
            for r in rows
        ]

    # --- planning ---------------------------------------------------------------------------------
    @staticmethod
    def _find_version(found: MigrationSet, applied: dict, target: str) -> str:
        candidates = set(found.by_version()) | set(applied)
        for version in candidates:
            name = found.by_version()[version].name if version in found.by_version() else applied[version].name
            if target in (version, f"{version}_{name}"):
                return version
        raise UsageError(f"unknown migration version {target!r}",
                         hint="Use a version (YYYYMMDD_HHMMSS) or folder name that `mercurio-migrate status` lists.")

    def _refuse_drift(self, states: list[MigrationState], allow_drift: bool) -> None:
        drifted = [f"{s.version}_{s.name} ({', '.join(s.drifted_files)})" for s in states if s.state == DRIFTED]
        if not drifted:
            return
        if not allow_drift:
            raise DriftError(drifted)
        self.emit("warning", "continuing despite drift (--allow-drift): " + ", ".join(drifted))

    def _refuse_renamed(self, states: list[MigrationState], applied: dict[str, history.HistoryRow]) -> None:
        """A pending folder whose migration.sql is byte-identical to an applied one that vanished from disk
        is almost surely that migration renamed: running it again would apply it twice."""
        missing = {s.checksum: s for s in states if s.state == MISSING}
        for state in states:
            if state.state == MISSING:
                self.emit("warning", f"{state.version}_{state.name} is recorded as applied but its folder is not on "
                                     "disk", version=state.version)
            elif state.state == APPLIED and applied[state.version].name != state.name:
                self.emit("warning", f"{state.version}: applied as {applied[state.version].name!r}, the folder is now "
                                     f"named {state.name!r}", version=state.version)
        renamed = [(s, missing[s.checksum]) for s in states if s.state == PENDING and s.checksum in missing]
        if renamed:
            pairs = ", ".join(f"{new.version}_{new.name} (was {old.version}_{old.name})" for new, old in renamed)
            raise MercurioError(
                f"pending migration(s) identical to applied ones whose folders are gone: {pairs}; "
                "running them would apply the same change twice",
                hint="If the folder was renamed, record the new version with `resolve NEW_VERSION --applied` "
                     "and drop the old row with `resolve OLD_VERSION --rolled-back`.")

    def parse_all(self, files: list[tuple[Migration, SqlFile]], ahead: ParseAhead | None = None) -> list[Script]:
        """Every file parsed before anything runs; all syntax errors reported at once. ``ahead``: parsed by a
        child; the files it was not given are parsed here first, while it works."""
        parsed: list[Script | SqlError | None] = [self._parsed.get((f.path, f.text)) for _, f in files]
        todo = [i for i, script in enumerate(parsed) if script is None]
        here = [i for i in todo if ahead is None or not ahead.computes(files[i][1].text)]
        for index in [*here, *sorted(set(todo) - set(here))]:
            sql_file = files[index][1]
            try:
                parsed[index] = self._parsed[sql_file.path, sql_file.text] = parse(
                    sql_file.text, sql_file.path, outcome=ahead.outcome(sql_file.text) if ahead else None)
            except SqlError as exc:
                parsed[index] = exc
        scripts = [p for p in parsed if isinstance(p, Script)]
        errors = [p for p in parsed if isinstance(p, SqlError)]
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise MercurioError("SQL syntax errors; nothing was run:\n" + "\n".join(e.message for e in errors),
                                hint="Fix each file at the position named.")
        for script in scripts:
            if not script.statements:
                raise UsageError(f"{script.path}: holds no SQL statements (only comments?)",
                                 hint="Write the migration's statements or delete the folder.")
            self._reject_unsupported(script)
        return scripts

    @staticmethod
    def _reject_unsupported(script: Script) -> None:
        for statement in script.statements:
            if statement.kind == "CopyStmt" and statement.fields.get("is_from") and not statement.fields.get("filename"):
                location = script.location(statement.start, statement)
                raise UsageError(f"{location}: COPY … FROM STDIN needs data from the client, which a migration file "
                                 "cannot carry", hint="Use INSERT … VALUES, or COPY from a server-side file.")

    @staticmethod
    def _plan_entry(migration: Migration, script: Script) -> PlannedStep:
        return PlannedStep(migration.version, migration.name, script.path, script.mode.value,
                           tuple(s.text for s in script.body))

    def _warn_mode(self, migration: Migration, script: Script) -> None:
        if script.mode is Mode.AUTOCOMMIT:
            blockers = [s for s in script.statements if s.non_transactional]
            skipped = [s for s in script.statements if s.transaction_control in ("begin", "commit")]
            where = ", ".join(f"line {s.line}" for s in blockers[:3])
            message = (f"{script.path}: holds statements that cannot run inside a transaction block ({where}): "
                       "running it statement by statement in autocommit")
            if skipped:
                message += "; its own BEGIN/COMMIT (" + ", ".join(f"line {s.line}" for s in skipped) + ") are skipped"
            self.emit("warning", message, version=migration.version, about="mode")
        elif script.mode is Mode.AS_WRITTEN:
            self.emit("warning", f"{script.path}: controls its own transactions in several blocks: running it as "
                                 "written, statement by statement; it is not atomic", version=migration.version,
                      about="mode")

    # --- commands ---------------------------------------------------------------------------------
    def up(self, **kwargs) -> RunResult:
        """Apply pending migrations (``to``, ``dry_run``, ``allow_drift``)."""
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
        quickly = not (dry_run or dump)
        # joined before the fork below (ParseAhead forks only a process without other threads)
        found, session = self._discover_alongside(self._open_in_background() if quickly else None, _close)
        try:
            # a child process forks now and imports the parser while this one reads the history; it then
            # parses the files that will most likely run, while this one takes the lock
            files = [] if not quickly else [(m.version, f.text) for m in found.migrations
                                            for f in (m.migration, m.extras.get("verify.sql")) if f]
            ahead = ParseAhead([text for _, text in files], choose_later=True)
            try:
                return self._up_parsing_ahead(found, files, ahead, session, to=to, dry_run=dry_run,
                                              allow_drift=allow_drift, validate=validate,
                                              validate_each=validate_each, dump=dump)
            finally:
                ahead.close()
        finally:
            if session is not None:
                session.close()

    def _up_parsing_ahead(self, found: MigrationSet, files: list[tuple[str, str]], ahead: ParseAhead,
                          session: libpq.Session | None, *, to: str | None, dry_run: bool, allow_drift: bool,
                          validate: bool, validate_each: bool, dump: bool) -> RunResult:
        """``session``: open_quickly's (None: it could not connect, or a dry run): the unlocked history read
        and the quick path use it; the ordinary path connects through psycopg."""
        likely = None
        try:
            try:
                likely = self._likely_pending(found, to, allow_drift, session) if session is not None else None
            finally:
                wanted = {m.version for m in likely or ()}
                chosen = [i for i, (version, _) in enumerate(files) if version in wanted]
                if likely and self._quick_up_likely(session, validate_each or dump):
                    # this process parses its share meanwhile (see parse_all), so both processors parse
                    chosen = chosen[:len(chosen) - len(chosen) * PARENT_PARSE_SHARE // 100]
                ahead.choose(chosen)
            if likely == []:
                return RunResult("up", (), (), False)
            quick = self._up_quick(found, likely, to, allow_drift, validate, ahead, session) \
                if likely and not (validate_each or dump) else None
        finally:
            if session is not None:
                session.close()  # before the ordinary path connects: one connection at a time
        if isinstance(quick, RunResult):
            return quick
        done_before = tuple(quick or ())  # committed by the quick path before a migration failed
        with self.session(lock=not dry_run) as conn:
            applied = self.read_history(conn)
            self._refuse_changes(found, applied, allow_drift)
            pending = self._pending(found, applied, to)
            self._warn_out_of_order(pending, applied)
            scripts = self.parse_all([(m, m.migration) for m in pending], ahead)
            plan = tuple(self._plan_entry(m, s) for m, s in zip(pending, scripts))
            if dry_run:
                return RunResult("up", (), plan, True)
            self._require_keys(conn, scripts)
            self.parse_verify_scripts(pending, ahead)
            if not pending:
                return RunResult("up", done_before, plan, False, schema_sql=self._schema_sql(conn) if dump else None)
            if self.settings.safety.preflight:
                self.preflight(conn)
            self.ensure_tables(conn, self._tables)
            from mercurio_migrate import validation

            first = last = validation.capture(conn) if (validate or validate_each) else None
            items = list(zip(pending, scripts))
            each = []
            if validate_each:
                steps = []
                for index in range(len(items)):
                    steps += self.run_steps(conn, items[index:index + 1], "up")
                    current = validation.capture(conn)
                    each.append((items[index][0].version, validation.compare(last, current)))
                    last = current
            else:
                steps = self.run_steps(conn, items, "up")
            steps = [*done_before, *steps]
            report = schema_sql = None
            if first is not None:
                # a partial capture (new relations only named) serves the report; --dump needs the whole schema
                final = last if validate_each else validation.capture(
                    conn, since=None if dump else first, replan=len(steps) >= REPLAN_AFTER)
                report = validation.compare(first, final)
                if dump:
                    schema_sql = self._schema_sql(conn, final.schema)
            elif dump:
                schema_sql = self._schema_sql(conn)
        return RunResult("up", tuple(steps), plan, False, report, tuple(each), schema_sql)

    def _quick_up_likely(self, session: libpq.Session | None, needs_psycopg: bool) -> bool:
        """Whether `up` will most likely run through _run_quickly (which has this process idle while the
        parse-ahead child parses)."""
        return session is not None and session.options is not None and not needs_psycopg and _quick_path_allowed()

    def _up_quick(self, found: MigrationSet, likely: list[Migration], to: str | None, allow_drift: bool,
                  validate: bool, ahead: ParseAhead, session: libpq.Session
                  ) -> RunResult | list[StepResult] | None:
        """`up` through libpq directly (see _run_quickly), for the pending migrations the unlocked history
        read saw."""
        if any("verify.sql" in m.extras for m in likely):
            return None

        def pending(applied: dict[str, history.HistoryRow]) -> list[Migration] | None:
            self._refuse_changes(found, applied, allow_drift)
            chosen = self._pending(found, applied, to)
            return chosen if [m.version for m in chosen] == [m.version for m in likely] else None

        return self._run_quickly("up", pending, validate=validate, ahead=ahead, session=session)

    def _run_quickly(self, direction: str, select: Callable[[dict], list[Migration] | None], *,
                     session: libpq.Session, validate: bool = False, ahead: ParseAhead | None = None
                     ) -> RunResult | list[StepResult] | None:
        """`up` or `down` through libpq directly, without importing psycopg (a third of a small run's time),
        when every migration to run can travel in a batch (transactional, nothing to count, no verify.sql,
        no PII keys needed) and nothing needs explaining: the lock is free, no session would block, the
        server is a writable primary reached directly. The same lock, checks, batches, records and (up)
        validation report as the ordinary path. ``select(applied)``: the migrations to run (it raises the
        same refusals as the ordinary path; None: leave it to that path).

        Returns the RunResult; or the steps it committed before a migration failed (the ordinary path then
        runs the rest, and reports that failure with its full context); or None when it did not start (the
        ordinary path does everything, and explains whatever stopped this one).

        ``session``: open_quickly's; it is left open (with the lock released) for the caller to close. One
        without the command's settings (a URL with options of its own) leaves everything to psycopg, which
        merges them."""
        if not _quick_path_allowed() or session.options is None:
            return None
        from mercurio_migrate import libpq

        locked, steps = False, []
        try:
            got, server_port, in_recovery, read_only = session.rows(_LOCK_SQL)[0]
            locked = got == "t"
            if not locked or "t" in (in_recovery, read_only) or (
                    session.port != server_port and not self.settings.safety.allow_pooler):
                return None
            has_history, log_table = session.rows(history.TABLES_EXIST_SQL)[0]
            applied = history.rows_from_json(session.rows(history.SELECT_HISTORY_JSON_SQL)[0][0], session.parameter(
                "TimeZone")) if has_history == "t" else {}
            chosen = select(applied)
            if chosen is None:
                return None
            if not chosen:
                return RunResult(direction, (), (), False)
            files = [(m, m.migration if direction == "up" else m.rollback) for m in chosen]
            if any(f is None for _, f in files):
                return None
            from mercurio_migrate import keys, locks, validation

            safety = self.settings.safety
            if safety.preflight and session.execute(locks.PREFLIGHT_SQL, {
                    "idle": locks.IDLE_IN_TRANSACTION_SECONDS, "long": safety.long_transaction_seconds}).fetchall():
                return None
            # read-only work first: the server reads the catalog while the files are parsed here (and perhaps
            # still in the parse-ahead child)
            capturing = validation.start_capture(session) if validate else None
            try:
                scripts = self.parse_all(files, ahead)
                items = list(zip(chosen, scripts))
                batchable = all(self._batchable(m, s, direction) for m, s in items) and not any(
                    map(keys.keys_needed, scripts))
            except BaseException:
                if capturing is not None:
                    capturing.discard()
                raise
            first = capturing.result() if capturing is not None else None
            if not batchable:
                return None
            if direction == "up":
                self._warn_out_of_order(chosen, applied)
            ddl = history.missing_tables_ddl(has_history == "t", log_table is not None)
            if ddl:
                log_table = session.rows(f"BEGIN;{ddl}COMMIT;{history.TABLES_EXIST_SQL}", last_only=True)[0][1]
            self._log_table = log_table
            total = len(items)
            while len(steps) < total:
                batch = self._batch_from(items, len(steps), direction)
                self._emit_start(batch, len(steps), total, direction)
                message, spans, expected = self._batch_message(session, batch, direction)
                results = session.results(message)
                done = self._committed(batch, spans, results)
                for step in done:
                    self._emit_done(step, direction)
                steps += done
                if len(done) < len(batch) or len(results) < expected:
                    if session.in_transaction():
                        session.rows("ROLLBACK")
                    return steps
            report = validation.compare(first, validation.capture(session, since=first, replan=len(steps) >= REPLAN_AFTER)
                                        ) if first else None
            return RunResult(direction, tuple(steps), tuple(self._plan_entry(m, s) for m, s in items), False, report)
        except libpq.Failed:
            return steps or None
        finally:
            if locked:
                try:
                    if session.in_transaction():  # a failed message leaves its transaction open, aborted
                        session.rows("ROLLBACK")
                    session.rows(f"SELECT pg_advisory_unlock({LOCK_NAMESPACE}, 0)")
                except libpq.Failed:
                    session.close()  # the server releases the lock with the connection

    def _likely_pending(self, found: MigrationSet, to: str | None, allow_drift: bool,
                        session: libpq.Session) -> list[Migration] | None:
        """What a read of the history without the migration lock says is pending (None: it could not tell).
        When nothing is, that is the answer (the cost every up-to-date deploy pays, without importing
        psycopg); otherwise `up` runs as usual, under the lock, reading the history again."""
        applied = self.read_history_quickly(writable=True, session=session)
        if applied is None:
            return None
        pending = self._pending(found, applied, to)
        if not pending:
            self._refuse_changes(found, applied, allow_drift)
        return pending

    def _pending(self, found: MigrationSet, applied: dict[str, history.HistoryRow], to: str | None) -> list[Migration]:
        """The migrations on disk not applied, up to ``to`` (a version or folder name) if given."""
        target = self._find_version(found, applied, to) if to else None
        return [m for m in found.migrations if m.version not in applied and (target is None or m.version <= target)]

    def _refuse_changes(self, found: MigrationSet, applied: dict[str, history.HistoryRow], allow_drift: bool) -> None:
        """Refuse drifted files and renamed folders (see _refuse_drift, _refuse_renamed)."""
        states = self.compute_states(found, applied, describe=False)
        self._refuse_drift(states, allow_drift)
        self._refuse_renamed(states, applied)

    def _warn_out_of_order(self, pending: list[Migration], applied: dict[str, history.HistoryRow]) -> None:
        newest_applied = max(applied) if applied else ""
        for migration in pending:
            if migration.version < newest_applied:
                self.emit("warning", f"{migration.id} is older than the newest applied migration "
                                     f"({newest_applied}): applying it out of order", version=migration.version)

    @staticmethod
    def _schema_sql(conn, schema=None) -> str:
        from mercurio_migrate import snapshot

        return snapshot.to_sql(schema if schema is not None else snapshot.take(conn))

    def _down(self, *, steps: int | None = None, to: str | None = None, all_: bool = False,
              dry_run: bool = False, allow_drift: bool = False) -> RunResult:
        count = 1 if steps is None else steps
        if count < 1 and not (all_ or to):
            raise UsageError("--steps must be at least 1")
        found, session = self._discover_alongside(
            self._open_in_background() if not dry_run and _quick_path_allowed() else None, _close)
        done_before: tuple[StepResult, ...] = ()
        if session is not None:
            try:
                quick = self._run_quickly("down", lambda applied: self._down_choice(
                    found, applied, count=count, to=to, all_=all_, allow_drift=allow_drift), session=session)
            finally:
                session.close()
            if isinstance(quick, RunResult):
                return quick
            done_before = tuple(quick or ())  # committed by the quick path before a rollback failed
            count -= len(done_before)
        with self.session(lock=not dry_run) as conn:
            applied = self.read_history(conn)
            migrations = self._down_choice(found, applied, count=count, to=to, all_=all_, allow_drift=allow_drift)
            scripts = self.parse_all([(m, m.rollback) for m in migrations])
            plan = tuple(self._plan_entry(m, s) for m, s in zip(migrations, scripts))
            if dry_run:
                return RunResult("down", (), plan, True)
            self._require_keys(conn, scripts)
            if migrations and self.settings.safety.preflight:
                self.preflight(conn)
            results = self.run_steps(conn, list(zip(migrations, scripts)), "down")
        return RunResult("down", done_before + tuple(results), plan, False)

    def _down_choice(self, found: MigrationSet, applied: dict[str, history.HistoryRow], *, count: int,
                     to: str | None, all_: bool, allow_drift: bool) -> list[Migration]:
        """The migrations a `down` rolls back, newest first; refuses (nothing run) when one cannot be."""
        newest_first = sorted(applied, reverse=True)
        if all_:
            chosen = newest_first
        elif to:
            target = self._find_version(found, applied, to)
            chosen = [v for v in newest_first if v > target]
        else:
            chosen = newest_first[:count]
        states = {s.version: s for s in self.compute_states(found, applied, describe=False)}
        self._refuse_drift([states[v] for v in chosen], allow_drift)
        on_disk = found.by_version()
        blocked = []
        for version in chosen:
            migration = on_disk.get(version)
            if migration is None:
                blocked.append(f"{version}_{applied[version].name}: its folder is missing from disk")
            elif migration.rollback is None:
                blocked.append(f"{migration.id}: has no rollback.sql")
        if blocked:
            raise MercurioError("cannot roll back; nothing was run:\n  " + "\n  ".join(blocked),
                                hint="Write the missing rollback.sql, or stop before that migration "
                                     "(down --to VERSION), or record it with `resolve VERSION --rolled-back`.")
        return [on_disk[v] for v in chosen]

    def resolve(self, version: str, *, applied: bool) -> MigrationState:
        found = self.migrations()
        with self.session(lock=True) as conn:
            history_rows = self.read_history(conn)
            version = self._find_version(found, history_rows, version)
            migration = found.by_version().get(version)
            self.ensure_tables(conn)
            if applied:
                if migration is None:
                    raise UsageError(f"{version}: no such folder on disk; cannot mark it applied")
                finish = self._record_sql(conn, migration, "up", 0, "resolved", duration_ms=0.0,
                                          note="marked applied by mercurio-migrate resolve (not run)")
            else:
                if version not in history_rows:
                    raise UsageError(f"{version} is not applied; nothing to mark rolled back")
                name = migration.name if migration else history_rows[version].name
                finish = (history.delete_applied_sql().format(version=literal(conn, version)) + ";"
                          + history.insert_log_sql(self._log_table).format(
                              migration_name=literal(conn, f"{version}_{name}"), records="0",
                              notes=literal(conn, "marked rolled back by mercurio-migrate resolve (not run)")))
            run_or_raise(conn, f"BEGIN;{finish};COMMIT;", f"resolving {version}")
            states = self.compute_states(found, self.read_history(conn))
        return next(s for s in states if s.version == version) if any(s.version == version for s in states) else \
            MigrationState(version, "", "rolled back", None, None, "", "")

    # --- execution --------------------------------------------------------------------------------
    def _record_sql(self, conn, migration: Migration, direction: str, records: int, mode: str, *,
                    duration_ms: float | None = None, note: str | None = None) -> str:
        """The history and migration_log writes of one migration. Without ``duration_ms`` the time is the one
        the server measured between the step markers of the migration's own transaction."""
        if duration_ms is None:
            execution_ms, shown_ms = history.STEP_MS_SQL, f"round({history.STEP_MS_SQL}, 1)"
        else:
            execution_ms, shown_ms = literal(conn, duration_ms), literal(conn, f"{duration_ms:.1f}")
        if direction == "up":
            record = history.insert_applied_sql().format(
                version=literal(conn, migration.version), name=literal(conn, migration.name),
                checksum=literal(conn, migration.migration.checksum),
                rollback_checksum=literal(conn, migration.rollback.checksum if migration.rollback else None),
                execution_ms=execution_ms, records=literal(conn, records),
                mode=literal(conn, mode), client_host=literal(conn, client_host()),
                tool_version=literal(conn, __version__))
            verb = "applied"
        else:
            record = history.delete_applied_sql().format(version=literal(conn, migration.version))
            verb = "rolled back"
        notes = literal(conn, note) if note else (
            f"{literal(conn, f'{verb} by mercurio-migrate {__version__} ({mode}, ')} || {shown_ms} || ' ms)'")
        log = history.insert_log_sql(self._log_table).format(
            migration_name=literal(conn, migration.id), records=literal(conn, records), notes=notes)
        return f"{record};\n{log}"

    def run_steps(self, conn, items: list[tuple[Migration, Script]], direction: str) -> list[StepResult]:
        """Run migrations in order. Consecutive transactional migrations whose record does not depend on their
        results (no row counts, no verify.sql) travel together in one message, each still in its own
        transaction with its history row: one round trip for all of them, and nothing else changes."""
        steps: list[StepResult] = []
        total, index = len(items), 0
        while index < total:
            batch = self._batch_from(items, index, direction)
            if len(batch) < 2:
                migration, script = items[index]
                self._warn_mode(migration, script)
                self._emit_start(items[index:index + 1], index, total, direction)
                steps.append(self.run_one(conn, migration, script, direction))
                self._emit_done(steps[-1], direction)
                index += 1
                continue
            self._emit_start(batch, index, total, direction)
            done, failure = self._run_batch(conn, batch, direction)
            for step in done:
                self._emit_done(step, direction)
            steps.extend(done)
            index += len(done)
            if failure is None:
                continue
            migration, script = items[index]
            if failure.nothing_ran:  # refused as a whole (the server parses a message before running it)
                for migration, script in batch[len(done):]:
                    steps.append(self.run_one(conn, migration, script, direction))
                    self._emit_done(steps[-1], direction)
                index += len(batch) - len(done)
                continue
            steps.append(self.run_one(conn, migration, script, direction, failed=failure))
            self._emit_done(steps[-1], direction)
            index += 1
        return steps

    def _emit_start(self, batch: list[tuple[Migration, Script]], index: int, total: int, direction: str) -> None:
        verb = "applying" if direction == "up" else "rolling back"
        migration, script = batch[0]
        if len(batch) == 1:
            self.emit("start", f"[{index + 1}/{total}] {verb} {migration.id}", index=index + 1, total=total,
                      version=migration.version, mode=script.mode.value)
            return
        self.emit("start", f"[{index + 1}-{index + len(batch)}/{total}] {verb} {len(batch)} migrations in one "
                           f"round trip, each in its own transaction: {migration.id} … {batch[-1][0].id}",
                  index=index + 1, total=total, count=len(batch), version=migration.version, mode="batch")

    def _emit_done(self, step: StepResult, direction: str) -> None:
        verb = "applied" if direction == "up" else "rolled back"
        self.emit("done", f"{verb} {step.version}_{step.name} in {step.duration_ms:.1f} ms", version=step.version)

    def _batch_from(self, items: list[tuple[Migration, Script]], start: int, direction: str) -> list:
        batch: list[tuple[Migration, Script]] = []
        size = 0
        for migration, script in itertools.islice(items, start, None):
            if not self._batchable(migration, script, direction):
                break
            size += len(script.text)
            if batch and (len(batch) >= MAX_BATCH_MIGRATIONS or size > MAX_BATCH_CHARS):
                break
            batch.append((migration, script))
        return batch

    def _batchable(self, migration: Migration, script: Script, direction: str) -> bool:
        return (script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION) and not faults.ACTIVE
                and not any(s.counts_rows or s.kind in _DROPS_PREPARED for s in script.body)
                and not (direction == "up" and self._verify_script(migration) is not None))

    def _run_batch(self, conn, batch: list[tuple[Migration, Script]], direction: str):
        """One message for several migrations: (steps committed, the failure that stopped the rest or None)."""
        message, spans, expected = self._batch_message(conn, batch, direction)
        results = send_script(conn, message)
        # the server stops at the first error, so the last result is the failed one
        failed_at = len(results) - 1 if results and not results[-1].ok else None
        if failed_at is None and len(results) < expected:
            raise MercurioError(f"the server answered {len(results)} of the {expected} statements sent",
                                hint="Check the server log; run the command again (it resumes).")
        if failed_at is not None and failed_at < history.BATCH_PRELUDE_RESULTS:
            # refused as a whole (the server parses a message before running any of it): nothing ran
            failure = _StatementFailed(None, results[-1].error, 0, "nothing of it ran.")
            failure.nothing_ran = True
            return [], failure
        steps = self._committed(batch, spans, results)
        if failed_at is None:
            return steps, None
        if in_failed_or_open_transaction(conn):
            conn.execute("ROLLBACK")
        (migration, script), (first, offset_base) = batch[len(steps)], spans[len(steps)]
        own, opened = results[first:failed_at + 1], len(script.body) + BATCH_OPENING_RESULTS
        failure = self._opening_failure(script, own, offset_base, BATCH_OPENING_RESULTS) or self._finish_failure(
            migration, script, own[-1].error, len(own) - opened - 1, BATCH_FINISH_RESULTS)
        return steps, failure

    def _batch_message(self, conn, batch: list[tuple[Migration, Script]], direction: str):
        """(the message, per migration the index of its first result and the offset base of its body, the
        number of results it gives when all goes well).

        The message: PREPAREs of the step marker and the record statement, then per migration BEGIN, the
        marker, its statements, the record (history row, migration_log row, its time), RESET ALL, DISCARD
        TEMP, COMMIT; then DEALLOCATEs."""
        token = os.urandom(4).hex()
        start_name, record_name = history.batch_statement_names(token)
        prelude = history.batch_prepare_sql(token, direction, self._log_table)
        quote = quoter(conn)
        host, tool = quote(client_host()), quote(__version__)
        parts: list[str] = [prelude]
        spans: list[tuple[int, int]] = []
        position, results_seen = len(prelude), history.BATCH_PRELUDE_RESULTS
        finish = f";\n{history.CLEAN_SESSION_SQL};\nCOMMIT;\n"
        for migration, script in batch:
            body = script.body
            head = f"{script.begin_statement};\nEXECUTE {start_name};\n"
            text = script.text[body[0].start:body[-1].end] + ";\n" if body else ""
            rollback = migration.rollback.checksum if migration.rollback else None
            record = (f"EXECUTE {record_name}({quote(migration.version)}, {quote(migration.name)}, "
                      f"{quote(migration.migration.checksum)}, {quote(rollback)}, "
                      f"{quote(script.mode.value)}, {host}, {tool}, {quote(migration.id)})")
            chunk = f"{head}{text}{record}{finish}"
            spans.append((results_seen, body[0].start - (position + len(head)) if body else 0))
            parts.append(chunk)
            position += len(chunk)
            results_seen += len(body) + BATCH_OPENING_RESULTS + BATCH_FINISH_RESULTS
        parts.append(history.batch_deallocate_sql(token))
        return "".join(parts), spans, results_seen + history.BATCH_CLOSING_RESULTS

    @staticmethod
    def _committed(batch: list[tuple[Migration, Script]], spans: list[tuple[int, int]], results: list) -> list:
        """The StepResults of the migrations of a batch whose COMMIT is among ``results`` (all of them ok)."""
        steps = []
        for (migration, script), (first, _) in zip(batch, spans):
            opened = len(script.body) + BATCH_OPENING_RESULTS
            committed = first + opened + BATCH_FINISH_RESULTS - 1  # COMMIT is the last of the finish
            if len(results) <= committed or not results[committed].ok:
                break
            duration = float(results[first + opened].value or 0)
            steps.append(StepResult(migration.version, migration.name, duration, 0, script.mode.value))
        return steps

    @staticmethod
    def _opening(script: Script) -> tuple[str, str, int]:
        """(BEGIN and the start marker, the body and the end marker, where the body starts in the first)."""
        body = script.body
        head = f"{script.begin_statement};\n{history.STEP_START_SQL};\n"
        text = script.text[body[0].start:body[-1].end] + ";\n" if body else ""
        return head, f"{text}{history.STEP_END_SQL}", len(head)

    def _finish_sql(self, conn, migration: Migration, direction: str, records: int, mode: str, *,
                    duration_ms: float | None = None) -> str:
        record = self._record_sql(conn, migration, direction, records, mode, duration_ms=duration_ms)
        return f";\n{record};\n{history.CLEAN_SESSION_SQL};\nCOMMIT"

    @staticmethod
    def _opening_failure(script: Script, results: list, offset_base: int,
                         opening: int = OPENING_RESULTS) -> _StatementFailed | None:
        """The failure among a migration's own statements (BEGIN, start marker, body, end marker), or None if
        they all ran and the failure came in the tool's record or COMMIT after them."""
        body = script.body
        if len(results) > len(body) + opening or (results and results[-1].ok):
            return None
        index = len(results) - 3  # BEGIN and the start marker come before the body
        failed = body[index] if 0 <= index < len(body) else None
        # no statement when the server refused the message as a whole (a syntax it does not know): the error
        # position, relative to the message, still maps into the file through the same offset
        return _StatementFailed(failed, results[-1].error, offset_base,
                                "its transaction was rolled back: the database and the history are as before.")

    @staticmethod
    def _finish_failure(migration: Migration, script: Script, error, position: int,
                        finish: int = FINISH_RESULTS) -> _StatementFailed:
        """The tool's record, session clean-up or COMMIT after the migration's statements failed (a deferred
        constraint fails at COMMIT): never retried."""
        what = "committing it" if position >= finish - 1 else "recording its result"
        note = ("the migration's own transaction was rolled back with it." if script.mode in
                (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION) else
                "its statements ran, but it is not recorded as applied.")
        failure = _StatementFailed(None, error, 0, note)
        failure.fatal = MigrationFailed(
            migration.version, migration.name,
            MercurioError(f"{what} failed: {error.diag.message_primary}",
                          hint=error.diag.message_hint or _HINTS.get(error.diag.sqlstate or "")),
            failure.state_note)
        return failure

    def run_one(self, conn, migration: Migration, script: Script, direction: str, *,
                failed: _StatementFailed | None = None) -> StepResult:
        """Run one file; on a lock timeout, retry the whole migration with backoff, then name the blocker.
        ``failed``: its first attempt already failed so (it ran in a batch)."""
        attempt = 0
        while True:
            if failed is None:
                try:
                    if script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION):
                        return self._run_transactional(conn, migration, script, direction)
                    return self._run_statementwise(conn, migration, script, direction)
                except _StatementFailed as failure:
                    failed = failure
            self._retry_or_raise(conn, migration, script, failed, attempt)
            attempt += 1
            failed = None

    def _retry_or_raise(self, conn, migration: Migration, script: Script, failure: _StatementFailed,
                        attempt: int) -> None:
        """Raise the failure as the user sees it, or (a lock timeout with retries left) wait before the next try."""
        if failure.fatal is not None:
            raise failure.fatal
        safety = self.settings.safety
        error = failure.error
        if error.sqlstate != LOCK_NOT_AVAILABLE:
            raise MigrationFailed(migration.version, migration.name,
                                  self._sql_error(script, failure.statement, error, failure.offset_base),
                                  failure.state_note) from None
        names = relation_names(failure.statement.tree) if failure.statement else []
        blocking = locks.holders(conn, names)
        who = "; ".join(b.describe() for b in blocking) or "a session that has since released it"
        where = script.location(failure.statement.start, failure.statement) if failure.statement else script.path
        if attempt >= safety.lock_retries:
            raise MigrationFailed(
                migration.version, migration.name,
                LockTimeout(f"{where}: lock_timeout ({safety.lock_timeout}) expired "
                            f"{attempt + 1} time(s) waiting for a lock on {', '.join(names) or 'a table'}; "
                            f"blocked by {who}",
                            hint="End or wait for the blocking session, or raise --lock-timeout / "
                                 "--lock-retries."),
                failure.state_note) from None
        delay = safety.retry_backoff * (2 ** attempt)
        self.emit("warning", f"{where}: lock_timeout ({safety.lock_timeout}) expired waiting for "
                             f"{', '.join(names) or 'a lock'} (blocked by {who}); retry {attempt + 1} of "
                             f"{safety.lock_retries} in {delay:g} s", version=migration.version)
        time.sleep(delay)

    def _run_transactional(self, conn, migration: Migration, script: Script, direction: str) -> StepResult:
        body = script.body
        head, body_text, offset_in_head = self._opening(script)
        if faults.ACTIVE:
            results = self._send_one_by_one(conn, head, migration, script)
            offset_base = 0
        else:
            results = send_script(conn, head + body_text)
            offset_base = body[0].start - offset_in_head if body else 0
        failure = self._opening_failure(script, results, offset_base)
        if failure is not None:
            if in_failed_or_open_transaction(conn):
                conn.execute("ROLLBACK")
            if faults.ACTIVE and failure.statement is not None:
                failure.offset_base = failure.statement.start
            raise failure
        duration = float(results[-1].value or 0)
        records = sum(r.rowcount for r, s in zip(results[2:], body) if s.counts_rows)
        if direction == "up":
            self._run_verify_sql(conn, migration, "its transaction was rolled back: the database and the "
                                                  "history are as before.")
        finish = self._finish_sql(conn, migration, direction, records, script.mode.value)
        faults.point(conn, f"{migration.version}:before-commit")
        self._finish(conn, migration, script, finish.lstrip(";\n"))
        faults.point(conn, f"{migration.version}:committed")
        return StepResult(migration.version, migration.name, duration, records, script.mode.value)

    def _send_one_by_one(self, conn, head: str, migration: Migration, script: Script) -> list:
        """Fault-injection mode only: every statement boundary becomes a point where the process can die."""
        results = send_script(conn, head)
        faults.point(conn, f"{migration.version}:begun")
        for statement in script.body:
            if not results[-1].ok:
                return results
            results += send_script(conn, statement.text)
            faults.point(conn, f"{migration.version}:after-line-{statement.line}")
        if results[-1].ok:
            results += send_script(conn, history.STEP_END_SQL)
        return results

    def _finish(self, conn, migration: Migration, script: Script, finish_sql: str) -> None:
        results = send_script(conn, finish_sql)
        if results and not results[-1].ok:
            if in_failed_or_open_transaction(conn):
                conn.execute("ROLLBACK")
            position = len(results) - 1 - (1 if finish_sql.startswith("BEGIN") else 0)
            raise self._finish_failure(migration, script, results[-1].error, position).fatal

    def _run_statementwise(self, conn, migration: Migration, script: Script, direction: str) -> StepResult:
        body = script.body
        invalid_before = self._invalid_indexes(conn) if script.mode is Mode.AUTOCOMMIT else set()
        records = skipped = 0
        started = time.perf_counter()
        for position, statement in enumerate(body, start=1):
            if script.mode is Mode.AUTOCOMMIT and self._already_done(conn, statement, script):
                skipped += 1
                continue
            self.emit("statement", f"  statement {position}/{len(body)} (line {statement.line}): "
                                   f"{statement.first_line}", line=statement.line)
            results = send_script(conn, statement.text)
            if results and not results[-1].ok:
                if in_failed_or_open_transaction(conn):
                    conn.execute("ROLLBACK")
                dropped = self._drop_new_invalid_indexes(conn, invalid_before)
                note = ("statements before it ran and stay" if position > 1 else "nothing of it ran")
                note += "; it is not recorded as applied"
                if dropped:
                    note += "; the INVALID index(es) it left were dropped: " + ", ".join(dropped)
                note += ". Fix the cause and run the command again: it resumes where it stopped."
                raise _StatementFailed(statement, results[-1].error, statement.start, note)
            faults.point(conn, f"{migration.version}:after-line-{statement.line}")
            if statement.counts_rows and results:
                records += results[-1].rowcount
        duration = _now_ms(started)
        if direction == "up":
            self._run_verify_sql(conn, migration, "its statements ran and stay, but it is not recorded as applied; "
                                                  "fix the data or the migration, then run the command again.")
        finish = self._finish_sql(conn, migration, direction, records, script.mode.value, duration_ms=duration)
        self._finish(conn, migration, script, f"BEGIN{finish}")
        faults.point(conn, f"{migration.version}:committed")
        return StepResult(migration.version, migration.name, duration, records, script.mode.value, skipped)

    def parse_verify_scripts(self, migrations: list[Migration], ahead: ParseAhead | None = None) -> None:
        """Parse the verify.sql of these migrations now (``ahead``: by a child), so that running them parses
        nothing between two migrations."""
        self._verify_scripts = {
            m.version: parse(f.text, f.path, outcome=ahead.outcome(f.text) if ahead else None)
            for m in migrations if (f := m.extras.get("verify.sql"))}

    def _verify_script(self, migration: Migration) -> Script | None:
        if migration.version in self._verify_scripts:
            return self._verify_scripts[migration.version]
        if "verify.sql" in migration.extras:
            return parse(migration.extras["verify.sql"].text, migration.extras["verify.sql"].path)
        return None

    def _run_verify_sql(self, conn, migration: Migration, state_note: str) -> None:
        """verify.sql: a statement that raises, or a query that returns no row or whose first column is false or
        NULL, fails the migration."""
        script = self._verify_script(migration)
        if script is None:
            return
        for statement in script.statements:
            results = send_script(conn, statement.text)
            last = results[-1] if results else None
            if last is not None and not last.ok:
                if in_failed_or_open_transaction(conn):
                    conn.execute("ROLLBACK")
                raise MigrationFailed(migration.version, migration.name,
                                      self._sql_error(script, statement, last.error, statement.start),
                                      state_note) from None
            if last is None or last.rows is None:  # not a query
                continue
            if last.rows == 0:
                got = "no row"
            elif last.value is None:
                got = "NULL"
            elif last.value_type == BOOL_OID and last.value == "f":
                got = "False"
            else:
                continue
            if in_failed_or_open_transaction(conn):
                conn.execute("ROLLBACK")
            location = script.location(statement.start, statement)
            raise MigrationFailed(
                migration.version, migration.name,
                SqlError(location, f"assertion failed: the query returned {got}",
                         hint="verify.sql queries must return true in their first column."),
                state_note)

    def _already_done(self, conn, statement: Statement, script: Script) -> bool:
        """Resuming a non-transactional migration: the catalog proves which index statements already took effect."""
        fields = statement.fields
        if statement.kind == "IndexStmt" and fields.get("idxname"):
            schema = fields.get("relation", {}).get("schemaname")
            name = f"{schema}.{fields['idxname']}" if schema else fields["idxname"]
            row = conn.execute(
                "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", (_quote_ident(name),)
            ).fetchone()
            if row is None:
                return False
            if row[0]:
                self.emit("skip", f"  line {statement.line}: index {name} already exists and is valid (built by an "
                                  "earlier, interrupted run): skipped", line=statement.line)
                return True
            self.emit("warning", f"  line {statement.line}: index {name} exists but is INVALID (an interrupted "
                                 "build): dropping it and building it again", line=statement.line)
            conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote_ident(name)}")
            return False
        if statement.kind == "DropStmt" and fields.get("concurrent") and not fields.get("missing_ok"):
            names = [".".join(part["String"]["sval"] for part in obj.get("List", {}).get("items", []))
                     for obj in fields.get("objects") or ()]
            exist = conn.execute("SELECT bool_or(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) n",
                                 ([_quote_ident(n) for n in names],)).fetchone()[0]
            if not exist:
                self.emit("skip", f"  line {statement.line}: {', '.join(names)} already dropped: skipped")
                return True
        return False

    @staticmethod
    def _invalid_indexes(conn) -> set[str]:
        rows = conn.execute(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE NOT i.indisvalid AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'pg_toast'::regnamespace)"
        ).fetchall()
        return {r[0] for r in rows}

    def _drop_new_invalid_indexes(self, conn, before: set[str]) -> list[str]:
        dropped = []
        for name in sorted(self._invalid_indexes(conn) - before):
            conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            dropped.append(name)
        return dropped

    @staticmethod
    def _sql_error(script: Script, statement: Statement | None, error, offset_base: int) -> SqlError:
        diag = error.diag
        offset = statement.start if statement else 0
        if diag.statement_position:
            offset = min(max(0, offset_base + int(diag.statement_position) - 1), len(script.text))
        location = script.location(offset, statement or script.statement_at(offset))
        detail = diag.message_detail
        if diag.context:
            detail = f"{detail}\n  CONTEXT: {diag.context}" if detail else f"CONTEXT: {diag.context}"
        hint = diag.message_hint or _HINTS.get(diag.sqlstate or "")
        return SqlError(location, diag.message_primary or str(error), detail=detail, hint=hint,
                        sqlstate=diag.sqlstate)


_ALREADY_EXISTS_HINT = (
    "The object already exists. If an earlier run created it but the history does not say so (history edited "
    "by hand, folder renamed?), record the migration with `mercurio-migrate resolve VERSION --applied`; "
    "otherwise pick another name.")
_HINTS = {
    "42P07": _ALREADY_EXISTS_HINT,  # duplicate_table (relations and indexes)
    "42710": _ALREADY_EXISTS_HINT,  # duplicate_object
    "42723": _ALREADY_EXISTS_HINT,  # duplicate_function
    "42501": "The database user lacks a privilege this statement needs: run migrations as the schema's owner, "
             "or GRANT the privilege named above.",
}


def _quick_path_allowed() -> bool:
    """Whether _run_quickly may run (not when turned off, nor under fault injection, which needs psycopg)."""
    return not (os.environ.get("MERCURIO_NO_QUICK_PATH") or faults.ACTIVE)


def _close(session: libpq.Session) -> None:
    session.close()


def run_or_raise(conn, sql: str, what: str) -> None:
    """Run the tool's own SQL (one message); a failure is rolled back and reported as ``what failed: …``."""
    results = send_script(conn, sql)
    if results and not results[-1].ok:
        if in_failed_or_open_transaction(conn):
            conn.execute("ROLLBACK")
        error = results[-1].error
        raise MercurioError(f"{what} failed: {error.diag.message_primary or error}",
                            hint=error.diag.message_hint or _HINTS.get(error.diag.sqlstate or ""))


def run_unrecorded(conn, script: Script) -> SqlError | None:
    """Run a file that is not a migration (fixture.sql): in one transaction when it allows it, else as written;
    nothing is recorded. Returns the failure, located like a migration's, or None."""
    body = script.body
    if not body:
        return None
    if script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION):
        prefix = f"{script.begin_statement};\n"
        results = send_script(conn, prefix + script.text[body[0].start:body[-1].end] + ";\nCOMMIT")
        failed = body[len(results) - 2] if 2 <= len(results) <= len(body) + 1 else None
        offset_base = body[0].start - len(prefix)
    else:
        results, failed = [], None
        for statement in body:
            results = send_script(conn, statement.text)
            if results and not results[-1].ok:
                failed = statement
                break
        offset_base = failed.start if failed else 0
    if not results or results[-1].ok:
        return None
    if in_failed_or_open_transaction(conn):
        conn.execute("ROLLBACK")
    return Engine._sql_error(script, failed, results[-1].error, offset_base)


class _Reconnect(Exception):
    """Internal: the session must be reopened with more settings (development keys just generated)."""


class _StatementFailed(Exception):
    """Internal: a statement failed; `_run` decides between retrying and reporting."""

    def __init__(self, statement: Statement | None, error, offset_base: int, state_note: str):
        super().__init__(str(error))
        self.statement = statement
        self.error = error
        self.offset_base = offset_base
        self.state_note = state_note
        self.fatal: MercurioError | None = None  # raise this as it is: not the migration's own statement
        self.nothing_ran = False  # a batch refused as a whole before any of it ran


def _quote_ident(name: str) -> str:
    """Quote each part of a (possibly schema-qualified) identifier as parsed by pglast."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
