"""Statement-by-statement migrations (a file that cannot run in one transaction): what commits at once,
the progress table's rows, and how a resumed run recognises what an interrupted one did.

Each part (one statement, or one of the file's own BEGIN … COMMIT blocks) is recorded in the progress table
in the same transaction as its statements; a statement that cannot run in a transaction is recorded as
started before it runs, with what the catalog held then, and as done after. A retry or the next run
resumes after the last committed part and never runs a committed statement twice; a CONCURRENTLY
statement it finds started is skipped only when the catalog shows that it completed (an index built after
that start, matching the statement's definition).
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

from mercurio_migrate import faults, history
from mercurio_migrate.database import literal, quote_ident, quoter, send_script
from mercurio_migrate.errors import MercurioError, MigrationFailed
from mercurio_migrate.layout import Migration
from mercurio_migrate.message import Message
from mercurio_migrate.results import StatementFailed, StepResult
from mercurio_migrate.sqlscript import Mode, Script, Statement


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


class Part(NamedTuple):
    """What a statement-by-statement file commits at once: one statement, or one of its BEGIN … COMMIT blocks
    (``begin``: the block's BEGIN; None for a lone statement). ``first``/``last``: 1-based statement numbers
    in the file's body."""

    first: int
    last: int
    statements: tuple[Statement, ...]
    begin: str | None
    non_transactional: bool


class StatementwiseRunner:
    """The statement-by-statement half of Executor (which provides conn, emit, check_lock, store, _finish,
    _finish_failure, _rollback_open and _run_verify_sql)."""

    def _run_statementwise(self, migration: Migration, script: Script, direction: str) -> StepResult:
        file = migration.migration if direction == "up" else migration.rollback
        parts = split_parts(script)
        self._ensure_progress_table()
        progress = self.read_progress(migration.version, direction)
        if progress and any(p.checksum != file.checksum for p in progress):
            raise MigrationFailed(migration.version, migration.name, MercurioError(
                f"{script.path} changed since an interrupted run committed part of it "
                f"({describe_done(progress, len(script.body))})",
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

    def _run_part(self, migration: Migration, script: Script, direction: str, checksum: str, part: Part,
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
        raise StatementFailed(statement, error, offset, state_note(script, done_through, part, "it did not take effect"))

    def _run_non_transactional(self, migration: Migration, script: Script, direction: str, checksum: str,
                               part: Part, started: Progress | None, done_through: int) -> bool:
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
        raise StatementFailed(statement, error, int(error.diag.statement_position or 1) - 1,
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
            names = [".".join(quote_ident(p["String"]["sval"]) for p in obj.get("List", {}).get("items", []))
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

def split_parts(script: Script) -> list[Part]:
    """The parts a statement-by-statement file commits one at a time. In autocommit mode every statement is
    one (the file's own BEGIN/COMMIT are not in its body); as written, a BEGIN … COMMIT block is one."""
    parts: list[Part] = []
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
                parts.append(Part(begin_number + 1, number - 1, tuple(block), begin.text, False))
            begin, block = None, []
        elif begin is not None:
            block.append(statement)
        elif control == "commit":  # no transaction in progress: psql only warns
            continue
        else:
            parts.append(Part(number, number, (statement,), None, statement.non_transactional))
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


def describe_done(progress: list[Progress], total: int | None = None) -> str:
    """What an interrupted run committed, from its progress rows, in words (``total``: the file's statements)."""
    done = max((p.statement for p in progress if p.state == "done"), default=0)
    started = [p for p in progress if p.state == "started"]
    of = f" of {total}" if total is not None else ""
    text = f"statements 1–{done}{of} committed" if done else "no statement committed"
    if started:
        text += f"; statement {started[0].statement} (line {started[0].line}) was started and may have taken effect"
    return text


def state_note(script: Script, done_through: int, part: Part, outcome: str) -> str:
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


def _qualified(relation: dict) -> str:
    name = quote_ident(relation.get("relname", ""))
    return f"{quote_ident(relation['schemaname'])}.{name}" if relation.get("schemaname") else name


