"""CREATE INDEX on a table that existed before the migration uses CONCURRENTLY.

A plain CREATE INDEX takes a SHARE lock: every INSERT, UPDATE and DELETE on the table waits until the
whole index is built, which on a large table means minutes of failed writes. CONCURRENTLY builds it while
writes continue. A table created earlier in the same migration is empty, so it needs nothing.

Fix: `CREATE INDEX CONCURRENTLY IF NOT EXISTS …` in a migration of its own without BEGIN/COMMIT
(mercurio-migrate runs it outside a transaction).
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "require-concurrent-index-creation"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("IndexStmt",)
SQUAWK = ("require-concurrent-index-creation",)


def check(ctx):
    for stmt in ctx.file.of_kind("IndexStmt"):
        table = tree.relname(stmt.node.get("relation"))
        if not stmt.node.get("concurrent") and ctx.existing_table(table, stmt):
            yield ctx.finding(stmt, f"CREATE INDEX on existing table {table} blocks its writes while it builds",
                              "Use CREATE INDEX CONCURRENTLY IF NOT EXISTS in a migration without BEGIN/COMMIT.")
