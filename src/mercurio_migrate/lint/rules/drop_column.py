"""DROP COLUMN on an existing table (data loss; breaks code still using it).

The column's data is gone for good (only a restore brings it back), and application code still selecting
or inserting it fails at once. A rollback that drops a column its migration added is exempt.

Fix: stop using the column in the application first (deploy), then drop it in a later migration; keep a
copy of the data if it may be needed. Suppress with the reason once that is done.
"""

from __future__ import annotations

from mercurio_migrate.lint.rules._util import created_by_migration, existing_alter_commands

ID = "drop-column"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("ban-drop-column",)


def check(ctx):
    reverted = created_by_migration(ctx)
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_DropColumn"):
        column = cmd.get("name", "")
        if ("column", table, column) in reverted or ("table", "", table) in reverted:
            continue
        yield ctx.finding(stmt, f"dropping {table}.{column} deletes its data and breaks code that still uses it",
                          "Remove every use in the application first; drop the column in a later release.")
