"""RENAME COLUMN on an existing table.

The running application still reads and writes the old name: from the moment the migration commits until
every instance is redeployed, its queries fail. (The rename also takes a brief ACCESS EXCLUSIVE lock.)

Fix: expand and contract: add the new column, write both, backfill, move readers, and drop the old column
in a later release; or keep the name and alias it in queries.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "rename-column"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("RenameStmt",)
SQUAWK = ("renaming-column",)


def check(ctx):
    for stmt in ctx.file.of_kind("RenameStmt"):
        table = tree.relname(stmt.node.get("relation"))
        if stmt.node.get("renameType") == "OBJECT_COLUMN" and ctx.existing_table(table, stmt):
            yield ctx.finding(stmt, f"renaming {table}.{stmt.node.get('subname')} breaks code that uses the old name",
                              "Add a new column, migrate readers and writers, drop the old one later.")
