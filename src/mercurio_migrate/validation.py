"""Pre-/post-migration validation: what a migration created, dropped and changed, and what it did to row counts.

The seed's "Pre-/Post-Migration Validation" queries as data: ``capture`` before and after, then
``compare``. A capture costs a fixed number of queries whatever the number of tables: the schema
snapshot, one query for the planner's row estimates, one for the exact counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mercurio_migrate import snapshot
from mercurio_migrate.snapshot import Difference, Snapshot

# A never-analyzed table has no estimate (reltuples = -1): it is counted exactly when it is small on disk.
UNANALYZED_EXACT_BYTES = 8 * 1024 * 1024

# pg_relation_size opens the table, which waits behind an ACCESS EXCLUSIVE lock (held, or asked for ahead
# of us): such a table is reported as locked (size NULL) instead
ESTIMATES_SQL = """
SELECT x.name, c.reltuples::bigint,
       CASE WHEN EXISTS (SELECT FROM pg_locks l WHERE l.relation = c.oid AND l.mode = 'AccessExclusiveLock'
                         AND l.pid <> pg_backend_pid()) THEN NULL ELSE pg_relation_size(c.oid) END
FROM unnest(%s::text[]) AS x(name)
JOIN pg_class c ON c.oid = to_regclass(x.name)
"""


@dataclass(frozen=True)
class RowCount:
    rows: int | None  # None: never analyzed and too large to count
    exact: bool

    def __str__(self) -> str:
        if self.rows is None:
            return "unknown"
        return str(self.rows) if self.exact else f"~{self.rows}"


@dataclass(frozen=True)
class Capture:
    schema: Snapshot
    row_counts: dict[str, RowCount]  # by table display name (tables holding rows: partitioned parents left out)
    uncounted: dict[str, str] = field(default_factory=dict)  # table → why it could not be counted (locked)


@dataclass(frozen=True)
class TableRows:
    table: str
    before: RowCount | None  # None: the table did not exist
    after: RowCount | None

    @property
    def delta(self) -> int | None:
        old = self.before.rows if self.before else 0
        new = self.after.rows if self.after else 0
        if old is None or new is None:
            return None
        return new - old

    def as_dict(self) -> dict:
        def count(value: RowCount | None):
            return None if value is None else {"rows": value.rows, "exact": value.exact}

        return {"table": self.table, "before": count(self.before), "after": count(self.after), "delta": self.delta}


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    definition: str

    def as_dict(self) -> dict:
        return {"table": self.table, "name": self.name, "definition": self.definition}


@dataclass(frozen=True)
class ValidationReport:
    created: list[Difference] = field(default_factory=list)
    dropped: list[Difference] = field(default_factory=list)
    changed: list[Difference] = field(default_factory=list)  # notes (column order) included
    rows: list[TableRows] = field(default_factory=list)  # tables whose count changed, appeared or vanished
    new_foreign_keys: list[ForeignKey] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.created or self.dropped or self.changed or self.rows)

    def as_dict(self) -> dict:
        return {
            "created": [d.as_dict() for d in self.created],
            "dropped": [d.as_dict() for d in self.dropped],
            "changed": [d.as_dict() for d in self.changed],
            "rows": [r.as_dict() for r in self.rows],
            "new_foreign_keys": [f.as_dict() for f in self.new_foreign_keys],
        }


def capture(conn, *, exact_row_threshold: int = 100_000, since: Capture | None = None,
            replan: bool = False, exclude_tables: Iterable[str] | None = None) -> Capture:
    """Schema snapshot and row counts: exact below ``exact_row_threshold`` estimated rows, the estimate above.

    ``since``: the capture this one will be compared with (``compare(since, it)``), taken earlier on the same
    database. Relations that ``since`` did not have are then only named, not described (see snapshot.take):
    the report is the same, and the capture after the first run on a fresh database costs a fraction of a
    full one. Such a capture serves that comparison only: it cannot be the ``before`` of another.
    ``replan``: see snapshot.take (after a run of many migrations). ``exclude_tables``: the tool's own tables
    (HistoryStore.tool_tables), left out of the report."""
    return start_capture(conn, exact_row_threshold=exact_row_threshold, since=since, replan=replan,
                         exclude_tables=exclude_tables).result()


class PendingCapture:
    """A capture whose schema snapshot the server is working on (``start_capture``): ``result()`` waits
    for it, counts the rows and gives the Capture; ``discard()`` waits and drops it. The connection carries
    nothing else until then."""

    def __init__(self, conn, snapshot_: snapshot.PendingSnapshot, exact_row_threshold: int) -> None:
        self._conn, self._snapshot, self._threshold = conn, snapshot_, exact_row_threshold

    def result(self) -> Capture:
        return _with_row_counts(self._conn, self._snapshot.result(), self._threshold)

    def discard(self) -> None:
        self._snapshot.discard()


def start_capture(conn, *, exact_row_threshold: int = 100_000, since: Capture | None = None,
                  replan: bool = False, exclude_tables: Iterable[str] | None = None) -> PendingCapture:
    """``capture`` in two halves: its snapshot is sent now and read while the caller works (see
    snapshot.start_take)."""
    pending = snapshot.start_take(conn, exclude_tables=exclude_tables, since=since.schema if since is not None else None,
                                  replan=replan)
    return PendingCapture(conn, pending, exact_row_threshold)


def _with_row_counts(conn, schema: Snapshot, exact_row_threshold: int) -> Capture:
    tables = schema.data_table_names()
    if not tables:
        return Capture(schema, {})
    sql_names = dict(tables)
    estimates = {name: (int(estimate), size) for name, estimate, size in
                 conn.execute(ESTIMATES_SQL, ([sql_names[name] for name, _ in tables],)).fetchall()}
    counts: dict[str, RowCount] = {}
    uncounted: dict[str, str] = {}
    to_count = []
    for name, _ in tables:
        estimate, size = estimates.get(sql_names[name], (-1, 0))
        if size is None:
            uncounted[name] = _locked_by(conn, sql_names[name])
            continue
        if size == 0:  # no pages at all: empty, no need to count (most tables a migration run creates)
            counts[name] = RowCount(0, True)
            continue
        small = estimate < exact_row_threshold if estimate >= 0 else size <= UNANALYZED_EXACT_BYTES
        if small:
            to_count.append(name)
        else:
            counts[name] = RowCount(estimate if estimate >= 0 else None, False)
    if to_count:
        counts.update(_count_rows(conn, [(name, sql_names[name]) for name in to_count], uncounted))
    return Capture(schema, dict(sorted(counts.items())), uncounted)


def _count_rows(conn, tables: list[tuple[str, str]], uncounted: dict[str, str]) -> dict[str, RowCount]:
    """Exact counts, never waiting for a lock: a table another session holds a conflicting lock on (an
    ALTER TABLE in progress, a LOCK TABLE) is named in ``uncounted`` and left out. One query when nothing is
    locked; table by table otherwise."""
    from psycopg import errors

    def count(batch: list[tuple[str, str]]) -> dict[str, RowCount]:
        conn.execute("BEGIN")
        try:
            conn.execute("LOCK TABLE " + ", ".join(sql for _, sql in batch) + " IN ACCESS SHARE MODE NOWAIT")
            query = " UNION ALL ".join(f"SELECT {i}, count(*) FROM {sql}" for i, (_, sql) in enumerate(batch))
            found = {batch[int(i)][0]: RowCount(int(rows), True) for i, rows in conn.execute(query).fetchall()}
        finally:
            conn.execute("ROLLBACK")
        return found

    try:
        return count(tables)
    except errors.LockNotAvailable:
        pass
    counts = {}
    for name, sql in tables:
        try:
            counts.update(count([(name, sql)]))
        except errors.LockNotAvailable:
            uncounted[name] = _locked_by(conn, sql)
    return counts


def _locked_by(conn, table: str) -> str:
    from mercurio_migrate import locks

    return "locked by " + ("; ".join(h.describe() for h in locks.holders(conn, [table])) or "another session")


def compare(before: Capture, after: Capture) -> ValidationReport:
    differences = snapshot.diff(before.schema, after.schema)
    created = [d for d in differences if d.status == "added"]
    dropped = [d for d in differences if d.status == "removed"]
    changed = [d for d in differences if d.status == "changed"]
    rows = []
    for table in sorted(set(before.row_counts) | set(after.row_counts)):
        if table in before.uncounted or table in after.uncounted:
            continue
        old, new = before.row_counts.get(table), after.row_counts.get(table)
        if old is None or new is None or old.rows != new.rows:
            rows.append(TableRows(table, old, new))
    foreign_keys = [ForeignKey(c.parent[1] if c.parent else "", c.sql_name, c.get("definition"))
                    for c in snapshot.new_objects(before.schema, after.schema, "constraint")
                    if c.get("type") == "foreign key"]
    return ValidationReport(created, dropped, changed, rows, foreign_keys)


def render(report: ValidationReport) -> str:
    """A short text summary: one line per object and per table whose row count changed."""
    if report.empty:
        return "no schema changes; no row counts changed"
    lines = []
    for title, items in (("created", report.created), ("dropped", report.dropped), ("changed", report.changed)):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  {d.kind} {d.name}" + ("" if d.status != "changed" else f": {d.change}") for d in items)
    if report.rows:
        lines.append("rows:")
        # new tables without rows (most of what a run creates) are counted, not listed: --json lists them
        empty_new = sum(1 for r in report.rows if r.before is None and r.after is not None and r.after.exact
                        and r.after.rows == 0)
        for r in report.rows:
            if empty_new and r.before is None and r.after is not None and r.after.exact and r.after.rows == 0:
                continue
            delta = "" if r.delta is None else f" ({r.delta:+d})"
            old = "absent" if r.before is None else str(r.before)
            new = "absent" if r.after is None else str(r.after)
            lines.append(f"  {r.table}: {old} -> {new}{delta}")
        if empty_new:
            lines.append(f"  {empty_new} new table{'s' if empty_new > 1 else ''} without rows")
    if report.new_foreign_keys:
        lines.append("new foreign keys:")
        lines.extend(f"  {fk.table}.{fk.name}: {fk.definition}" for fk in report.new_foreign_keys)
    return "\n".join(lines)
