"""DROP CONSTRAINT on an existing table.

A constraint is a guarantee the application and other constraints rely on: once a foreign key, CHECK or
UNIQUE constraint is gone, bad rows can be written at once, and re-adding it later needs a full
validation (or fails on the rows that slipped in). A rollback dropping a constraint its migration added is
exempt.

Fix: make sure no code depends on the guarantee (or replace it first, e.g. a new constraint added NOT
VALID), then drop the old one; suppress with the reason.
"""

from __future__ import annotations

from mercurio_migrate.lint.rules._util import created_by_migration, existing_alter_commands

ID = "drop-constraint"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("ban-drop-constraint",)


def check(ctx):
    reverted = created_by_migration(ctx)
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_DropConstraint"):
        name = cmd.get("name", "")
        if ("constraint", table, name) not in reverted and ("table", "", table) not in reverted:
            yield ctx.finding(stmt, f"dropping constraint {name} on {table} removes a guarantee writers rely on",
                              "Replace the guarantee first (new constraint NOT VALID), then drop the old one.")
