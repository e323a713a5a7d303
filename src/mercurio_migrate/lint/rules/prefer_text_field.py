"""VARCHAR(n) columns (off by default: Mercurio's schema uses VARCHAR(n) deliberately).

Shortening a varchar's limit rewrites the table, and even widening one takes an ACCESS EXCLUSIVE lock;
`TEXT` with a `CHECK (length(col) <= n)` constraint can be changed with NOT VALID and VALIDATE instead.
Enable it with `--select prefer-text-field` or a severity in pyproject.toml.

Fix: declare `TEXT` and add `CHECK (char_length(col) <= n)`.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import column_definitions

ID = "prefer-text-field"
SEVERITY = "off"
CATEGORY = "style"
KINDS = ("CreateStmt", "AlterTableStmt")
SQUAWK = ("prefer-text-field",)


def check(ctx):
    for stmt, table, column, _how in column_definitions(ctx):
        type_node = column.get("typeName")
        if tree.type_name(type_node) == "varchar" and tree.type_mods(type_node):
            yield ctx.finding(stmt, f"{table}.{column.get('colname', '')} is VARCHAR(n): changing n needs a "
                              "strong lock", "Use TEXT with a CHECK on its length.", node=type_node)
