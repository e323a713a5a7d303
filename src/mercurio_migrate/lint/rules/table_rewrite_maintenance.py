"""VACUUM FULL or CLUSTER in a migration.

Both rewrite the whole table under an ACCESS EXCLUSIVE lock: no reads or writes until the copy is done,
and they need free disk space for a full second copy. Neither belongs in a deploy.

Fix: run `pg_repack` (online) from a maintenance job, or plain `VACUUM` if the goal is reclaiming dead
rows for reuse.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "table-rewrite-maintenance"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("VacuumStmt", "ClusterStmt")
SQUAWK = ("prefer-repack",)


def check(ctx):
    for stmt in ctx.file.of_kind("VacuumStmt", "ClusterStmt"):
        if stmt.kind == "VacuumStmt":
            if not stmt.node.get("is_vacuumcmd") or not any(
                    tree.unwrap(o)[1].get("defname") == "full" for o in stmt.node.get("options") or ()):
                continue
            label = "VACUUM FULL"
        else:
            label = "CLUSTER"
        yield ctx.finding(stmt, f"{label} rewrites the table under an ACCESS EXCLUSIVE lock",
                          "Use pg_repack from a maintenance job instead.")
