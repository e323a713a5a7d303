"""7. Where a command's fixed cost goes, in instructions (valgrind's callgrind): a count that does not depend
on how busy the machine is, unlike any time measured on a shared two-core VM.

Each row is one whole process, counted from start to exit (user-space instructions of the process itself;
the PostgreSQL server's work is not in them). The import rows show what the interpreter and the libraries
cost before the tool does anything; the command rows what a command costs in all. Under valgrind, CPU
features such as SHA extensions are not used, so hashing counts more instructions than it executes natively.
"""

from __future__ import annotations

import re
import shutil

from benchmarks import common
from benchmarks.common import Context, NotAvailable, Section, Table
from benchmarks.common import run as run_cmd

NAME = "fixed_cost"
TITLE = "Fixed cost in instructions (callgrind)"
_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(cmd: list[str], env: dict) -> int:
    """Instructions of the process ``cmd`` starts (a forked child counts separately and is left out)."""
    result = run_cmd(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd], env=env, timeout=600,
                 check=False)
    counts = [int(c) for c in _COLLECTED.findall(result.stderr)]
    if result.returncode != 0 or not counts:
        tail = " / ".join(result.stderr.strip().splitlines()[-3:])
        raise NotAvailable(f"valgrind could not count `{' '.join(cmd)[:80]}`: {tail}")
    return counts[-1]  # the parent's summary comes last


def processes(ctx: Context) -> list[tuple[str, list[str], dict]]:
    """(label, command, environment) of each process counted; a quick run counts two (valgrind is slow)."""
    server = ctx.server
    python = common.TOOL_PYTHON
    n_status, n_apply = (3, 3) if ctx.quick else (1000, 200)
    status_set, apply_set = ctx.migration_set(n_status), ctx.migration_set(n_apply)
    applied = ctx.applied_db("mercurio-migrate", n_status)
    ctx.keep_applied("mercurio-migrate", n_status, applied)
    rows = [
        ("python -c pass", [python, "-c", "pass"], server.env),
        (f"mercurio-migrate status, {n_status} applied",
         [python, "-m", "mercurio_migrate", "--dir", str(status_set.ours), "status"], server.mercurio_env(applied)),
    ]
    if ctx.quick:
        return rows
    fresh = server.create_db("fc")
    ctx.keep_applied("mercurio-migrate-fixed-cost", n_apply, fresh)  # dropped with the others at the end
    return rows[:1] + [
        ("python -c 'import pglast.parser'", [python, "-c", "import pglast.parser"], server.env),
        ("python -c 'import psycopg'", [python, "-c", "import psycopg"], server.env),
    ] + rows[1:] + [
        (f"mercurio-migrate up with nothing pending, {n_status} applied",
         [python, "-m", "mercurio_migrate", "--dir", str(status_set.ours), "up"], server.mercurio_env(applied)),
        (f"mercurio-migrate up, {n_apply} migrations on a fresh database",
         [python, "-m", "mercurio_migrate", "--dir", str(apply_set.ours), "up"], server.mercurio_env(fresh)),
    ]


def run(ctx: Context) -> Section:
    if not shutil.which("valgrind"):
        raise NotAvailable("valgrind is not installed (Debian: apt-get install valgrind)")
    section = Section(NAME, TITLE)
    section.notes.append(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    table = Table("instructions per process", ["process", "M instructions", "× python -c pass"])
    floor = None
    for label, cmd, env in processes(ctx):
        count = instructions(cmd, env)
        floor = floor or count
        table.rows.append([label, f"{count / 1e6:,.0f}", f"{count / floor:.2f}×"])
    section.tables.append(table)
    return section
