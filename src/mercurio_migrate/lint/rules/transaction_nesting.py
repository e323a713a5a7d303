"""BEGIN inside an open transaction, or COMMIT/ROLLBACK with none open.

A second BEGIN inside a transaction only draws a warning from PostgreSQL, but the first COMMIT then ends
the outer transaction: the statements after it run outside any transaction while the author believes they
are protected. A COMMIT or ROLLBACK with no transaction open means the file's blocks are not what they look
like.

Fix: use exactly one BEGIN … COMMIT per file; use SAVEPOINT for nested units of work.
"""

from __future__ import annotations

ID = "transaction-nesting"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("TransactionStmt",)
SQUAWK = ("transaction-nesting",)


def check(ctx):
    for stmt in ctx.file.statements:
        if stmt.control == "begin" and stmt.explicit_block:
            yield ctx.finding(stmt, "BEGIN inside a transaction that is already open",
                              "Remove the inner BEGIN (use SAVEPOINT for a nested unit).")
        elif stmt.control in ("commit", "rollback") and not stmt.explicit_block:
            yield ctx.finding(stmt, f"{stmt.control.upper()} with no transaction open",
                              "Remove it, or add the BEGIN it belongs to.")
