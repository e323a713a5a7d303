"""UNIQUE, PRIMARY KEY or EXCLUDE added to an existing table without USING INDEX.

These constraints build their index while holding an ACCESS EXCLUSIVE lock: no reads, no writes until the
index is complete. Building a unique index CONCURRENTLY first and attaching it with `USING INDEX` takes
the strong lock only for an instant. A column added with an inline UNIQUE or PRIMARY KEY does the same
build. (EXCLUDE constraints cannot use an existing index: add them when the table is created or empty.)

Fix: `CREATE UNIQUE INDEX CONCURRENTLY t_x_key ON t (x);` in its own migration, then
`ALTER TABLE t ADD CONSTRAINT t_x_key UNIQUE USING INDEX t_x_key;` (or `PRIMARY KEY USING INDEX`).
"""

from __future__ import annotations

from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "constraint-builds-index"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("disallowed-unique-constraint", "adding-serial-primary-key-field", "adding-primary-key-constraint",
          "constraint-missing-not-valid")
_LABEL = {"CONSTR_UNIQUE": "UNIQUE", "CONSTR_PRIMARY": "PRIMARY KEY", "CONSTR_EXCLUSION": "EXCLUDE"}


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_AddConstraint", "AT_AddColumn"):
        for body in ctx.file.nodes(cmd.get("def"), "Constraint"):
            if body.get("contype") in _LABEL and not body.get("indexname"):
                yield ctx.finding(stmt, f"{_LABEL[body['contype']]} on existing table {table} builds its index under "
                                  "an ACCESS EXCLUSIVE lock", "Build a unique index CONCURRENTLY, then ADD "
                                  "CONSTRAINT … USING INDEX.", node=body)
