"""SET NOT NULL on a column of an existing table.

`ALTER COLUMN … SET NOT NULL` scans the whole table under an ACCESS EXCLUSIVE lock (no reads, no writes)
to prove there are no NULLs. This is so even for a column added earlier in the same migration: the rows
are the table's. Since PostgreSQL 12 a validated `CHECK (col IS NOT NULL)` constraint lets SET NOT NULL
skip the scan.

Fix: `ADD CONSTRAINT t_col_not_null CHECK (col IS NOT NULL) NOT VALID;` → in a later migration
`VALIDATE CONSTRAINT t_col_not_null;` → `ALTER COLUMN col SET NOT NULL;` (instant) →
`DROP CONSTRAINT t_col_not_null;`.
"""

from __future__ import annotations

from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "set-not-null"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("adding-not-nullable-field",)


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_SetNotNull"):
        yield ctx.finding(stmt, f"SET NOT NULL on {table}.{cmd.get('name', '')} scans the existing table under "
                          "an ACCESS EXCLUSIVE lock",
                          "Add CHECK (col IS NOT NULL) NOT VALID, validate it in a later migration, then SET NOT NULL.")
