"""TRUNCATE … CASCADE.

CASCADE empties every table that references the truncated one through a foreign key, and the tables that
reference those, recursively: a one-table cleanup silently wipes unrelated data.

Fix: name every table to truncate explicitly, without CASCADE.
"""

from __future__ import annotations

ID = "truncate-cascade"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("TruncateStmt",)
SQUAWK = ("ban-truncate-cascade",)


def check(ctx):
    for stmt in ctx.file.of_kind("TruncateStmt"):
        if stmt.node.get("behavior") == "DROP_CASCADE":
            yield ctx.finding(stmt, "TRUNCATE … CASCADE also empties every table referencing these",
                              "List the tables to truncate explicitly and drop CASCADE.")
