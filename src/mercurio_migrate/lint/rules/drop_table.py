"""DROP TABLE of an existing table (data loss; breaks code still using it).

The rows are gone for good, and every query of the running application on that table fails. A rollback
that drops a table its migration created is exempt, as is a table created earlier in the same file.

Fix: stop using the table first (deploy), keep a copy if the data may be needed (rename it aside, or
dump it), then drop it in a later migration; suppress with the reason.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import created_by_migration

ID = "drop-table"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("DropStmt",)
SQUAWK = ("ban-drop-table",)


def check(ctx):
    reverted = created_by_migration(ctx)
    for stmt in ctx.file.of_kind("DropStmt"):
        if stmt.node.get("removeType") != "OBJECT_TABLE":
            continue
        for obj in stmt.node.get("objects") or ():
            table = tree.object_name(obj)
            if ctx.existing_table(table, stmt) and ("table", "", table) not in reverted:
                yield ctx.finding(stmt, f"dropping table {table} deletes its data and breaks code that still uses it",
                                  "Stop using the table first; keep a copy; drop it in a later release.")
