"""rollback.sql cannot be checked against migration.sql (DO blocks, CALL, EXECUTE): review it by hand.

The rollback-completeness rule reads both files statically. Code in a DO block, a procedure call or a
prepared statement creates or drops objects the linter cannot see, so it cannot tell whether the rollback
reverses the migration; this warning says so instead of staying silent.

Fix: prefer plain DDL in migration and rollback; otherwise verify the pair on a scratch database
(`mercurio-migrate verify`) and suppress this finding with the reason.
"""

from __future__ import annotations

ID = "rollback-unverifiable"
SEVERITY = "warning"
CATEGORY = "guideline"
ROLES = ("rollback",)
SQUAWK = ()
_OPAQUE = {"DoStmt": "DO block", "CallStmt": "CALL", "ExecuteStmt": "EXECUTE"}


def check(ctx):
    if ctx.role != "rollback" or ctx.folder is None:
        return
    for label, sql in (("migration.sql", ctx.folder.migration), ("rollback.sql", ctx.file)):
        for stmt in sql.statements:
            if stmt.kind in _OPAQUE:
                line = sql.position(None, stmt)[0]
                yield ctx.finding(stmt if sql is ctx.file else None,
                                  f"{_OPAQUE[stmt.kind]} at {label}:{line}: cannot tell whether the rollback "
                                  "reverses the migration", "Check the pair with `mercurio-migrate verify`.")
