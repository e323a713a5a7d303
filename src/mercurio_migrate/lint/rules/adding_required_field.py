"""ADD COLUMN … NOT NULL without a DEFAULT on an existing table.

The existing rows have no value for the new column, so PostgreSQL rejects the statement as soon as the
table holds a row: the migration passes on an empty development database and fails in production. Old
application code that inserts without the column also breaks the moment it succeeds.

Fix: add the column with a non-volatile DEFAULT (`… NOT NULL DEFAULT 0`, instant since PostgreSQL 11),
or add it nullable, backfill in batches, then make it NOT NULL the lock-safe way (see set-not-null).
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "adding-required-field"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("adding-required-field",)
_FILLED = {"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"}


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_AddColumn"):
        kind, column = tree.unwrap(cmd.get("def"))
        if kind != "ColumnDef":
            continue
        types = {c.get("contype") for c in tree.column_constraints(column)}
        serial = "serial" in tree.type_name(column.get("typeName"))
        if types & {"CONSTR_NOTNULL", "CONSTR_PRIMARY"} and not types & _FILLED and not serial:
            yield ctx.finding(stmt, f"NOT NULL column {table}.{column.get('colname', '')} has no default: "
                              "fails on a table with rows", "Give it a constant DEFAULT, or add it nullable and "
                              "backfill.", node=column)
