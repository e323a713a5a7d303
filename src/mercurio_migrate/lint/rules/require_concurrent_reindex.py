"""REINDEX without CONCURRENTLY.

A plain REINDEX locks out writes to the table (and reads that would use the index) until every index is
rebuilt. REINDEX CONCURRENTLY (PostgreSQL 12+) rebuilds alongside and swaps at the end.

Fix: `REINDEX INDEX CONCURRENTLY …` (or TABLE) in a migration without BEGIN/COMMIT.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "require-concurrent-reindex"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("ReindexStmt",)
SQUAWK = ("require-concurrent-reindex",)


def check(ctx):
    for stmt in ctx.file.of_kind("ReindexStmt"):
        if not any(tree.unwrap(p)[1].get("defname") == "concurrently" for p in stmt.node.get("params") or ()):
            yield ctx.finding(stmt, "REINDEX without CONCURRENTLY blocks writes until the rebuild ends",
                              "Use REINDEX … CONCURRENTLY outside a transaction.")
