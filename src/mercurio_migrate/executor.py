"""Running migrations on one connection, under the migration lock the caller holds. Prints nothing.

Three ways to run a file, chosen by its transaction mode (sqlscript.Mode):
- transactional (the tool's transaction, or the file's own BEGIN … COMMIT): the statements, the history row
  (and, with the mercurio profile, the migration_log row) commit together or not at all. A failure leaves
  everything as before.
- batched: consecutive transactional migrations whose record does not depend on their results travel in
  one message, each still in its own transaction with its own history row.
- statement by statement (a file that cannot run in one transaction): it commits part by part. Each part
  (one statement, or one of the file's own BEGIN … COMMIT blocks) is recorded in the progress table in the
  same transaction as its statements; a statement that cannot run in a transaction is recorded as started
  before it runs, with what the catalog held then. So after a failure or a crash the tool knows exactly
  what committed: a retry or the next run resumes after it, and never runs a committed statement twice.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import NamedTuple

from mercurio_migrate import __version__, faults, history, locks
from mercurio_migrate.database import (
    BOOL_OID,
    Interrupted,
    client_host,
    in_failed_or_open_transaction,
    literal,
    quoter,
    send_script,
)
from mercurio_migrate.errors import LockTimeout, MercurioError, MigrationFailed, SqlError
from mercurio_migrate.layout import Migration
from mercurio_migrate.message import Message
from mercurio_migrate.sqlscript import Mode, Script, Statement, relation_names

LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired
UNIQUE_VIOLATION = "23505"
# a batch (several migrations in one message) is bounded so that progress stays visible and messages small
MAX_BATCH_MIGRATIONS, MAX_BATCH_CHARS = 500, 1_000_000
# statements that would drop a batch's prepared bookkeeping (DEALLOCATE ALL): such a migration runs alone
_DROPS_PREPARED = frozenset({"DeallocateStmt", "DiscardStmt"})

_ALREADY_EXISTS_HINT = (
    "The object already exists. If an earlier run created it but the history does not say so (history edited "
    "by hand, folder renamed?), record the migration with `mercurio-migrate resolve VERSION --applied`; "
    "otherwise pick another name.")
# a statement-by-statement migration stopped half-way must never be marked applied by hand
PARTIAL_ALREADY_EXISTS_HINT = ("The object already exists: pick another name, drop the existing object first, or "
                               "write `IF NOT EXISTS`; then run the command again (it resumes).")
HINTS = {
    "42P07": _ALREADY_EXISTS_HINT,  # duplicate_table (relations and indexes)
    "42710": _ALREADY_EXISTS_HINT,  # duplicate_object
    "42723": _ALREADY_EXISTS_HINT,  # duplicate_function
    "42501": "The database user lacks a privilege this statement needs: run migrations as the schema's owner, "
             "or GRANT the privilege named above.",
}
ROLLED_BACK_NOTE = "its transaction was rolled back: the database and the history are as before."


class Event(NamedTuple):
    kind: str  # lock_wait | lock_acquired | start | statement | skip | warning | done
    message: str
    data: dict


class StepResult(NamedTuple):
    version: str
    name: str
    duration_ms: float
    records_processed: int
    mode: str
    skipped_statements: int = 0

    def as_dict(self) -> dict:
        return self._asdict()


class RunInterrupted(MercurioError):
    """Ctrl-C stopped a run: ``steps`` committed before it did (each with its history row)."""

    exit_code = 130

    def __init__(self, steps: list[StepResult], message: str):
        super().__init__(message, hint="Run the command again to go on: what committed is recorded.")
        self.steps = steps


class Progress(NamedTuple):
    """A row of the progress table: a part of a statement-by-statement migration that committed (``done``,
    through statement ``statement``) or a statement that cannot run in a transaction, ``started``."""

    version: str
    direction: str
    checksum: str
    statement: int
    line: int
    state: str
    detail: dict | None
    at: object


class _Part(NamedTuple):
    """What a statement-by-statement file commits at once: one statement, or one of its BEGIN … COMMIT blocks
    (``begin``: the block's BEGIN; None for a lone statement). ``first``/``last``: 1-based statement numbers
    in the file's body."""

    first: int
    last: int
    statements: tuple[Statement, ...]
    begin: str | None
    non_transactional: bool


class Executor:
    def __init__(self, conn, settings, emit: Callable[..., None], store: history.HistoryStore, log_table: str | None,
                 verify_script: Callable[[Migration], Script | None], *, check_lock: bool = True):
        """``store``: the tool's tables; ``log_table``: migration_log's name, None when no migration_log row is
        written (no mercurio profile). ``check_lock``: the caller holds the migration lock, and nothing is
        recorded once it is lost (False on a scratch database no other run can reach)."""
        self.conn = conn
        self.check_lock = check_lock
        self.settings = settings
        self.emit = emit
        self.store = store
        self.log_table = log_table
        self.verify_script = verify_script

    # --- many migrations -------------------------------------------------------------------------
    def run_steps(self, items: list[tuple[Migration, Script]], direction: str) -> list[StepResult]:
        """Run migrations in order (see the module's docstring); a failure raises MigrationFailed after the
        migrations before it committed; Ctrl-C raises RunInterrupted naming those that did."""
        steps: list[StepResult] = []
        total, index = len(items), 0
        try:
            while index < total:
                batch = self._batch_from(items, index, direction)
                if len(batch) < 2:
                    migration, script = items[index]
                    self._warn_mode(migration, script)
                    self._emit_start(items[index:index + 1], index, total, direction)
                    steps.append(self.run_one(migration, script, direction))
                    self._emit_done(steps[-1], direction)
                    index += 1
                    continue
                self._emit_start(batch, index, total, direction)
                done, failure = self._run_batch(batch, direction)
                for step in done:
                    self._emit_done(step, direction)
                steps.extend(done)
                index += len(done)
                if failure is None:
                    continue
                if failure.nothing_ran:  # refused as a whole (the server parses a message before running it)
                    for migration, script in batch[len(done):]:
                        steps.append(self.run_one(migration, script, direction))
                        self._emit_done(steps[-1], direction)
                    index += len(batch) - len(done)
                    continue
                migration, script = items[index]
                steps.append(self.run_one(migration, script, direction, failed=failure))
                self._emit_done(steps[-1], direction)
                index += 1
        except _Stopped as stop:
            steps.extend(stop.steps)
            self._rollback_open()
            names = ", ".join(f"{s.version}_{s.name}" for s in steps) or "none"
            raise RunInterrupted(steps, f"interrupted: {len(steps)} migration(s) committed and recorded before "
                                        f"the stop ({names}); the one running then was rolled back"
                                        + (f" ({stop.note})" if stop.note else "")) from None
        except KeyboardInterrupt:
            self._rollback_open()
            names = ", ".join(f"{s.version}_{s.name}" for s in steps) or "none"
            raise RunInterrupted(steps, f"interrupted: {len(steps)} migration(s) committed and recorded before "
                                        f"the stop ({names})") from None
        return steps

    def _rollback_open(self) -> None:
        try:
            if not self.conn.closed and in_failed_or_open_transaction(self.conn):
                self.conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone: the server rolled back with it
            pass

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

    def _warn_mode(self, migration: Migration, script: Script) -> None:
        if script.mode is Mode.AUTOCOMMIT:
            blockers = [s for s in script.statements if s.non_transactional]
            skipped = [s for s in script.statements if s.transaction_control in ("begin", "commit")]
            where = ", ".join(f"line {s.line}" for s in blockers[:3])
            message = (f"{script.path}: holds statements that cannot run inside a transaction block ({where}): "
                       "running it statement by statement, each committed and recorded as it completes")
            if skipped:
                message += "; its own BEGIN/COMMIT (" + ", ".join(f"line {s.line}" for s in skipped) + ") are skipped"
            self.emit("warning", message, version=migration.version, about="mode")
        elif script.mode is Mode.AS_WRITTEN:
            self.emit("warning", f"{script.path}: controls its own transactions in several blocks: running it as "
                                 "written, block by block, each committed and recorded as it completes; it is "
                                 "not atomic", version=migration.version, about="mode")

    # --- batches ---------------------------------------------------------------------------------
    def _batch_from(self, items: list[tuple[Migration, Script]], start: int, direction: str) -> list:
        batch: list[tuple[Migration, Script]] = []
        size = 0
        for migration, script in items[start:]:
            if not self.batchable(migration, script, direction):
                break
            size += len(script.text)
            if batch and (len(batch) >= MAX_BATCH_MIGRATIONS or size > MAX_BATCH_CHARS):
                break
            batch.append((migration, script))
        return batch

    def batchable(self, migration: Migration, script: Script, direction: str) -> bool:
        return (script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION) and not faults.ACTIVE
                and not any(s.counts_rows or s.kind in _DROPS_PREPARED for s in script.body)
                and not (direction == "up" and self.verify_script(migration) is not None))

    def _run_batch(self, batch: list[tuple[Migration, Script]], direction: str):
        """One message for several migrations: (steps committed, the failure that stopped the rest or None).

        The message: PREPAREs of the step marker and the record statement; per migration BEGIN, the marker,
        its statements, the role reset, the record (history row, migration_log row with the mercurio profile,
        its time; it fails if the migration lock was released), RESET ALL, DISCARD TEMP, COMMIT; then
        DEALLOCATEs."""
        token = os.urandom(4).hex()
        start_name, record_name = history.batch_statement_names(token)
        message = Message()
        for sql in self.store.batch_prepare_sql(token, direction, self.log_table, self.check_lock).split(";\n"):
            if sql.strip():
                message.add(sql)
        quote = quoter(self.conn)
        host, tool = quote(client_host()), quote(__version__)
        marks = []  # per migration: (index of its record result, index of its COMMIT result)
        for position, (migration, script) in enumerate(batch):
            message.add(script.begin_statement, tag=position)
            message.add(f"EXECUTE {start_name}", tag=position)
            message.add_file_statements(script.body, tag=position)
            for sql in history.RESET_ROLE_STATEMENTS:
                message.add(sql, tag=position)
            rollback = migration.rollback.checksum if migration.rollback else None
            record = message.add(
                f"EXECUTE {record_name}({quote(migration.version)}, {quote(migration.name)}, "
                f"{quote(migration.migration.checksum)}, {quote(rollback)}, {quote(script.mode.value)}, {host}, "
                f"{tool}, {quote(migration.id)})", tag=position)
            for sql in history.CLEAN_SESSION_STATEMENTS:
                message.add(sql, tag=position)
            marks.append((record, message.add("COMMIT", tag=position)))
        for sql in history.batch_deallocate_sql(token).split(";\n"):
            if sql.strip():
                message.add(sql)
        try:
            results = send_script(self.conn, message.sql)
        except Interrupted as stop:
            raise _Stopped(self._committed(batch, marks, stop.results)) from None
        steps = self._committed(batch, marks, results)
        failed_at = len(results) - 1 if results and not results[-1].ok else None
        if failed_at is None:
            if len(results) < len(message):
                raise MercurioError(f"the server answered {len(results)} of the {len(message)} statements sent",
                                    hint="Check the server log; run `status`, then the command again.")
            return steps, None
        self._rollback_open()
        failed_at, offset = message.failed_entry(results, results[-1].error)
        entry = message.entries[failed_at]
        if entry.tag is None or (entry.statement is not None and len(results) == 1):
            # a PREPARE failed: the server refused the message as a whole (it parses all of it first)
            failure = _StatementFailed(None, results[-1].error, 0, "nothing of it ran.")
            failure.nothing_ran = True
            return steps, failure
        migration, script = batch[entry.tag]
        if entry.statement is None:
            return steps, self._finish_failure(migration, results[-1].error, committing=failed_at == marks[entry.tag][1])
        return steps, _StatementFailed(entry.statement, results[-1].error, offset, ROLLED_BACK_NOTE)

    @staticmethod
    def _committed(batch: list[tuple[Migration, Script]], marks: list[tuple[int, int]], results: list) -> list:
        """The StepResults of the migrations of a batch whose COMMIT is among ``results`` (all of them ok)."""
        steps = []
        for (migration, script), (record, commit) in zip(batch, marks):
            if len(results) <= commit or not results[commit].ok:
                break
            steps.append(StepResult(migration.version, migration.name, float(results[record].value or 0), 0,
                                    script.mode.value))
        return steps

    # --- one migration ---------------------------------------------------------------------------
    def run_one(self, migration: Migration, script: Script, direction: str, *,
                failed: _StatementFailed | None = None) -> StepResult:
        """Run one file; on a lock timeout, retry what did not commit with backoff, then name the blocker.
        ``failed``: its first attempt already failed so (it ran in a batch)."""
        attempt = 0
        while True:
            if failed is None:
                try:
                    if script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION):
                        return self._run_transactional(migration, script, direction)
                    return self._run_statementwise(migration, script, direction)
                except _StatementFailed as failure:
                    failed = failure
                except Interrupted:
                    raise _Stopped([]) from None
            self._retry_or_raise(migration, script, failed, attempt)
            attempt += 1
            failed = None

    def _retry_or_raise(self, migration: Migration, script: Script, failure: _StatementFailed, attempt: int) -> None:
        """Raise the failure as the user sees it, or (a lock timeout with retries left) wait before the next
        try, which runs only what has not committed."""
        if failure.fatal is not None:
            raise failure.fatal
        safety = self.settings.safety
        error = failure.error
        if error.diag.sqlstate != LOCK_NOT_AVAILABLE:
            problem = sql_error(script, failure.statement, error, failure.offset)
            if script.mode not in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION) and problem.hint == _ALREADY_EXISTS_HINT:
                problem.hint = PARTIAL_ALREADY_EXISTS_HINT
            raise MigrationFailed(migration.version, migration.name, problem, failure.state_note) from None
        names = relation_names(failure.statement.tree) if failure.statement else []
        blocking = locks.holders(self.conn, names)
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
        what = "the migration" if script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION) else \
            "from the statement that timed out (what committed before it is not run again)"
        self.emit("warning", f"{where}: lock_timeout ({safety.lock_timeout}) expired waiting for "
                             f"{', '.join(names) or 'a lock'} (blocked by {who}); retry {attempt + 1} of "
                             f"{safety.lock_retries} in {delay:g} s, {what}", version=migration.version)
        time.sleep(delay)

    def _run_transactional(self, migration: Migration, script: Script, direction: str) -> StepResult:
        message = Message()
        message.add(script.begin_statement)
        message.add(history.STEP_START_SQL)
        message.add_file_statements(script.body)
        message.add(history.STEP_END_SQL)
        if faults.ACTIVE:  # every statement boundary becomes a point where the process can die
            results, one_by_one = self._send_one_by_one(message, migration), True
        else:
            results, one_by_one = send_script(self.conn, message.sql), False
        if not results[-1].ok:
            self._rollback_open()
            error = results[-1].error
            if one_by_one:
                entry = message.entries[len(results) - 1]
                offset = int(error.diag.statement_position or 1) - 1
            else:
                failed_at, offset = message.failed_entry(results, error)
                entry = message.entries[failed_at]
            raise _StatementFailed(entry.statement, error, offset, ROLLED_BACK_NOTE)
        duration = float(results[-1].value or 0)
        records = sum(r.rowcount for r, e in zip(results, message.entries) if e.statement and e.statement.counts_rows)
        if direction == "up":
            self._run_verify_sql(migration, ROLLED_BACK_NOTE)
        self._finish(migration, direction, records, script.mode.value, duration_ms=None)
        faults.point(self.conn, f"{migration.version}:committed")
        return StepResult(migration.version, migration.name, duration, records, script.mode.value)

    def _send_one_by_one(self, message: Message, migration: Migration) -> list:
        results = []
        for index, entry in enumerate(message.entries):
            sql = message.sql[entry.offset:message.entries[index + 1].offset] if index + 1 < len(message) else \
                message.sql[entry.offset:]
            results += send_script(self.conn, sql)
            if not results or not results[-1].ok:
                return results
            if index == 1:
                faults.point(self.conn, f"{migration.version}:begun")
            elif entry.statement is not None:
                faults.point(self.conn, f"{migration.version}:after-line-{entry.statement.line}")
        return results

    def record_sql(self, migration: Migration, direction: str, records: int, mode: str, *,
                   duration_ms: float | None = None, note: str | None = None, clear_progress: bool = False
                   ) -> list[str]:
        """The history write of one migration, its migration_log row with the mercurio profile (and the end of
        its statement progress).
        Without ``duration_ms`` the time is the one the server measured between the step markers of the
        migration's own transaction."""
        conn = self.conn
        if duration_ms is None:
            execution_ms, shown_ms = history.STEP_MS_SQL, f"round({history.STEP_MS_SQL}, 1)"
        else:
            execution_ms, shown_ms = literal(conn, duration_ms), literal(conn, f"{duration_ms:.1f}")
        if direction == "up":
            record = self.store.insert_applied_sql().format(
                version=literal(conn, migration.version), name=literal(conn, migration.name),
                checksum=literal(conn, migration.migration.checksum),
                rollback_checksum=literal(conn, migration.rollback.checksum if migration.rollback else None),
                execution_ms=execution_ms, records=literal(conn, records),
                mode=literal(conn, mode), client_host=literal(conn, client_host()),
                tool_version=literal(conn, __version__))
            verb = "applied"
        else:
            record = self.store.delete_applied_sql().format(version=literal(conn, migration.version))
            verb = "rolled back"
        writes = [record]
        if self.log_table is not None:
            notes = literal(conn, note) if note else (
                f"{literal(conn, f'{verb} by mercurio-migrate {__version__} ({mode}, ')} || {shown_ms} || ' ms)'")
            writes.append(self.store.insert_log_sql(self.log_table).format(
                migration_name=literal(conn, migration.id), records=literal(conn, records), notes=notes))
        if clear_progress:
            writes.append(self.store.clear_progress_sql().format(version=literal(conn, migration.version)))
        return writes

    def _finish(self, migration: Migration, direction: str, records: int, mode: str, *,
                duration_ms: float | None, begin: bool = False) -> None:
        """Record the migration and commit: as the user the tool connected as (a role the migration took is
        dropped first), only while this session still holds the migration lock."""
        message = Message()
        if begin:
            message.add("BEGIN")
        for sql in history.RESET_ROLE_STATEMENTS:
            message.add(sql)
        if self.check_lock:
            message.add(history.LOCK_CHECK_SQL)
        for sql in self.record_sql(migration, direction, records, mode, duration_ms=duration_ms,
                                   clear_progress=begin):
            message.add(sql)
        for sql in history.CLEAN_SESSION_STATEMENTS:
            message.add(sql)
        faults.point(self.conn, f"{migration.version}:before-commit")
        commit = message.add("COMMIT")
        results = send_script(self.conn, message.sql)
        if results and not results[-1].ok:
            self._rollback_open()
            raise self._finish_failure(migration, results[-1].error, committing=len(results) - 1 == commit,
                                       transactional=not begin).fatal

    def _finish_failure(self, migration: Migration, error, *, committing: bool,
                        transactional: bool = True) -> _StatementFailed:
        """The tool's record or COMMIT after the migration's statements failed (a deferred constraint fails
        at COMMIT; a migration released the migration lock; the version is already recorded): never retried."""
        diag = error.diag
        note = ("the migration's own transaction was rolled back with it." if transactional else
                "its statements ran and are recorded as done in the progress table, but it is not recorded as "
                "applied.")
        if history.LOCK_LOST_MESSAGE in (diag.message_primary or ""):
            problem = MercurioError(
                "the migration released the migration lock (pg_advisory_unlock_all() or pg_advisory_unlock), so "
                "another run could be applying the same migrations: it is not recorded",
                hint="Remove the advisory-lock calls from the migration; then run the command again.")
        elif diag.sqlstate == UNIQUE_VIOLATION and not committing:
            problem = MercurioError(
                f"{migration.id} is already recorded as applied (another run recorded it meanwhile): it would "
                "be recorded twice", hint="Run `mercurio-migrate status`: another runner applied it; do not "
                                          "run migrations from several places without the lock.")
        else:
            what = "committing it" if committing else "recording its result"
            problem = MercurioError(f"{what} failed: {diag.message_primary}",
                                    hint=diag.message_hint or HINTS.get(diag.sqlstate or ""))
        failure = _StatementFailed(None, error, 0, note)
        failure.fatal = MigrationFailed(migration.version, migration.name, problem, note)
        return failure

    # --- statement by statement -------------------------------------------------------------------
    def _run_statementwise(self, migration: Migration, script: Script, direction: str) -> StepResult:
        file = migration.migration if direction == "up" else migration.rollback
        parts = split_parts(script)
        self._ensure_progress_table()
        progress = self.read_progress(migration.version, direction)
        if progress and any(p.checksum != file.checksum for p in progress):
            raise MigrationFailed(migration.version, migration.name, MercurioError(
                f"{script.path} changed since an interrupted run committed part of it "
                f"({describe_done(progress, script)})",
                hint="Restore the file as it was to let the run resume; or undo by hand what committed and "
                     f"clear the record with `mercurio-migrate resolve {migration.version} --rolled-back`."),
                "nothing was run now.")
        done_through = max((p.statement for p in progress if p.state == "done"), default=0)
        started = {p.statement: p for p in progress if p.state == "started"}
        if done_through:
            when = max(p.at for p in progress)
            self.emit("skip", f"  resuming: statements 1–{done_through} committed in an interrupted run "
                              f"({when:%Y-%m-%d %H:%M:%S}); going on from statement {done_through + 1}",
                      done_through=done_through)
        records = skipped = 0
        started_at = time.perf_counter()
        for part in parts:
            if part.last <= done_through:
                skipped += len(part.statements)
                continue
            for statement in part.statements:
                self.emit("statement", f"  statement {part.first + part.statements.index(statement)}/"
                                       f"{len(script.body)} (line {statement.line}): {statement.first_line}",
                          line=statement.line)
            if part.non_transactional:
                ran = self._run_non_transactional(migration, script, direction, file.checksum, part,
                                                  started.get(part.first), done_through)
                skipped += 0 if ran else 1
            else:
                records += self._run_part(migration, script, direction, file.checksum, part, done_through)
            faults.point(self.conn, f"{migration.version}:after-line-{part.statements[-1].line}")
            done_through = part.last
        duration = round((time.perf_counter() - started_at) * 1000, 3)
        if direction == "up":
            self._run_verify_sql(migration, "its statements ran and stay (recorded as done in the progress "
                                            "table), but it is not recorded as applied; fix the data or the "
                                            "migration, then run the command again.")
        self._finish(migration, direction, records, script.mode.value, duration_ms=duration, begin=True)
        faults.point(self.conn, f"{migration.version}:committed")
        return StepResult(migration.version, migration.name, duration, records, script.mode.value, skipped)

    def _ensure_progress_table(self) -> None:
        if self.conn.execute(f"SELECT to_regclass('{self.store.progress_table}') IS NULL").fetchone()[0]:
            results = send_script(self.conn, f"BEGIN;{self.store.progress_ddl}COMMIT;")
            if results and not results[-1].ok:
                self._rollback_open()
                raise MercurioError(f"creating {self.store.progress_table} failed: "
                                    f"{results[-1].error.diag.message_primary}")

    def read_progress(self, version: str, direction: str) -> list[Progress]:
        rows = self.conn.execute(
            f"SELECT version, direction, checksum, statement, line, state, detail, at FROM {self.store.progress_table} "
            "WHERE version = %s AND direction = %s ORDER BY statement", (version, direction)).fetchall()
        return [Progress(*row) for row in rows]

    def _progress_sql(self, version: str, direction: str, checksum: str, statement: Statement, number: int,
                      state: str, detail: dict | None = None) -> str:
        quote = quoter(self.conn)
        return (f"INSERT INTO {self.store.progress_table} (version, direction, checksum, statement, line, state, "
                f"detail) VALUES ({quote(version)}, {quote(direction)}, {quote(checksum)}, {number}, "
                f"{statement.line}, {quote(state)}, {quote(json.dumps(detail)) if detail else 'NULL'}) "
                "ON CONFLICT (version, direction, statement) DO UPDATE SET state = EXCLUDED.state, "
                "detail = EXCLUDED.detail, checksum = EXCLUDED.checksum, at = clock_timestamp()")

    def _run_part(self, migration: Migration, script: Script, direction: str, checksum: str, part: _Part,
                  done_through: int) -> int:
        """One statement, or one of the file's BEGIN … COMMIT blocks, committed with its progress row. The
        row is written as the user the tool connected as (SET LOCAL: a role the file took stays for its next
        statements, as psql would keep it)."""
        message = Message()
        message.add(part.begin or "BEGIN")
        first = len(message)
        message.add_file_statements(part.statements)
        message.add("SET LOCAL SESSION AUTHORIZATION DEFAULT")
        message.add("SET LOCAL ROLE NONE")
        if self.check_lock:
            message.add(history.LOCK_CHECK_SQL)
        message.add(self._progress_sql(migration.version, direction, checksum, part.statements[-1], part.last, "done"))
        commit = message.add("COMMIT")
        results = send_script(self.conn, message.sql)
        if results and results[-1].ok and len(results) == len(message):
            return sum(r.rowcount for r, e in zip(results[first:], message.entries[first:])
                       if e.statement and e.statement.counts_rows)
        self._rollback_open()
        error = results[-1].error
        failed_at, offset = message.failed_entry(results, error)
        entry = message.entries[failed_at]
        if entry.statement is None and failed_at > first:
            raise self._finish_failure(migration, error, committing=failed_at == commit, transactional=False).fatal
        statement = entry.statement or part.statements[0]
        raise _StatementFailed(statement, error, offset, state_note(script, done_through, part, "it did not take effect"))

    def _run_non_transactional(self, migration: Migration, script: Script, direction: str, checksum: str,
                               part: _Part, started: Progress | None, done_through: int) -> bool:
        """A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY, …): recorded as started
        with what the catalog holds, run, recorded as done. Returns False when an interrupted run had
        completed it (the catalog proves it): it is then only recorded."""
        statement = part.statements[0]
        number = part.first
        def record(state: str, detail: dict | None = None) -> None:
            self._bookkeep(migration, self._progress_sql(migration.version, direction, checksum, statement, number,
                                                         state, detail))

        if started is not None and self._completed_before(statement, started):
            record("done")
            return False
        detail = self._catalog_before(statement)
        record("started", detail)
        results = send_script(self.conn, statement.text)
        if results and results[-1].ok:
            faults.point(self.conn, f"{migration.version}:ran-line-{statement.line}")  # done, not yet recorded
            record("done")
            return True
        self._rollback_open()
        dropped = self._drop_invalid_indexes_built(statement, detail)
        self._bookkeep(migration, f"DELETE FROM {self.store.progress_table} WHERE version = {literal(self.conn, migration.version)} "
                                  f"AND direction = {literal(self.conn, direction)} AND statement = {number}")
        outcome = "it did not take effect"
        if dropped:
            outcome += "; the INVALID index it left (" + ", ".join(dropped) + ") was dropped"
        error = results[-1].error
        raise _StatementFailed(statement, error, int(error.diag.statement_position or 1) - 1,
                               state_note(script, done_through, part, outcome))

    def _bookkeep(self, migration: Migration, sql: str) -> None:
        """A write of the tool's own between two statements of a statement-by-statement migration: in a
        transaction of its own, as the user the tool connected as (SET LOCAL: the role the file may have
        taken stays for its next statements), only while this session holds the migration lock."""
        message = Message()
        for statement in ("BEGIN", "SET LOCAL SESSION AUTHORIZATION DEFAULT", "SET LOCAL ROLE NONE"):
            message.add(statement)
        if self.check_lock:
            message.add(history.LOCK_CHECK_SQL)
        message.add(sql)
        message.add("COMMIT")
        results = send_script(self.conn, message.sql)
        if results and results[-1].ok:
            return
        self._rollback_open()
        raise self._finish_failure(migration, results[-1].error, committing=False, transactional=False).fatal

    # What an interrupted CREATE/DROP INDEX CONCURRENTLY may have done, and how to tell it was ours: the
    # index OIDs of the table before the build started; the OID of the index to drop.
    def _catalog_before(self, statement: Statement) -> dict | None:
        fields = statement.fields
        if statement.kind == "IndexStmt":
            table = _qualified(fields.get("relation", {}))
            row = self.conn.execute(
                "SELECT c.oid::bigint, coalesce(array_agg(i.indexrelid::bigint) FILTER (WHERE i.indexrelid IS NOT "
                "NULL), '{}') FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid "
                "WHERE c.oid = to_regclass(%s) GROUP BY c.oid", (table,)).fetchone()
            return {"table": row[0], "indexes_before": list(row[1])} if row else None
        if statement.kind == "DropStmt" and fields.get("concurrent"):
            names = [".".join(_quote_ident(p["String"]["sval"]) for p in obj.get("List", {}).get("items", []))
                     for obj in fields.get("objects") or ()]
            rows = self.conn.execute("SELECT to_regclass(n)::oid::bigint FROM unnest(%s::text[]) n",
                                     (names,)).fetchall()
            return {"targets": [r[0] for r in rows if r[0] is not None]}
        return None

    def _new_indexes(self, detail: dict) -> list[tuple]:
        """Indexes on the table that were not there when the build started: (oid, schema-qualified name,
        valid, unique, access method, has predicate, column names (None for an expression))."""
        return self.conn.execute(
            "SELECT i.indexrelid::bigint, i.indexrelid::regclass::text, i.indisvalid, i.indisunique, am.amname, "
            "i.indpred IS NOT NULL, ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY "
            "k(attnum, n) LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "AND k.attnum > 0 ORDER BY k.n) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "WHERE i.indrelid = %s::oid AND NOT i.indexrelid::bigint = ANY(%s::bigint[])",
            (detail["table"], detail["indexes_before"])).fetchall()

    @staticmethod
    def _builds(statement: Statement, index: tuple) -> bool:
        """Whether ``index`` (a row of _new_indexes) is what ``statement`` builds: its name when it names one,
        and always its uniqueness, access method, columns and whether it has a predicate."""
        _, name, _, unique, method, has_predicate, columns = index
        fields = statement.fields
        if fields.get("idxname") and name.split(".")[-1].strip('"') != fields["idxname"]:
            return False
        wanted = [p.get("IndexElem", {}).get("name") for p in fields.get("indexParams") or ()]
        return (bool(fields.get("unique")) == unique and (fields.get("accessMethod") or "btree") == method
                and ("whereClause" in fields) == has_predicate and wanted == list(columns[:len(wanted)])
                and len(columns) >= len(wanted))

    def _completed_before(self, statement: Statement, started: Progress) -> bool:
        """An interrupted run of this migration started ``statement``: whether the catalog shows it completed.
        An index it began but left INVALID is dropped (the statement then runs again)."""
        detail = started.detail or {}
        if statement.kind == "IndexStmt" and "table" in detail:
            ours = [index for index in self._new_indexes(detail) if self._builds(statement, index)]
            if len(ours) > 1:
                raise MercurioError(
                    f"line {statement.line}: an interrupted run started this index build, and several new indexes "
                    f"match it ({', '.join(i[1] for i in ours)}): cannot tell which one it built",
                    hint="Drop the ones that are not wanted (DROP INDEX CONCURRENTLY …), then run the command again.")
            if ours and ours[0][2]:
                self.emit("skip", f"  line {statement.line}: index {ours[0][1]} was built by the interrupted run of "
                                  "this migration and is valid: recorded, not built again", line=statement.line)
                return True
            if ours:
                self.emit("warning", f"  line {statement.line}: index {ours[0][1]}, begun by the interrupted run, is "
                                     "INVALID: dropping it and building it again", line=statement.line)
                self.conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {ours[0][1]}")
            return False
        if statement.kind == "DropStmt" and "targets" in detail:
            gone = not self.conn.execute("SELECT count(*) FROM pg_class WHERE oid::bigint = ANY(%s::bigint[])",
                                         (detail["targets"],)).fetchone()[0]
            if gone:
                self.emit("skip", f"  line {statement.line}: the interrupted run of this migration dropped it "
                                  "already: recorded, not run again", line=statement.line)
            return gone
        return False

    def _drop_invalid_indexes_built(self, statement: Statement, detail: dict | None) -> list[str]:
        """After a failed CREATE INDEX CONCURRENTLY: drop the INVALID index it left (only one it built)."""
        if statement.kind != "IndexStmt" or not detail or "table" not in detail:
            return []
        dropped = []
        for index in self._new_indexes(detail):
            if not index[2] and self._builds(statement, index):
                self.conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index[1]}")
                dropped.append(index[1])
        return dropped

    # --- verify.sql -------------------------------------------------------------------------------
    def _run_verify_sql(self, migration: Migration, state_note_text: str) -> None:
        """verify.sql: a statement that raises, or a query that returns no row or whose first column is false or
        NULL, fails the migration."""
        script = self.verify_script(migration)
        if script is None:
            return
        for statement in script.statements:
            results = send_script(self.conn, statement.text)
            last = results[-1] if results else None
            if last is not None and not last.ok:
                self._rollback_open()
                raise MigrationFailed(migration.version, migration.name,
                                      sql_error(script, statement, last.error,
                                                int(last.error.diag.statement_position or 1) - 1),
                                      state_note_text) from None
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
            self._rollback_open()
            location = script.location(statement.start, statement)
            raise MigrationFailed(
                migration.version, migration.name,
                SqlError(location, f"assertion failed: the query returned {got}",
                         hint="verify.sql queries must return true in their first column."),
                state_note_text)


def split_parts(script: Script) -> list[_Part]:
    """The parts a statement-by-statement file commits one at a time. In autocommit mode every statement is
    one (the file's own BEGIN/COMMIT are not in its body); as written, a BEGIN … COMMIT block is one."""
    parts: list[_Part] = []
    block: list[Statement] = []
    begin: Statement | None = None
    body = script.body
    for number, statement in enumerate(body, start=1):
        control = statement.transaction_control
        if script.mode is Mode.AS_WRITTEN and control == "begin":
            begin, block = statement, []
            begin_number = number
        elif script.mode is Mode.AS_WRITTEN and control == "commit" and begin is not None:
            if block:
                parts.append(_Part(begin_number + 1, number - 1, tuple(block), begin.text, False))
            begin, block = None, []
        elif begin is not None:
            block.append(statement)
        elif control == "commit":  # no transaction in progress: psql only warns
            continue
        else:
            parts.append(_Part(number, number, (statement,), None, statement.non_transactional))
    return parts


def refusal(script: Script) -> str | None:
    """Why a file cannot run as a migration though it parses (None: it can): its own ROLLBACK would undo
    it; a BEGIN never committed would be rolled back when the session ends."""
    open_block: Statement | None = None
    for statement in script.statements:
        control = statement.transaction_control
        if control in ("rollback", "rollback_prepared", "prepare"):
            what = {"rollback": "ROLLBACK undoes the migration's own transaction",
                    "prepare": "PREPARE TRANSACTION hands the migration's transaction to a later COMMIT PREPARED",
                    "rollback_prepared": "ROLLBACK PREPARED undoes a prepared transaction"}[control]
            return (f"{script.location(statement.start, statement)}: {what}: a migration must commit what it does "
                    "(to try a change without keeping it, use `mercurio-migrate verify` or `up --dry-run`)")
        if control == "begin":
            open_block = statement
        elif control == "commit":
            open_block = None
    if open_block is not None and script.mode is Mode.AS_WRITTEN:
        return (f"{script.location(open_block.start, open_block)}: this BEGIN is never committed: the session "
                "would end with its transaction open and roll it back")
    return None


def describe_done(progress: list[Progress], script: Script) -> str:
    done = max((p.statement for p in progress if p.state == "done"), default=0)
    started = [p for p in progress if p.state == "started"]
    text = f"statements 1–{done} of {len(script.body)} committed" if done else "no statement committed"
    if started:
        text += f"; statement {started[0].statement} (line {started[0].line}) was started and may have taken effect"
    return text


def state_note(script: Script, done_through: int, part: _Part, outcome: str) -> str:
    """The exact state after a statement-by-statement migration stopped at ``part``."""
    total = len(script.body)
    lines = [s.line for s in script.body]
    failed = f"statement {part.first}" if part.first == part.last else f"statements {part.first}–{part.last}"
    where = f"line {part.statements[0].line}"
    if done_through:
        text = (f"statements 1–{done_through} (lines {lines[0]}–{lines[done_through - 1]}) committed and are recorded "
                f"in the progress table; {failed} ({where}) failed: {outcome}")
    else:
        text = f"nothing of it committed; {failed} ({where}) failed: {outcome}"
    if part.last < total:
        text += f"; statements {part.last + 1}–{total} did not run"
    text += ". It is not recorded as applied. Fix the cause and run the command again: it resumes at " \
            f"statement {part.first}, never running a committed statement twice."
    return text


def sql_error(script: Script, statement: Statement | None, error, offset: int) -> SqlError:
    """A server error located in the file: at the reported position within ``statement`` (``offset``, 0-based
    within the statement), else at the statement's start."""
    diag = error.diag
    if statement is not None:
        file_offset = statement.start + min(max(0, offset), max(0, statement.end - statement.start))
    else:
        file_offset = 0
    location = script.location(file_offset, statement or script.statement_at(file_offset))
    detail = diag.message_detail
    if diag.context:
        detail = f"{detail}\n  CONTEXT: {diag.context}" if detail else f"CONTEXT: {diag.context}"
    hint = diag.message_hint or HINTS.get(diag.sqlstate or "")
    return SqlError(location, diag.message_primary or str(error), detail=detail, hint=hint, sqlstate=diag.sqlstate)


def _qualified(relation: dict) -> str:
    name = _quote_ident(relation.get("relname", ""))
    return f"{_quote_ident(relation['schemaname'])}.{name}" if relation.get("schemaname") else name


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _StatementFailed(Exception):
    """Internal: a statement failed; run_one decides between retrying and reporting."""

    def __init__(self, statement: Statement | None, error, offset: int, state_note: str):
        super().__init__(str(error))
        self.statement = statement
        self.error = error
        self.offset = offset  # 0-based, within the statement, of the server's error position
        self.state_note = state_note
        self.fatal: MercurioError | None = None  # raise this as it is: not the migration's own statement
        self.nothing_ran = False  # a batch refused as a whole before any of it ran


class _Stopped(Exception):
    """Internal: Ctrl-C during a message; ``steps`` of it committed."""

    def __init__(self, steps: list[StepResult], note: str = ""):
        super().__init__("interrupted")
        self.steps = steps
        self.note = note
