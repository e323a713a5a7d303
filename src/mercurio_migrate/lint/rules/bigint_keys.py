"""Integer keys are 64-bit: BIGSERIAL / BIGINT (or bigint identity) for ids, primary and foreign keys.

A 32-bit key runs out at 2,147,483,647 rows (or sequence values, including rolled-back inserts), and
widening it later rewrites the table and every referencing table under an ACCESS EXCLUSIVE lock. Mercurio's
guideline is BIGSERIAL primary keys and BIGINT references. The rule checks integer columns named `id` or
`*_id`, primary-key columns and columns with a foreign key; non-integer natural keys are out of scope.

Fix: declare the column `BIGSERIAL` (a key) or `BIGINT` (a reference).
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import column_definitions

ID = "bigint-keys"
SEVERITY = "warning"
CATEGORY = "guideline"
PROFILE = "mercurio"  # a house rule: runs only with the mercurio profile
KINDS = ("CreateStmt", "AlterTableStmt")
SQUAWK = ("prefer-bigint-over-int", "prefer-bigint-over-smallint", "prefer-big-int")
NARROW = {"int2", "int4", "serial", "serial4", "smallserial", "serial2"}


def check(ctx):
    primary: dict[int, set] = {}
    for stmt in ctx.file.of_kind("CreateStmt"):
        primary[stmt.index] = {k for c in tree.table_constraints(stmt.node)
                               if c.get("contype") in ("CONSTR_PRIMARY", "CONSTR_FOREIGN")
                               for k in tree.strings(c.get("keys") or c.get("fk_attrs"))}
    for stmt, table, column, _how in column_definitions(ctx):
        type_name = tree.type_name(column.get("typeName"))
        if type_name not in NARROW or tree.is_array(column.get("typeName")):
            continue
        name = column.get("colname", "")
        constraints = {c.get("contype") for c in tree.column_constraints(column)}
        if (name == "id" or name.endswith("_id") or name in primary.get(stmt.index, ())
                or constraints & {"CONSTR_PRIMARY", "CONSTR_FOREIGN"}):
            wide = "BIGSERIAL" if "serial" in type_name else "BIGINT"
            yield ctx.finding(stmt, f"key column {table}.{name} is {type_name}, not 64-bit",
                              f"Declare {name} as {wide}.", node=column.get("typeName"))
