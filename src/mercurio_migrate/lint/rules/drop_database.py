"""DROP DATABASE in a migration.

A migration changes one database's schema; dropping a whole database from one is almost certainly a
mistake (a script meant for a developer's machine), and it is irreversible.

Fix: remove the statement; manage databases outside migrations.
"""

from __future__ import annotations

ID = "drop-database"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("DropdbStmt",)
SQUAWK = ("ban-drop-database",)


def check(ctx):
    for stmt in ctx.file.of_kind("DropdbStmt"):
        yield ctx.finding(stmt, f"DROP DATABASE {stmt.node.get('dbname', '')} in a migration",
                          "Remove it; databases are managed outside migrations.")
