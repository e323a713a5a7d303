"""Timestamps are TIMESTAMP WITH TIME ZONE, never plain TIMESTAMP.

`timestamp without time zone` stores the wall-clock digits and drops the offset: two events an hour apart
in different time zones compare equal, and the value changes meaning with the session's TimeZone.
Mercurio stores instants as `TIMESTAMP WITH TIME ZONE` (timestamptz), which is stored as UTC.

Fix: declare the column `TIMESTAMP WITH TIME ZONE`. Converting an existing column rewrites the table
unless the session TimeZone is UTC; do it in a migration of its own.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import column_definitions

ID = "prefer-timestamptz"
SEVERITY = "error"
CATEGORY = "guideline"
KINDS = ("CreateStmt", "AlterTableStmt")
SQUAWK = ("prefer-timestamp-tz", "prefer-timestamptz")


def check(ctx):
    for stmt, table, column, _how in column_definitions(ctx):
        if tree.type_name(column.get("typeName")) == "timestamp":
            yield ctx.finding(stmt, f"{table}.{column.get('colname', '')} is TIMESTAMP without time zone",
                              "Use TIMESTAMP WITH TIME ZONE.", node=column.get("typeName"))
