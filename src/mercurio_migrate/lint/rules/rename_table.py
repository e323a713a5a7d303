"""RENAME of an existing table.

Every query of the running application names the old table; they fail from the moment the rename commits
until the new code is deployed everywhere.

Fix: create the new table (or a view under the new name), move readers and writers over, and drop the old
name in a later release.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "rename-table"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("RenameStmt",)
SQUAWK = ("renaming-table",)


def check(ctx):
    for stmt in ctx.file.of_kind("RenameStmt"):
        table = tree.relname(stmt.node.get("relation"))
        if stmt.node.get("renameType") == "OBJECT_TABLE" and ctx.existing_table(table, stmt):
            yield ctx.finding(stmt, f"renaming table {table} breaks code that uses the old name",
                              "Create the new name (table or view), migrate clients, drop the old name later.")
