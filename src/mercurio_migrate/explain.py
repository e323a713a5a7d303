"""`explain`: prove that the queries of each migration's ``plans.sql`` use the index they name.

Nothing touches the target database: a scratch database is created on its server (as ``verify`` does),
migrated to the head (or ``to``), filled with generated rows, vacuumed and analysed; then every query of
every ``plans.sql`` runs under ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` inside a transaction that is
rolled back, and its plan tree is searched for the index it names.

``plans.sql``: each query is preceded by ``-- expect-index: NAME`` (several names, comma-separated: every
one must appear in the plan). A statement preceded by ``-- explain-setup`` instead runs once, after the
generated rows and before ANALYZE, to add or reshape data the generator cannot produce.

Generated volume (``Volume``): the tables of the schema are read from the catalog and filled in foreign-key
order with ``INSERT … SELECT … FROM generate_series(1, n)``; every value is a function of the row number i,
so a child derives its foreign-key columns from the parent row it picks (``1 + (i - 1) % n_parent``) and
composite keys that share columns (tenant, workspace) agree. Table sizes: a table other tables reference
with no parent of its own (tenant) gets rows/20 rows, one referenced at foreign-key depth 1 (workspace)
rows/10, every other table ``rows``; see ``SCOPES`` and docs/indexes.md for the value of each column type.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mercurio_migrate.database import quote_ident, quote_text
from mercurio_migrate.engine import Engine
from mercurio_migrate.errors import LayoutError, LayoutProblem, MercurioError
from mercurio_migrate.layout import Migration, discover
from mercurio_migrate.redact import redact_url
from mercurio_migrate.scratch_runs import STASH_SCHEMA, Runner, scratch_database, select
from mercurio_migrate.sqlscript import Statement, parse

PLANS_FILE = "plans.sql"
EXPECT = "expect-index:"
SETUP = "explain-setup"
DEFAULT_ROWS = 20_000
# Tables other tables reference, by foreign-key depth (tenant 0, workspace 1): (rows // divisor, how many of
# them other rows reference). Activity concentrates on 5 tenants and 25 workspaces: the planner multiplies
# the selectivities of tenant_id and workspace_id (one determines the other), so only then does it expect
# the hundreds of rows per workspace that real data has, while the tables stay large enough
# for their own indexes to matter.
SCOPES = {0: (20, 5), 1: (10, 25)}
_QUERY_KINDS = ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")


# --- plans.sql ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanQuery:
    migration: str
    file: str  # as shown: relative to the working folder when possible
    line: int
    column: int
    expected: tuple[str, ...]
    text: str
    setup: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _display(path: Path | str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _annotations(text: str, statements: tuple[Statement, ...]) -> list[list[tuple[int, str]]]:
    """The comments between each statement and the one before it, as (offset, text after '--')."""
    from pglast.parser import scan

    comments = [(t.start, text[t.start:t.end + 1]) for t in scan(text) if t.name in ("SQL_COMMENT", "C_COMMENT")]
    out: list[list[tuple[int, str]]] = []
    previous_end = 0
    for statement in statements:
        out.append([(start, body) for start, body in comments if previous_end <= start < statement.start])
        previous_end = statement.end
    return out


def load_plans(migrations: list[Migration]) -> list[PlanQuery]:
    """Every query of every plans.sql (parsed before anything runs); all annotation problems at once."""
    problems: list[LayoutProblem] = []
    queries: list[PlanQuery] = []
    for migration in migrations:
        plans = migration.extras.get(PLANS_FILE)
        if plans is None:
            continue
        shown = _display(plans.path)
        script = parse(plans.text, shown)
        for statement, comments in zip(script.statements, _annotations(plans.text, script.statements)):
            expected: list[str] = []
            setup = False
            for _, comment in comments:
                body = comment.lstrip("-/* \t").rstrip("*/ \t")
                if body.lower().startswith(EXPECT):
                    expected.extend(n.strip() for n in body[len(EXPECT):].split(",") if n.strip())
                elif body.lower().strip() == SETUP:
                    setup = True
            where = f"{shown}:{statement.line}"
            if statement.transaction_control:
                problems.append(LayoutProblem(where, "plans.sql runs each query in its own rolled-back transaction; "
                                                     "remove the transaction control statement"))
                continue
            if setup and expected:
                problems.append(LayoutProblem(where, f"a statement is either -- {SETUP} or -- {EXPECT} NAME, not both"))
                continue
            if not setup and statement.kind not in _QUERY_KINDS:
                problems.append(LayoutProblem(where, f"{statement.kind} is not a query; plans.sql holds queries "
                                                     f"(SELECT/INSERT/UPDATE/DELETE), or mark it -- {SETUP}"))
                continue
            if not setup and not expected:
                problems.append(LayoutProblem(where, f"query without an index to check: put '-- {EXPECT} "
                                                     f"index_name' on the line above `{statement.first_line}`"))
                continue
            queries.append(PlanQuery(migration.id, shown, statement.line, statement.column, tuple(expected),
                                     statement.text, setup))
        tail = script.statements[-1].end if script.statements else 0
        for comment in _trailing_comments(plans.text, tail):
            if comment.lstrip("-/* \t").lower().startswith(EXPECT):
                problems.append(LayoutProblem(shown, f"'{comment.strip()}' at the end of the file names no query"))
    if problems:
        raise LayoutError(problems)
    return queries


def _trailing_comments(text: str, after: int) -> list[str]:
    from pglast.parser import scan

    return [text[t.start:t.end + 1] for t in scan(text) if t.name in ("SQL_COMMENT", "C_COMMENT") and t.start >= after]


# --- plan trees -------------------------------------------------------------------------------------
def indexes_in_plan(plan: dict) -> list[str]:
    """Index names of every Index Scan, Index Only Scan and Bitmap Index Scan node, in plan order."""
    found: list[str] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if "Index Name" in node and node["Index Name"] not in found:
            found.append(node["Index Name"])
        stack.extend(reversed(node.get("Plans", [])))
    return found


def _node_types(plan: dict) -> list[str]:
    out, stack = [], [plan]
    while stack:
        node = stack.pop()
        label = node["Node Type"] + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
        label += f" using {node['Index Name']}" if "Index Name" in node else ""
        out.append(label)
        stack.extend(reversed(node.get("Plans", [])))
    return out


# --- report -----------------------------------------------------------------------------------------
@dataclass
class PlanCheck:
    query: PlanQuery
    used: list[str] = field(default_factory=list)
    execution_ms: float | None = None
    planning_ms: float | None = None
    buffers: dict = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    error: str | None = None
    missing_indexes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing_indexes and all(n in self.used for n in self.query.expected)

    @property
    def reason(self) -> str:
        if self.error:
            return self.error
        if self.missing_indexes:
            return f"no index named {', '.join(self.missing_indexes)} exists in the migrated schema"
        missing = [n for n in self.query.expected if n not in self.used]
        if missing:
            used = ", ".join(self.used) if self.used else "no index"
            return f"plan does not use {', '.join(missing)} (it uses {used}: {' -> '.join(self.nodes[:6])})"
        return ""

    def as_dict(self) -> dict:
        return {"file": self.query.file, "line": self.query.line, "migration": self.query.migration,
                "expected": list(self.query.expected), "used": self.used, "ok": self.ok,
                "status": "OK" if self.ok else "FAIL", "reason": self.reason or None,
                "execution_ms": self.execution_ms, "planning_ms": self.planning_ms, "buffers": self.buffers,
                "plan": self.nodes, "query": self.query.text}


@dataclass
class ExplainReport:
    checks: list[PlanCheck]
    volume: dict[str, int]
    skipped_tables: dict[str, str]
    to: str | None
    scratch_database: str
    scratch_url: str
    kept: bool
    timings_ms: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[PlanCheck]:
        return [c for c in self.checks if not c.ok]

    def as_dict(self) -> dict:
        return {"ok": self.ok, "queries": [c.as_dict() for c in self.checks],
                "failed": len(self.failures), "volume": self.volume, "skipped_tables": self.skipped_tables,
                "timings_ms": self.timings_ms, "warnings": self.warnings,
                "scratch_database": {"name": self.scratch_database, "kept": self.kept,
                                     "url": self.scratch_url if self.kept else None}}


# --- generated volume -------------------------------------------------------------------------------
class VolumeError(MercurioError):
    """The generated rows could not be inserted."""


@dataclass
class _Column:
    name: str
    attnum: int
    base: str  # base type name (domains resolved)
    length: int | None  # varchar(n) / char(n)
    notnull: bool
    has_default: bool
    identity: str
    generated: bool


@dataclass
class _ForeignKey:
    name: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


@dataclass
class _Table:
    name: str
    columns: list[_Column]
    fks: list[_ForeignKey] = field(default_factory=list)
    unique: set[str] = field(default_factory=set)  # columns in any unique index
    allowed: dict[str, list[str]] = field(default_factory=dict)  # CHECK col IN (…)
    patterns: dict[str, str] = field(default_factory=dict)  # CHECK col ~ '…'
    hints: dict[str, list[str]] = field(default_factory=dict)  # constants of partial-index predicates
    sequences: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    pick: int = 0  # children reference rows 1..pick
    exprs: dict[str, Callable[[str], str]] = field(default_factory=dict)


_CATALOG_TABLES = """
SELECT c.oid, c.relname FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.oid NOT IN (SELECT to_regclass(x) FROM unnest(%s::text[]) x WHERE to_regclass(x) IS NOT NULL)
ORDER BY c.relname
"""
_CATALOG_COLUMNS = """
SELECT a.attrelid, a.attname, a.attnum, coalesce(bt.typname, t.typname),
       CASE WHEN coalesce(bt.typname, t.typname) IN ('varchar', 'bpchar')
            THEN nullif(CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, -1) - 4 END,
       a.attnotnull OR coalesce(t.typnotnull, false), a.atthasdef, a.attidentity, a.attgenerated <> '',
       pg_get_serial_sequence(quote_ident(c.relname), a.attname)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum
"""
_CATALOG_CONSTRAINTS = """
SELECT con.conrelid, con.contype, con.conname, pg_get_expr(con.conbin, con.conrelid),
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       con.confrelid::regclass::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint con WHERE con.conrelid = ANY(%s) AND con.contype IN ('c', 'f') ORDER BY con.conname
"""
_CATALOG_INDEXES = """
SELECT x.indrelid, x.indisunique,
       ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k(n) JOIN pg_attribute a
             ON a.attrelid = x.indrelid AND a.attnum = k.n),
       pg_get_expr(x.indpred, x.indrelid)
FROM pg_index x WHERE x.indrelid = ANY(%s)
"""


def _column_of(node) -> str | None:
    while type(node).__name__ == "TypeCast":
        node = node.arg
    if type(node).__name__ == "ColumnRef" and node.fields:
        return getattr(node.fields[-1], "sval", None)
    return None


def _constant(node) -> str | None:
    while type(node).__name__ == "TypeCast":
        node = node.arg
    if type(node).__name__ == "A_Const" and not node.isnull:
        return str(getattr(node.val, "sval", getattr(node.val, "ival", None)))
    return None


def _constants(node) -> list[str] | None:
    while type(node).__name__ == "TypeCast":
        node = node.arg
    items = node.elements if type(node).__name__ == "A_ArrayExpr" else node if isinstance(node, tuple) else None
    if items is None:
        return None
    values = [_constant(i) for i in items]
    return None if None in values else values


def _conditions(expression: str) -> list[tuple[str, str, object]]:
    """(column, operator, value) of the simple comparisons in an expression, read with PostgreSQL's parser.

    ('status', 'in', [...]) for ``= ANY(ARRAY[…])`` / ``IN (…)`` / ``=``, ('id', '~', pattern) for regexes."""
    from pglast.parser import parse_sql

    out: list[tuple[str, str, object]] = []
    stack = [parse_sql(f"SELECT {expression}")[0].stmt.targetList[0].val]
    while stack:
        node = stack.pop()
        kind = type(node).__name__
        if kind == "BoolExpr":
            if int(node.boolop) == 0:  # AND: every part holds
                stack.extend(node.args)
            continue
        if kind != "A_Expr":
            continue
        operator = node.name[-1].sval if node.name else ""
        column = _column_of(node.lexpr)
        if column is None:
            continue
        expr_kind = int(node.kind)
        if operator == "=" and expr_kind in (1, 6):  # AEXPR_OP_ANY, AEXPR_IN
            values = _constants(node.rexpr)
            if values:
                out.append((column, "in", values))
        elif operator == "=" and expr_kind == 0 and _constant(node.rexpr) is not None:
            out.append((column, "in", [_constant(node.rexpr)]))
        elif operator == "~" and expr_kind == 0 and _constant(node.rexpr) is not None:
            out.append((column, "~", _constant(node.rexpr)))
    return out


def _regex_expression(pattern: str, i: str) -> str | None:
    """SQL text matching a simple anchored pattern (literals and [classes]{n}), unique in i; None otherwise."""
    try:
        import re._parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse  # type: ignore[no-redef]
    from re._constants import ANY, AT, IN, LITERAL, MAX_REPEAT, MIN_REPEAT, RANGE

    try:
        tokens = list(sre_parse.parse(pattern))
    except re.error:
        return None
    if not tokens or tokens[0][0] is not AT or tokens[-1][0] is not AT:
        return None  # unanchored patterns are matched anywhere: keep to what we can prove
    parts: list[str] = []
    encoded = False
    for op, arg in tokens[1:-1]:
        if op is LITERAL:
            parts.append(quote_text(chr(arg)))
            continue
        if op not in (MAX_REPEAT, MIN_REPEAT):
            return None
        low, high, sub = arg
        sub = list(sub)
        if len(sub) != 1:
            return None
        sub_op, sub_arg = sub[0]
        if sub_op is LITERAL:
            alphabet = chr(sub_arg)
        elif sub_op is ANY:
            alphabet = "0123456789"
        elif sub_op is IN:
            chars = []
            for item_op, item in sub_arg:
                if item_op is LITERAL:
                    chars.append(chr(item))
                elif item_op is RANGE:
                    chars.extend(chr(c) for c in range(item[0], item[1] + 1))
                else:
                    return None
            alphabet = "".join(sorted(set(chars), key=lambda c: (not c.isdigit(), c)))
        else:
            return None
        count = max(low, 1) if high is sre_parse.MAXREPEAT else low if low else min(high, 1)
        if count == 0:
            continue
        if encoded or len(alphabet) < 10:
            parts.append(quote_text(alphabet[0] * count))
            continue
        encoded = True
        digits = f"right(lpad(({i})::text, {count}, '0'), {count})"
        parts.append(digits if alphabet[:10] == "0123456789" else
                     f"translate({digits}, '0123456789', {quote_text(alphabet[:10])})")
    return "(" + " || ".join(parts) + ")" if parts else None


class Volume:
    """Generated rows for every table of the current schema; see the module docstring."""

    def __init__(self, conn, rows: int = DEFAULT_ROWS, tool_tables: tuple[str, ...] = ()):
        """``tool_tables``: the tool's own tables (HistoryStore.tool_tables), which get no rows."""
        self.conn = conn
        self.tool_tables = tool_tables
        self.rows = max(100, -(-rows // 100) * 100)  # a multiple of 100: scope tables divide every table
        self.tables: dict[str, _Table] = {}
        self.skipped: dict[str, str] = {}
        self.order: list[str] = []

    # catalog -------------------------------------------------------------------------------------------
    def read(self) -> None:
        rows = self.conn.execute(_CATALOG_TABLES, (list(self.tool_tables),)).fetchall()
        by_oid = {oid: _Table(name, []) for oid, name in rows}
        oids = list(by_oid)
        for oid, name, attnum, base, length, notnull, has_default, identity, generated, sequence in \
                self.conn.execute(_CATALOG_COLUMNS, (oids,)):
            table = by_oid[oid]
            table.columns.append(_Column(name, attnum, base, length, notnull, has_default, identity, generated))
            if sequence:
                table.sequences[name] = sequence
        for oid, kind, name, check, columns, parent, parent_columns in self.conn.execute(_CATALOG_CONSTRAINTS, (oids,)):
            table = by_oid[oid]
            if kind == "f":
                table.fks.append(_ForeignKey(name, tuple(columns), parent.strip('"'), tuple(parent_columns)))
                continue
            for column, op, value in _conditions(check):
                (table.allowed if op == "in" else table.patterns)[column] = value
        for oid, unique, columns, predicate in self.conn.execute(_CATALOG_INDEXES, (oids,)):
            if unique:
                by_oid[oid].unique.update(columns)
            if predicate:
                for column, op, value in _conditions(predicate):
                    if op == "in":
                        by_oid[oid].hints.setdefault(column, []).extend(
                            v for v in value if v not in by_oid[oid].hints.get(column, []))
        self.tables = {t.name: t for t in by_oid.values()}

    def _sort(self) -> None:
        depth: dict[str, int] = {}
        visiting: set[str] = set()

        def visit(name: str) -> int:
            if name in depth:
                return depth[name]
            if name in visiting:
                raise VolumeError(f"foreign keys form a cycle through table {name}: rows cannot be generated",
                                  hint=f"Fill these tables with -- {SETUP} statements in plans.sql.")
            visiting.add(name)
            parents = {fk.parent for fk in self.tables[name].fks if fk.parent != name and fk.parent in self.tables}
            depth[name] = 1 + max((visit(p) for p in parents), default=-1)
            visiting.discard(name)
            self.order.append(name)
            return depth[name]

        for name in sorted(self.tables):
            visit(name)
        referenced = {fk.parent for t in self.tables.values() for fk in t.fks if fk.parent != t.name}
        for name, table in self.tables.items():
            table.rows = table.pick = self.rows
            if name in referenced and depth[name] in SCOPES:
                table.rows = self.rows // SCOPES[depth[name]][0]
                table.pick = SCOPES[depth[name]][1]

    # values --------------------------------------------------------------------------------------------
    def _value(self, table: _Table, column: _Column) -> Callable[[str], str] | None:
        name, n = column.name, table.rows
        unique = column.name in table.unique
        if column.name in table.allowed:
            values = table.allowed[column.name]
            array = "ARRAY[" + ", ".join(quote_text(v) for v in values) + "]"
            return lambda i: f"({array})[1 + (({i}) - 1) % {len(values)}]"
        if column.name in table.patterns:
            pattern = table.patterns[column.name]
            if _regex_expression(pattern, "1") is None:
                return None
            return lambda i: _regex_expression(pattern, i)
        repeat = f"(1 + (({{i}}) - 1) % {max(1, n // 10)})"  # a non-unique value recurs every n/10 rows
        base = column.base
        if base in ("int2", "int4", "int8", "oid"):
            if unique:
                return lambda i: f"({i})"
            return lambda i: f"(1 + (({i}) - 1) % 100)"
        if base in ("numeric",):
            return lambda i: f"((({i}) % 100) / 100.0)"
        if base in ("float4", "float8"):
            return lambda i: f"((({i}) % 1000) / 10.0)"
        if base == "bool":
            return lambda i: f"(({i}) % 2 = 0)"
        if base in ("timestamptz", "timestamp", "date"):
            return lambda i: f"(timestamptz '2025-01-01 00:00:00+00' + ((({i}) * 7919) % 525600) * interval '1 minute')"
        if base in ("jsonb", "json"):
            return lambda i: f"jsonb_build_object('key', ({i}) % 20, 'id', ({i}))"
        if base == "uuid":
            return lambda i: f"md5({quote_text(name)} || ({i}))::uuid"
        if base == "bytea":
            return lambda i: f"decode(md5({quote_text(name)} || ({i})), 'hex')"
        if base in ("text", "varchar", "bpchar", "name", "citext"):
            hints = table.hints.get(column.name, [])
            key = "({i})" if unique else repeat
            limit = column.length

            def text(i: str) -> str:
                k = key.format(i=i)
                plain = (f"left(md5({quote_text(name)} || {k}), {limit})" if limit and limit < len(name) + 8
                         else f"({quote_text(name + '-')} || {k})")
                if hints and not unique:
                    array = "ARRAY[" + ", ".join(quote_text(v) for v in hints) + "]"
                    # values partial indexes select (e.g. conversion event names) on one row in ten
                    return (f"(CASE WHEN ({i}) % 10 = 0 THEN ({array})[1 + (({i}) / 10) % {len(hints)}] "
                            f"ELSE {plain} END)")
                return plain
            return text
        return None

    def _plan_table(self, table: _Table) -> str | None:
        """Fill table.exprs; the reason it cannot be generated, or None."""
        derived: dict[str, Callable[[str], str]] = {}
        optional: dict[str, Callable[[str], str]] = {}
        columns = {c.name: c for c in table.columns}
        # foreign keys whose columns are all NOT NULL decide shared columns (tenant, workspace) first
        fks = sorted((fk for fk in table.fks if fk.parent != table.name),
                     key=lambda fk: (not all(columns[c].notnull for c in fk.columns), -len(fk.columns), fk.name))
        for fk in fks:
            parent = self.tables.get(fk.parent)
            if parent is None or fk.parent in self.skipped:
                nullable = [c for c in fk.columns if not columns[c].notnull]
                if not nullable:
                    return f"its parent table {fk.parent} has no generated rows"
                for column in nullable:
                    derived.setdefault(column, lambda i: "NULL")
                continue
            pick = parent.pick

            def via(pcol: str, parent=parent, pick=pick) -> Callable[[str], str]:
                return lambda i: parent.exprs[pcol](f"(1 + (({i}) - 1) % {pick})")

            required = all(columns[c].notnull for c in fk.columns)
            for column, pcol in zip(fk.columns, fk.parent_columns):
                if column in derived:
                    continue
                if required or columns[column].notnull:
                    derived[column] = via(pcol)
                elif column not in optional:
                    optional[column] = via(pcol)
        for fk in table.fks:
            if fk.parent == table.name:
                for column in fk.columns:
                    if columns[column].notnull and column not in derived:
                        return f"column {column} references its own table ({fk.name}) and is NOT NULL"
                    if column not in derived:
                        derived[column] = lambda i: "NULL"
        for column in table.columns:
            if column.generated or column.name in derived and column.name not in optional:
                continue
            if column.name in optional:
                source = optional[column.name]
                # a nullable foreign key (event.lead_id) is set on one row in four
                table.exprs[column.name] = (lambda i, s=source: f"(CASE WHEN ({i}) % 4 = 0 THEN {s(i)} END)")
                continue
            if column.name in table.sequences and column.name in table.unique:
                table.exprs[column.name] = lambda i: f"({i})"
                continue
            value = self._value(table, column)
            if value is None:
                if column.notnull and not column.has_default:
                    reason = (f"CHECK pattern {table.patterns[column.name]!r} on {column.name}"
                              if column.name in table.patterns else f"type {column.base} of {column.name}")
                    return f"no generator for the {reason} (NOT NULL, no default)"
                continue
            if not column.notnull and column.name not in table.unique:
                slot = column.attnum % 10
                table.exprs[column.name] = (
                    lambda i, v=value, s=slot: f"(CASE WHEN ({i}) % 10 = {s} THEN NULL ELSE {v(i)} END)")
            else:
                table.exprs[column.name] = value
        for column, source in derived.items():
            if column not in optional:
                table.exprs[column] = source
        return None

    def insert_sql(self, table: _Table) -> str:
        names = [c.name for c in table.columns if c.name in table.exprs]
        select = ", ".join(table.exprs[c]("g.i") for c in names)
        overriding = " OVERRIDING SYSTEM VALUE" if any(c.identity == "a" for c in table.columns
                                                       if c.name in table.exprs) else ""
        return (f"INSERT INTO {quote_ident(table.name)} ({', '.join(quote_ident(c) for c in names)}){overriding} "
                f"SELECT {select} FROM generate_series(1, {table.rows}) AS g(i)")

    def load(self) -> dict[str, int]:
        import psycopg

        self.read()
        self._sort()
        # Foreign keys are checked by one anti-join per key after the load instead of a trigger call per
        # row (several times faster); that needs superuser, which the scratch database usually has.
        deferred_checks = False
        try:
            self.conn.execute("SET session_replication_role = replica")
            deferred_checks = True
        except psycopg.errors.InsufficientPrivilege:
            pass
        loaded: dict[str, int] = {}
        for name in self.order:
            # an autovacuum ANALYZE running meanwhile holds back the horizon, and VACUUM then leaves fresh
            # pages not all-visible: no index-only scans. The scratch tables are ours to configure.
            self.conn.execute(f"ALTER TABLE {quote_ident(name)} SET (autovacuum_enabled = false)")
            table = self.tables[name]
            reason = self._plan_table(table)
            if reason:
                self.skipped[name] = reason
                continue
            try:
                count = self.conn.execute(self.insert_sql(table)).rowcount
            except psycopg.Error as exc:
                diag = exc.diag
                raise VolumeError(
                    f"generating {table.rows} rows for table {name} failed: {diag.message_primary}"
                    + (f" ({diag.constraint_name})" if diag.constraint_name else ""),
                    hint=f"Fill {name} with -- {SETUP} statements in plans.sql and report the schema that the "
                         "generator could not satisfy.") from None
            for column, sequence in table.sequences.items():
                if column in table.exprs:
                    self.conn.execute(f"SELECT setval({quote_text(sequence)}, (SELECT coalesce(max({quote_ident(column)}), 0) + 1 "
                                      f"FROM {quote_ident(name)}), false)")
            loaded[name] = count
        if deferred_checks:
            self.conn.execute("SET session_replication_role = DEFAULT")
            self._check_foreign_keys(loaded)
        return loaded

    def _check_foreign_keys(self, loaded: dict[str, int]) -> None:
        for name in loaded:
            for fk in self.tables[name].fks:
                child = " AND ".join(f"c.{quote_ident(col)} IS NOT NULL" for col in fk.columns)
                match = " AND ".join(f"p.{quote_ident(pc)} = c.{quote_ident(col)}" for col, pc in zip(fk.columns, fk.parent_columns))
                orphans = self.conn.execute(
                    f"SELECT count(*) FROM {quote_ident(name)} c WHERE {child} "
                    f"AND NOT EXISTS (SELECT 1 FROM {quote_ident(fk.parent)} p WHERE {match})").fetchone()[0]
                if orphans:
                    raise VolumeError(
                        f"generated rows of table {name} violate foreign key {fk.name}: {orphans} row(s) name no "
                        f"{fk.parent} row",
                        hint=f"Fill {name} with -- {SETUP} statements in plans.sql and report the schema that the "
                             "generator could not satisfy.")


# --- running ----------------------------------------------------------------------------------------
def _explain(conn, query: PlanQuery) -> PlanCheck:
    import psycopg

    check = PlanCheck(query)
    conn.execute("BEGIN")
    try:
        row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query.text}").fetchone()
    except psycopg.Error as exc:
        check.error = f"the query failed: {exc.diag.message_primary}"
        return check
    finally:
        conn.execute("ROLLBACK")
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    top = document[0]
    plan = top["Plan"]
    check.used = indexes_in_plan(plan)
    check.nodes = _node_types(plan)
    check.execution_ms = round(top.get("Execution Time", 0.0), 3)
    check.planning_ms = round(top.get("Planning Time", 0.0), 3)
    check.buffers = {"shared_hit": plan.get("Shared Hit Blocks", 0), "shared_read": plan.get("Shared Read Blocks", 0)}
    return check


def explain(engine: Engine, *, to: str | None = None, rows: int = DEFAULT_ROWS, keep: bool = False) -> ExplainReport:
    import psycopg

    found = discover(engine.settings.migrations_dir)
    migrations = select(found.migrations, to)
    queries = load_plans(migrations)
    timings: dict[str, float] = {}
    with scratch_database(engine, keep=keep) as scratch:
        runner = Runner(engine, scratch)
        up, _ = runner.parse(migrations)
        conn = scratch.connect()
        try:
            started = time.perf_counter()
            runner.engine.ensure_tables(conn)
            for migration in migrations:
                failure = runner.run(conn, migration, up[migration.version], "up")
                if failure:
                    raise MercurioError(f"building the scratch database: {failure.message}", hint=failure.hint)
            timings["migrate"] = round((time.perf_counter() - started) * 1000, 1)
            started = time.perf_counter()
            # planner choices do not depend on these; they keep the load and the plans quick and comparable
            conn.execute("SET statement_timeout = 0")
            conn.execute("SET jit = off")
            volume = Volume(conn, rows, runner.engine.store.tool_tables)
            loaded = volume.load()
            for query in (q for q in queries if q.setup):
                try:
                    conn.execute(query.text)
                except psycopg.Error as exc:
                    raise VolumeError(f"{query.where}: the -- {SETUP} statement failed: "
                                      f"{exc.diag.message_primary}") from None
            timings["volume"] = round((time.perf_counter() - started) * 1000, 1)
            started = time.perf_counter()
            if loaded:
                conn.execute("VACUUM (ANALYZE) " + ", ".join(quote_ident(t) for t in loaded))
            timings["analyze"] = round((time.perf_counter() - started) * 1000, 1)
            started = time.perf_counter()
            existing = {r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('i', 'I') "
                "AND c.relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema', 'pg_toast', %s)",
                (STASH_SCHEMA,))}
            checks = []
            for query in (q for q in queries if not q.setup):
                missing = [n for n in query.expected if n not in existing]
                check = _explain(conn, query)
                check.missing_indexes = missing
                checks.append(check)
            timings["explain"] = round((time.perf_counter() - started) * 1000, 1)
        finally:
            conn.close()
        warnings = [str(w) for w in found.warnings] + runner.warnings
        warnings += [f"table {t} has no generated rows: {why}" for t, why in volume.skipped.items()]
        return ExplainReport(checks, loaded, dict(volume.skipped), to, scratch.name, redact_url(scratch.url()), keep,
                             timings, warnings)
