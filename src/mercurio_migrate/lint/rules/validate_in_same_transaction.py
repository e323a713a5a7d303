"""VALIDATE CONSTRAINT runs in the same transaction that added the constraint NOT VALID.

NOT VALID exists so the validating scan runs without the strong lock the ADD CONSTRAINT took. In the same
transaction that lock is still held until COMMIT, so the scan blocks reads and writes exactly as if NOT
VALID had not been written.

Fix: move `VALIDATE CONSTRAINT` into a later migration (a separate transaction).
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "validate-in-same-transaction"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("constraint-missing-not-valid",)


def check(ctx):
    added: dict[tuple[str, str], int] = {}  # (table, constraint) -> transaction number
    transaction = 0
    for stmt in ctx.file.statements:
        if stmt.control in ("commit", "rollback") or not stmt.in_transaction:
            transaction += 1
        if stmt.kind != "AlterTableStmt":
            continue
        table = tree.relname(stmt.node.get("relation"))
        for cmd in tree.alter_commands(stmt.node):
            kind, body = tree.unwrap(cmd.get("def"))
            if cmd.get("subtype") == "AT_AddConstraint" and kind == "Constraint" and body.get("skip_validation"):
                added[(table, body.get("conname", ""))] = transaction
            elif cmd.get("subtype") == "AT_ValidateConstraint" and added.get((table, cmd.get("name"))) == transaction:
                yield ctx.finding(stmt, f"VALIDATE CONSTRAINT {cmd.get('name')} in the transaction that added it "
                                  "NOT VALID still holds the strong lock", "Validate it in a later migration.")
