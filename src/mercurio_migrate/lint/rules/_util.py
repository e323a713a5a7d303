"""Small helpers several rules share (not a rule: the registry skips modules starting with ``_``)."""

from __future__ import annotations

from collections.abc import Iterator

from mercurio_migrate.lint import tree


def column_definitions(ctx, kinds=("create", "add", "type")) -> Iterator[tuple[object, str, dict, str]]:
    """(statement, table, ColumnDef fields, how) for columns of CREATE TABLE ("create"), ALTER TABLE … ADD
    COLUMN ("add") and ALTER COLUMN … TYPE ("type"; the ColumnDef then has only the new type)."""
    for entry in ctx.file.fact("column_definitions", _column_definitions):
        if entry[3] in kinds:
            yield entry


def _column_definitions(sql) -> list[tuple[object, str, dict, str]]:
    out = []
    for stmt in sql.of_kind("CreateStmt", "AlterTableStmt"):
        table = tree.relname(stmt.node.get("relation"))
        if stmt.kind == "CreateStmt":
            out.extend((stmt, table, column, "create") for column in tree.column_defs(stmt.node))
            continue
        for cmd in tree.alter_commands(stmt.node):
            kind, definition = tree.unwrap(cmd.get("def"))
            if kind != "ColumnDef":
                continue
            if cmd.get("subtype") == "AT_AddColumn":
                out.append((stmt, table, definition, "add"))
            elif cmd.get("subtype") == "AT_AlterColumnType":
                out.append((stmt, table, {**definition, "colname": cmd.get("name", "")}, "type"))
    return out


def type_node_of(column: dict) -> dict:
    type_node = column.get("typeName") or {}
    return type_node


def is_temporary(stmt) -> bool:
    return stmt.node.get("relation", {}).get("relpersistence") == "t"


def existing_alter_commands(ctx, *subtypes: str) -> Iterator[tuple[object, str, dict]]:
    """(statement, table, command) for ALTER TABLE commands of these subtypes on tables that existed before
    the file ran."""
    commands = ctx.cache.get("existing_alter_commands")
    if commands is None:
        commands = []
        for stmt in ctx.file.of_kind("AlterTableStmt"):
            table = tree.relname(stmt.node.get("relation"))
            if ctx.existing_table(table, stmt):
                commands.extend((stmt, table, cmd) for cmd in tree.alter_commands(stmt.node))
        ctx.cache["existing_alter_commands"] = commands
    for stmt, table, cmd in commands:
        if cmd.get("subtype") in subtypes:
            yield stmt, table, cmd


def created_by_migration(ctx) -> set:
    """For a rollback: the objects its migration creates (so dropping them is the point, not a hazard)."""
    if ctx.role != "rollback" or ctx.folder is None:
        return set()
    if "created_by_migration" not in ctx.cache:
        from mercurio_migrate.lint.schema import created_objects

        ctx.cache["created_by_migration"] = {(o.kind, o.table, o.name) for o in created_objects(ctx.folder.migration)}
    return ctx.cache["created_by_migration"]


def describe(stmt) -> str:
    """A short name for a statement in messages, e.g. "CREATE INDEX CONCURRENTLY"."""
    node = stmt.node
    if stmt.kind == "IndexStmt":
        return "CREATE INDEX CONCURRENTLY" if node.get("concurrent") else "CREATE INDEX"
    if stmt.kind == "DropStmt":
        return "DROP INDEX CONCURRENTLY" if node.get("concurrent") else "DROP"
    if stmt.kind == "ReindexStmt":
        return "REINDEX CONCURRENTLY"
    if stmt.kind == "VacuumStmt":
        return "VACUUM"
    if stmt.kind == "AlterTableStmt":
        return "ALTER TABLE … DETACH PARTITION CONCURRENTLY"
    return {"CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE", "AlterSystemStmt": "ALTER SYSTEM",
            "ClusterStmt": "CLUSTER"}.get(stmt.kind, stmt.kind)
