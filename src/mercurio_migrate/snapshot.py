"""Catalog -> canonical schema model, and the difference between two models.

A snapshot is read from ``pg_catalog`` (never from pg_dump text) in one statement, whatever the number
of objects. Every object is keyed by its kind and name, so two databases built by the same SQL give
equal snapshots whatever the order of creation or the OIDs.

Names are printed as PostgreSQL quotes them, without the ``public.`` prefix; objects of other schemas
keep theirs. Deparsed text (defaults, constraint and index definitions, view and function bodies) is
read under a fixed ``search_path`` and fixed output settings, so it does not depend on the session.

The statement returns each part (schemas, relations, columns, …) as one JSON text whose rows carry
names, never OIDs, in a fixed order: two snapshots compare part by part as plain strings, only the parts
that differ are decoded, and only the rows that differ become ``SchemaObject`` values (``diff``).
``Snapshot.objects`` builds the whole model on first use, for the callers that want it (dump, JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from mercurio_migrate import history
from mercurio_migrate.database import quote_text

RELATION_KINDS = {"r": "table", "p": "table", "f": "foreign table", "v": "view", "m": "materialized view"}
TABLE_KINDS = ("table", "foreign table")

# Reordering columns is something PostgreSQL cannot do (a rollback that re-adds a column puts it last),
# so a different column order is reported, but as a note.
NOTE_ATTRS = frozenset({"column order"})

# Values longer than this, or spanning lines (function bodies, view definitions), are reported as
# "changed"; their full text stays in the Difference for JSON output.
INLINE_LIMIT = 120


def tool_tables(store: history.HistoryStore | None = None) -> tuple[str, ...]:
    """The tool's own tables, schema-qualified, as every snapshot and data check leaves them out: ``store``'s
    (Engine.store, from the settings), by default those of the default history table without migration_log."""
    return (store or history.HistoryStore()).tool_tables


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
        for name, value in self.attrs:
            if name == attr:
                return value
        return default

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class Snapshot:
    """The schema of one database at one moment: ``objects``, sorted by key.

    Read from the catalog (``take``), it keeps the raw parts and builds ``objects`` only when asked;
    made from objects (tests, hand-built models), it has no raw parts.
    """

    def __init__(self, objects: Iterable[SchemaObject] = (), *, parts: dict[str, str] | None = None,
                 partial: bool = False):
        self._parts = parts
        self.partial = partial  # take(since=…): new relations named only, see take()
        self._rows: dict[str, list] = {}
        self._keyed: dict[str, dict] = {}
        if parts is None:
            self.__dict__["objects"] = tuple(sorted(objects, key=_object_key))

    @cached_property
    def objects(self) -> tuple[SchemaObject, ...]:
        self._complete()
        built = [spec.build(row) for name, spec in PART_SPECS.items() for row in self.rows(name)]
        return tuple(sorted(built, key=_object_key))

    def lines(self, part: str) -> list[str]:
        """The rows of one part of a raw snapshot as JSON texts, one per row."""
        text = self._parts[part]
        return text.split("\n") if text else []

    def rows(self, part: str) -> list[list]:
        """The decoded rows of one part of a raw snapshot."""
        if part not in self._rows:
            self._rows[part] = _decode(self.lines(part))
        return self._rows[part]

    def keyed(self, part: str) -> dict[tuple[str, str], list]:
        """The rows of one part of a raw snapshot, by the key of the object each becomes."""
        if part not in self._keyed:
            key = PART_SPECS[part].key
            self._keyed[part] = {key(row): row for row in self.rows(part)}
        return self._keyed[part]

    @cached_property
    def by_key(self) -> dict[tuple[str, str], SchemaObject]:
        return {o.key: o for o in self.objects}

    def _complete(self) -> None:
        if self.partial:
            raise ValueError("a partial snapshot (take(since=…)) describes only what diff(since, it) needs")

    def _built(self) -> bool:
        return self._parts is None or "objects" in self.__dict__

    def of_kind(self, *kinds: str) -> list[SchemaObject]:
        if self._built():
            return [o for o in self.objects if o.kind in kinds]
        # a raw snapshot builds the rows of those kinds only
        built = [PART_SPECS[part].build(row) for part in dict.fromkeys(KIND_PARTS[k] for k in kinds if k in KIND_PARTS)
                 for key, row in self.keyed(part).items() if key[0] in kinds]
        return sorted(built, key=_object_key)

    def get(self, kind: str, name: str) -> SchemaObject | None:
        if self._built():
            return self.by_key.get((kind, name))
        part = KIND_PARTS.get(kind)
        row = self.keyed(part).get((kind, name)) if part else None
        return None if row is None else PART_SPECS[part].build(row)

    def children(self, parent: SchemaObject) -> list[SchemaObject]:
        return [o for o in self.objects if o.parent == parent.key]

    def tables(self) -> list[SchemaObject]:
        return self.of_kind(*TABLE_KINDS)

    def data_tables(self) -> list[SchemaObject]:
        """Tables holding rows of their own (a partitioned parent's rows are its partitions'), by name."""
        return [t for t in self.of_kind("table") if not t.get("partitioned by")]

    def data_table_names(self) -> list[tuple[str, str]]:
        """(name, schema-qualified name) of the ``data_tables``, without building objects (partial snapshots
        included: a partitioned table is one of relkind 'p')."""
        if self._built():
            return [(t.name, t.sql_name) for t in self.data_tables()]
        return sorted((row[1], row[2]) for row in self.rows("relations") if row[0] == "r")

    def as_dict(self) -> dict:
        return {"objects": [{"kind": o.kind, "name": o.name, **{k: _jsonable(v) for k, v in o.attrs}}
                            for o in self.objects]}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        if self._parts is not None and self._parts == other._parts:
            return True
        return self.objects == other.objects

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Snapshot({len(self.objects)} objects)"


def _object_key(obj: SchemaObject) -> tuple[str, str]:
    return (obj.kind, obj.name)


@dataclass(frozen=True)
class Difference:
    kind: str
    name: str
    status: str  # added | removed | changed (from the first snapshot to the second)
    change: str  # "added", "removed", or "default 'UTC'::character varying -> none"
    severity: str = "difference"  # or "note" (column order; see reason)
    attr: str | None = None
    before: Any = None
    after: Any = None
    reason: str | None = None  # why a note is only a note
    diff: str | None = None  # a unified diff of a changed definition

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
        if self.reason:
            data["reason"] = self.reason
        if self.diff:
            data["diff"] = self.diff
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
    separately: the parent's line says it. Two snapshots read from the catalog compare part by part as
    text, then row by row; only the rows that differ are built into objects.
    """
    a._complete()
    if a._parts is None or b._parts is None:
        return _diff_objects(a, b)
    removed: dict[tuple[str, str], tuple[str, list]] = {}
    added: dict[tuple[str, str], tuple[str, list]] = {}
    changed: list[tuple[tuple[str, str], str, list, list]] = []
    # Without any relation on one side, the other side's columns, constraints, indexes, … all come and go
    # with their tables (a fresh database's first run): nothing to decode there.
    folded = () if a.lines("relations") and b.lines("relations") else _RELATION_CHILDREN
    for part in PART_SPECS:
        if part in folded:
            continue
        old_rows, new_rows = changed_rows(a, b, part)
        for key, row in old_rows.items():
            other = new_rows.get(key)
            if other is None:
                removed[key] = (part, row)
            else:
                changed.append((key, part, row, other))
        for key, row in new_rows.items():
            if key not in old_rows:
                added[key] = (part, row)
    out: list[Difference] = []
    for status, rows in (("removed", removed), ("added", added)):
        for key in sorted(rows):
            part, row = rows[key]
            if PART_SPECS[part].parent(row) not in rows:
                out.append(Difference(key[0], key[1], status, status))
    for _key, part, old, new in sorted(changed, key=lambda item: item[0]):
        build = PART_SPECS[part].build
        out.extend(_object_changes(build(old), build(new)))
    return out


def changed_rows(a: Snapshot, b: Snapshot, part: str) -> tuple[dict, dict]:
    """The rows of one part that are not the same in two raw snapshots, by key: (only in ``a``'s text,
    only in ``b``'s). Equal texts cost one string comparison; otherwise only the differing rows are decoded."""
    text_a, text_b = a._parts[part], b._parts[part]
    if text_a == text_b:
        return {}, {}
    lines_a, lines_b = a.lines(part), b.lines(part)
    rows_a = rows_b = None
    if lines_a and lines_b:
        set_a, set_b = set(lines_a), set(lines_b)
        only_a = [line for line in lines_a if line not in set_b]
        only_b = [line for line in lines_b if line not in set_a]
        rows_a = _decode(only_a) if len(only_a) < len(lines_a) else None
        rows_b = _decode(only_b) if len(only_b) < len(lines_b) else None
    key = PART_SPECS[part].key
    return ({key(row): row for row in (a.rows(part) if rows_a is None else rows_a)},
            {key(row): row for row in (b.rows(part) if rows_b is None else rows_b)})


def new_objects(a: Snapshot, b: Snapshot, kind: str) -> list[SchemaObject]:
    """The objects of ``kind`` that ``b`` has and ``a`` has not (children of new parents included), by key."""
    if a._parts is None or b._parts is None:
        return [o for o in b.of_kind(kind) if a.get(kind, o.name) is None]
    part = KIND_PARTS[kind]
    old_rows, new_rows = changed_rows(a, b, part)
    build = PART_SPECS[part].build
    return [build(new_rows[key]) for key in sorted(new_rows) if key[0] == kind and key not in old_rows]


def _decode(lines: list[str]) -> list[list]:
    import json

    return json.loads("[" + ",".join(lines) + "]") if lines else []


def _diff_objects(a: Snapshot, b: Snapshot) -> list[Difference]:
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
        if old != new:
            out.extend(_object_changes(old, new))
    return out


def _object_changes(old: SchemaObject, new: SchemaObject) -> list[Difference]:
    """The changed attributes of one object, by attribute name."""
    out: list[Difference] = []
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
        if attr == "definition" and isinstance(before, str) and isinstance(after, str):
            from mercurio_migrate import definitions

            why = definitions.verdict(old.kind, before, after)
            if why == definitions.SAME:
                continue
            if why:
                out.append(Difference(old.kind, old.name, "changed", f"{attr} changed", "note", attr, before, after,
                                      reason=why))
                continue
            out.append(Difference(old.kind, old.name, "changed", _change_text(attr, before, after), "difference",
                                  attr, before, after, diff=definitions.unified(before, after)))
            continue
        out.append(Difference(old.kind, old.name, "changed", _change_text(attr, before, after),
                              "difference", attr, before, after))
    return out


def differences(items: Iterable[Difference]) -> list[Difference]:
    return [d for d in items if d.severity == "difference"]


# --- reading the catalog ----------------------------------------------------------------------------
# One statement reads everything: its parts share one view of the catalog, the relations in scope are
# found once (the `rel` CTE, with their display names) for all the parts that hang off them, and the
# whole costs one round trip. Each part is one JSON text of rows that name their parent instead of
# pointing at its OID, ordered by name (COLLATE "C"): equal schemas give equal text, in one database or
# two. $1 holds the excluded tables (schema-qualified names), $2 the excluded schemas.
_IN_SCOPE_NAMESPACE = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND n.nspname <> ALL ($2::text[])"
# Objects made after initdb have OIDs from here on (PostgreSQL's FirstNormalObjectId, also after the OID
# counter wraps); initdb's own are in the schemas left out anyway. Filtering on it first turns scans of
# pg_class, pg_proc and pg_type (thousands of built-in rows) into index range scans on a small schema.
_FIRST_NORMAL_OID = 16384


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
# part of an extension, with their names; `old` unless a partial snapshot (take(since=…)) finds a relation
# the earlier snapshot did not have ($3: the relations and sequences it had, $4: its indexes). Parts look relations up
# in it by joining it (linear plans), or with `IN (SELECT oid FROM rel)` (hashed once): never by a join
# the planner could repeat per row.
_CTES = f"""rel AS MATERIALIZED (
    SELECT c.oid, c.relkind, {_display('n.nspname', 'c.relname')} AS display,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
           EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) AS has_parent,
           $3::text[] IS NULL OR {_display('n.nspname', 'c.relname')} IN (SELECT unnest($3::text[])) AS old
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid >= {_FIRST_NORMAL_OID} AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND {_IN_SCOPE_NAMESPACE}
      AND c.oid NOT IN (SELECT to_regclass(x) FROM unnest($1::text[]) x WHERE to_regclass(x) IS NOT NULL)
      AND {_not_extension_member('pg_class', 'c')}
)"""
# the parents of a relation: display names, "?" for one out of scope
_PARENTS = (f"CASE WHEN r.has_parent THEN ARRAY(SELECT CASE WHEN i.inhparent IN (SELECT oid FROM rel) "
            f"THEN {_display('pn.nspname', 'pc.relname')} ELSE '?' END FROM pg_inherits i "
            "JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace "
            "WHERE i.inhrelid = r.oid ORDER BY i.inhseqno) END")


class _Part(NamedTuple):
    columns: tuple[str, ...]  # the SELECT list of one row
    source: str  # FROM … WHERE …
    order: tuple[int, ...]  # the text columns that name the row, in sort order


_PARTS: dict[str, _Part] = {
    "schemas": _Part(
        ("quote_ident(n.nspname)", _comment("pg_namespace", "n.oid")),
        f"pg_namespace n WHERE {_IN_SCOPE_NAMESPACE} AND {_not_extension_member('pg_namespace', 'n')}",
        (0,)),
    "relations": _Part(
        ("r.relkind", "r.display", "r.qualified", "c.relpersistence", "c.relrowsecurity", "c.relforcerowsecurity",
         "c.relispartition", "CASE WHEN c.relkind = 'p' AND r.old THEN pg_get_partkeydef(c.oid) END",
         "CASE WHEN c.relispartition AND r.old THEN pg_get_expr(c.relpartbound, c.oid) END",
         f"CASE WHEN r.old THEN {_PARENTS} END",
         "CASE WHEN r.old THEN array_to_string(ARRAY(SELECT o FROM unnest(c.reloptions) o ORDER BY o), ', ') END",
         "CASE WHEN c.relkind IN ('v', 'm') AND r.old THEN pg_get_viewdef(c.oid, true) END", "c.relispopulated",
         "CASE WHEN c.relkind = 'f' AND r.old THEN (SELECT quote_ident(s.srvname) FROM pg_foreign_table ft "
         "JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = c.oid) END",
         f"CASE WHEN r.old THEN {_comment('pg_class', 'c.oid')} END",
         "CASE WHEN r.old THEN ARRAY(SELECT quote_ident(a.attname) FROM pg_attribute a "
         "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) END"),
        "rel r JOIN pg_class c ON c.oid = r.oid WHERE r.relkind <> 'S'",
        (1,)),
    "columns": _Part(
        ("r.relkind", "r.display", "quote_ident(a.attname)", "format_type(a.atttypid, a.atttypmod)", "a.attnotnull",
         "pg_get_expr(d.adbin, d.adrelid)", "a.attidentity", "a.attgenerated",
         "CASE WHEN a.attcollation <> t.typcollation THEN "
         "CASE WHEN cn.nspname = 'pg_catalog' THEN '' ELSE quote_ident(cn.nspname) || '.' END "
         "|| quote_ident(co.collname) END",
         "CASE WHEN r.relkind IN ('r', 'p', 'f') AND r.has_parent THEN NOT a.attislocal END",
         _comment("pg_class", "a.attrelid", "a.attnum")),
        """rel r JOIN pg_attribute a ON a.attrelid = r.oid
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
        WHERE r.relkind <> 'S' AND r.old AND a.attnum > 0 AND NOT a.attisdropped""",
        (1, 2)),
    "constraints": _Part(
        ("r.relkind", "r.display", "quote_ident(c.conname)", "c.contype", "pg_get_constraintdef(c.oid)",
         "c.conislocal", _comment("pg_constraint", "c.oid")),
        "rel r JOIN pg_constraint c ON c.conrelid = r.oid WHERE r.relkind <> 'S' AND (r.old OR c.contype = 'f')",
        (1, 2)),
    "indexes": _Part(
        ("r.relkind", "r.display", _display("n.nspname", "ic.relname"),
         "quote_ident(n.nspname) || '.' || quote_ident(ic.relname)", "pg_get_indexdef(i.indexrelid)",
         "i.indisvalid", "i.indisclustered",
         "EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid "
         "AND k.contype IN ('p', 'u', 'x'))",
         f"(SELECT {_display('pn.nspname', 'pc.relname')} FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent "
         "JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE h.inhrelid = i.indexrelid)",
         _comment("pg_class", "i.indexrelid")),
        f"""rel r JOIN pg_index i ON i.indrelid = r.oid
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE r.relkind <> 'S' AND (r.old OR {_display('n.nspname', 'ic.relname')} IN (SELECT unnest($4::text[])))""",
        (2,)),
    "sequences": _Part(
        ("r.display", "r.qualified", "CASE WHEN r.old THEN format_type(s.seqtypid, NULL) END", "s.seqstart",
         "s.seqincrement", "s.seqmin", "s.seqmax", "s.seqcache", "s.seqcycle", "o.relkind", "o.display", "o.column",
         "o.deptype", "c.relpersistence", f"CASE WHEN r.old THEN {_comment('pg_class', 'c.oid')} END"),
        f"""rel r JOIN pg_sequence s ON s.seqrelid = r.oid
        JOIN pg_class c ON c.oid = r.oid
        LEFT JOIN LATERAL (
            SELECT oc.oid, oc.relkind, {_display('on_.nspname', 'oc.relname')} AS display,
                   quote_ident(a.attname) AS column, d.deptype
            FROM pg_depend d
            JOIN pg_class oc ON oc.oid = d.refobjid
            JOIN pg_namespace on_ ON on_.oid = oc.relnamespace
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.refclassid = 'pg_class'::regclass
              AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0) o ON true
        WHERE r.relkind = 'S' AND (o.oid IS NULL OR o.oid IN (SELECT oid FROM rel WHERE relkind <> 'S'))""",
        (0,)),
    "functions": _Part(
        ("p.prokind",
         f"{_display('n.nspname', 'p.proname')} || '(' || pg_get_function_identity_arguments(p.oid) || ')'",
         "quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' "
         "|| pg_get_function_identity_arguments(p.oid) || ')'",
         "CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END",
         "CASE WHEN p.prokind = 'a' THEN (SELECT ARRAY[a.aggtransfn::regproc::text, format_type(a.aggtranstype, NULL), "
         "NULLIF(a.aggfinalfn, 0)::regproc::text, a.agginitval, NULLIF(a.aggcombinefn, 0)::regproc::text] "
         "FROM pg_aggregate a WHERE a.aggfnoid = p.oid) END",
         _comment("pg_proc", "p.oid")),
        f"pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        f"WHERE p.oid >= {_FIRST_NORMAL_OID} AND {_IN_SCOPE_NAMESPACE} AND {_not_extension_member('pg_proc', 'p')}",
        (1,)),
    "triggers": _Part(
        ("r.relkind", "r.display", "quote_ident(t.tgname)", "pg_get_triggerdef(t.oid)", "t.tgenabled",
         _comment("pg_trigger", "t.oid")),
        "rel r JOIN pg_trigger t ON t.tgrelid = r.oid WHERE r.relkind <> 'S' AND r.old AND NOT t.tgisinternal",
        (1, 2)),
    "types": _Part(
        ("t.typtype", _display("n.nspname", "t.typname"), "quote_ident(n.nspname) || '.' || quote_ident(t.typname)",
         "CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid "
         "ORDER BY e.enumsortorder) END",
         "CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END",
         "t.typnotnull", "t.typdefault",
         "CASE WHEN t.typtype = 'd' AND t.typcollation <> (SELECT b.typcollation FROM pg_type b "
         "WHERE b.oid = t.typbasetype) THEN (SELECT quote_ident(co.collname) FROM pg_collation co "
         "WHERE co.oid = t.typcollation) END",
         "CASE WHEN t.typtype = 'd' THEN ARRAY(SELECT quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid) "
         "FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY k.conname) END",
         "CASE WHEN t.typtype = 'c' THEN ARRAY(SELECT quote_ident(a.attname) || ' ' || "
         "format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 "
         "AND NOT a.attisdropped ORDER BY a.attnum) END",
         "CASE WHEN t.typtype = 'r' THEN (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r "
         "WHERE r.rngtypid = t.oid) END",
         _comment("pg_type", "t.oid")),
        f"""pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.oid >= {_FIRST_NORMAL_OID} AND {_IN_SCOPE_NAMESPACE} AND {_not_extension_member('pg_type', 't')}
          AND (t.typtype IN ('e', 'd', 'r')
               OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))""",
        (1,)),
    "extensions": _Part(
        ("quote_ident(x.extname)", "x.extversion", "quote_ident(n.nspname)", _comment("pg_extension", "x.oid")),
        "pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname <> 'plpgsql'",
        (0,)),
    "policies": _Part(
        ("r.relkind", "r.display", "quote_ident(p.polname)", "p.polpermissive", "p.polcmd",
         "ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(x)) END "
         "FROM unnest(p.polroles) x ORDER BY 1)",
         "pg_get_expr(p.polqual, p.polrelid)", "pg_get_expr(p.polwithcheck, p.polrelid)",
         _comment("pg_policy", "p.oid")),
        "rel r JOIN pg_policy p ON p.polrelid = r.oid WHERE r.relkind <> 'S' AND r.old",
        (1, 2)),
}


def _part_sql(part: _Part) -> str:
    """One part as one text: a JSON array per row, one row per line (JSON text holds no raw newline),
    ordered by the columns that name the rows."""
    names = ", ".join(f"c{i}" for i in range(len(part.columns)))
    order = ", ".join(f'c{i} COLLATE "C"' for i in part.order)
    return (f"(SELECT coalesce(string_agg(json_build_array({names})::text, E'\\n' ORDER BY {order}), '')\n"
            f"   FROM (SELECT {', '.join(part.columns)}\n         FROM {part.source}) AS q({names}))")


class _Statement(NamedTuple):
    name: str  # prepared once per session under this name
    parts: tuple[str, ...]  # what its one row holds, in order
    sql: str


def _statement(name: str, parts: Iterable[str]) -> _Statement:
    parts = tuple(parts)
    return _Statement(name, parts, f"WITH {_CTES}\nSELECT " + ",\n".join(_part_sql(_PARTS[p]) for p in parts))


_WHOLE = _statement("mercurio_snapshot", _PARTS)
SNAPSHOT_SQL = _WHOLE.sql

# Deparsed expressions print constants through their output functions: fix the settings that change them.
_SESSION_SETTINGS = (
    ("search_path", "public"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
)
# planner settings of the statement: a generic plan (see below), and no JIT compilation, which a large
# schema's cost estimate could otherwise trigger (compiling costs more than running it)
_PLAN_SETTINGS = (("plan_cache_mode", "force_generic_plan"), ("jit", "off"))
# The statement is prepared once per connection (by name: an SQL-level PREPARE, so a snapshot is one
# simple-query message with its transaction around it) and runs with a generic plan: it does not depend
# on the parameters, and planning it costs more than running it on a small schema.
_SET_SESSION_SQL = "SELECT " + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in
                                         (*_SESSION_SETTINGS, *_PLAN_SETTINGS))
_UNDEFINED_PREPARED_STATEMENT = "26000"

POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
CONSTRAINT_TYPES = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check", "x": "exclusion",
                    "t": "constraint trigger"}
TRIGGER_ENABLED = {"O": "enabled", "D": "disabled", "R": "replica", "A": "always"}
FUNCTION_KINDS = {"f": "function", "p": "procedure", "w": "window function", "a": "aggregate"}
TYPE_KINDS = {"e": "enum type", "d": "domain", "c": "composite type", "r": "range type"}


def take(conn, *, exclude_tables: Iterable[str] | None = None, exclude_schemas: Iterable[str] = (),
         since: Snapshot | None = None, replan: bool = False) -> Snapshot:
    """Read the schema of the connected database. ``exclude_tables`` are schema-qualified names
    (default: ``tool_tables()``; an engine passes its ``store.tool_tables``); their columns, indexes, constraints, triggers, policies and
    owned sequences are left out with them.

    One consistent, read-only view of the catalog with fixed output settings, in one round trip; the
    session is left as it was. Inside a caller's transaction (e.g. around a migration) it works in a
    savepoint instead.

    ``since`` (an earlier snapshot of the same database, read from the catalog) makes a partial snapshot,
    good only for ``diff(since, it)``: a relation ``since`` did not have is named, not described (no
    columns, indexes, … nor deparsed text; its foreign keys, and indexes with a name ``since`` knew, are
    kept). ``diff`` then gives exactly what it gives for a full snapshot, for a fraction of the cost when
    most relations are new (the first run on a fresh database).

    ``replan``: prepare the statement again first. Its generic plan was made for the catalog as it was
    when the session first took a snapshot; after a run that created hundreds of relations that plan
    reads the grown catalog several times slower than a new one, which costs its planning
    (benchmarks/snapshot_plan.py measures both).
    """
    return start_take(conn, exclude_tables=exclude_tables, exclude_schemas=exclude_schemas, since=since,
                      replan=replan).result()


class PendingSnapshot:
    """A snapshot whose message the server is working on (``start_take``): ``result()`` waits for it and gives
    the Snapshot (or raises what ``take`` raises); ``discard()`` waits and drops it. The connection carries
    nothing else until then."""

    def __init__(self, finish: Callable[[], list[str]], partial: bool) -> None:
        self._finish, self._partial = finish, partial

    def result(self) -> Snapshot:
        return Snapshot(parts=dict(zip(_WHOLE.parts, self._finish())), partial=self._partial)

    def discard(self) -> None:
        try:
            self._finish()
        except Exception:  # noqa: BLE001 - dropped on the way out of another error, which is the one to report
            pass


def start_take(conn, *, exclude_tables: Iterable[str] | None = None, exclude_schemas: Iterable[str] = (),
               since: Snapshot | None = None, replan: bool = False) -> PendingSnapshot:
    """``take`` in two halves: the message is sent now, and the server reads the catalog while the caller
    does work of its own (up parses its files meanwhile); the PendingSnapshot gives the result."""
    tables = list(tool_tables() if exclude_tables is None else exclude_tables)
    relations = indexes = "NULL::text[]"
    if since is not None and since._parts is not None:
        relations = _text_array(conn, [name for part in ("relations", "sequences") for _, name in since.keyed(part)])
        indexes = _text_array(conn, [name for _, name in since.keyed("indexes")])
    arguments = f"({_text_array(conn, tables)}, {_text_array(conn, list(exclude_schemas))}, {relations}, {indexes})"
    return PendingSnapshot(_start_snapshot(conn, _WHOLE, arguments, replan),
                           partial=since is not None and since._parts is not None)


def psql_script(store: history.HistoryStore | None = None) -> tuple[str, str]:
    """(prepare, snapshot): the statement's PREPARE, and one snapshot of a database as ``take`` sends it
    outside a transaction (``store``'s tables left out), for a client that runs SQL text (the benchmarks'
    psql floor for verify's proof)."""
    tables = "ARRAY[" + ", ".join("'" + name.replace("'", "''") + "'" for name in tool_tables(store)) + "]::text[]"
    start, end, _ = _READ_ONLY
    return (_prepare_sql(_WHOLE) + ";\n",
            _message(start, f"EXECUTE {_WHOLE.name} ({tables}, ARRAY[]::text[], NULL::text[], NULL::text[])", end)
            + ";\n")


# the snapshot's own transaction: start, end, and what ends it after an error
_READ_ONLY = ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "COMMIT", "ROLLBACK")


def _prepare_sql(statement: _Statement) -> str:
    return f"PREPARE {statement.name} (text[], text[], text[], text[]) AS\n{statement.sql}"


def _message(start: str, body: str, end: str) -> str:
    return f"{start};\n{_SET_SESSION_SQL};\n{body};\n{end}"


def _text_array(conn, values: list[str]) -> str:
    from mercurio_migrate.database import literal

    return "ARRAY[" + ", ".join(literal(conn, v) for v in values) + "]::text[]"


def _start_snapshot(conn, statement: _Statement, arguments: str, replan: bool = False) -> Callable[[], list[str]]:
    """Send the statement inside its read-only transaction (or a savepoint, in a caller's transaction); the
    function returned waits for its one row."""
    from mercurio_migrate.database import in_failed_or_open_transaction

    if in_failed_or_open_transaction(conn):
        start = "SAVEPOINT mercurio_snapshot"
        end = after_error = "ROLLBACK TO SAVEPOINT mercurio_snapshot; RELEASE SAVEPOINT mercurio_snapshot"
    else:
        start, end, after_error = _READ_ONLY
    execute = f"EXECUTE {statement.name} {arguments}"
    prepare_and_execute = f"{_prepare_sql(statement)};\n{execute}"
    if replan:
        # DEALLOCATE first (not prepared yet: it fails with 26000 and the statement is prepared below)
        body = f"DEALLOCATE {statement.name};\n{prepare_and_execute}"
    else:
        body = execute
    _send_message(conn, _message(start, body, end))

    def finish() -> list[str]:
        outcome = _finish_message(conn)
        if isinstance(outcome, Exception) and getattr(outcome, "sqlstate", None) == _UNDEFINED_PREPARED_STATEMENT:
            # the session's first snapshot (or a migration deallocated its statements): prepare, run again
            _one_message(conn, after_error)
            outcome = _one_message(conn, _message(start, prepare_and_execute, end))
        if isinstance(outcome, Exception):
            _one_message(conn, after_error)
            raise outcome
        return outcome

    return finish


def _one_message(conn, sql: str) -> list[str] | Exception:
    """Send ``sql`` as one simple-query message: the values of the last row set that comes back (the
    snapshot's one row), or the error that stopped the message."""
    _send_message(conn, sql)
    return _finish_message(conn)


def _send_message(conn, sql: str) -> None:
    conn.pgconn.send_query(sql.encode("utf-8"))


def _finish_message(conn) -> list[str] | Exception:
    from psycopg import errors, pq

    from mercurio_migrate.database import read_results

    last = None
    for result in read_results(conn):
        if result.status == pq.ExecStatus.FATAL_ERROR:
            return errors.error_from_result(result, encoding=conn.info.encoding)
        if result.status == pq.ExecStatus.TUPLES_OK:
            last = result
    if last is None or not last.ntuples:
        return []
    return [bytes(last.get_value(0, i)).decode("utf-8") for i in range(last.nfields)]


# --- building objects from rows ---------------------------------------------------------------------
def _relation(row: list) -> SchemaObject:
    (relkind, name, qualified, persistence, rls, force_rls, is_partition, partition_key, bound, parents,
     options, view_def, populated, server, comment, columns) = row
    kind = RELATION_KINDS[relkind]
    attrs: dict[str, Any] = {"comment": comment, "options": options or None,
                             "column order": tuple(columns) if columns else None}
    if kind in TABLE_KINDS:
        attrs.update(persistence={"u": "unlogged", "p": "permanent"}.get(persistence, persistence),
                     **{"row level security": rls, "forced row level security": force_rls,
                        "partitioned by": partition_key})
        parent_names = tuple(parents or ())
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
    return _obj(kind, name, sql_name=qualified, **attrs)


_IDENTITY = {"a": "always", "d": "by default"}


def _column(row: list) -> SchemaObject:
    relkind, rel, column, type_, not_null, default, identity, generated, collation, inherited, comment = row
    attrs = {"type": type_, "not null": not_null, "collation": collation, "comment": comment,
             "identity": _IDENTITY.get(identity), "inherited": inherited}
    attrs["generated" if generated == "s" else "default"] = default
    return _obj("column", f"{rel}.{column}", parent=(RELATION_KINDS[relkind], rel), sql_name=column, **attrs)


def _constraint(row: list) -> SchemaObject:
    relkind, rel, name, contype, definition, local, comment = row
    return _obj("constraint", f"{rel}.{name}", parent=(RELATION_KINDS[relkind], rel), sql_name=name,
                type=CONSTRAINT_TYPES.get(contype, contype), definition=definition, comment=comment,
                inherited=None if local else True)


def _index(row: list) -> SchemaObject:
    relkind, rel, name, qualified, definition, valid, clustered, by_constraint, attached_to, comment = row
    return _obj("index", name, parent=(RELATION_KINDS[relkind], rel), sql_name=qualified, table=rel,
                definition=definition, valid=valid, clustered=clustered or None,
                **{"of constraint": by_constraint or None, "partition of index": attached_to}, comment=comment)


def _sequence(row: list) -> SchemaObject:
    (name, qualified, type_, start, increment, minimum, maximum, cache, cycle, owner_kind, owner, owner_column,
     deptype, persistence, comment) = row
    return _obj("sequence", name, parent=(RELATION_KINDS[owner_kind], owner) if owner else None, sql_name=qualified,
                type=type_, start=start, increment=increment, minimum=minimum, maximum=maximum, cache=cache,
                cycle=cycle, comment=comment, persistence="unlogged" if persistence == "u" else "permanent",
                **{"owned by": f"{owner}.{owner_column}" if owner else None, "identity": deptype == "i" or None})


_AGGREGATE_ATTRS = ("state function", "state type", "final function", "initial value", "combine function")


def _function(row: list) -> SchemaObject:
    prokind, name, qualified, definition, aggregate, comment = row
    attrs: dict[str, Any] = {"comment": comment}
    if prokind == "a":
        attrs.update(zip(_AGGREGATE_ATTRS, aggregate or ()))
    else:
        attrs["definition"] = definition
    return _obj(FUNCTION_KINDS.get(prokind, "function"), name, sql_name=qualified, **attrs)


def _trigger(row: list) -> SchemaObject:
    relkind, rel, name, definition, enabled, comment = row
    return _obj("trigger", f"{rel}.{name}", parent=(RELATION_KINDS[relkind], rel), sql_name=name,
                definition=definition, enabled=TRIGGER_ENABLED.get(enabled, enabled), comment=comment)


def _type(row: list) -> SchemaObject:
    typtype, name, qualified, labels, base, not_null, default, collation, checks, attributes, subtype, comment = row
    attrs: dict[str, Any] = {"comment": comment}
    if typtype == "e":
        attrs["labels"] = tuple(labels)
    elif typtype == "d":
        attrs.update(type=base, **{"not null": not_null}, default=default, collation=collation,
                     constraints=tuple(checks))
    elif typtype == "c":
        attrs["attributes"] = tuple(attributes)
    else:
        attrs["subtype"] = subtype
    return _obj(TYPE_KINDS[typtype], name, sql_name=qualified, **attrs)


def _policy(row: list) -> SchemaObject:
    relkind, rel, name, permissive, command, roles, using, check, comment = row
    return _obj("policy", f"{rel}.{name}", parent=(RELATION_KINDS[relkind], rel), sql_name=name,
                permissive=permissive, command=POLICY_COMMANDS.get(command, command), roles=tuple(roles),
                using=using, **{"with check": check}, comment=comment)


def _child_key(kind: str) -> Callable[[list], tuple[str, str]]:
    return lambda row: (kind, f"{row[1]}.{row[2]}")


def _rel_parent(row: list) -> tuple[str, str]:
    return (RELATION_KINDS[row[0]], row[1])


# the parts whose rows always belong to a relation
_RELATION_CHILDREN = ("columns", "constraints", "indexes", "triggers", "policies")


def _no_parent(row: list) -> None:
    return None


class _Spec(NamedTuple):
    key: Callable[[list], tuple[str, str]]  # the key of the object a row becomes, without building it
    parent: Callable[[list], tuple[str, str] | None]
    build: Callable[[list], SchemaObject]


PART_SPECS: dict[str, _Spec] = {
    "schemas": _Spec(lambda row: ("schema", row[0]), _no_parent,
                     lambda row: _obj("schema", row[0], sql_name=row[0], comment=row[1])),
    "relations": _Spec(lambda row: (RELATION_KINDS[row[0]], row[1]), _no_parent, _relation),
    "columns": _Spec(_child_key("column"), _rel_parent, _column),
    "constraints": _Spec(_child_key("constraint"), _rel_parent, _constraint),
    "indexes": _Spec(lambda row: ("index", row[2]), _rel_parent, _index),
    "sequences": _Spec(lambda row: ("sequence", row[0]),
                       lambda row: (RELATION_KINDS[row[9]], row[10]) if row[10] else None, _sequence),
    "functions": _Spec(lambda row: (FUNCTION_KINDS.get(row[0], "function"), row[1]), _no_parent, _function),
    "triggers": _Spec(_child_key("trigger"), _rel_parent, _trigger),
    "types": _Spec(lambda row: (TYPE_KINDS[row[0]], row[1]), _no_parent, _type),
    "extensions": _Spec(lambda row: ("extension", row[0]), _no_parent,
                        lambda row: _obj("extension", row[0], sql_name=row[0], version=row[1], schema=row[2],
                                         comment=row[3])),
    "policies": _Spec(_child_key("policy"), _rel_parent, _policy),
}


# the part each kind of object comes from
KIND_PARTS = {"schema": "schemas", **{kind: "relations" for kind in RELATION_KINDS.values()}, "column": "columns",
              "constraint": "constraints", "index": "indexes", "sequence": "sequences",
              **{kind: "functions" for kind in FUNCTION_KINDS.values()}, "trigger": "triggers",
              **{kind: "types" for kind in TYPE_KINDS.values()}, "extension": "extensions", "policy": "policies"}


def _obj(kind: str, name: str, *, parent: tuple[str, str] | None = None, sql_name: str = "", **attrs) -> SchemaObject:
    return SchemaObject(kind, name, tuple(sorted((k, v) for k, v in attrs.items() if v is not None)),
                        parent, sql_name)


# --- canonical DDL ----------------------------------------------------------------------------------
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
            comments.append(f"COMMENT ON {target} IS {quote_text(obj.get('comment'))};")

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.extend([f"-- {title}", *lines, ""])

    section("schemas", [f"CREATE SCHEMA IF NOT EXISTS {s.sql_name};" for s in snap.of_kind("schema")])
    for s in snap.of_kind("schema"):
        comment(s, f"SCHEMA {s.sql_name}")
    section("extensions", [f"CREATE EXTENSION IF NOT EXISTS {x.sql_name} WITH SCHEMA {x.get('schema')} "
                           f"VERSION {quote_text(x.get('version'))};" for x in snap.of_kind("extension")])
    for x in snap.of_kind("extension"):
        comment(x, f"EXTENSION {x.sql_name}")

    types = []
    for t in snap.of_kind("enum type"):
        types.append(f"CREATE TYPE {t.sql_name} AS ENUM ({', '.join(quote_text(v) for v in t.get('labels'))});")
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
            options.append(f"INITCOND = {quote_text(a.get('initial value'))}")
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
