"""`indexes`: index usage of the target database (read-only), with unused, duplicate and INVALID indexes.

The seed's "Monitor index usage over time" query reads ``pg_stat_user_indexes`` (its columns are ``relname``
and ``indexrelname``, not the ``tablename``/``indexname`` the seed writes). This adds size and the catalog
facts that make a finding:

- unused: ``idx_scan = 0`` since the statistics were last reset, for indexes that back no primary key,
  unique or exclusion constraint and are not unique (those enforce something even when never scanned);
- duplicate: same table, access method, key columns/expressions (with their order, operator class and
  collation) and predicate as another index: one of them is pure write cost;
- redundant (a note): a non-unique btree whose keys are a left prefix of another btree's keys, same predicate;
- invalid: ``pg_index.indisvalid = false``, what a failed ``CREATE INDEX CONCURRENTLY`` leaves behind; the
  planner never uses it but every write maintains it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FINDINGS = ("invalid", "duplicate", "unused", "redundant")

_SQL = """
SELECT n.nspname, t.relname, i.relname, am.amname,
       s.idx_scan, s.idx_tup_read, s.idx_tup_fetch, pg_relation_size(i.oid),
       x.indisvalid, x.indisunique, x.indisprimary, con.contype, con.conname,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                    || CASE WHEN x.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                    || CASE x.indoption[k - 1] & 3 WHEN 2 THEN ' NULLS FIRST' WHEN 1 THEN ' NULLS LAST' ELSE '' END
             FROM generate_series(1, x.indnkeyatts) k),
       pg_get_expr(x.indpred, x.indrelid, true), pg_get_indexdef(x.indexrelid),
       (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
     AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
  AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
ORDER BY n.nspname, t.relname, i.relname
"""


@dataclass
class IndexInfo:
    schema: str
    table: str
    name: str
    method: str
    scans: int
    tuples_read: int
    tuples_fetched: int
    size_bytes: int
    valid: bool
    unique: bool
    constraint: str | None  # the primary key / unique / exclusion constraint it backs
    keys: tuple[str, ...]
    predicate: str | None
    definition: str
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    def as_dict(self) -> dict:
        return {"schema": self.schema, "table": self.table, "index": self.name, "method": self.method,
                "scans": self.scans, "tuples_read": self.tuples_read, "tuples_fetched": self.tuples_fetched,
                "size_bytes": self.size_bytes, "valid": self.valid, "unique": self.unique,
                "constraint": self.constraint, "keys": list(self.keys), "predicate": self.predicate,
                "definition": self.definition, "findings": self.findings, "notes": self.notes}


@dataclass
class IndexReport:
    database: str  # redacted URL
    stats_reset: str | None
    indexes: list[IndexInfo]

    def with_finding(self, finding: str) -> list[IndexInfo]:
        return [i for i in self.indexes if finding in i.findings]

    def counts(self) -> dict[str, int]:
        return {f: len(self.with_finding(f)) for f in FINDINGS}

    def failed(self, fail_on: set[str]) -> bool:
        return any(self.with_finding(f) for f in fail_on)

    def as_dict(self) -> dict:
        return {"database": self.database, "stats_reset": self.stats_reset, "counts": self.counts(),
                "indexes": [i.as_dict() for i in self.indexes]}


def _fix(index: IndexInfo) -> str:
    return f"DROP INDEX CONCURRENTLY {index.qualified};"


def index_report(conn, database: str, schema: str | None = None) -> IndexReport:
    rows = conn.execute(_SQL, {"schema": schema}).fetchall()
    stats_reset = str(rows[0][-1]) if rows and rows[0][-1] is not None else None
    indexes = [IndexInfo(r[0], r[1], r[2], r[3], r[4] or 0, r[5] or 0, r[6] or 0, r[7], r[8], r[9],
                         r[12] if r[11] else None, tuple(r[13]), r[14], r[15]) for r in rows]
    by_table: dict[tuple[str, str], list[IndexInfo]] = {}
    for index in indexes:
        by_table.setdefault((index.schema, index.table), []).append(index)
        if not index.valid:
            index.findings.append("invalid")
            index.notes.append(f"INVALID (a failed CREATE INDEX CONCURRENTLY?): never used by the planner, still "
                               f"maintained on every write; drop it ({_fix(index)}) and build it again")
        elif index.scans == 0 and not index.unique and index.constraint is None:
            index.findings.append("unused")
            index.notes.append("never scanned since the statistics were reset: check the queries that should use "
                               "it (mercurio-migrate explain), or drop it")
    for siblings in by_table.values():
        _compare(siblings)
    return IndexReport(database, stats_reset, indexes)


def _compare(siblings: list[IndexInfo]) -> None:
    """Duplicates and left-prefix redundancy among the valid indexes of one table."""
    valid = [i for i in siblings if i.valid]
    for index in valid:
        for other in valid:
            if other is index or other.method != index.method or other.predicate != index.predicate:
                continue
            if other.keys == index.keys:
                # report the one that enforces nothing (or, between equals, the later name) as the duplicate
                keeps = (index.constraint is None and not index.unique) and (other.constraint or other.unique) \
                    or ((index.constraint is None) == (other.constraint is None) and index.unique == other.unique
                        and other.name < index.name)
                if keeps and "duplicate" not in index.findings:
                    index.findings.append("duplicate")
                    index.notes.append(f"same keys ({', '.join(index.keys)}) and predicate as {other.name}: drop "
                                       f"one ({_fix(index)})")
            elif (index.method == "btree" and not index.unique and index.constraint is None
                  and len(index.keys) < len(other.keys) and other.keys[:len(index.keys)] == index.keys
                  and "redundant" not in index.findings):
                index.findings.append("redundant")
                index.notes.append(f"its keys ({', '.join(index.keys)}) are a left prefix of {other.name} "
                                   f"({', '.join(other.keys)}), which serves the same lookups; keep it only if a "
                                   "measured query prefers it (it is smaller)")
