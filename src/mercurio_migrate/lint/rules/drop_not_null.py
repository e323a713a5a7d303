"""DROP NOT NULL on an existing column.

Code that reads the column assumes it is never NULL; once NULLs can be written, that code (and
constraints or indexes built on the assumption) breaks on the first one. A rollback undoing its
migration's SET NOT NULL is exempt.

Fix: make sure every reader handles NULL first, then drop the constraint; or keep NOT NULL and write a
sentinel value.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "drop-not-null"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("ban-drop-not-null",)


def _set_by_migration(ctx) -> set:
    if ctx.role != "rollback" or ctx.folder is None:
        return set()
    out = set()
    for stmt in ctx.folder.migration.of_kind("AlterTableStmt"):
        table = tree.relname(stmt.node.get("relation"))
        out.update((table, c.get("name")) for c in tree.alter_commands(stmt.node) if c.get("subtype") == "AT_SetNotNull")
    return out


def check(ctx):
    undone = _set_by_migration(ctx)
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_DropNotNull"):
        if (table, cmd.get("name")) not in undone:
            yield ctx.finding(stmt, f"{table}.{cmd.get('name', '')} may now be NULL: readers assuming otherwise break",
                              "Make every reader NULL-safe before dropping NOT NULL.")
