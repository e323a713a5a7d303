"""SMALLINT / INTEGER / SERIAL columns of any name (off by default; bigint-keys covers keys).

Any 16- or 32-bit integer column can overflow, and widening it later rewrites the table. Mercurio's
guideline requires 64-bit keys (bigint-keys); counters such as a version number are usually fine as
INTEGER. Enable this rule to require BIGINT everywhere.

Fix: declare `BIGINT` (or `BIGSERIAL`).
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import column_definitions

ID = "prefer-bigint"
SEVERITY = "off"
CATEGORY = "style"
KINDS = ("CreateStmt", "AlterTableStmt")
SQUAWK = ("prefer-bigint-over-int", "prefer-bigint-over-smallint", "prefer-big-int")
NARROW = {"int2", "int4", "serial", "serial4", "smallserial", "serial2"}


def check(ctx):
    for stmt, table, column, _how in column_definitions(ctx):
        type_name = tree.type_name(column.get("typeName"))
        if type_name in NARROW:
            yield ctx.finding(stmt, f"{table}.{column.get('colname', '')} is {type_name}: it can overflow",
                              "Declare BIGINT.", node=column.get("typeName"))
