"""Outside a transaction, CREATE uses IF NOT EXISTS and DROP uses IF EXISTS.

A file that runs without a transaction (CREATE INDEX CONCURRENTLY and friends) can stop halfway: the
statements before the failure stay applied. Rerunning it then fails on the first `already exists`, and
only hand-editing gets the deploy unstuck. With IF [NOT] EXISTS the file can simply be run again. Files
that run in a transaction are exempt: a failure undoes all of them.

Fix: write `CREATE INDEX CONCURRENTLY IF NOT EXISTS`, `CREATE TABLE IF NOT EXISTS`, `DROP … IF EXISTS`,
`ADD COLUMN IF NOT EXISTS`, `DROP COLUMN IF EXISTS`. (A failed concurrent build leaves an INVALID index
that IF NOT EXISTS skips: drop it before rerunning.)
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "robust-statements"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("CreateStmt", "IndexStmt", "CreateSeqStmt", "CreateSchemaStmt", "CreateExtensionStmt", "DropStmt",
         "AlterTableStmt")
SQUAWK = ("prefer-robust-stmts",)


def _fragile(stmt) -> str | None:
    node = stmt.node
    if stmt.kind in ("CreateStmt", "IndexStmt", "CreateSeqStmt", "CreateSchemaStmt", "CreateExtensionStmt"):
        return None if node.get("if_not_exists") else "CREATE without IF NOT EXISTS"
    if stmt.kind == "DropStmt":
        return None if node.get("missing_ok") else "DROP without IF EXISTS"
    if stmt.kind == "AlterTableStmt":
        for cmd in tree.alter_commands(node):
            if cmd.get("subtype") in ("AT_AddColumn", "AT_DropColumn", "AT_DropConstraint") and not cmd.get("missing_ok"):
                return f"{'ADD COLUMN without IF NOT EXISTS' if cmd['subtype'] == 'AT_AddColumn' else 'DROP without IF EXISTS'}"
            if cmd.get("subtype") == "AT_AddConstraint":
                return "ADD CONSTRAINT cannot be repeated"
    return None


def check(ctx):
    for stmt in ctx.file.statements:
        if stmt.in_transaction or stmt.control:
            continue
        problem = _fragile(stmt)
        if problem:
            yield ctx.finding(stmt, f"{problem} outside a transaction: a rerun after a partial failure fails here",
                              "Add IF [NOT] EXISTS so the file can be run again.")
