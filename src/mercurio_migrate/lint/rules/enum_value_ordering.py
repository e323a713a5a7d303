"""ALTER TYPE … ADD VALUE without BEFORE or AFTER.

A new enum value is appended at the end, and enums sort by declaration order: `ORDER BY status` and
`status < 'x'` comparisons change meaning if the value belongs elsewhere in the sequence.

Fix: say where it goes: `ALTER TYPE t ADD VALUE 'x' AFTER 'y';` (or BEFORE), even when the end is right.
"""

from __future__ import annotations

ID = "enum-value-ordering"
SEVERITY = "info"
CATEGORY = "style"
KINDS = ("AlterEnumStmt",)
SQUAWK = ("require-enum-value-ordering",)


def check(ctx):
    for stmt in ctx.file.of_kind("AlterEnumStmt"):
        if stmt.node.get("newVal") and not stmt.node.get("newValNeighbor") and not stmt.node.get("oldVal"):
            yield ctx.finding(stmt, f"enum value {stmt.node['newVal']!r} is appended at the end",
                              "Write ADD VALUE … BEFORE/AFTER an existing value.")
