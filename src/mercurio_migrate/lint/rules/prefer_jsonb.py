"""JSON columns instead of JSONB.

`json` stores the text verbatim and has no equality operator: `SELECT DISTINCT`, `UNION` and `GROUP BY` on
a table with a json column fail, it cannot be indexed with GIN, and every access re-parses it. `jsonb` is
what Mercurio uses for documents.

Fix: declare the column `JSONB`.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import column_definitions

ID = "prefer-jsonb"
SEVERITY = "warning"
CATEGORY = "style"
KINDS = ("CreateStmt", "AlterTableStmt")
SQUAWK = ()


def check(ctx):
    for stmt, table, column, _how in column_definitions(ctx):
        if tree.type_name(column.get("typeName")) == "json":
            yield ctx.finding(stmt, f"{table}.{column.get('colname', '')} is JSON, not JSONB",
                              "Declare JSONB.", node=column.get("typeName"))
