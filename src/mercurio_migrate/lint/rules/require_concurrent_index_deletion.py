"""DROP INDEX of an index on an existing table uses CONCURRENTLY.

DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table: reads and writes wait, and while the DROP
itself waits for a long-running query, everything queues behind it. DROP INDEX CONCURRENTLY waits for
conflicting transactions without blocking others. Indexes created earlier in the same file, and indexes
whose table the same file drops later, are exempt (the table lock is taken anyway).

Fix: `DROP INDEX CONCURRENTLY IF EXISTS …` in a migration without BEGIN/COMMIT.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "require-concurrent-index-deletion"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("DropStmt",)
SQUAWK = ("require-concurrent-index-deletion",)


def check(ctx):
    created = {s.node.get("idxname"): s.index for s in ctx.file.of_kind("IndexStmt")}
    dropped_tables = {}
    for stmt in ctx.file.of_kind("DropStmt"):
        if stmt.node.get("removeType") == "OBJECT_TABLE":
            for obj in stmt.node.get("objects") or ():
                dropped_tables.setdefault(tree.object_name(obj), stmt.index)
    for stmt in ctx.file.of_kind("DropStmt"):
        if stmt.node.get("removeType") != "OBJECT_INDEX" or stmt.node.get("concurrent"):
            continue
        for obj in stmt.node.get("objects") or ():
            name = tree.object_name(obj)
            table = ctx.schema.indexes.get(name)
            if name in created and created[name] < stmt.index:
                continue
            if table is not None and (not ctx.existing_table(table, stmt) or dropped_tables.get(table, -1) > stmt.index):
                continue
            yield ctx.finding(stmt, f"DROP INDEX {name} locks {table or 'its table'} against reads and writes",
                              "Use DROP INDEX CONCURRENTLY IF EXISTS in a migration without BEGIN/COMMIT.")
