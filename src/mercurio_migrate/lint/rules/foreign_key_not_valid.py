"""A foreign key added to an existing table is added NOT VALID, then validated separately.

Adding a foreign key checks every existing row while holding SHARE ROW EXCLUSIVE locks on both tables:
writes to both wait for the full scan. `ADD CONSTRAINT … NOT VALID` only enforces the key for new rows
(a brief lock); `VALIDATE CONSTRAINT` later checks old rows under a lock that lets writes continue. A
column added with an inline `REFERENCES` has the same cost and cannot be written NOT VALID.

Fix: `ALTER TABLE t ADD CONSTRAINT t_x_fkey FOREIGN KEY (x) REFERENCES other(id) NOT VALID;` then, in a
later migration (another transaction), `ALTER TABLE t VALIDATE CONSTRAINT t_x_fkey;`. For a new column:
add the column first, then the constraint as above.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "foreign-key-not-valid"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("adding-foreign-key-constraint", "constraint-missing-not-valid")


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_AddConstraint", "AT_AddColumn"):
        for body in ctx.file.nodes(cmd.get("def"), "Constraint"):
            if body.get("contype") == "CONSTR_FOREIGN" and not body.get("skip_validation"):
                target = tree.relname(body.get("pktable"))
                yield ctx.finding(stmt, f"foreign key on existing table {table} (to {target}) scans it while "
                                  "blocking writes to both tables",
                                  "Add it NOT VALID, then VALIDATE CONSTRAINT in a later migration.", node=body)
