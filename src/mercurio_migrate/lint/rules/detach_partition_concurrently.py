"""DETACH PARTITION without CONCURRENTLY on an existing table.

A plain DETACH PARTITION takes an ACCESS EXCLUSIVE lock on the partitioned table, blocking every query on
all partitions. Since PostgreSQL 14, `DETACH PARTITION … CONCURRENTLY` needs only SHARE UPDATE EXCLUSIVE.

Fix: `ALTER TABLE parent DETACH PARTITION child CONCURRENTLY;` in a migration without BEGIN/COMMIT.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "detach-partition-concurrently"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("require-concurrent-partition-detach",)


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_DetachPartition"):
        kind, body = tree.unwrap(cmd.get("def"))
        if not body.get("concurrent"):
            yield ctx.finding(stmt, f"DETACH PARTITION locks all of {table} against reads and writes",
                              "Use DETACH PARTITION … CONCURRENTLY outside a transaction.")
