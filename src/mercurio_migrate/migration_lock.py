"""The migration lock: a session-level advisory lock that serialises every command changing a database.

Taken only on a writable primary reached directly (a transaction-pooling proxy would not keep a session's
lock). While another run holds it, the lock is tried again now and then, each try a statement of its own
outside any transaction: a run waiting inside a transaction would hold a snapshot that the holder's
CREATE INDEX CONCURRENTLY must wait for, a deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mercurio_migrate import history
from mercurio_migrate.config import Safety
from mercurio_migrate.errors import ConnectionFailed, LockTimeout

NAMESPACE = history.LOCK_NAMESPACE  # first key of the advisory lock, the second is 0
# the lock, tried, with what decides whether this server can be migrated (the port as text)
_TRY_SQL = (f"SELECT pg_try_advisory_lock({NAMESPACE}, 0), current_setting('port'), pg_is_in_recovery(), "
            "current_setting('transaction_read_only') = 'on'")
_HOLDER_SQL = (
    "SELECT a.pid, a.application_name, a.state, a.query_start, a.client_addr::text FROM pg_locks l "
    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.classid = %s::bigint::oid AND l.objid = 0 AND l.objsubid = 2 AND l.database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())")
# while another run holds the lock, it is tried again after this many seconds (then less often)
POLL_FIRST, POLL_MAX = 0.05, 1.0


def acquire(conn, safety: Safety, emit: Callable[..., None]) -> None:
    """Take the lock on ``conn``, waiting up to ``safety.lock_wait`` seconds for another run to release it."""
    got, server_port, in_recovery, read_only = conn.execute(_TRY_SQL).fetchone()
    if in_recovery or read_only:
        if got:
            release(conn)
        what = "a read-only replica (in recovery)" if in_recovery else "read-only (default_transaction_read_only)"
        raise ConnectionFailed(f"the database {conn.info.dbname!r} on {conn.info.host} is {what}: nothing can be "
                               "migrated there", hint="Point DATABASE_URL at the primary server.")
    client_port = conn.info.port or server_port
    if str(client_port) != server_port and not safety.allow_pooler:
        if got:
            release(conn)
        raise ConnectionFailed(
            f"connected through a proxy or connection pooler (port {client_port}; the server listens on "
            f"{server_port}): under transaction pooling the migration lock and session settings would not "
            "hold, so concurrent runs could collide",
            hint="Connect straight to PostgreSQL for migrations, or, if the pooler uses session pooling, "
                 "set MERCURIO_ALLOW_POOLER=1.")
    if got:
        _hold_twice(conn)
        return
    emit("lock_wait", f"waiting for the migration lock held by {holder(conn)} (up to {safety.lock_wait:g} s, "
                      "--lock-wait)")
    started = time.monotonic()
    deadline = started + safety.lock_wait
    pause = POLL_FIRST
    while True:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        if conn.execute("SELECT pg_try_advisory_lock(%s, 0)", (NAMESPACE,)).fetchone()[0]:
            break
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"the migration lock is still held by {holder(conn)} after {safety.lock_wait:g} s: nothing was run",
                hint="Wait for that run to finish, or, if it is stuck, end it (SELECT pg_terminate_backend(pid)); "
                     "wait longer with --lock-wait SECONDS.")
        pause = min(pause * 2, POLL_MAX)
    _hold_twice(conn)
    emit("lock_acquired", f"migration lock acquired after {time.monotonic() - started:.1f} s")


def _hold_twice(conn) -> None:
    """A second hold of the lock (advisory locks count their holds): history.LOCK_CHECK_EXPR checks that the
    lock is still held by releasing one hold and taking it back, and the lock must not be free meanwhile."""
    conn.execute("SELECT pg_advisory_lock(%s, 0)", (NAMESPACE,))


def release(conn) -> None:
    """Release every hold of the lock this session has."""
    while conn.execute("SELECT pg_advisory_unlock(%s, 0)", (NAMESPACE,)).fetchone()[0]:
        pass


def holder(conn) -> str:
    """The session holding the lock, in words (pid, application, address, state, since when)."""
    row = conn.execute(_HOLDER_SQL, (NAMESPACE,)).fetchone()
    if row is None:
        return "another session"
    pid, application, state, since, address = row
    where = f" from {address}" if address else ""
    started = f", since {since:%H:%M:%S}" if since else ""
    return f"pid {pid} ({application or 'no application_name'}{where}, {state}{started})"
