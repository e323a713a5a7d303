"""SQL files as statements, parsed by PostgreSQL's own parser (pglast); how a file must be run.

Never splits on ``;``: statement boundaries and positions come from the parser, so semicolons in
strings, dollar-quoted function bodies and comments are handled exactly as PostgreSQL does.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from mercurio_migrate.errors import SqlError, SqlLocation


class Mode(StrEnum):
    """How a file is executed."""

    TOOL_TRANSACTION = "transaction"  # no transaction control in the file: the tool wraps it in one
    OWN_TRANSACTION = "own-transaction"  # BEGIN … COMMIT around the whole file: run as that one transaction
    AUTOCOMMIT = "autocommit"  # holds statements that cannot run in a transaction block
    AS_WRITTEN = "as-written"  # other transaction control (several blocks, …): run exactly as written


@dataclass(frozen=True)
class Statement:
    index: int
    start: int  # character offset of the statement's first character in the file
    end: int  # character offset just past its last character (before any ';')
    line: int  # 1-based
    column: int  # 1-based
    text: str
    kind: str  # pglast node type, e.g. "IndexStmt"
    node: Any = field(compare=False, repr=False)
    transaction_control: str | None = None  # begin | commit | rollback | savepoint | prepare | …
    non_transactional: bool = False

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0].rstrip() if self.text.strip() else ""

    @property
    def counts_rows(self) -> bool:
        """Whether the statement's row count is "records processed" (DML and CREATE TABLE AS)."""
        if self.kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt", "CreateTableAsStmt"):
            return True
        return self.kind == "SelectStmt" and getattr(self.node, "intoClause", None) is not None


@dataclass(frozen=True)
class Script:
    path: str
    text: str
    statements: tuple[Statement, ...]
    mode: Mode

    @property
    def body(self) -> tuple[Statement, ...]:
        """The statements the tool sends: the file's own BEGIN/COMMIT removed in the modes that replace them."""
        if self.mode is Mode.OWN_TRANSACTION:
            return self.statements[1:-1]
        if self.mode is Mode.AUTOCOMMIT:
            return tuple(s for s in self.statements if s.transaction_control not in ("begin", "commit"))
        return self.statements

    @property
    def begin_statement(self) -> str:
        """The BEGIN to open the migration's transaction with (the file's own, keeping its options)."""
        if self.mode is Mode.OWN_TRANSACTION:
            return self.statements[0].text
        return "BEGIN"

    def location(self, offset: int, statement: Statement | None = None) -> SqlLocation:
        line, column = line_column(self.text, offset)
        first = statement.first_line if statement else ""
        return SqlLocation(self.path, line, column, first)

    def statement_at(self, offset: int) -> Statement | None:
        for statement in self.statements:
            if statement.start <= offset < max(statement.end, statement.start + 1):
                return statement
        return None


_TX_KINDS = {
    0: "begin", 1: "begin", 2: "commit", 3: "rollback", 4: "savepoint", 5: "release",
    6: "rollback_to", 7: "prepare", 8: "commit_prepared", 9: "rollback_prepared",
}


def _transaction_control(node: Any) -> str | None:
    if type(node).__name__ != "TransactionStmt":
        return None
    return _TX_KINDS.get(int(node.kind), "other")


def _has_concurrently_option(params: Any) -> bool:
    return any(getattr(p, "defname", None) == "concurrently" for p in (params or ()))


def cannot_run_in_transaction(node: Any) -> bool:
    """Statements PostgreSQL refuses inside a transaction block."""
    kind = type(node).__name__
    if kind == "IndexStmt":
        return bool(node.concurrent)
    if kind == "DropStmt":
        return bool(node.concurrent)
    if kind == "ReindexStmt":
        return _has_concurrently_option(node.params) or int(node.kind) in (3, 4)  # SYSTEM, DATABASE
    if kind == "VacuumStmt":
        return bool(node.is_vacuumcmd)
    if kind == "ClusterStmt":
        return node.relation is None
    if kind == "AlterTableStmt":
        for cmd in node.cmds or ():
            definition = getattr(cmd, "def_", None)
            if type(definition).__name__ == "PartitionCmd" and getattr(definition, "concurrent", False):
                return True
        return False
    return kind in {
        "CreatedbStmt", "DropdbStmt", "AlterSystemStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt",
        "CreateSubscriptionStmt", "DropSubscriptionStmt",
    }


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line_starts = _line_starts(text)
    line = bisect.bisect_right(line_starts, offset)
    return line, offset - line_starts[line - 1] + 1


def _line_starts(text: str) -> list[int]:
    starts = [0]
    position = text.find("\n")
    while position != -1:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return starts


def parse(text: str, path: str | Path = "<sql>") -> Script:
    """Parse a whole file. A syntax error raises SqlError naming file, line and column."""
    from pglast.parser import ParseError, parse_sql

    path = str(path)
    try:
        raw_statements = parse_sql(text)
    except ParseError as exc:
        message, offset = (exc.args + (0,))[:2] if len(exc.args) >= 2 else (str(exc), 0)
        message = str(message)
        # pglast appends ", at index N": the position is reported as line:column instead
        message = message.rsplit(", at index", 1)[0]
        line, column = line_column(text, min(int(offset or 0), len(text)))
        lines = text.splitlines()
        first = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        raise SqlError(SqlLocation(path, line, column, first), message,
                       hint="Fix the syntax at that position; nothing was run.", sqlstate="42601") from None
    line_starts = _line_starts(text)
    statements: list[Statement] = []
    for index, raw in enumerate(raw_statements or ()):
        start = raw.stmt_location or 0
        length = raw.stmt_len or (len(text) - start)
        end = start + length
        body = text[start:end].rstrip()
        end = start + len(body)
        line = bisect.bisect_right(line_starts, start)
        node = raw.stmt
        statements.append(
            Statement(
                index=index,
                start=start,
                end=end,
                line=line,
                column=start - line_starts[line - 1] + 1,
                text=body,
                kind=type(node).__name__,
                node=node,
                transaction_control=_transaction_control(node),
                non_transactional=cannot_run_in_transaction(node),
            )
        )
    return Script(path=path, text=text, statements=tuple(statements), mode=_mode(statements))


def _mode(statements: list[Statement]) -> Mode:
    if any(s.non_transactional for s in statements):
        return Mode.AUTOCOMMIT
    controls = [s.transaction_control for s in statements]
    if not any(c in ("begin", "commit", "rollback", "prepare", "commit_prepared", "rollback_prepared")
               for c in controls):
        return Mode.TOOL_TRANSACTION
    if (
        len(statements) >= 2
        and controls[0] == "begin"
        and controls[-1] == "commit"
        and all(c in (None, "savepoint", "release", "rollback_to") for c in controls[1:-1])
    ):
        return Mode.OWN_TRANSACTION
    return Mode.AS_WRITTEN
