"""rollback.sql drops or reverses everything migration.sql creates (and restores what it drops), in reverse dependency order.

A rollback that forgets an index, a column, a function or a trigger leaves the database in a state no
migration describes: re-applying the migration then fails (`already exists`), and schema diffs drift. The
rule compares the two files statically: every table, index, column, constraint, function, type, trigger,
sequence, view, schema and policy migration.sql creates must be dropped by rollback.sql (dropping a table
covers its indexes, columns, constraints and triggers), and every table, column, index and constraint
migration.sql drops must be re-created. It also checks the order: a table is dropped before the tables it
references, a table before the types it uses, a trigger before its function, and an index is not dropped
(without IF EXISTS) after its table is gone.

What verify proves complete is not reported: an index or trigger on a view or materialized view the
rollback drops goes with it; a constraint or index the rollback re-adds unnamed is matched under the name
PostgreSQL gives it; an object the migration drops and creates again existed before it, so the rollback
need not drop it (nor restore what the migration itself re-creates).

Fix: add the missing DROP (or ADD) statements to rollback.sql, newest object first; or use CASCADE
where dropping dependents is intended.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.schema import _constraint_obj, created_objects, dropped_objects

ID = "rollback-completeness"
SEVERITY = "error"
CATEGORY = "guideline"
ROLES = ("rollback",)
SQUAWK = ()
_UNKNOWABLE = {"DoStmt", "CallStmt", "ExecuteStmt"}


def check(ctx):
    if ctx.role != "rollback" or ctx.folder is None:
        return
    migration = ctx.folder.migration
    if migration.syntax_error or any(s.kind in _UNKNOWABLE for s in migration.statements + ctx.file.statements):
        return  # rollback-unverifiable reports that it cannot tell
    drops = dropped_objects(ctx.file)
    dropped_at = {}
    for obj in drops:
        dropped_at.setdefault((obj.kind, obj.table, obj.name), obj.stmt)
        dropped_at.setdefault((obj.kind, "", obj.name), obj.stmt)
    dropped_tables = {o.name for o in drops if o.kind in ("table", "view")}  # their indexes, triggers go along
    dropped_before = {(o.kind, o.name): o.stmt.index for o in dropped_objects(migration)}
    for obj in created_objects(migration):
        if dropped_before.get((obj.kind, obj.name), obj.stmt.index) < obj.stmt.index:
            continue  # dropped and created again by the migration: it existed before, and stays after rollback
        covered = (obj.kind, obj.table, obj.name) in dropped_at or (obj.kind, "", obj.name) in dropped_at
        if not covered and obj.table and obj.table in dropped_tables:
            covered = True
        if not covered:
            line = migration.position(None, obj.stmt)[0]
            yield ctx.finding(None, f"rollback does not drop {obj.label} (created at migration.sql:{line})",
                              _fix(obj))
    yield from _restores(ctx, migration)
    yield from _order(ctx, migration, drops)


def _fix(obj) -> str:
    if obj.kind == "column":
        return f"Add ALTER TABLE {obj.table} DROP COLUMN IF EXISTS {obj.name};"
    if obj.kind == "constraint":
        return f"Add ALTER TABLE {obj.table} DROP CONSTRAINT IF EXISTS {obj.name};"
    if obj.kind in ("trigger", "policy"):
        return f"Add DROP {obj.kind.upper()} IF EXISTS {obj.name} ON {obj.table};"
    return f"Add DROP {obj.kind.upper()} IF EXISTS {obj.name};"


def _restores(ctx, migration):
    """What the migration drops from tables it did not create must come back in the rollback."""
    created_here = {o.name for o in created_objects(migration) if o.kind == "table"}
    created_at = {(o.kind, o.name): o.stmt.index for o in created_objects(migration)}
    recreated = set()
    for stmt in ctx.file.statements:
        if stmt.kind == "CreateStmt":
            recreated.add(("table", "", tree.relname(stmt.node.get("relation"))))
        elif stmt.kind == "IndexStmt":
            recreated.add(("index", "", stmt.node.get("idxname") or _default_index_name(stmt.node)))
        elif stmt.kind == "AlterTableStmt":
            table = tree.relname(stmt.node.get("relation"))
            for cmd in tree.alter_commands(stmt.node):
                kind, definition = tree.unwrap(cmd.get("def"))
                if cmd.get("subtype") == "AT_AddColumn":
                    recreated.add(("column", table, definition.get("colname", "")))
                elif cmd.get("subtype") == "AT_AddConstraint":
                    named = _constraint_obj(table, definition, stmt) if kind == "Constraint" else None
                    recreated.add(("constraint", table, named.name if named else definition.get("conname", "")))
    for obj in dropped_objects(migration):
        if obj.kind not in ("table", "column", "constraint", "index") or obj.table in created_here:
            continue
        if created_at.get((obj.kind, obj.name), -1) > obj.stmt.index:
            continue  # the migration itself creates it again
        if obj.name in created_here or (obj.kind, obj.table if obj.kind in ("column", "constraint") else "",
                                        obj.name) in recreated:
            continue
        line = migration.position(None, obj.stmt)[0]
        yield ctx.finding(None, f"migration.sql:{line} drops {obj.label}; rollback does not restore it",
                          f"Re-create the {obj.kind} in rollback.sql (with its data, if it can be recovered).")


def _default_index_name(node: dict) -> str:
    """The name PostgreSQL gives an unnamed index on plain columns: <table>_<columns>_idx (or _key when
    unique); '' for an expression index."""
    columns = [p.get("IndexElem", {}).get("name") for p in node.get("indexParams") or ()]
    if not columns or not all(columns):
        return ""
    return f"{tree.relname(node.get('relation'))}_{'_'.join(columns)}_{'key' if node.get('unique') else 'idx'}"


def _order(ctx, migration, drops):
    position = {}
    cascade = set()
    for obj in drops:
        position.setdefault((obj.kind, obj.name), obj.stmt.index)
        if obj.stmt.node.get("behavior") == "DROP_CASCADE":
            cascade.add((obj.kind, obj.name))
    dependencies = []  # (dependent kind, name, needed kind, name, why)
    for stmt in migration.statements:
        node = stmt.node
        if stmt.kind == "CreateStmt":
            table = tree.relname(node.get("relation"))
            for kind, body in migration.walked(node.get("tableElts")):
                if kind == "Constraint" and body.get("contype") == "CONSTR_FOREIGN":
                    dependencies.append(("table", table, "table", tree.relname(body.get("pktable")), "references"))
                elif kind == "ColumnDef":
                    dependencies.append(("table", table, "type", tree.type_name(body.get("typeName")), "uses"))
        elif stmt.kind == "CreateTrigStmt":
            function = tree.strings(node.get("funcname"))[-1:]
            dependencies.append(("trigger", node.get("trigname", ""), "function", function[0] if function else "",
                                 "calls"))
            dependencies.append(("table", tree.relname(node.get("relation")), "function",
                                 function[0] if function else "", "has a trigger calling"))
    for dependent_kind, dependent, needed_kind, needed, why in dependencies:
        first, second = position.get((dependent_kind, dependent)), position.get((needed_kind, needed))
        if first is None or second is None or (needed_kind, needed) in cascade:
            continue
        if second < first:
            stmt = ctx.file.statements[second]
            yield ctx.finding(stmt, f"drops {needed_kind} {needed} before {dependent_kind} {dependent}, which {why} it",
                              f"Drop {dependent_kind} {dependent} first (reverse dependency order).")
    table_drop = {o.name: o.stmt.index for o in drops if o.kind == "table"}
    for obj in drops:
        if obj.kind != "index" or obj.stmt.node.get("missing_ok"):
            continue
        table = ctx.schema.indexes.get(obj.name)
        if table in table_drop and table_drop[table] < obj.stmt.index:
            yield ctx.finding(obj.stmt, f"drops index {obj.name} after its table {table} is already dropped",
                              "Drop the index before the table, or remove the DROP INDEX (the table takes it along).")
