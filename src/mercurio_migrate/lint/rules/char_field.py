"""CHAR(n) / CHARACTER columns.

`char(n)` pads values with spaces to n characters, compares ignoring trailing spaces in surprising ways,
and is no faster than `text` or `varchar` in PostgreSQL: it is almost always a mistake carried over from
another database.

Fix: use `TEXT` (with a CHECK on length if needed) or `VARCHAR(n)`.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import column_definitions

ID = "char-field"
SEVERITY = "warning"
CATEGORY = "style"
KINDS = ("CreateStmt", "AlterTableStmt")
SQUAWK = ("ban-char-field",)


def check(ctx):
    for stmt, table, column, _how in column_definitions(ctx):
        if tree.type_name(column.get("typeName")) == "bpchar":
            yield ctx.finding(stmt, f"{table}.{column.get('colname', '')} is CHAR(n): space-padded",
                              "Use TEXT or VARCHAR(n).", node=column.get("typeName"))
