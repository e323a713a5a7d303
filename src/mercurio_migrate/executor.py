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

import os
import time
from collections.abc import Callable

from mercurio_migrate import __version__, faults, history, locks
from mercurio_migrate.database import (
    BOOL_OID,
    Connection,
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
from mercurio_migrate.results import (
    ALREADY_EXISTS_HINT,
    HINTS,
    PARTIAL_ALREADY_EXISTS_HINT,
    ROLLED_BACK_NOTE,
    Event,
    RunInterrupted,
    StatementFailed,
    StepResult,
    Stopped,
    sql_error,
)
from mercurio_migrate.sqlscript import Mode, Script, relation_names
from mercurio_migrate.statementwise import Progress, StatementwiseRunner, refusal, split_parts

__all__ = ["HINTS", "Event", "Executor", "Progress", "RunInterrupted", "StepResult", "refusal", "split_parts",
           "sql_error"]

LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired
UNIQUE_VIOLATION = "23505"
# a batch (several migrations in one message) is bounded so that progress stays visible and messages small
MAX_BATCH_MIGRATIONS, MAX_BATCH_CHARS = 500, 1_000_000
# statements that would drop a batch's prepared bookkeeping (DEALLOCATE ALL): such a migration runs alone
_DROPS_PREPARED = frozenset({"DeallocateStmt", "DiscardStmt"})

class Executor(StatementwiseRunner):
    def __init__(self, conn: Connection, settings, emit: Callable[..., None], store: history.HistoryStore,
                 log_table: str | None,
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
        except Stopped as stop:
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
            raise Stopped(self._committed(batch, marks, stop.results)) from None
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
            failure = StatementFailed(None, results[-1].error, 0, "nothing of it ran.")
            failure.nothing_ran = True
            return steps, failure
        migration, script = batch[entry.tag]
        if entry.statement is None:
            return steps, self._finish_failure(migration, results[-1].error, committing=failed_at == marks[entry.tag][1])
        return steps, StatementFailed(entry.statement, results[-1].error, offset, ROLLED_BACK_NOTE)

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
                failed: StatementFailed | None = None) -> StepResult:
        """Run one file; on a lock timeout, retry what did not commit with backoff, then name the blocker.
        ``failed``: its first attempt already failed so (it ran in a batch)."""
        attempt = 0
        while True:
            if failed is None:
                try:
                    if script.mode in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION):
                        return self._run_transactional(migration, script, direction)
                    return self._run_statementwise(migration, script, direction)
                except StatementFailed as failure:
                    failed = failure
                except Interrupted:
                    raise Stopped([]) from None
            self._retry_or_raise(migration, script, failed, attempt)
            attempt += 1
            failed = None

    def _retry_or_raise(self, migration: Migration, script: Script, failure: StatementFailed, attempt: int) -> None:
        """Raise the failure as the user sees it, or (a lock timeout with retries left) wait before the next
        try, which runs only what has not committed."""
        if failure.fatal is not None:
            raise failure.fatal
        safety = self.settings.safety
        error = failure.error
        if error.diag.sqlstate != LOCK_NOT_AVAILABLE:
            problem = sql_error(script, failure.statement, error, failure.offset)
            if script.mode not in (Mode.TOOL_TRANSACTION, Mode.OWN_TRANSACTION) and problem.hint == ALREADY_EXISTS_HINT:
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
            raise StatementFailed(entry.statement, error, offset, ROLLED_BACK_NOTE)
        duration = float(results[-1].value or 0)
        records = sum(r.rowcount for r, e in zip(results, message.entries) if e.statement and e.statement.counts_rows)
        if direction == "up":
            self._run_verify_sql(migration, ROLLED_BACK_NOTE)
        self._finish(migration, direction, records, script.mode.value, duration_ms=None)
        faults.point(self.conn, f"{migration.version}:committed")
        return StepResult(migration.version, migration.name, duration, records, script.mode.value)

    def _send_one_by_one(self, message: Message, migration: Migration) -> list:
        results = []
        for index, (entry, sql) in enumerate(zip(message.entries, message.pieces)):
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
                        transactional: bool = True) -> StatementFailed:
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
        failure = StatementFailed(None, error, 0, note)
        failure.fatal = MigrationFailed(migration.version, migration.name, problem, note)
        return failure

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


