"""Every migration folder has a rollback.sql.

Mercurio's guideline is that every migration can be undone: a deploy that goes wrong is rolled back with
`mercurio-migrate down`, which runs the folder's rollback.sql. A migration without one can only be undone
by hand, under pressure. Data migrations need one too (even if it only restores what can be restored and
says so in a `-- WARNING:` line).

Fix: add rollback.sql to the folder, reversing migration.sql in reverse order.
"""

from __future__ import annotations

ID = "rollback-present"
SEVERITY = "error"
CATEGORY = "guideline"
ROLES = ("migration",)
SQUAWK = ()


def check(ctx):
    if ctx.role == "migration" and ctx.folder is not None and ctx.folder.rollback is None:
        yield ctx.finding(None, f"migration {ctx.folder.version}_{ctx.folder.name} has no rollback.sql",
                          "Add rollback.sql that reverses migration.sql.")
