"""Who blocks whom: the sessions a migration would wait behind, and the relations a statement touches.

Used for the pre-flight check before a run and to name the blocking session when a lock times out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

IDLE_IN_TRANSACTION_SECONDS = 2.0

_SESSION_COLUMNS = """
    a.pid, a.application_name, a.usename, a.state, a.xact_start, a.query_start,
    EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_seconds, left(a.query, 200) AS query,
    EXISTS (SELECT 1 FROM pg_locks w WHERE w.pid = a.pid AND NOT w.granted AND w.locktype <> 'advisory') AS waiting
"""

# Client sessions of this database, other than ours and other mercurio-migrate runs, that a DDL statement
# would queue behind (long or idle-in-transaction sessions) or that are already stuck waiting for a lock.
PREFLIGHT_SQL = f"""
SELECT {_SESSION_COLUMNS}
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
  AND a.application_name NOT LIKE 'mercurio-migrate%%'
  AND (
        (a.state LIKE 'idle in transaction%%' AND a.state_change < now() - make_interval(secs => %(idle)s))
     OR a.xact_start < now() - make_interval(secs => %(long)s)
     OR EXISTS (SELECT 1 FROM pg_locks w WHERE w.pid = a.pid AND NOT w.granted AND w.locktype <> 'advisory')
  )
ORDER BY a.xact_start NULLS LAST
"""

HOLDERS_SQL = f"""
SELECT DISTINCT ON (a.pid) {_SESSION_COLUMNS}, l.relation::regclass::text AS relation, l.mode
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND l.locktype = 'relation'
  AND l.relation = ANY (SELECT to_regclass(n) FROM unnest(%(names)s::text[]) n)
ORDER BY a.pid
"""


@dataclass(frozen=True)
class Session:
    pid: int
    application_name: str
    user: str
    state: str
    xact_start: datetime | None
    query_start: datetime | None
    xact_seconds: float | None
    query: str
    waiting: bool
    relation: str | None = None
    mode: str | None = None

    def describe(self) -> str:
        parts = [f"pid {self.pid}", f"application_name={self.application_name or '(none)'}", f"user={self.user}",
                 f"state={self.state}"]
        if self.xact_seconds is not None:
            parts.append(f"transaction open {self.xact_seconds:.0f} s")
        if self.query_start:
            parts.append(f"query started {self.query_start:%Y-%m-%d %H:%M:%S%z}")
        if self.relation:
            parts.append(f"holds {self.mode} on {self.relation}")
        if self.waiting:
            parts.append("waiting for a lock")
        text = ", ".join(parts)
        if self.query:
            text += f"; last query: {self.query.strip().splitlines()[0][:120]}"
        return text

    def as_dict(self) -> dict:
        data = asdict(self)
        for key in ("xact_start", "query_start"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def blockers(conn, long_transaction_seconds: float) -> list[Session]:
    rows = conn.execute(PREFLIGHT_SQL, {"idle": IDLE_IN_TRANSACTION_SECONDS, "long": long_transaction_seconds})
    return [Session(*row) for row in rows.fetchall()]


def holders(conn, relation_names: list[str]) -> list[Session]:
    """Sessions holding locks on the named relations (who made a statement time out)."""
    if not relation_names:
        return []
    rows = conn.execute(HOLDERS_SQL, {"names": relation_names}).fetchall()
    return [Session(*row) for row in rows]
