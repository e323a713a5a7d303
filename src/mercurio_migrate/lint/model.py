"""What the rules see: a parsed SQL file (statements with positions and transaction facts), the migration
folder it belongs to, the schema replayed from earlier migrations, and the findings they report."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mercurio_migrate.lint import tree
from mercurio_migrate.sqlscript import TRANSACTION_CONTROL, cannot_run_in_transaction, mode_of

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class LintFinding:
    rule: str
    severity: str
    file: str
    line: int
    column: int
    message: str
    fix: str
    statement: int | None = None  # index of the statement it is about; None for a file-level finding

    def as_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "file": self.file, "line": self.line,
                "column": self.column, "message": self.message, "fix": self.fix}


@dataclass(slots=True)
class Stmt:
    index: int
    kind: str  # libpg_query node type, e.g. "IndexStmt"
    node: dict  # that node's fields
    start: int  # character offsets in the file
    end: int
    line: int
    column: int
    explicit_block: bool = False  # written inside the file's own BEGIN … COMMIT
    in_transaction: bool = False  # runs inside a transaction, as the tool executes the file
    lock_timeout: bool = False  # a lock_timeout is set by an earlier statement of the file
    statement_timeout: bool = False
    control: str | None = None  # begin | commit | rollback | savepoint | … for transaction statements
    non_transactional: bool = False  # PostgreSQL refuses it inside a transaction block


class Mode:
    """How the tool runs a file (mirrors sqlscript.Mode's values)."""

    TOOL_TRANSACTION = "transaction"
    OWN_TRANSACTION = "own-transaction"
    AUTOCOMMIT = "autocommit"
    AS_WRITTEN = "as-written"


# one definition of how a file runs, shared with the engine (mercurio_migrate.sqlscript)
_CONTROL = TRANSACTION_CONTROL


@dataclass
class SqlFile:
    path: str
    text: str
    role: str  # "migration", "rollback" or "sql" (a file outside any migration folder)
    statements: list[Stmt] = field(default_factory=list)
    mode: str = Mode.TOOL_TRANSACTION
    syntax_error: tuple[str, int] | None = None  # (message, character offset)
    _line_starts: list[int] = field(default_factory=list, repr=False)
    _byte_map: list[int] | None = field(default=None, repr=False)
    _by_kind: dict[str, list[Stmt]] = field(default_factory=dict, repr=False)
    # facts several rules (and both files of a folder) derive from this file, computed once: see `fact`
    facts: dict = field(default_factory=dict, repr=False, compare=False)
    _walked: dict[int, tuple] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kinds(self):
        """The statement kinds the file holds (a set-like view)."""
        return self._by_kind.keys()

    def of_kind(self, *kinds: str) -> list[Stmt]:
        if len(kinds) == 1:
            return self._by_kind.get(kinds[0], [])
        found = [k for k in kinds if k in self._by_kind]
        if len(found) <= 1:
            return self._by_kind[found[0]] if found else []
        return sorted((s for k in found for s in self._by_kind[k]), key=lambda s: s.index)

    def fact(self, name: str, compute):
        """``compute(self)``, once per file (e.g. the objects it creates, asked for by several rules)."""
        try:
            return self.facts[name]
        except KeyError:
            value = self.facts[name] = compute(self)
            return value

    def walked(self, root: Any) -> list[tuple[str, dict]]:
        """``list(tree.walk(root))`` for a node of this file's tree, walked once however often it is asked."""
        if root is None:
            return []
        entry = self._walked.get(id(root))
        if entry is None or entry[0] is not root:
            entry = self._walked[id(root)] = (root, list(tree.walk(root)), {})  # holding root keeps its id
        return entry[1]

    def nodes(self, root: Any, kind: str) -> list[dict]:
        """Fields of every ``kind`` node under ``root`` (a node of this file's tree), in ``tree.walk`` order."""
        if root is None:
            return []
        self.walked(root)
        _, walked, by_kind = self._walked[id(root)]
        if not by_kind and walked:
            for node_kind, body in walked:
                if node_kind in by_kind:
                    by_kind[node_kind].append(body)
                else:
                    by_kind[node_kind] = [body]
        return by_kind.get(kind, [])

    def char_offset(self, byte_offset: int) -> int:
        """libpg_query reports byte offsets; positions are shown in characters."""
        if self._byte_map is None:
            return byte_offset
        return self._byte_map[min(byte_offset, len(self._byte_map) - 1)]

    def line_column(self, char_offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, char_offset)
        return line, char_offset - self._line_starts[line - 1] + 1

    def position(self, node: Any, stmt: Stmt) -> tuple[int, int]:
        """Line and column of a node, or of its statement when the node carries no location."""
        offset = tree.location(node) if node is not None else None
        if offset is None:
            return stmt.line, stmt.column
        return self.line_column(self.char_offset(offset))


def parse_file(path: str | Path, text: str, role: str) -> SqlFile:
    from pglast.parser import ParseError, parse_sql_json

    sql = SqlFile(path=str(path), text=text, role=role)
    starts = [0]
    position = text.find("\n")
    while position != -1:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    sql._line_starts = starts
    if not text.isascii():
        byte_map: list[int] = []
        for index, char in enumerate(text):
            byte_map.extend([index] * len(char.encode("utf-8")))
        byte_map.append(len(text))
        sql._byte_map = byte_map
    try:
        raw_json = parse_sql_json(text)
    except ParseError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        offset = int(exc.args[1]) if len(exc.args) > 1 and exc.args[1] else 0
        sql.syntax_error = (message.rsplit(", at index", 1)[0], min(offset, len(text)))
        return sql
    raw = json.loads(raw_json).get("stmts") or []
    # set_config() can set a timeout from any expression; only a file whose tree names it needs the walk
    calls_set_config = "set_config" in raw_json.lower()
    by_kind = sql._by_kind
    statements = sql.statements
    byte_map = sql._byte_map
    last = len(byte_map) - 1 if byte_map is not None else 0
    for index, item in enumerate(raw):
        kind, node = tree.unwrap(item.get("stmt"))
        byte_start = item.get("stmt_location", 0)
        length = item.get("stmt_len")
        if byte_map is None:  # ASCII: byte offsets are character offsets
            start = byte_start
            end = byte_start + length if length else len(text)
        else:
            start = byte_map[min(byte_start, last)]
            end = byte_map[min(byte_start + length, last)] if length else len(text)
        end = start + len(text[start:end].rstrip())
        line = bisect.bisect_right(starts, start)
        control = _CONTROL.get(node.get("kind", ""), "other") if kind == "TransactionStmt" else None
        stmt = Stmt(index, kind, node, start, end, line, start - starts[line - 1] + 1, False, False, False, False,
                    control, cannot_run_in_transaction(kind, node))
        statements.append(stmt)
        if kind in by_kind:
            by_kind[kind].append(stmt)
        else:
            by_kind[kind] = [stmt]
    sql.mode = _mode(sql.statements)
    _transaction_facts(sql, calls_set_config)
    return sql


def _mode(statements: list[Stmt]) -> str:
    return mode_of([s.control for s in statements], any(s.non_transactional for s in statements)).value


def _timeout_set(stmt: Stmt, calls_set_config: bool = True) -> tuple[str, bool] | None:
    """(timeout name, SET LOCAL?) for a statement setting lock_timeout or statement_timeout to non-zero."""
    if stmt.kind == "VariableSetStmt":
        name = stmt.node.get("name", "")
        if name not in ("lock_timeout", "statement_timeout") or stmt.node.get("kind") != "VAR_SET_VALUE":
            return None
        for arg in stmt.node.get("args") or ():
            _, value = tree.unwrap(arg)
            if "ival" in value and not value["ival"].get("ival"):
                return None
            if "sval" in value and value["sval"].get("sval", "").strip() in ("0", ""):
                return None
        return name, bool(stmt.node.get("is_local"))
    if not calls_set_config:
        return None
    for kind, body in tree.walk(stmt.node):
        if kind == "FuncCall" and tree.func_name(body) == "set_config":
            args = body.get("args") or []
            name = tree.const_string(args[0]) if args else None
            if name in ("lock_timeout", "statement_timeout"):
                local = len(args) > 2 and tree.unwrap(args[2])[1].get("boolval", {}).get("boolval", False)
                return name, bool(local)
    return None


def _transaction_facts(sql: SqlFile, calls_set_config: bool = True) -> None:
    open_block = False
    session: set[str] = set()
    local: set[str] = set()  # SET LOCAL lasts until the end of the transaction
    for stmt in sql.statements:
        stmt.lock_timeout = "lock_timeout" in session or "lock_timeout" in local
        stmt.statement_timeout = "statement_timeout" in session or "statement_timeout" in local
        stmt.explicit_block = open_block
        if stmt.control == "begin":
            open_block = True
        elif stmt.control in ("commit", "rollback", "prepare"):
            open_block = False
            if sql.mode == Mode.AS_WRITTEN:
                local.clear()
        if sql.mode == Mode.TOOL_TRANSACTION:
            stmt.in_transaction = True
        elif sql.mode == Mode.AUTOCOMMIT:
            stmt.in_transaction = False  # the tool drops BEGIN/COMMIT and runs each statement alone
        else:
            stmt.in_transaction = stmt.explicit_block and stmt.control is None
        timeout = _timeout_set(stmt, calls_set_config)
        if timeout:
            (local if timeout[1] else session).add(timeout[0])
