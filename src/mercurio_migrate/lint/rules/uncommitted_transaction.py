"""A BEGIN that the file never commits.

A transaction left open at the end of a file is rolled back when the session ends (psql) or committed by
whatever runs next: either way the outcome is not what the file says. Its locks are also held until then.

Fix: end the block with `COMMIT;`.
"""

from __future__ import annotations

ID = "uncommitted-transaction"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("TransactionStmt",)
SQUAWK = ("ban-uncommitted-transaction",)


def check(ctx):
    opened = None
    for stmt in ctx.file.statements:
        if stmt.control == "begin" and opened is None:
            opened = stmt
        elif stmt.control in ("commit", "rollback", "prepare"):
            opened = None
    if opened is not None:
        yield ctx.finding(opened, "this BEGIN is never committed", "Add `COMMIT;` at the end of the block.")
