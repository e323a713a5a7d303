"""4. Lock impact: write latency on a busy `event` table while the seed's Example 3 builds its indexes.

The event table (from the shipped migrations) gets 3 million rows; pgbench inserts at a steady ~200 tx/s
from 4 clients, logging every transaction. Example 3 is applied by `mercurio-migrate up` (its indexes are
CREATE INDEX CONCURRENTLY); for contrast the same indexes are built without CONCURRENTLY, in the file's own
BEGIN/COMMIT, by psql. A transaction belongs to a phase when its scheduled start falls inside it; pgbench's
latency counts from the scheduled start, so a stalled client's queue shows up in full.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    MIGRATIONS,
    BenchError,
    Context,
    NotAvailable,
    Section,
    Table,
    Target,
    psql_commands,
)
from benchmarks.common import run as run_cmd

NAME = "lock_impact"
TITLE = "Lock impact of Example 3 (indexes on a busy table)"
EVENT_TABLE = "_create_event_table"
EXAMPLE_3 = "_add_event_system_indexes"
STALL_TARGET_MS = 100.0
PGBENCH_SCRIPT = """\\set t random(1, 10)
\\set w random(0, 1)
INSERT INTO event (tenant_id, workspace_id, anonymous_id, session_id, event_name, props) VALUES (:t, 2 * :t - :w, 'a_bench' || lpad(:t::text, 5, '0'), 's_bench', 'page_view', '{"path": "/pricing"}');
"""


def find_folder(suffix: str) -> Path:
    found = sorted(p for p in MIGRATIONS.glob(f"*{suffix}") if (p / "migration.sql").is_file())
    if not found:
        raise NotAvailable(f"no migrations/*{suffix}/migration.sql yet")
    return found[-1]


def without_concurrently(sql: str) -> str:
    """The same file as one transaction with every CREATE INDEX CONCURRENTLY made plain (via pglast)."""
    from pglast import ast, parse_sql
    from pglast.stream import RawStream

    statements = ["BEGIN"]
    for raw in parse_sql(sql):
        node = raw.stmt
        if isinstance(node, ast.TransactionStmt):
            continue
        if isinstance(node, ast.IndexStmt):
            node.concurrent = False
        statements.append(RawStream()(node))
    return ";\n".join(statements + ["COMMIT"]) + ";\n"


def index_names(sql: str) -> list[str]:
    from pglast import ast, parse_sql

    return [raw.stmt.idxname for raw in parse_sql(sql) if isinstance(raw.stmt, ast.IndexStmt) and raw.stmt.idxname]


@dataclass
class Transaction:
    scheduled: float  # epoch seconds
    latency_ms: float


def read_pgbench_logs(prefix: Path) -> list[Transaction]:
    """pgbench -l lines: client_id transaction_no time script_no time_epoch time_us [schedule_lag]."""
    out = []
    for log in prefix.parent.glob(prefix.name + ".*"):
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) < 6 or parts[2] == "skipped":
                continue
            latency_us, finished = int(parts[2]), int(parts[4]) + int(parts[5]) / 1e6
            out.append(Transaction(finished - latency_us / 1e6, latency_us / 1000))
    return out


def stats(transactions: list[Transaction], start: float, end: float) -> dict[str, float]:
    inside = sorted(t.latency_ms for t in transactions if start <= t.scheduled <= end)
    if not inside:
        return {"count": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {"count": len(inside), "p50": inside[len(inside) // 2],
            "p99": inside[min(len(inside) - 1, int(len(inside) * 0.99))], "max": inside[-1]}


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    server = ctx.server
    event_folder = find_folder(EVENT_TABLE)
    example_3 = find_folder(EXAMPLE_3)
    pgbench = server.bindir / "pgbench"
    if not pgbench.is_file():
        raise NotAvailable(f"no pgbench in {server.bindir}")
    rows = 20_000 if ctx.quick else 3_000_000
    baseline_s, settle_s = (1.0, 0.5) if ctx.quick else (5.0, 2.0)
    work = ctx.work / "lock"
    migrations = work / "migrations"
    migrations.mkdir(parents=True)
    prerequisites = [p for p in sorted(MIGRATIONS.iterdir()) if p.is_dir() and p.name <= event_folder.name]
    for folder in prerequisites:
        shutil.copytree(folder, migrations / folder.name)
    database = server.create_db("lock")
    env = server.mercurio_env(database)
    run_cmd(server.mercurio_cmd("--dir", str(migrations), "up"), env=env)
    started = time.perf_counter()
    fill = f"""
        INSERT INTO tenant (name) SELECT 'tenant ' || g FROM generate_series(1, 10) g;
        INSERT INTO workspace (tenant_id, name) SELECT (g + 1) / 2, 'workspace ' || g FROM generate_series(1, 20) g;
        SET session_replication_role = replica;  -- the load skips foreign-key triggers; the data satisfies them
        INSERT INTO event (tenant_id, workspace_id, anonymous_id, session_id, event_name, timestamp, props)
        SELECT 1 + (g % 20) / 2, 1 + g % 20, 'a_' || lpad(to_hex(g % 200000), 12, '0'),
               CASE WHEN g % 3 = 0 THEN NULL ELSE 's_' || (g / 20) END,
               (ARRAY['page_view', 'click', 'signup', 'purchase', 'conversion', 'scroll'])[1 + g % 6],
               TIMESTAMPTZ '2025-01-01' + g * INTERVAL '1 second',
               CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('path', '/p/' || (g % 500), 'n', g % 97) END
        FROM generate_series(1, {rows}) g;
        RESET session_replication_role;
        VACUUM ANALYZE event;
        CHECKPOINT;
    """
    run_cmd(server.psql_cmd(database, *psql_commands(fill)), env=server.env, timeout=1200)
    fill_s = time.perf_counter() - started
    script = work / "insert.sql"
    script.write_text(PGBENCH_SCRIPT)
    log_prefix = work / "pgbench"
    # -T bounds the load even if we died; we stop it ourselves (SIGINT) a little after the last phase
    bench = subprocess.Popen([str(pgbench), "-n", "-f", str(script), "-c", "4", "-j", "2", "-R", "200", "-T", "1800",
                              "-l", f"--log-prefix={log_prefix}", database], env=server.env, cwd=work,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    phases: dict[str, tuple[float, float]] = {}
    example_3_sql = (example_3 / "migration.sql").read_text()
    names = index_names(example_3_sql)
    contrast = work / "example_3_without_concurrently.sql"
    contrast.write_text(without_concurrently(example_3_sql))
    try:
        time.sleep(baseline_s + 1.0)
        if bench.poll() is not None:
            raise BenchError(f"pgbench stopped: {bench.stderr.read()[-400:]}")
        phases["baseline before Example 3"] = (time.time() - baseline_s, time.time())
        shutil.copytree(example_3, migrations / example_3.name)
        begin = time.time()
        up = run_cmd(server.mercurio_cmd("--dir", str(migrations), "up"), env=env, timeout=1200, check=False)
        phases["Example 3 via mercurio-migrate up (CONCURRENTLY)"] = (begin, time.time())
        if up.returncode != 0:
            section.notes.append("mercurio-migrate up failed: " + (up.stderr.strip().splitlines() or ["?"])[-1])
            section.failed = True
        time.sleep(settle_s)
        drop = ";".join(f"DROP INDEX IF EXISTS {name}" for name in names)
        run_cmd(server.psql_cmd(database, "-c", drop), env=server.env)
        time.sleep(baseline_s)
        phases["baseline before the contrast"] = (time.time() - baseline_s, time.time())
        begin = time.time()
        run_cmd(server.psql_cmd(database, "-f", str(contrast)), env=server.env, timeout=1200)
        phases["same indexes without CONCURRENTLY (psql, one transaction)"] = (begin, time.time())
        time.sleep(settle_s + 1.0)
    finally:
        bench.send_signal(signal.SIGINT)
        try:
            bench.wait(timeout=30)
        except subprocess.TimeoutExpired:
            bench.kill()
            bench.wait()
    transactions = read_pgbench_logs(log_prefix)
    table = Table(f"INSERT latency, event table with {rows:,} rows, pgbench -R 200 -c 4",
                  ["phase", "duration", "transactions", "p50", "p99", "max"])
    measured = {}
    for label, (start, end) in phases.items():
        figures = stats(transactions, start, end)
        measured[label] = figures
        table.rows.append([label, f"{end - start:.1f} s", str(figures["count"]), f"{figures['p50']:.1f} ms",
                           f"{figures['p99']:.1f} ms", f"{figures['max']:.1f} ms"])
    section.tables.append(table)
    section.notes.append(
        f"Shipped migrations up to {event_folder.name} applied, then {rows:,} events loaded in {fill_s:.0f} s "
        f"(untimed). Example 3 is {example_3.name}/migration.sql as shipped ({len(names)} indexes); the contrast "
        "is the same statements without CONCURRENTLY inside the file's BEGIN/COMMIT.")
    base = measured.get("baseline before Example 3")
    ours = measured.get("Example 3 via mercurio-migrate up (CONCURRENTLY)")
    plain = measured.get("same indexes without CONCURRENTLY (psql, one transaction)")
    if base and ours and ours["count"]:
        extra = ours["max"] - base["max"]
        section.targets.append(Target("lock impact: Example 3 as written", f"max INSERT wait ≤ baseline max + "
                                      f"{STALL_TARGET_MS:.0f} ms", f"max {ours['max']:.0f} ms vs baseline "
                                      f"{base['max']:.0f} ms (+{extra:.0f} ms)", extra <= STALL_TARGET_MS))
    if plain and plain["count"]:
        section.notes.append(f"Without CONCURRENTLY the longest INSERT waited {plain['max'] / 1000:.1f} s: the "
                             "writes stall for the whole build, which is what Example 3 as written avoids.")
    server.drop_db(database)
    return section

