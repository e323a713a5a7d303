"""Which statements take a lock on a table that existed before the file ran (the ones that can queue
behind a long transaction and block everyone else while they wait)."""

from __future__ import annotations

from collections.abc import Iterator

from mercurio_migrate.lint import tree

# the statement kinds that can lock a table here (a rule about locks has nothing to say about other files)
LOCKING_KINDS = ("AlterTableStmt", "IndexStmt", "CreateTrigStmt", "ClusterStmt", "RenameStmt", "CreateStmt", "DropStmt",
                 "TruncateStmt", "VacuumStmt", "ReindexStmt")

def locked_tables(ctx, stmt) -> list[str]:
    """Existing tables the statement locks beyond ROW EXCLUSIVE (DML is not counted)."""
    cache = getattr(ctx, "cache", None)
    if cache is None:
        return list(_locked_tables(ctx, stmt))
    key = ("locked_tables", stmt.index)
    if key not in cache:
        cache[key] = list(_locked_tables(ctx, stmt))
    return cache[key]


def _locked_tables(ctx, stmt) -> Iterator[str]:
    node = stmt.node
    kind = stmt.kind
    names: list[str] = []
    if kind in ("AlterTableStmt", "IndexStmt", "CreateTrigStmt", "ClusterStmt", "RenameStmt"):
        if kind == "RenameStmt" and node.get("renameType") not in ("OBJECT_TABLE", "OBJECT_COLUMN"):
            return
        names.append(tree.relname(node.get("relation")))
        if kind == "AlterTableStmt":
            for cmd in tree.alter_commands(node):
                for body in ctx.file.nodes(cmd.get("def"), "Constraint"):
                    if body.get("contype") == "CONSTR_FOREIGN":
                        names.append(tree.relname(body.get("pktable")))
    elif kind == "CreateStmt":
        # a foreign key locks the referenced table (SHARE ROW EXCLUSIVE) while the new table is created
        for body in ctx.file.nodes(node.get("tableElts"), "Constraint"):
            if body.get("contype") == "CONSTR_FOREIGN":
                names.append(tree.relname(body.get("pktable")))
    elif kind == "DropStmt" and node.get("removeType") == "OBJECT_TABLE":
        names.extend(tree.object_name(o) for o in node.get("objects") or ())
    elif kind == "DropStmt" and node.get("removeType") == "OBJECT_INDEX":
        for obj in node.get("objects") or ():
            table = ctx.schema.indexes.get(tree.object_name(obj))
            names.append(table or tree.object_name(obj))
    elif kind == "TruncateStmt":
        names.extend(tree.relname(tree.unwrap(r)[1]) for r in node.get("relations") or ())
    elif kind == "VacuumStmt" and any(tree.unwrap(o)[1].get("defname") == "full" for o in node.get("options") or ()):
        names.extend(tree.relname(tree.unwrap(r)[1].get("relation")) for r in node.get("rels") or ())
    elif kind == "ReindexStmt":
        names.append(tree.relname(node.get("relation")))
    seen = set()
    for name in names:
        if name and name not in seen and ctx.existing_table(name, stmt):
            seen.add(name)
            yield name
