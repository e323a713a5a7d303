"""SQL files as statements, parsed by PostgreSQL's own parser (pglast); how a file must be run.

Never splits on ``;``: statement boundaries and positions come from the parser, so semicolons in
strings, dollar-quoted function bodies and comments are handled exactly as PostgreSQL does.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from mercurio_migrate.errors import PsqlInputError, SqlError, SqlLocation


class Mode(StrEnum):
    """How a file is executed."""

    TOOL_TRANSACTION = "transaction"  # no transaction control in the file: the tool wraps it in one
    OWN_TRANSACTION = "own-transaction"  # BEGIN … COMMIT around the whole file: run as that one transaction
    AUTOCOMMIT = "autocommit"  # holds statements that cannot run in a transaction block
    AS_WRITTEN = "as-written"  # other transaction control (several blocks, …): run exactly as written


class Trees:
    """A file's parse trees (one per statement), decoded from libpg_query's JSON when first read: `up` and
    `status` decide what they need from each statement's kind, computed ahead, and never read them."""

    __slots__ = ("_json", "_trees")

    def __init__(self, json_text: str, trees: list[dict] | None = None) -> None:
        self._json, self._trees = json_text, trees

    def __getitem__(self, index: int) -> dict:
        if self._trees is None:
            import json

            self._trees = [raw["stmt"] for raw in json.loads(self._json).get("stmts", [])]
        return self._trees[index]

    # two parses of the same text are equal, wherever they were parsed
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trees) and other._json == self._json

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"Trees({len(self._json)} characters of JSON)"


class Statement(NamedTuple):
    """One statement of a file (a tuple: a migration set holds thousands, built when each command starts)."""

    index: int
    start: int  # character offset of the statement's first character in the file
    end: int  # character offset just past its last character (before any ';')
    line: int  # 1-based
    column: int  # 1-based
    text: str
    kind: str  # parse-tree node type, e.g. "IndexStmt"
    trees: Trees  # the file's parse trees
    transaction_control: str | None = None  # begin | commit | rollback | savepoint | prepare | …
    non_transactional: bool = False

    @property
    def tree(self) -> dict:
        """libpg_query's JSON parse tree of the statement's node: {node type: fields}."""
        return self.trees[self.index]

    @property
    def fields(self) -> dict:
        """The node's fields (absent fields are false, zero or empty)."""
        return self.tree.get(self.kind, {})

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0].rstrip() if self.text.strip() else ""

    @property
    def counts_rows(self) -> bool:
        """Whether the statement's row count is "records processed" (DML and CREATE TABLE AS)."""
        if self.kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt", "CreateTableAsStmt"):
            return True
        return self.kind == "SelectStmt" and "intoClause" in self.fields


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


TRANSACTION_CONTROL = {
    "TRANS_STMT_BEGIN": "begin", "TRANS_STMT_START": "begin", "TRANS_STMT_COMMIT": "commit",
    "TRANS_STMT_ROLLBACK": "rollback", "TRANS_STMT_SAVEPOINT": "savepoint", "TRANS_STMT_RELEASE": "release",
    "TRANS_STMT_ROLLBACK_TO": "rollback_to", "TRANS_STMT_PREPARE": "prepare",
    "TRANS_STMT_COMMIT_PREPARED": "commit_prepared", "TRANS_STMT_ROLLBACK_PREPARED": "rollback_prepared",
}


def _transaction_control(kind: str, fields: dict) -> str | None:
    if kind != "TransactionStmt":
        return None
    return TRANSACTION_CONTROL.get(fields.get("kind", ""), "other")


def _has_concurrently_option(params: list | None) -> bool:
    return any(p.get("DefElem", {}).get("defname") == "concurrently" for p in params or ())


def cannot_run_in_transaction(kind: str, fields: dict) -> bool:
    """Statements PostgreSQL refuses inside a transaction block."""
    if kind in ("IndexStmt", "DropStmt"):
        return bool(fields.get("concurrent"))
    if kind == "ReindexStmt":
        return _has_concurrently_option(fields.get("params")) or fields.get("kind") in (
            "REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE")
    if kind == "VacuumStmt":
        return bool(fields.get("is_vacuumcmd"))
    if kind == "ClusterStmt":
        return "relation" not in fields
    if kind == "AlterTableStmt":
        return any(cmd.get("AlterTableCmd", {}).get("def", {}).get("PartitionCmd", {}).get("concurrent")
                   for cmd in fields.get("cmds") or ())
    return kind in {
        "CreatedbStmt", "DropdbStmt", "AlterSystemStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt",
        "CreateSubscriptionStmt", "DropSubscriptionStmt",
    }


def walk(tree: Any):
    """Every node of a JSON parse tree, depth first, as (node type or None, fields dict)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if len(item) == 1:
                (key, value), = item.items()
                if isinstance(value, dict) and key[:1].isupper():
                    yield key, value
                    stack.append(value)
                    continue
            yield None, item
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend(item)


def relation_names(tree: Any) -> list[str]:
    """Relations a statement refers to (RangeVar nodes), schema-qualified where written so."""
    found: list[str] = []
    for _, fields in walk(tree):
        name = fields.get("relname")
        if isinstance(name, str):
            qualified = f"{fields['schemaname']}.{name}" if fields.get("schemaname") else name
            if qualified not in found:
                found.append(qualified)
    return found


def function_names(tree: Any) -> list[str]:
    """Names of the functions a statement calls (FuncCall nodes), lower-cased, without schema."""
    names = []
    for kind, fields in walk(tree):
        if kind == "FuncCall":
            parts = fields.get("funcname") or []
            if parts:
                names.append(parts[-1].get("String", {}).get("sval", "").lower())
    return names


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


def parse_outcome(text: str, keep_trees: bool = True) -> tuple:
    """What PostgreSQL's parser makes of a file, as plain data:
    ("parsed", the JSON parse tree, a row per statement, the decoded trees or None) or ("error", message,
    offset). A row: (start, end, line, column, kind, transaction control, cannot run in a transaction), the
    offsets in characters, the end before any ';' and trailing blanks. ``keep_trees``: False drops the decoded
    trees (a child sends the JSON instead: decoding again is cheaper than sending objects)."""
    import json

    from pglast.parser import ParseError, parse_sql_json

    try:
        json_text = parse_sql_json(text)
    except ParseError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        position = exc.args[1] if len(exc.args) > 1 else None  # pglast gives a 0-based character index
        offset = position if isinstance(position, int) and 0 <= position <= len(text) else 0
        return ("error", message, offset)
    raw_statements = json.loads(json_text).get("stmts", [])
    to_char = _byte_to_char(text)
    line_starts = _line_starts(text)
    rows, trees = [], []
    for raw in raw_statements:
        byte_start = raw.get("stmt_location", 0)
        byte_length = raw.get("stmt_len", 0)
        start = to_char(byte_start)
        end = to_char(byte_start + byte_length) if byte_length else len(text)
        end = _code_end(text, start, end)
        line = bisect.bisect_right(line_starts, start)
        tree = raw["stmt"]
        (kind, fields), = tree.items()
        rows.append((start, end, line, start - line_starts[line - 1] + 1, kind, _transaction_control(kind, fields),
                     cannot_run_in_transaction(kind, fields)))
        trees.append(tree)
    return ("parsed", json_text, rows, trees if keep_trees else None)


def parse(text: str, path: str | Path = "<sql>", *, outcome: tuple | None = None) -> Script:
    """Parse a whole file. A syntax error raises SqlError naming file, line and column.
    ``outcome``: parse_outcome(text), when it was computed ahead (in a child process)."""
    path = str(path)
    outcome = outcome or parse_outcome(text)
    if outcome[0] == "error":
        _, message, offset = outcome
        psql = psql_input(text, offset)
        if psql is not None:
            where, explanation, hint = psql
            line, column = line_column(text, where)
            raise PsqlInputError(SqlLocation(path, line, column), explanation, hint=hint) from None
        line, column = line_column(text, min(offset, len(text)))
        lines = text.splitlines()
        first = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        raise SqlError(SqlLocation(path, line, column, first), message,
                       hint="Fix the syntax at that position; nothing was run.", sqlstate="42601") from None
    _, json_text, rows, decoded = outcome
    trees = Trees(json_text, decoded)
    statements = tuple(
        Statement(index, start, end, line, column, text[start:end], kind, trees, control, blocked)
        for index, (start, end, line, column, kind, control, blocked) in enumerate(rows))
    return Script(path=path, text=text, statements=statements, mode=_mode(statements))


def _code_end(text: str, start: int, end: int) -> int:
    """Where a statement's code ends: before the ';', trailing blanks and trailing comments. The parser's
    boundary runs up to the ';' (or to the end of the file), so a comment there would belong to the
    statement's text, and anything the tool sends after it (a ';', its own SQL) would land inside the
    comment. Only a statement whose tail may be a comment is scanned (the scanner knows comments from
    strings)."""
    end = start + len(text[start:end].rstrip())
    tail = text[start:end]
    if "--" not in tail[tail.rfind("\n") + 1:] and not tail.endswith("*/"):
        return end
    from pglast.parser import scan

    code = [token for token in scan(tail) if token.name not in ("SQL_COMMENT", "C_COMMENT")]
    if not code:
        return end
    return start + code[-1].end + 1  # pglast gives character offsets, the end inclusive


# --- psql input that is not SQL ---------------------------------------------------------------------------
# Files written for psql (pg_dump's output, scripts run with psql -f) hold lines psql handles itself: its
# meta-commands, and the data lines after COPY … FROM stdin. The server's parser stops there with `syntax
# error at or near "\"` (or at the first data line); psql_input() turns that into what the line is and what
# to do instead. It looks only where the parser failed, so a backslash inside a string or a dollar-quoted
# body, which the parser reads as SQL, never counts.

_RUNS_ELSEWHERE = ("a migration runs on the database mercurio-migrate is connected to, over that one "
                   "connection", "run each database's migrations with its own DATABASE_URL, and delete this line")
_INCLUDE = ("mercurio-migrate sends this file alone to the server and reads no other file",
            "put the SQL of that file here, or in a migration of its own, and delete this line")
_VARIABLES = ("psql variables are not supported", "write the value into the SQL itself (SET for a setting)")
_CONDITIONALS = ("psql conditionals are not supported",
                 "keep the statements that should run, or decide in SQL (a DO block with IF)")
_RESTRICT = ("pg_dump writes \\restrict and \\unrestrict lines (since its August 2025 releases: 17.6, 16.10, "
             "15.14, 14.19, 13.22) to guard psql while it restores a dump; they mean nothing to mercurio-migrate",
             "delete the \\restrict line and the \\unrestrict line at the end of the file")
_CLIENT_COPY = ("\\copy reads or writes a file on the client through psql",
                "load the rows with INSERT … VALUES, or COPY … FROM a file on the database server")
_DISPLAY = ("it only changes what psql prints", "delete this line")
_META_COMMANDS = {
    "c": _RUNS_ELSEWHERE, "connect": _RUNS_ELSEWHERE,
    "i": _INCLUDE, "ir": _INCLUDE, "include": _INCLUDE, "include_relative": _INCLUDE,
    "set": _VARIABLES, "unset": _VARIABLES, "gset": _VARIABLES, "getenv": _VARIABLES, "prompt": _VARIABLES,
    "if": _CONDITIONALS, "elif": _CONDITIONALS, "else": _CONDITIONALS, "endif": _CONDITIONALS,
    "restrict": _RESTRICT, "unrestrict": _RESTRICT,
    "copy": _CLIENT_COPY,
    "echo": _DISPLAY, "qecho": _DISPLAY, "warn": _DISPLAY, "pset": _DISPLAY, "timing": _DISPLAY, "x": _DISPLAY,
    "a": _DISPLAY, "t": _DISPLAY, "encoding": _DISPLAY, "o": _DISPLAY, "out": _DISPLAY,
    "g": ("\\g sends the statement before it", "end that statement with ; instead, and delete \\g"),
    "gexec": ("\\gexec runs each value the query returns as a statement, in psql",
              "write those statements out in the file (or build and EXECUTE them in a DO block)"),
}
_OTHER_META_COMMAND = ("mercurio-migrate sends the file to the server as SQL, and psql commands are not SQL",
                       "delete this line, or do in SQL what it did")


def psql_input(text: str, offset: int) -> tuple[int, str, str] | None:
    """When the parser failed (at character ``offset``) on psql input that is not SQL: (the character offset
    to name, what it is, what to do); else None."""
    offset = min(offset, len(text))
    copy = _copy_before(text, offset)
    if copy is not None:
        copy_start, data_start = copy
        data_line = line_column(text, data_start)[0]
        return (copy_start, f"COPY … FROM stdin followed by its data (from line {data_line}), as pg_dump writes "
                            "it: psql streams those lines to the server, but a migration is sent as SQL and "
                            "cannot carry data after a COPY",
                "Load the rows with INSERT … VALUES (pg_dump --inserts writes them so) or COPY … FROM a file "
                "on the database server, and delete the data lines and their closing \\. line.")
    if text[offset:offset + 1] != "\\":
        return None
    line_end = text.find("\n", offset)
    command_line = text[offset:line_end if line_end != -1 else len(text)].rstrip()
    verb = command_line[1:].split(None, 1)[0] if command_line[1:2].strip() else ""
    verb = verb.split("\\", 1)[0]  # a command's name ends at the next backslash too (`\x\g` is two commands)
    if not verb or not (verb[0].isalpha() or verb in (".", "!", "?")):
        return None
    what, instead = _META_COMMANDS.get(verb, _OTHER_META_COMMAND)
    shown = command_line if len(command_line) <= 60 else command_line[:57] + "..."
    return offset, f"psql meta-command `{shown}` is not SQL: {what}", instead[0].upper() + instead[1:] + "."


def _copy_before(text: str, offset: int) -> tuple[int, int] | None:
    """(where the statement starts, where the next line starts) when the statement right before the one
    the parser failed in is COPY … FROM stdin: the failure is then in its data."""
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text[:offset])
    except ParseError:
        return None
    ends = [token.end for token in tokens if token.name == "ASCII_59"]  # the semicolons the lexer saw
    if not ends:
        return None
    outcome = parse_outcome(text[:ends[-1] + 1])
    if outcome[0] != "parsed" or not outcome[2]:
        return None
    start, kind = outcome[2][-1][0], outcome[2][-1][4]
    if kind != "CopyStmt":
        return None
    fields = outcome[3][-1]["CopyStmt"]
    if not fields.get("is_from") or "filename" in fields:
        return None
    line_end = text.find("\n", ends[-1])
    return start, (line_end + 1 if line_end != -1 else len(text))


def _byte_to_char(text: str):
    """libpg_query reports UTF-8 byte offsets; Python slices by character."""
    if text.isascii():
        return lambda offset: offset
    encoded = text.encode("utf-8")
    return lambda offset: len(encoded[:offset].decode("utf-8", errors="ignore"))


def _mode(statements: tuple[Statement, ...]) -> Mode:
    return mode_of([s.transaction_control for s in statements], any(s.non_transactional for s in statements))


def mode_of(controls: list[str | None], has_non_transactional: bool) -> Mode:
    """How a file runs, from each statement's transaction control and whether any cannot run in a block."""
    if has_non_transactional:
        return Mode.AUTOCOMMIT
    if not any(c in ("begin", "commit", "rollback", "prepare", "commit_prepared", "rollback_prepared")
               for c in controls):
        return Mode.TOOL_TRANSACTION
    if (
        len(controls) >= 2
        and controls[0] == "begin"
        and controls[-1] == "commit"
        and all(c in (None, "savepoint", "release", "rollback_to") for c in controls[1:-1])
    ):
        return Mode.OWN_TRANSACTION
    return Mode.AS_WRITTEN
