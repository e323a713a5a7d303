"""Fault injection for the crash-survival tests: die at the N-th fault point of a run.

Inactive unless ``MERCURIO_FAULT_AT`` is set; the engine then also sends a transactional migration
statement by statement, so that every statement boundary is a point where the process can die.
``MERCURIO_FAULT_ACTION`` = ``kill`` (SIGKILL the process) or ``terminate`` (the server drops our
connection, as ``pg_terminate_backend`` from a DBA would).
"""

from __future__ import annotations

import os
import signal

_TARGET = int(os.environ.get("MERCURIO_FAULT_AT", "0") or 0)
_ACTION = os.environ.get("MERCURIO_FAULT_ACTION", "kill")
ACTIVE = _TARGET > 0
_reached = 0


def arm(target: int, action: str = "kill") -> None:
    """Arm in-process (a forked test child): die at the ``target``-th point."""
    global _TARGET, _ACTION, ACTIVE, _reached
    _TARGET, _ACTION, ACTIVE, _reached = target, action, target > 0, 0


def point(conn, label: str) -> None:
    global _reached
    if not ACTIVE:
        return
    _reached += 1
    trace = os.environ.get("MERCURIO_FAULT_TRACE")
    if trace:
        with open(trace, "a") as handle:
            handle.write(f"{_reached}\t{label}\n")
    if _reached != _TARGET:
        return
    if _ACTION == "terminate":
        with type(conn).connect(conn.info.dsn, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return
    os.kill(os.getpid(), signal.SIGKILL)
