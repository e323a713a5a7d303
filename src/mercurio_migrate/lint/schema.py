"""The schema as earlier migrations left it (replayed from their statements, no database), and the objects
one file creates or drops, which the rollback rules and the "is this table new?" questions rely on.

Names are compared unqualified (``public.t`` and ``t`` are the same table): the migrations this tool lints
live in one schema, and a wrong guess costs at most one missed or extra finding, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.model import SqlFile, Stmt


@dataclass
class Column:
    type: str
    mods: tuple[int, ...] = ()
    array: bool = False


@dataclass
class Table:
    columns: dict[str, Column] | None = field(default_factory=dict)  # None: not known (CREATE TABLE AS)


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)  # index -> table
    # table -> names that were indexes on it (a superset: check ``indexes`` before trusting one)
    _indexed: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)

    def columns(self, table: str) -> dict[str, Column] | None:
        known = self.tables.get(table)
        return known.columns if known else None

    def apply(self, sql: SqlFile) -> None:
        """Replay one file's effect on tables, columns and indexes."""
        for stmt in sql.statements:
            _apply(self, stmt)


def column_of(definition: dict) -> Column:
    type_node = definition.get("typeName")
    return Column(tree.type_name(type_node), tree.type_mods(type_node), tree.is_array(type_node))


def _apply(schema: Schema, stmt: Stmt) -> None:
    node = stmt.node
    if stmt.kind == "CreateStmt":
        schema.tables[tree.relname(node.get("relation"))] = Table(
            {c.get("colname", ""): column_of(c) for c in tree.column_defs(node)})
    elif stmt.kind == "CreateTableAsStmt":
        schema.tables[tree.relname(node.get("into", {}).get("rel"))] = Table(None)
    elif stmt.kind == "IndexStmt" and node.get("idxname"):
        table = schema.indexes[node["idxname"]] = tree.relname(node.get("relation"))
        schema._indexed.setdefault(table, set()).add(node["idxname"])
    elif stmt.kind == "DropStmt":
        for obj in node.get("objects") or ():
            name = tree.object_name(obj)
            if node.get("removeType") == "OBJECT_TABLE":
                schema.tables.pop(name, None)
                for index in schema._indexed.pop(name, ()):
                    if schema.indexes.get(index) == name:
                        del schema.indexes[index]
            elif node.get("removeType") == "OBJECT_INDEX":
                schema.indexes.pop(name, None)
    elif stmt.kind == "RenameStmt":
        target = tree.relname(node.get("relation"))
        if node.get("renameType") == "OBJECT_TABLE" and target in schema.tables:
            schema.tables[node.get("newname", "")] = schema.tables.pop(target)
        elif node.get("renameType") == "OBJECT_COLUMN":
            columns = schema.columns(target)
            if columns is not None and node.get("subname") in columns:
                columns[node.get("newname", "")] = columns.pop(node["subname"])
        elif node.get("renameType") == "OBJECT_INDEX" and target in schema.indexes:
            table = schema.indexes[node.get("newname", "")] = schema.indexes.pop(target)
            schema._indexed.setdefault(table, set()).add(node.get("newname", ""))
    elif stmt.kind == "AlterTableStmt":
        table = tree.relname(node.get("relation"))
        columns = schema.columns(table)
        if columns is None:
            return
        for cmd in tree.alter_commands(node):
            subtype = cmd.get("subtype")
            if subtype == "AT_AddColumn":
                kind, definition = tree.unwrap(cmd.get("def"))
                if kind == "ColumnDef":
                    columns[definition.get("colname", "")] = column_of(definition)
            elif subtype == "AT_DropColumn":
                columns.pop(cmd.get("name", ""), None)
            elif subtype == "AT_AlterColumnType":
                kind, definition = tree.unwrap(cmd.get("def"))
                if kind == "ColumnDef":
                    columns[cmd.get("name", "")] = column_of(definition)


# --- what a file creates and drops ----------------------------------------------------------------------
@dataclass(frozen=True)
class Obj:
    """A database object a statement creates or drops. ``table`` is set for objects that live on a table."""

    kind: str  # table, index, column, constraint, function, type, trigger, sequence, view, schema, extension, policy
    name: str
    table: str = ""
    stmt: Stmt | None = field(default=None, compare=False, hash=False)
    offset: int | None = field(default=None, compare=False, hash=False)  # byte offset of the name, when known

    @property
    def label(self) -> str:
        return f"{self.kind} {self.table}.{self.name}" if self.table else f"{self.kind} {self.name}"


_DROP_KINDS = {
    "OBJECT_TABLE": "table", "OBJECT_INDEX": "index", "OBJECT_FUNCTION": "function", "OBJECT_PROCEDURE": "function",
    "OBJECT_TYPE": "type", "OBJECT_DOMAIN": "type", "OBJECT_TRIGGER": "trigger", "OBJECT_SEQUENCE": "sequence",
    "OBJECT_VIEW": "view", "OBJECT_MATVIEW": "view", "OBJECT_SCHEMA": "schema", "OBJECT_EXTENSION": "extension",
    "OBJECT_POLICY": "policy",
}


def default_constraint_name(table: str, contype: str, columns: list[str]) -> str | None:
    """The name PostgreSQL gives an unnamed constraint (for the simple cases it can be predicted)."""
    if contype == "CONSTR_PRIMARY":
        return f"{table}_pkey"
    if not columns:
        return None
    suffix = {"CONSTR_FOREIGN": "fkey", "CONSTR_UNIQUE": "key", "CONSTR_CHECK": "check",
              "CONSTR_EXCLUSION": "excl"}.get(contype)
    return f"{table}_{'_'.join(columns)}_{suffix}" if suffix else None


def _constraint_obj(table: str, constraint: dict, stmt: Stmt, column: str | None = None) -> Obj | None:
    contype = constraint.get("contype", "")
    if contype not in ("CONSTR_FOREIGN", "CONSTR_UNIQUE", "CONSTR_CHECK", "CONSTR_PRIMARY", "CONSTR_EXCLUSION"):
        return None
    columns = tree.strings(constraint.get("fk_attrs") or constraint.get("keys")) or ([column] if column else [])
    if contype == "CONSTR_CHECK" and not column:
        refs = sorted((b.get("location", 0), tree.strings(b.get("fields"))[-1:])
                      for k, b in tree.walk(constraint.get("raw_expr")) if k == "ColumnRef")
        columns = refs[0][1] if refs else []  # PostgreSQL names a CHECK after the first column it uses
    name = constraint.get("conname") or default_constraint_name(table, contype, [c for c in columns if c])
    return Obj("constraint", name or "", table, stmt, constraint.get("location")) if name else None


def created_objects(sql: SqlFile) -> list[Obj]:
    """Objects the file creates, in order (constraints of CREATE TABLE are part of the table). Computed once
    per file: the list is shared, do not change it."""
    return sql.fact("created_objects", _created_objects)


def _created_objects(sql: SqlFile) -> list[Obj]:
    out: list[Obj] = []
    for stmt in sql.statements:
        node = stmt.node
        if stmt.kind == "CreateStmt":
            rel = node.get("relation", {})
            if rel.get("relpersistence") != "t":
                out.append(Obj("table", tree.relname(rel), "", stmt, rel.get("location")))
        elif stmt.kind == "CreateTableAsStmt":
            rel = node.get("into", {}).get("rel", {})
            if rel.get("relpersistence") != "t":
                kind = "view" if node.get("objtype") == "OBJECT_MATVIEW" else "table"
                out.append(Obj(kind, tree.relname(rel), "", stmt, rel.get("location")))
        elif stmt.kind == "IndexStmt" and node.get("idxname"):
            out.append(Obj("index", node["idxname"], tree.relname(node.get("relation")), stmt))
        elif stmt.kind == "AlterTableStmt":
            table = tree.relname(node.get("relation"))
            for cmd in tree.alter_commands(node):
                kind, definition = tree.unwrap(cmd.get("def"))
                if cmd.get("subtype") == "AT_AddColumn" and kind == "ColumnDef":
                    out.append(Obj("column", definition.get("colname", ""), table, stmt, definition.get("location")))
                elif cmd.get("subtype") == "AT_AddConstraint" and kind == "Constraint":
                    obj = _constraint_obj(table, definition, stmt)
                    if obj:
                        out.append(obj)
        elif stmt.kind == "CreateFunctionStmt":
            out.append(Obj("function", tree.strings(node.get("funcname"))[-1], "", stmt))
        elif stmt.kind in ("CreateEnumStmt", "CompositeTypeStmt", "CreateRangeStmt", "CreateDomainStmt"):
            if stmt.kind == "CompositeTypeStmt":
                name = tree.relname(node.get("typevar"))
            else:
                parts = tree.strings(node.get("domainname") if stmt.kind == "CreateDomainStmt" else node.get("typeName"))
                name = parts[-1] if parts else ""
            out.append(Obj("type", name, "", stmt))
        elif stmt.kind == "CreateTrigStmt":
            out.append(Obj("trigger", node.get("trigname", ""), tree.relname(node.get("relation")), stmt))
        elif stmt.kind == "CreateSeqStmt":
            out.append(Obj("sequence", tree.relname(node.get("sequence")), "", stmt))
        elif stmt.kind == "ViewStmt":
            out.append(Obj("view", tree.relname(node.get("view")), "", stmt))
        elif stmt.kind == "CreateSchemaStmt":
            out.append(Obj("schema", node.get("schemaname", ""), "", stmt))
        elif stmt.kind == "CreateExtensionStmt" and not node.get("if_not_exists"):
            out.append(Obj("extension", node.get("extname", ""), "", stmt))
        elif stmt.kind == "CreatePolicyStmt":
            out.append(Obj("policy", node.get("policy_name", ""), tree.relname(node.get("table")), stmt))
    return out


def dropped_objects(sql: SqlFile) -> list[Obj]:
    """Objects the file drops, in order: DROP statements and ALTER TABLE … DROP COLUMN/CONSTRAINT. Computed
    once per file: the list is shared, do not change it."""
    return sql.fact("dropped_objects", _dropped_objects)


def _dropped_objects(sql: SqlFile) -> list[Obj]:
    out: list[Obj] = []
    for stmt in sql.statements:
        node = stmt.node
        if stmt.kind == "DropStmt":
            kind = _DROP_KINDS.get(node.get("removeType", ""))
            if not kind:
                continue
            for obj in node.get("objects") or ():
                parts = tree.object_parts(obj)
                if kind in ("trigger", "policy") and len(parts) >= 2:
                    out.append(Obj(kind, parts[-1], parts[-2], stmt))
                elif parts:
                    out.append(Obj(kind, parts[-1], "", stmt))
        elif stmt.kind == "AlterTableStmt":
            table = tree.relname(node.get("relation"))
            for cmd in tree.alter_commands(node):
                if cmd.get("subtype") == "AT_DropColumn":
                    out.append(Obj("column", cmd.get("name", ""), table, stmt))
                elif cmd.get("subtype") == "AT_DropConstraint":
                    out.append(Obj("constraint", cmd.get("name", ""), table, stmt))
    return out
