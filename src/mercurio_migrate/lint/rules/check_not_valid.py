"""A CHECK constraint added to an existing table is added NOT VALID, then validated separately.

ADD CONSTRAINT … CHECK scans the whole table under an ACCESS EXCLUSIVE lock: no reads or writes until
every row is checked. With NOT VALID the constraint applies to new rows at once and `VALIDATE CONSTRAINT`
checks the old rows later under a SHARE UPDATE EXCLUSIVE lock that lets reads and writes continue. A new
column with an inline CHECK is checked against every row the same way.

Fix: `ALTER TABLE t ADD CONSTRAINT t_x_check CHECK (…) NOT VALID;` then, in a later migration,
`ALTER TABLE t VALIDATE CONSTRAINT t_x_check;`.
"""

from __future__ import annotations

from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "check-not-valid"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("constraint-missing-not-valid",)


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_AddConstraint", "AT_AddColumn"):
        for body in ctx.file.nodes(cmd.get("def"), "Constraint"):
            if body.get("contype") == "CONSTR_CHECK" and not body.get("skip_validation"):
                yield ctx.finding(stmt, f"CHECK constraint on existing table {table} scans it under an "
                                  "ACCESS EXCLUSIVE lock",
                                  "Add it NOT VALID, then VALIDATE CONSTRAINT in a later migration.", node=body)
