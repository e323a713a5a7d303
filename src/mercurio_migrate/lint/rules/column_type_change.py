"""ALTER COLUMN … TYPE that rewrites an existing table.

Changing a column's type rewrites the table and rebuilds its indexes under an ACCESS EXCLUSIVE lock: no
reads or writes for the duration, and old application code may break on the new type. A few changes are
metadata-only and are not reported when the old type is known from earlier migrations: `varchar(n)` to a
longer `varchar(m)`, to unbounded `varchar` or `text`, and `numeric(p,s)` to a wider precision with the
same scale (or unconstrained `numeric`), and `timestamp` to `timestamptz` or back while an earlier
statement of the file set the session's time zone to UTC (`SET [LOCAL] timezone = 'UTC'`: PostgreSQL then
converts without rewriting). A `USING` clause always rewrites.

Fix: add a new column of the new type, write to both (trigger), backfill in batches, switch readers, then
drop the old column in a later migration.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import existing_alter_commands

ID = "column-type-change"
SEVERITY = "error"
CATEGORY = "lock-safety"
KINDS = ("AlterTableStmt",)
SQUAWK = ("changing-column-type",)


# time zones whose offset from UTC is always zero: under one, timestamp <-> timestamptz needs no rewrite
_UTC_ZONES = frozenset({"utc", "etc/utc", "gmt", "etc/gmt", "uct", "etc/uct", "zulu", "etc/zulu", "universal",
                        "etc/universal", "greenwich", "etc/greenwich", "gmt0", "etc/gmt0", "+00", "z"})
_TIMESTAMPS = frozenset({"timestamp", "timestamptz"})


def _in_utc(ctx, stmt) -> bool:
    """Whether a statement before ``stmt`` in the file set the session's time zone to UTC (the last such
    setting counts)."""
    zone = None
    for earlier in ctx.file.statements[:stmt.index]:
        if earlier.kind == "VariableSetStmt" and earlier.node.get("name") == "timezone":
            args = earlier.node.get("args") or ()
            value = args[0].get("A_Const", {}).get("sval", {}).get("sval") if len(args) == 1 else None
            zone = value.lower() if earlier.node.get("kind") == "VAR_SET_VALUE" and value else None
    return zone in _UTC_ZONES


def _safe(old, new_type: str, new_mods: tuple, in_utc: bool = False) -> bool:
    if old is None or old.array:
        return False
    if in_utc and old.type in _TIMESTAMPS and new_type in _TIMESTAMPS:
        return True
    if old.type == "varchar" and new_type == "varchar":
        return not new_mods or (bool(old.mods) and new_mods[0] >= old.mods[0])
    if old.type in ("varchar", "text") and new_type == "text":
        return True
    if old.type == "text" and new_type == "varchar":
        return not new_mods
    if old.type == "numeric" and new_type == "numeric":
        if not new_mods:
            return True
        old_scale = old.mods[1] if len(old.mods) > 1 else 0
        new_scale = new_mods[1] if len(new_mods) > 1 else 0
        return bool(old.mods) and new_mods[0] >= old.mods[0] and new_scale == old_scale
    return False


def check(ctx):
    for stmt, table, cmd in existing_alter_commands(ctx, "AT_AlterColumnType"):
        kind, definition = tree.unwrap(cmd.get("def"))
        type_node = definition.get("typeName")
        column = cmd.get("name", "")
        old = (ctx.schema.columns(table) or {}).get(column)
        if definition.get("raw_default") is None and not tree.is_array(type_node) and _safe(
                old, tree.type_name(type_node), tree.type_mods(type_node), _in_utc(ctx, stmt)):
            continue
        yield ctx.finding(stmt, f"changing the type of {table}.{column} rewrites the table under ACCESS EXCLUSIVE",
                          "Add a new column, dual-write and backfill, switch readers, drop the old one later.",
                          node=type_node)
