"""Every failure a user can meet is one of these; the CLI maps them to exit codes.

Exit codes: 1 = the operation failed (SQL error, drift, lock timeout, server unreachable);
2 = bad usage, configuration or migration layout.
"""

from __future__ import annotations

from typing import NamedTuple


class MercurioError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def as_dict(self) -> dict:
        data = {"type": type(self).__name__, "message": self.message, "exit_code": self.exit_code}
        if self.hint:
            data["hint"] = self.hint
        return data


class UsageError(MercurioError):
    """Bad arguments or configuration."""

    exit_code = 2


class LayoutProblem(NamedTuple):
    path: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class LayoutError(MercurioError):
    """One or more migration folders are malformed; all of them are listed."""

    exit_code = 2

    def __init__(self, problems: list[LayoutProblem]):
        self.problems = problems
        lines = [str(p) for p in problems]
        super().__init__(
            f"{len(problems)} problem(s) in the migrations folder; nothing was run:\n  " + "\n  ".join(lines),
            hint="Fix each folder named above, then run the command again.",
        )

    def as_dict(self) -> dict:
        data = super().as_dict()
        data["problems"] = [{"path": p.path, "message": p.message, "severity": p.severity} for p in self.problems]
        return data


class SqlLocation(NamedTuple):
    file: str
    line: int
    column: int
    statement_first_line: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SqlError(MercurioError):
    """A statement failed (or did not parse). Names file, line, column and PostgreSQL's own words."""

    def __init__(
        self,
        location: SqlLocation,
        message: str,
        *,
        detail: str | None = None,
        hint: str | None = None,
        sqlstate: str | None = None,
        context: str = "",
    ):
        self.location = location
        self.pg_message = message
        self.detail = detail
        self.sqlstate = sqlstate
        text = f"{location}: {context}{message}"
        if location.statement_first_line:
            text += f"\n  in statement: {location.statement_first_line}"
        if detail:
            text += f"\n  DETAIL: {detail}"
        super().__init__(text, hint=hint)

    def as_dict(self) -> dict:
        data = super().as_dict()
        data.update(
            file=self.location.file,
            line=self.location.line,
            column=self.location.column,
            statement=self.location.statement_first_line,
            pg_message=self.pg_message,
            detail=self.detail,
            sqlstate=self.sqlstate,
        )
        return data


class PsqlInputError(SqlError):
    """A file holds psql input that is not SQL (a meta-command such as ``\\connect``, or COPY data): it
    must be rewritten, like a layout error, so exit code 2."""

    exit_code = 2


class MigrationFailed(MercurioError):
    """A migration did not complete; wraps the SqlError and says what state the database is in."""

    def __init__(self, version: str, name: str, cause: MercurioError, state_note: str):
        self.version = version
        self.name = name
        self.cause = cause
        self.state_note = state_note
        super().__init__(f"migration {version}_{name} failed: {cause.message}\n  {state_note}", hint=cause.hint)

    def as_dict(self) -> dict:
        data = super().as_dict()
        data.update(version=self.version, name=self.name, cause=self.cause.as_dict(), state=self.state_note)
        return data


# how a drifted file whose only change is whitespace at line ends is named (layout.drifted_files)
WHITESPACE_ONLY = "(whitespace at line ends only)"


class DriftError(MercurioError):
    """Applied migrations whose files changed since they ran."""

    def __init__(self, drifted: list[str]):
        self.drifted = drifted
        hint = ("Restore the files, or record the new checksums with `mercurio-migrate resolve VERSION --applied`, "
                "or pass --allow-drift if you know the change is harmless.")
        if any(WHITESPACE_ONLY in entry for entry in drifted):
            hint += (" Whitespace at a line's end changes what SQL does only inside a string that spans lines: "
                     "if none does, the change is harmless.")
        super().__init__("applied migration files changed since they ran: " + ", ".join(drifted), hint=hint)


class ConnectionFailed(MercurioError):
    """The server could not be reached or refused us. Never carries a password."""


class LockTimeout(MercurioError):
    """Another process held the migration lock (or a table lock) too long."""
