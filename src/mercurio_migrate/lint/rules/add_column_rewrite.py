"""ADD COLUMN on an existing table with a volatile default, a serial type or a stored generated expression.

Since PostgreSQL 11 a column with a constant or STABLE default (`0`, `'x'`, `now()`) is added instantly.
A volatile default (`gen_random_uuid()`, `random()`, `clock_timestamp()`, a serial's `nextval()`) or a
`GENERATED … STORED` expression must be computed for every row: the table is rewritten under an ACCESS
EXCLUSIVE lock, blocking reads and writes for the whole rewrite. Functions the linter does not know are
treated as volatile.

Fix: add the column without the default (or with a constant one), backfill it in batches outside the
migration transaction, then `ALTER COLUMN … SET DEFAULT …` for new rows.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "add-column-rewrite"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("adding-field-with-default",)
# functions whose value is fixed for the statement (immutable or stable): a default using only these is instant
STABLE = {
    "now", "current_timestamp", "transaction_timestamp", "statement_timestamp", "current_date", "lower", "upper",
    "coalesce", "concat", "jsonb_build_object", "jsonb_build_array", "json_build_object", "to_jsonb", "to_json",
    "array_fill", "make_interval", "make_date", "to_timestamp", "date_trunc", "timezone", "length", "abs",
    "round", "greatest", "least", "nullif", "current_setting", "current_user", "session_user",
}


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_AddColumn"):
        kind, column = tree.unwrap(cmd.get("def"))
        if kind != "ColumnDef":
            continue
        name = f"{table}.{column.get('colname', '')}"
        type_name = tree.type_name(column.get("typeName"))
        if type_name in ("serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"):
            yield ctx.finding(stmt, f"adding {type_name} column {name} fills it with nextval() for every row: "
                              "a table rewrite", "Add a BIGINT column, backfill it in batches, then attach the "
                              "sequence as its DEFAULT.", node=column)
            continue
        for constraint in tree.column_constraints(column):
            contype = constraint.get("contype")
            if contype == "CONSTR_GENERATED":
                yield ctx.finding(stmt, f"stored generated column {name} rewrites the table",
                                  "Add a plain column, backfill in batches, and maintain it with a trigger "
                                  "(or create the table with it).", node=constraint)
            elif contype == "CONSTR_DEFAULT":
                volatile = sorted({tree.func_name(b) for b in ctx.file.nodes(constraint.get("raw_expr"), "FuncCall")
                                   if tree.func_name(b) not in STABLE})
                if volatile:
                    yield ctx.finding(stmt, f"default {', '.join(volatile)}() of {name} is volatile: the table is "
                                      "rewritten under ACCESS EXCLUSIVE", "Add the column without the default, "
                                      "backfill in batches, then SET DEFAULT.", node=constraint)
