"""A created table, column, index or constraint name longer than 63 bytes.

PostgreSQL silently truncates identifiers to 63 bytes. The object is created under a shorter name than
the file says: the rollback's `DROP … IF EXISTS long_name` matches nothing, two long names can collide,
and grepping for the name in the schema fails.

Fix: choose a name of at most 63 bytes.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import column_definitions

ID = "identifier-too-long"
SEVERITY = "error"
CATEGORY = "style"
SQUAWK = ("identifier-too-long",)
LIMIT = 63


def _long(name: str | None) -> bool:
    return bool(name) and len(name.encode("utf-8")) > LIMIT


def check(ctx):
    names = []
    for stmt in ctx.file.of_kind("CreateStmt", "IndexStmt", "AlterTableStmt"):
        if stmt.kind == "CreateStmt":
            names.append((stmt, tree.relname(stmt.node.get("relation")), stmt.node.get("relation")))
        elif stmt.kind == "IndexStmt":
            names.append((stmt, stmt.node.get("idxname"), None))
        for kind, body in tree.walk(stmt.node.get("tableElts") or stmt.node.get("cmds")):
            if kind == "Constraint":
                names.append((stmt, body.get("conname"), body))
    names.extend((stmt, column.get("colname"), column) for stmt, _t, column, _how in column_definitions(ctx, ("create", "add")))
    for stmt, name, node in names:
        if _long(name):
            yield ctx.finding(stmt, f"name {name!r} is {len(name.encode('utf-8'))} bytes: PostgreSQL truncates it to "
                              f"{LIMIT}", "Use a name of at most 63 bytes.", node=node)
