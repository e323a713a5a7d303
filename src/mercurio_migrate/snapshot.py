"""Catalog -> canonical schema model, and the difference between two models.

A snapshot is read from ``pg_catalog`` (never from pg_dump text) with a fixed number of queries,
whatever the number of objects. Every object is keyed by its kind and name, so two databases built
by the same SQL give equal snapshots whatever the order of creation or the OIDs.

Names are printed as PostgreSQL quotes them, without the ``public.`` prefix; objects of other schemas
keep theirs. Deparsed text (defaults, constraint and index definitions, view and function bodies) is
read under a fixed ``search_path`` and fixed output settings, so it does not depend on the session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mercurio_migrate import history

RELATION_KINDS = {"r": "table", "p": "table", "f": "foreign table", "v": "view", "m": "materialized view"}
TABLE_KINDS = ("table", "foreign table")

# Reordering columns is something PostgreSQL cannot do (a rollback that re-adds a column puts it last),
# so a different column order is reported, but as a note.
NOTE_ATTRS = frozenset({"column order"})

# Values longer than this, or spanning lines (function bodies, view definitions), are reported as
# "changed"; their full text stays in the Difference for JSON output.
INLINE_LIMIT = 120


def tool_tables() -> tuple[str, ...]:
    """The tool's own tables, schema-qualified, as every snapshot and data check leaves them out."""
    log = history.MIGRATION_LOG_TABLE
    return (history.HISTORY_TABLE, log if "." in log else f"public.{log}")


@dataclass(frozen=True)
class SchemaObject:
    kind: str  # table, column, constraint, index, sequence, view, function, trigger, enum type, ...
    name: str  # display name: "tenant", "tenant.status", "audit.event", "lower_email(text)"
    attrs: tuple[tuple[str, Any], ...]  # sorted by attribute name; values are str, bool, int, None or tuples
    # Not compared: derived from the name, kept to write DDL and to fold children into their parent.
    parent: tuple[str, str] | None = field(default=None, compare=False)
    sql_name: str = field(default="", compare=False)  # schema-qualified for top-level objects

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def get(self, attr: str, default: Any = None) -> Any:
        return dict(self.attrs).get(attr, default)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Snapshot:
    objects: tuple[SchemaObject, ...]  # sorted by key: equality does not depend on catalog order

    @cached_property
    def by_key(self) -> dict[tuple[str, str], SchemaObject]:
        return {o.key: o for o in self.objects}

    def of_kind(self, *kinds: str) -> list[SchemaObject]:
        return [o for o in self.objects if o.kind in kinds]

    def get(self, kind: str, name: str) -> SchemaObject | None:
        return self.by_key.get((kind, name))

    def children(self, parent: SchemaObject) -> list[SchemaObject]:
        return [o for o in self.objects if o.parent == parent.key]

    def tables(self) -> list[SchemaObject]:
        return self.of_kind(*TABLE_KINDS)

    def as_dict(self) -> dict:
        return {"objects": [{"kind": o.kind, "name": o.name, **{k: _jsonable(v) for k, v in o.attrs}}
                            for o in self.objects]}


@dataclass(frozen=True)
class Difference:
    kind: str
    name: str
    status: str  # added | removed | changed (from the first snapshot to the second)
    change: str  # "added", "removed", or "default 'UTC'::character varying -> none"
    severity: str = "difference"  # or "note" (column order)
    attr: str | None = None
    before: Any = None
    after: Any = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.change}"

    def as_dict(self) -> dict:
        data = {"kind": self.kind, "name": self.name, "status": self.status, "change": self.change,
                "severity": self.severity, "text": str(self)}
        if self.attr is not None:
            data.update(attribute=self.attr, before=_jsonable(self.before), after=_jsonable(self.after))
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


# --- diff -------------------------------------------------------------------------------------------
def render(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return "(" + ", ".join(render(v) for v in value) + ")"
    return str(value)


def _change_text(attr: str, before: Any, after: Any) -> str:
    old, new = render(before), render(after)
    if "\n" in old or "\n" in new or len(old) > INLINE_LIMIT or len(new) > INLINE_LIMIT:
        return f"{attr} changed"
    return f"{attr} {old} -> {new}"


def _order_change(before: tuple, after: tuple) -> tuple[tuple, tuple] | None:
    """The column orders restricted to the columns both have, when those differ."""
    common = set(before) & set(after)
    old = tuple(c for c in before if c in common)
    new = tuple(c for c in after if c in common)
    return (old, new) if old != new else None


def diff(a: Snapshot, b: Snapshot) -> list[Difference]:
    """What changed from ``a`` to ``b``: each object added, removed or changed, and how.

    An object added or removed together with its parent (a column with its table) is not listed
    separately: the parent's line says it.
    """
    keys_a, keys_b = set(a.by_key), set(b.by_key)
    added, removed = keys_b - keys_a, keys_a - keys_b
    out: list[Difference] = []
    for key in sorted(removed):
        obj = a.by_key[key]
        if obj.parent not in removed:
            out.append(Difference(obj.kind, obj.name, "removed", "removed"))
    for key in sorted(added):
        obj = b.by_key[key]
        if obj.parent not in added:
            out.append(Difference(obj.kind, obj.name, "added", "added"))
    for key in sorted(keys_a & keys_b):
        old, new = a.by_key[key], b.by_key[key]
        if old == new:
            continue
        old_attrs, new_attrs = dict(old.attrs), dict(new.attrs)
        for attr in sorted(set(old_attrs) | set(new_attrs)):
            before, after = old_attrs.get(attr), new_attrs.get(attr)
            if before == after:
                continue
            if attr in NOTE_ATTRS:
                reordered = _order_change(before or (), after or ())
                if reordered:
                    out.append(Difference(old.kind, old.name, "changed",
                                          _change_text(attr, *reordered), "note", attr, *reordered))
                continue
            out.append(Difference(old.kind, old.name, "changed", _change_text(attr, before, after),
                                  "difference", attr, before, after))
    return out


def differences(items: Iterable[Difference]) -> list[Difference]:
    return [d for d in items if d.severity == "difference"]


# --- reading the catalog ----------------------------------------------------------------------------
# One statement reads everything: its parts share one view of the catalog, the relations in scope are
# found once (the `rel` CTE) for all the parts that hang off them, and the whole costs one round trip.
# Each part comes back as a JSON array of rows; OIDs are cast to int8 so that JSON carries them as numbers.
_IN_SCOPE_NAMESPACE = """
    n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND n.nspname <> ALL (%(exclude_schemas)s::text[])
"""


def _not_extension_member(catalog: str, alias: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass "
            f"AND e.objid = {alias}.oid AND e.deptype = 'e')")


def _display(nsp: str, name: str) -> str:
    return f"CASE WHEN {nsp} = 'public' THEN '' ELSE quote_ident({nsp}) || '.' END || quote_ident({name})"


def _comment(catalog: str, oid: str, subid: str = "0") -> str:
    """obj_description/col_description without their SQL-function call and catalog lookup per row."""
    return (f"(SELECT d.description FROM pg_description d WHERE d.objoid = {oid} "
            f"AND d.classoid = '{catalog}'::regclass AND d.objsubid = {subid})")


# The relations in scope: tables, views and sequences outside the excluded schemas and tables and not
# part of an extension.
RELATIONS_IN_SCOPE_SQL = f"""
SELECT c.oid, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND {_IN_SCOPE_NAMESPACE}
  AND c.oid NOT IN (SELECT to_regclass(x) FROM unnest(%(exclude_tables)s::text[]) x WHERE to_regclass(x) IS NOT NULL)
  AND {_not_extension_member('pg_class', 'c')}
"""

_TABLES = "ANY (ARRAY(SELECT oid FROM rel WHERE relkind <> 'S'))"

SCHEMAS_SQL = f"""
SELECT n.oid::int8, quote_ident(n.nspname), {_comment('pg_namespace', 'n.oid')}
FROM pg_namespace n
WHERE {_IN_SCOPE_NAMESPACE} AND {_not_extension_member('pg_namespace', 'n')}
"""

RELATIONS_SQL = f"""
SELECT c.oid::int8, c.relkind, {_display('n.nspname', 'c.relname')}, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
       ARRAY(SELECT i.inhparent::int8 FROM pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
       array_to_string(ARRAY(SELECT o FROM unnest(c.reloptions) o ORDER BY o), ', '),
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END,
       c.relispopulated,
       (SELECT quote_ident(s.srvname) FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
         WHERE ft.ftrelid = c.oid),
       {_comment('pg_class', 'c.oid')}
FROM rel JOIN pg_class c ON c.oid = rel.oid JOIN pg_namespace n ON n.oid = c.relnamespace
"""

COLUMNS_SQL = f"""
SELECT a.attrelid::int8, quote_ident(a.attname), a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN
            CASE WHEN cn.nspname = 'pg_catalog' THEN '' ELSE quote_ident(cn.nspname) || '.' END
            || quote_ident(co.collname) END,
       a.attislocal, {_comment('pg_class', 'a.attrelid', 'a.attnum')}
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attrelid = {_TABLES} AND a.attnum > 0 AND NOT a.attisdropped
"""

CONSTRAINTS_SQL = f"""
SELECT c.conrelid::int8, quote_ident(c.conname), c.contype, pg_get_constraintdef(c.oid), c.conislocal,
       {_comment('pg_constraint', 'c.oid')}
FROM pg_constraint c
WHERE c.conrelid = {_TABLES}
"""

INDEXES_SQL = f"""
SELECT i.indrelid::int8, {_display('n.nspname', 'ic.relname')}, quote_ident(n.nspname) || '.' || quote_ident(ic.relname),
       pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisclustered,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
               AND k.contype IN ('p', 'u', 'x')),
       (SELECT {_display('pn.nspname', 'pc.relname')} FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
          JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE h.inhrelid = i.indexrelid),
       {_comment('pg_class', 'i.indexrelid')}
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE i.indrelid = {_TABLES}
"""

SEQUENCES_SQL = """
SELECT s.seqrelid::int8, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
       s.seqcycle, d.refobjid::int8, quote_ident(a.attname), d.deptype
FROM pg_sequence s
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE s.seqrelid IN (SELECT oid FROM rel WHERE relkind = 'S')
"""

FUNCTIONS_SQL = f"""
SELECT p.oid::int8, {_display('n.nspname', 'p.proname')} || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       p.prokind,
       CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
       CASE WHEN p.prokind = 'a' THEN
            (SELECT ARRAY[a.aggtransfn::regproc::text, format_type(a.aggtranstype, NULL),
                          NULLIF(a.aggfinalfn, 0)::regproc::text, a.agginitval, NULLIF(a.aggcombinefn, 0)::regproc::text]
             FROM pg_aggregate a WHERE a.aggfnoid = p.oid) END,
       {_comment('pg_proc', 'p.oid')}
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_IN_SCOPE_NAMESPACE} AND {_not_extension_member('pg_proc', 'p')}
"""

TRIGGERS_SQL = f"""
SELECT t.tgrelid::int8, quote_ident(t.tgname), pg_get_triggerdef(t.oid), t.tgenabled, {_comment('pg_trigger', 't.oid')}
FROM pg_trigger t
WHERE t.tgrelid = {_TABLES} AND NOT t.tgisinternal
"""

TYPES_SQL = f"""
SELECT t.oid::int8, {_display('n.nspname', 't.typname')}, quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typtype,
       CASE WHEN t.typtype = 'e' THEN
            ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       t.typnotnull, t.typdefault,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
            THEN (SELECT quote_ident(co.collname) FROM pg_collation co WHERE co.oid = t.typcollation) END,
       CASE WHEN t.typtype = 'd' THEN
            ARRAY(SELECT quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid) FROM pg_constraint k
                  WHERE k.contypid = t.oid ORDER BY k.conname) END,
       CASE WHEN t.typtype = 'c' THEN
            ARRAY(SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                  FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum) END,
       CASE WHEN t.typtype = 'r' THEN
            (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) END,
       {_comment('pg_type', 't.oid')}
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE {_IN_SCOPE_NAMESPACE} AND {_not_extension_member('pg_type', 't')}
  AND (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
"""

EXTENSIONS_SQL = f"""
SELECT quote_ident(x.extname), x.extversion, quote_ident(n.nspname), {_comment('pg_extension', 'x.oid')}
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
WHERE x.extname <> 'plpgsql'
"""

POLICIES_SQL = f"""
SELECT p.polrelid::int8, quote_ident(p.polname), p.polpermissive, p.polcmd,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(r)) END
             FROM unnest(p.polroles) r ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
       {_comment('pg_policy', 'p.oid')}
FROM pg_policy p
WHERE p.polrelid = {_TABLES}
"""

# (name, query, number of columns), in the order _read takes them
_PARTS = (
    ("schemas", SCHEMAS_SQL, 3), ("relations", RELATIONS_SQL, 16), ("columns", COLUMNS_SQL, 11),
    ("constraints", CONSTRAINTS_SQL, 6), ("indexes", INDEXES_SQL, 9), ("sequences", SEQUENCES_SQL, 11),
    ("functions", FUNCTIONS_SQL, 7), ("triggers", TRIGGERS_SQL, 5), ("types", TYPES_SQL, 13),
    ("extensions", EXTENSIONS_SQL, 4), ("policies", POLICIES_SQL, 8),
)


def _json_rows(query: str, columns: int) -> str:
    names = ", ".join(f"c{i}" for i in range(columns))
    return f"(SELECT coalesce(json_agg(json_build_array({names})), '[]') FROM ({query}) AS q({names}))"


SNAPSHOT_SQL = (f"WITH rel AS MATERIALIZED ({RELATIONS_IN_SCOPE_SQL})\nSELECT json_build_array(\n"
                + ",\n".join(_json_rows(query, columns) for _, query, columns in _PARTS) + ")::text")

# Deparsed expressions print constants through their output functions: fix the settings that change them.
_SESSION_SETTINGS = (
    ("search_path", "public"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
)
# The snapshot statement is prepared once per connection; its plan does not depend on the parameters
# (the excluded names), and planning it costs more than running it on a small schema.
_SET_SESSION_SQL = "SELECT " + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in
                                         (*_SESSION_SETTINGS, ("plan_cache_mode", "force_generic_plan")))

POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
CONSTRAINT_TYPES = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check", "x": "exclusion",
                    "t": "constraint trigger"}
TRIGGER_ENABLED = {"O": "enabled", "D": "disabled", "R": "replica", "A": "always"}
FUNCTION_KINDS = {"f": "function", "p": "procedure", "w": "window function", "a": "aggregate"}
TYPE_KINDS = {"e": "enum type", "d": "domain", "c": "composite type", "r": "range type"}


@contextmanager
def catalog_session(conn) -> Iterator[None]:
    """One consistent, read-only view of the catalog with fixed output settings; leaves the session as it was.

    Inside a caller's transaction (e.g. around a migration) it works in a savepoint instead.
    """
    from mercurio_migrate.database import in_failed_or_open_transaction

    nested = in_failed_or_open_transaction(conn) or not conn.autocommit
    # one message: no parameters, so the simple-query protocol takes both statements at once
    conn.execute(("SAVEPOINT mercurio_snapshot" if nested else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                 + ";\n" + _SET_SESSION_SQL)
    try:
        yield
    finally:
        # COMMIT ends a read-only transaction as ROLLBACK would, but psycopg forgets every prepared
        # statement of the connection on ROLLBACK: the snapshot statement would be prepared every time.
        conn.execute("ROLLBACK TO SAVEPOINT mercurio_snapshot; RELEASE SAVEPOINT mercurio_snapshot" if nested
                     else "COMMIT")


def take(conn, *, exclude_tables: Iterable[str] | None = None, exclude_schemas: Iterable[str] = ()) -> Snapshot:
    """Read the schema of the connected database. ``exclude_tables`` are schema-qualified names
    (default: the tool's own tables); their columns, indexes, constraints, triggers, policies and
    owned sequences are left out with them."""
    params = {
        "exclude_tables": list(tool_tables() if exclude_tables is None else exclude_tables),
        "exclude_schemas": list(exclude_schemas),
    }
    with catalog_session(conn):
        (text,) = conn.execute(SNAPSHOT_SQL, params, prepare=True).fetchone()
    return _build(dict(zip((name for name, _, _ in _PARTS), json.loads(text))))


def _build(rows: dict[str, list]) -> Snapshot:
    objects: list[SchemaObject] = []
    for _oid, name, comment in rows["schemas"]:
        objects.append(_obj("schema", name, sql_name=name, comment=comment))

    relations: dict[int, SchemaObject] = {}
    rel_rows = rows["relations"]
    sequence_rows = {}
    display_of = {row[0]: row[2] for row in rel_rows}
    for (oid, relkind, name, qualified, persistence, rls, force_rls, is_partition, partition_key, bound,
         parents, options, view_def, populated, server, comment) in rel_rows:
        if relkind == "S":
            sequence_rows[oid] = (name, qualified, persistence, comment)
            continue
        kind = RELATION_KINDS[relkind]
        attrs: dict[str, Any] = {"comment": comment, "options": options or None}
        if kind in TABLE_KINDS:
            attrs.update(persistence={"u": "unlogged", "p": "permanent"}.get(persistence, persistence),
                         **{"row level security": rls, "forced row level security": force_rls,
                            "partitioned by": partition_key})
            parent_names = tuple(display_of.get(p, "?") for p in parents)
            if is_partition:
                attrs["partition of"] = parent_names[0] if parent_names else None
                attrs["partition bound"] = bound
            elif parent_names:
                attrs["inherits"] = parent_names
            if kind == "foreign table":
                attrs["server"] = server
        else:
            attrs["definition"] = view_def
            if kind == "materialized view":
                attrs["populated"] = populated
        relations[oid] = _obj(kind, name, sql_name=qualified, **attrs)

    columns_by_relation: dict[int, list] = {}
    for row in rows["columns"]:
        columns_by_relation.setdefault(row[0], []).append(row)
    for oid, rel_columns in columns_by_relation.items():
        rel = relations[oid]
        rel_columns.sort(key=lambda r: r[2])
        relations[oid] = _with(rel, **{"column order": tuple(r[1] for r in rel_columns)})
        has_parent = bool(rel.get("partition of") or rel.get("inherits"))
        for (_, column, _num, type_, not_null, default, identity, generated, collation, local, comment) in rel_columns:
            attrs = {"type": type_, "not null": not_null, "collation": collation, "comment": comment}
            if generated == "s":
                attrs["generated"] = default
            else:
                attrs["default"] = default
            attrs["identity"] = {"a": "always", "d": "by default"}.get(identity)
            if has_parent:
                attrs["inherited"] = not local
            objects.append(_obj("column", f"{rel.name}.{column}", parent=rel.key, sql_name=column, **attrs))
    objects.extend(relations.values())

    for relid, name, contype, definition, local, comment in rows["constraints"]:
        rel = relations[relid]
        attrs = {"type": CONSTRAINT_TYPES.get(contype, contype), "definition": definition, "comment": comment}
        if not local:
            attrs["inherited"] = True
        objects.append(_obj("constraint", f"{rel.name}.{name}", parent=rel.key, sql_name=name, **attrs))

    for (relid, name, qualified, definition, valid, clustered, by_constraint, attached_to,
         comment) in rows["indexes"]:
        rel = relations[relid]
        objects.append(_obj("index", name, parent=rel.key, sql_name=qualified, table=rel.name,
                            definition=definition, valid=valid, clustered=clustered or None,
                            **{"of constraint": by_constraint or None, "partition of index": attached_to},
                            comment=comment))

    for (seqid, type_, start, increment, minimum, maximum, cache, cycle, owner_rel, owner_col,
         deptype) in rows["sequences"]:
        name, qualified, persistence, comment = sequence_rows[seqid]
        owner = relations.get(owner_rel) if owner_rel else None
        if owner_rel and owner is None:
            continue  # owned by an excluded table: goes with it
        owned_by = f"{owner.name}.{owner_col}" if owner else None
        objects.append(_obj("sequence", name, parent=owner.key if owner else None, sql_name=qualified,
                            type=type_, start=start, increment=increment, minimum=minimum, maximum=maximum,
                            cache=cache, cycle=cycle, comment=comment,
                            persistence="unlogged" if persistence == "u" else "permanent",
                            **{"owned by": owned_by, "identity": deptype == "i" or None}))

    for (_oid, name, qualified, prokind, definition, aggregate, comment) in rows["functions"]:
        attrs: dict[str, Any] = {"comment": comment}
        if prokind == "a":
            attrs.update(zip(("state function", "state type", "final function", "initial value",
                              "combine function"), aggregate or ()))
        else:
            attrs["definition"] = definition
        objects.append(_obj(FUNCTION_KINDS.get(prokind, "function"), name, sql_name=qualified, **attrs))

    for relid, name, definition, enabled, comment in rows["triggers"]:
        rel = relations[relid]
        objects.append(_obj("trigger", f"{rel.name}.{name}", parent=rel.key, sql_name=name, definition=definition,
                            enabled=TRIGGER_ENABLED.get(enabled, enabled), comment=comment))

    for (_oid, name, qualified, typtype, labels, base, not_null, default, collation, checks, attributes,
         subtype, comment) in rows["types"]:
        kind = TYPE_KINDS[typtype]
        attrs = {"comment": comment}
        if typtype == "e":
            attrs["labels"] = tuple(labels)
        elif typtype == "d":
            attrs.update(type=base, **{"not null": not_null}, default=default, collation=collation,
                         constraints=tuple(checks))
        elif typtype == "c":
            attrs["attributes"] = tuple(attributes)
        else:
            attrs["subtype"] = subtype
        objects.append(_obj(kind, name, sql_name=qualified, **attrs))

    for name, version, schema, comment in rows["extensions"]:
        objects.append(_obj("extension", name, sql_name=name, version=version, schema=schema, comment=comment))

    for (relid, name, permissive, command, roles, using, check, comment) in rows["policies"]:
        rel = relations[relid]
        objects.append(_obj("policy", f"{rel.name}.{name}", parent=rel.key, sql_name=name,
                            permissive=permissive, command=POLICY_COMMANDS.get(command, command), roles=tuple(roles),
                            using=using, **{"with check": check}, comment=comment))
    return Snapshot(tuple(sorted(objects, key=lambda o: (o.kind, o.name))))


def _obj(kind: str, name: str, *, parent: tuple[str, str] | None = None, sql_name: str = "", **attrs) -> SchemaObject:
    return SchemaObject(kind, name, tuple(sorted((k, v) for k, v in attrs.items() if v is not None)),
                        parent, sql_name)


def _with(obj: SchemaObject, **attrs) -> SchemaObject:
    merged = dict(obj.attrs) | attrs
    return SchemaObject(obj.kind, obj.name, tuple(sorted(merged.items())), obj.parent, obj.sql_name)


# --- canonical DDL ----------------------------------------------------------------------------------
def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_COMMENT_TARGETS = {
    "schema": "SCHEMA", "table": "TABLE", "foreign table": "FOREIGN TABLE", "view": "VIEW",
    "materialized view": "MATERIALIZED VIEW", "index": "INDEX", "sequence": "SEQUENCE", "function": "FUNCTION",
    "procedure": "PROCEDURE", "window function": "FUNCTION", "aggregate": "AGGREGATE", "enum type": "TYPE",
    "composite type": "TYPE", "range type": "TYPE", "domain": "DOMAIN",
}


def _sequence_options(seq: SchemaObject, *, with_type: bool = True) -> str:
    options = [f"AS {seq.get('type')}"] if with_type else []
    options += [f"START WITH {seq.get('start')}", f"INCREMENT BY {seq.get('increment')}",
               f"MINVALUE {seq.get('minimum')}", f"MAXVALUE {seq.get('maximum')}", f"CACHE {seq.get('cache')}"]
    if seq.get("cycle"):
        options.append("CYCLE")
    return " ".join(options)


def _column_sql(column: SchemaObject, identity_sequence: SchemaObject | None) -> str:
    parts = [column.sql_name, column.get("type")]
    if column.get("collation"):
        parts.append(f"COLLATE {column.get('collation')}")
    if column.get("generated"):
        parts.append(f"GENERATED ALWAYS AS ({column.get('generated')}) STORED")
    elif column.get("identity"):
        options = f" (SEQUENCE NAME {identity_sequence.sql_name} {_sequence_options(identity_sequence, with_type=False)})" \
            if identity_sequence else ""
        parts.append(f"GENERATED {column.get('identity').upper()} AS IDENTITY{options}")
    elif column.get("default") is not None:
        parts.append(f"DEFAULT {column.get('default')}")
    if column.get("not null"):
        parts.append("NOT NULL")
    return " ".join(parts)


def to_sql(snap: Snapshot) -> str:
    """The schema as DDL in a fixed order (by kind, then name): for review and diffs, not a backup.

    Objects of one kind are ordered by name, so views built on views, and functions used in
    defaults or checks of tables, may need reordering before the file replays on an empty database.
    """
    out: list[str] = ["-- Schema written by mercurio-migrate dump: canonical order, generated from the catalog",
                      "SET check_function_bodies = false;", ""]
    comments: list[str] = []
    columns: dict[tuple[str, str], list[SchemaObject]] = {}
    for column in snap.of_kind("column"):
        columns.setdefault(column.parent, []).append(column)
    sequences = snap.of_kind("sequence")
    identity_sequences = {s.get("owned by"): s for s in sequences if s.get("identity")}

    def comment(obj: SchemaObject, target: str) -> None:
        if obj.get("comment") is not None:
            comments.append(f"COMMENT ON {target} IS {_literal(obj.get('comment'))};")

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.extend([f"-- {title}", *lines, ""])

    section("schemas", [f"CREATE SCHEMA IF NOT EXISTS {s.sql_name};" for s in snap.of_kind("schema")])
    for s in snap.of_kind("schema"):
        comment(s, f"SCHEMA {s.sql_name}")
    section("extensions", [f"CREATE EXTENSION IF NOT EXISTS {x.sql_name} WITH SCHEMA {x.get('schema')} "
                           f"VERSION {_literal(x.get('version'))};" for x in snap.of_kind("extension")])
    for x in snap.of_kind("extension"):
        comment(x, f"EXTENSION {x.sql_name}")

    types = []
    for t in snap.of_kind("enum type"):
        types.append(f"CREATE TYPE {t.sql_name} AS ENUM ({', '.join(_literal(v) for v in t.get('labels'))});")
    for t in snap.of_kind("composite type"):
        types.append(f"CREATE TYPE {t.sql_name} AS ({', '.join(t.get('attributes'))});")
    for t in snap.of_kind("range type"):
        types.append(f"CREATE TYPE {t.sql_name} AS RANGE (SUBTYPE = {t.get('subtype')});")
    for t in snap.of_kind("domain"):
        line = f"CREATE DOMAIN {t.sql_name} AS {t.get('type')}"
        if t.get("collation"):
            line += f" COLLATE {t.get('collation')}"
        if t.get("default") is not None:
            line += f" DEFAULT {t.get('default')}"
        if t.get("not null"):
            line += " NOT NULL"
        line += "".join(f" CONSTRAINT {c}" for c in t.get("constraints", ()))
        types.append(line + ";")
    for kind in ("enum type", "composite type", "range type", "domain"):
        for t in snap.of_kind(kind):
            comment(t, f"{_COMMENT_TARGETS[kind]} {t.sql_name}")
    section("types", types)

    section("sequences", [f"CREATE {'UNLOGGED ' if s.get('persistence') == 'unlogged' else ''}SEQUENCE "
                          f"{s.sql_name} {_sequence_options(s)};" for s in sequences if not s.get("identity")])

    functions = []
    for kind in ("function", "procedure", "window function"):
        for f in snap.of_kind(kind):
            functions.append(f.get("definition").rstrip() + ";")
            comment(f, f"{_COMMENT_TARGETS[kind]} {f.sql_name}")
    for a in snap.of_kind("aggregate"):
        options = [f"SFUNC = {a.get('state function')}", f"STYPE = {a.get('state type')}"]
        if a.get("final function"):
            options.append(f"FINALFUNC = {a.get('final function')}")
        if a.get("combine function"):
            options.append(f"COMBINEFUNC = {a.get('combine function')}")
        if a.get("initial value") is not None:
            options.append(f"INITCOND = {_literal(a.get('initial value'))}")
        functions.append(f"CREATE AGGREGATE {a.sql_name} ({', '.join(options)});")
        comment(a, f"AGGREGATE {a.sql_name}")
    section("functions", functions)

    tables, alters = [], []
    for table in snap.tables():
        cols = sorted(columns.get(table.key, []),
                      key=lambda c: (table.get("column order") or ()).index(c.sql_name))
        unlogged = "UNLOGGED " if table.get("persistence") == "unlogged" else ""
        keyword = "FOREIGN TABLE" if table.kind == "foreign table" else f"{unlogged}TABLE"
        if table.get("partition of"):
            line = f"CREATE {keyword} {table.sql_name} PARTITION OF {table.get('partition of')} {table.get('partition bound')}"
            own = [c for c in cols if c.get("inherited") is False]
            if own:
                line += " (\n    " + ",\n    ".join(_column_sql(c, None) for c in own) + "\n)"
        else:
            own = [c for c in cols if not c.get("inherited")]
            body = ",\n    ".join(_column_sql(c, identity_sequences.get(c.name)) for c in own)
            line = f"CREATE {keyword} {table.sql_name} (\n    {body}\n)" if own else f"CREATE {keyword} {table.sql_name} ()"
            if table.get("inherits"):
                line += f" INHERITS ({', '.join(table.get('inherits'))})"
            if table.get("partitioned by"):
                line += f" PARTITION BY {table.get('partitioned by')}"
            if table.get("server"):
                line += f" SERVER {table.get('server')}"
        if table.get("options"):
            line += f" WITH ({table.get('options')})"
        tables.append(line + ";")
        if table.get("row level security"):
            alters.append(f"ALTER TABLE {table.sql_name} ENABLE ROW LEVEL SECURITY;")
        if table.get("forced row level security"):
            alters.append(f"ALTER TABLE {table.sql_name} FORCE ROW LEVEL SECURITY;")
        comment(table, f"{_COMMENT_TARGETS[table.kind]} {table.sql_name}")
        for c in cols:
            comment(c, f"COLUMN {table.sql_name}.{c.sql_name}")
    section("tables", tables)
    section("row level security", alters)

    ownership = []
    for s in sequences:
        comment(s, f"SEQUENCE {s.sql_name}")
        if s.get("owned by") and not s.get("identity"):
            owner = snap.by_key.get(s.parent)
            column = s.get("owned by")[len(owner.name) + 1:] if owner else None
            if owner:
                ownership.append(f"ALTER SEQUENCE {s.sql_name} OWNED BY {owner.sql_name}.{column};")
    section("sequence ownership", ownership)

    relations = {o.key: o for o in snap.objects if o.kind in RELATION_KINDS.values()}
    order = {"primary key": 0, "unique": 1, "exclusion": 2, "check": 3, "foreign key": 4, "constraint trigger": 5}
    constraints = sorted((c for c in snap.of_kind("constraint") if not c.get("inherited")),
                         key=lambda c: (order.get(c.get("type"), 9), c.name))
    lines = []
    for c in constraints:
        table = relations[c.parent]
        lines.append(f"ALTER TABLE {table.sql_name} ADD CONSTRAINT {c.sql_name} {c.get('definition')};")
        comment(c, f"CONSTRAINT {c.sql_name} ON {table.sql_name}")
    section("constraints", lines)

    views = []
    for kind in ("view", "materialized view"):
        for v in snap.of_kind(kind):
            keyword = "MATERIALIZED VIEW" if kind == "materialized view" else "VIEW"
            options = f" WITH ({v.get('options')})" if v.get("options") else ""
            views.append(f"CREATE {keyword} {v.sql_name}{options} AS\n{v.get('definition').rstrip().rstrip(';')};")
            comment(v, f"{keyword} {v.sql_name}")
            for c in sorted(columns.get(v.key, []), key=lambda c: c.name):
                comment(c, f"COLUMN {v.sql_name}.{c.sql_name}")
    section("views", views)

    lines, attach = [], []
    for index in snap.of_kind("index"):
        parent_index = snap.get("index", index.get("partition of index") or "")
        if parent_index is not None:
            attach.append(f"ALTER INDEX {parent_index.sql_name} ATTACH PARTITION {index.sql_name};")
        if not index.get("of constraint"):
            lines.append(index.get("definition") + ";" + ("" if index.get("valid") else "  -- INVALID"))
            comment(index, f"INDEX {index.sql_name}")
    section("indexes", lines + attach)

    lines = []
    for trigger in snap.of_kind("trigger"):
        table = relations[trigger.parent]
        lines.append(trigger.get("definition") + ";")
        if trigger.get("enabled") != "enabled":
            state = {"disabled": "DISABLE", "replica": "ENABLE REPLICA", "always": "ENABLE ALWAYS"}[trigger.get("enabled")]
            lines.append(f"ALTER TABLE {table.sql_name} {state} TRIGGER {trigger.sql_name};")
        comment(trigger, f"TRIGGER {trigger.sql_name} ON {table.sql_name}")
    section("triggers", lines)

    lines = []
    for policy in snap.of_kind("policy"):
        table = relations[policy.parent]
        line = (f"CREATE POLICY {policy.sql_name} ON {table.sql_name} AS "
                f"{'PERMISSIVE' if policy.get('permissive') else 'RESTRICTIVE'} FOR {policy.get('command')} "
                f"TO {', '.join(policy.get('roles'))}")
        if policy.get("using") is not None:
            line += f" USING ({policy.get('using')})"
        if policy.get("with check") is not None:
            line += f" WITH CHECK ({policy.get('with check')})"
        lines.append(line + ";")
        comment(policy, f"POLICY {policy.sql_name} ON {table.sql_name}")
    section("policies", lines)
    section("comments", comments)
    return "\n".join(out).rstrip() + "\n"
