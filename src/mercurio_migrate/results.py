"""What running migrations gives: progress events, step results, and the failures the executor raises,
with server errors turned into errors located in their file."""

from __future__ import annotations

from typing import NamedTuple

from mercurio_migrate.errors import MercurioError, SqlError
from mercurio_migrate.sqlscript import Script, Statement

ALREADY_EXISTS_HINT = (
    "The object already exists. If an earlier run created it but the history does not say so (history edited "
    "by hand, folder renamed?), record the migration with `mercurio-migrate resolve VERSION --applied`; "
    "otherwise pick another name.")
# a statement-by-statement migration stopped half-way must never be marked applied by hand
PARTIAL_ALREADY_EXISTS_HINT = ("The object already exists: pick another name, drop the existing object first, or "
                               "write `IF NOT EXISTS`; then run the command again (it resumes).")
HINTS = {
    "42P07": ALREADY_EXISTS_HINT,  # duplicate_table (relations and indexes)
    "42710": ALREADY_EXISTS_HINT,  # duplicate_object
    "42723": ALREADY_EXISTS_HINT,  # duplicate_function
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


class StatementFailed(Exception):
    """A statement failed; Executor.run_one decides between retrying and reporting."""

    def __init__(self, statement: Statement | None, error, offset: int, state_note: str):
        super().__init__(str(error))
        self.statement = statement
        self.error = error
        self.offset = offset  # 0-based, within the statement, of the server's error position
        self.state_note = state_note
        self.fatal: MercurioError | None = None  # raise this as it is: not the migration's own statement
        self.nothing_ran = False  # a batch refused as a whole before any of it ran


class Stopped(Exception):
    """Ctrl-C during a message; ``steps`` of it committed."""

    def __init__(self, steps: list[StepResult], note: str = ""):
        super().__init__("interrupted")
        self.steps = steps
        self.note = note
