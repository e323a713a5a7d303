"""6. Verification and lint cost.

`verify` on the shipped migrations, against one psql session that runs them up, down and up again (files
with statements that cannot run in a transaction block run without their BEGIN/COMMIT, as the tool runs
them). A second psql session does the server work of verify's proof without a client in the way: the
steps verify runs, with the catalog snapshot it reads after each (`proof_script`); it shows how much of the
gap is the proof itself and how much is the tool. `lint` on 1,000 migration folders, against squawk on the
same 1,000 migration.sql files.
"""

from __future__ import annotations

import json
import secrets

from benchmarks.common import (
    MIGRATIONS,
    PEERS_BIN,
    BenchError,
    Context,
    Section,
    Table,
    Target,
    fmt_ratio,
    fmt_s,
    median,
    peers,
    ratios,
)
from benchmarks.common import run as run_cmd

NAME = "verify_lint"
TITLE = "Verification and lint cost"
VERIFY_TARGET = 1.5
LINT_TARGET_S = 1.0


def as_the_tool_runs_it(sql: str) -> str:
    """A file whose statements cannot run in a transaction block loses its BEGIN/COMMIT (parsed with pglast)."""
    from pglast import ast, parse_sql
    from pglast.stream import RawStream

    statements = [raw.stmt for raw in parse_sql(sql)]

    def blocks(node) -> bool:
        return ((isinstance(node, ast.IndexStmt) and node.concurrent)
                or (isinstance(node, ast.DropStmt) and node.concurrent)
                or isinstance(node, ast.VacuumStmt)
                or (isinstance(node, ast.ReindexStmt) and any(
                    getattr(option, "defname", "") == "concurrently" for option in node.params or ())))

    if not any(blocks(node) for node in statements):
        return sql if sql.endswith("\n") else sql + "\n"
    return "".join(RawStream()(node) + ";\n" for node in statements if not isinstance(node, ast.TransactionStmt))


def round_trip_script() -> str:
    """Every shipped migration up, down and up again; each followed by the clean-up the tool does between them."""
    from mercurio_migrate.history import MIGRATION_LOG_DDL  # the tool creates it before the first migration

    folders = [p for p in sorted(MIGRATIONS.iterdir()) if (p / "migration.sql").is_file()]
    between = "RESET ALL;\nDISCARD TEMP;\n"
    ups = [as_the_tool_runs_it((p / "migration.sql").read_text()) + between for p in folders]
    downs = [as_the_tool_runs_it((p / "rollback.sql").read_text()) + between for p in reversed(folders)
             if (p / "rollback.sql").is_file()]
    return MIGRATION_LOG_DDL + "".join(ups) + "".join(downs) + "".join(ups)


def proof_script() -> str:
    """The server work verify's proof needs, with no client in the way: one psql session that runs the
    steps verify runs (for each migration up, down, up; then everything down, newest first) and, after
    each step and once at the start, the catalog snapshot verify reads there (the tool's own prepared
    statement, in its read-only transaction; its text thrown away). What verify costs beyond this is the
    client's; what this costs beyond the round-trip floor is the comparison the proof is made of."""
    from mercurio_migrate import snapshot
    from mercurio_migrate.history import MIGRATION_LOG_DDL, HistoryStore

    folders = [p for p in sorted(MIGRATIONS.iterdir()) if (p / "migration.sql").is_file()]
    between = "RESET ALL;\nDISCARD TEMP;\n"
    prepare, take = snapshot.psql_script(HistoryStore(migration_log=True))  # the reference set: mercurio profile
    up = {p: as_the_tool_runs_it((p / "migration.sql").read_text()) + between + take for p in folders}
    down = {p: as_the_tool_runs_it((p / "rollback.sql").read_text()) + between + take for p in folders}
    return ("\\o /dev/null\n" + MIGRATION_LOG_DDL + prepare + take
            + "".join(up[p] + down[p] + up[p] for p in folders) + "".join(down[p] for p in reversed(folders)))


def key_options(keys: dict[str, str]) -> dict[str, str]:
    """The keys as session settings for psql, as the tool passes them (startup options survive RESET ALL)."""
    return {"PGOPTIONS": f"-c mercurio.pii_key={keys['MERCURIO_PII_KEY']} "
                         f"-c mercurio.hmac_key={keys['MERCURIO_HMAC_KEY']}"}


def command_exists(ctx: Context, name: str) -> str | None:
    """None when `mercurio-migrate NAME --help` works, else why not."""
    result = run_cmd(ctx.server.mercurio_cmd(name, "--help"), env=ctx.server.env, check=False)
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return f"`mercurio-migrate {name}` is not there yet ({lines[-1] if lines else result.returncode})"


def timed_status(cmd, env, allowed=(0,)) -> tuple[float, int]:
    seconds, result = timed_result(cmd, env, allowed)
    return seconds, result.returncode


def timed_result(cmd, env, allowed=(0,)):
    import time

    started = time.perf_counter()
    result = run_cmd(cmd, env=env, check=False, timeout=900)
    seconds = time.perf_counter() - started
    if result.returncode not in allowed:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BenchError(f"{cmd[0]} {' '.join(map(str, cmd[1:3]))} exited {result.returncode}: {' / '.join(tail)}")
    return seconds, result


# verify --json reports where its time went (ms); the rest of a run is the process itself
BREAKDOWN = (("scratch database", "scratch database: waiting for CREATE DATABASE, connecting, dropping"),
             ("migrations", "applies and rollbacks (4 passes: up, down, up per migration, then all down)"),
             ("snapshots", "catalog snapshots (1 + 4 per migration)"))


def breakdown_table(runs: list[tuple[float, float, dict]]) -> Table:
    """Medians over (floor seconds, verify seconds, verify's timings) of each pair."""
    table = Table("where verify's time goes (medians)", ["part", "median", "× floor"])

    def row(label: str, values: list[float]) -> None:
        table.rows.append([label, fmt_s(median(values)),
                           f"{median([v / f for v, (f, _, _) in zip(values, runs)]):.2f}×"])

    row("psql floor: up + down + up, one session", [f for f, _, _ in runs])
    row("mercurio-migrate verify, process start to exit", [s for _, s, _ in runs])
    row("interpreter start, imports, exit (outside verify())", [s - t["total"] / 1000 for _, s, t in runs])
    for key, label in BREAKDOWN:
        row(label, [t.get(key, 0) / 1000 for _, _, t in runs])
    row("the rest: reading and parsing the folder, history tables, comparing",
        [(t["total"] - sum(t.get(k, 0) for k, _ in BREAKDOWN)) / 1000 for _, _, t in runs])
    return table


LONG_HISTORY = 100  # synthetic migrations
CHECKED_LAST = 10  # what `verify --from` round-trips of them


def long_history_table(ctx: Context) -> Table:
    """verify on a long synthetic history: every migration round-tripped, against `--from` the last few (the
    rest applied first, in batches, unchecked). Each snapshot reads the whole catalog, so the whole history
    costs about the square of its length; a branch's new migrations cost what they add."""
    n, last = (12, 3) if ctx.quick else (LONG_HISTORY, CHECKED_LAST)
    files = ctx.migration_set(n)
    folders = sorted(p.name for p in files.ours.iterdir() if (p / "migration.sql").is_file())
    table = Table(f"verify on a history of {n} synthetic migrations",
                  ["run", "runs", "median", "round trips", "snapshots (ms)", "per round trip"])
    for label, args, checked in ((f"verify, all {n}", [], n),
                                 (f"verify --from the last {last}", ["--from", folders[-last]], last)):
        runs = []
        for _ in range(1 if ctx.quick else 2):
            database = ctx.server.create_db("vh")
            try:
                seconds, result = timed_result(
                    ctx.server.mercurio_cmd("--dir", str(files.ours), "--json", "verify", *args),
                    ctx.server.mercurio_env(database))
            finally:
                ctx.server.drop_db(database)
            report = json.loads(result.stdout)
            if len(report["migrations"]) != checked or not report["ok"]:
                raise BenchError(f"verify {' '.join(args)}: {len(report['migrations'])} round trips, ok={report['ok']}")
            runs.append((seconds, report["timings"].get("snapshots", 0.0)))
        table.rows.append([label, str(len(runs)), fmt_s(median([s for s, _ in runs])), str(checked),
                           f"{median([t for _, t in runs]):.0f}", fmt_s(median([s for s, _ in runs]) / checked)])
    return table


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    server = ctx.server
    table = Table("verify and lint", ["run", "pairs", "median", "floor", "floor median", "ratio to floor (min–max)"])
    keys = {"MERCURIO_PII_KEY": secrets.token_urlsafe(32), "MERCURIO_HMAC_KEY": secrets.token_urlsafe(32)}

    breakdown = None
    missing = command_exists(ctx, "verify")
    if missing:
        table.rows.append(["mercurio-migrate verify", "0", f"not available: {missing}", "", "", ""])
        section.targets.append(Target("verify", f"≤ {VERIFY_TARGET}× psql up+down+up", "not available", None))
    else:
        script = ctx.work / "round_trip.sql"
        script.write_text(round_trip_script())
        proof = ctx.work / "proof.sql"
        proof.write_text(proof_script())
        pairs, runs, proofs = [], [], []
        folders = sum(1 for p in MIGRATIONS.iterdir() if (p / "migration.sql").is_file())
        try:
            for _ in range(1 if ctx.quick else 5):
                floor_db = server.create_db("vf")
                floor = timed_status(server.psql_cmd(floor_db, "-f", str(script)),
                                     server.env | key_options(keys))[0]
                server.drop_db(floor_db)
                proof_db = server.create_db("vp")
                proofs.append((floor, timed_status(server.psql_cmd(proof_db, "-At", "-f", str(proof)),
                                                   server.env | key_options(keys))[0]))
                server.drop_db(proof_db)
                database = server.create_db("v")
                try:
                    seconds, result = timed_result(server.mercurio_cmd("--dir", str(MIGRATIONS), "--json", "verify"),
                                                   server.mercurio_env(database, **keys))
                finally:
                    server.drop_db(database)
                pairs.append((floor, seconds))
                runs.append((floor, seconds, json.loads(result.stdout)["timings"]))
        except BenchError as exc:
            # the shipped set and verify are being built in parallel: say why, measure the rest
            pairs = []
            table.rows.append([f"mercurio-migrate verify ({folders} shipped migrations)", "0",
                               f"not measured: {exc}", "", "", ""])
            section.targets.append(Target("verify", f"≤ {VERIFY_TARGET}× psql up+down+up", "not measured", None))
    if not missing and pairs:
        table.rows.append([f"mercurio-migrate verify ({folders} shipped migrations)", str(len(pairs)),
                           fmt_s(median([c for _, c in pairs])), "psql: up + down + up, one session",
                           fmt_s(median([f for f, _ in pairs])), fmt_ratio(ratios(pairs))])
        steps = 4 * folders
        table.rows.append([f"psql: the proof's server work ({steps} steps and {steps + 1} catalog snapshots, one "
                           "session)", str(len(proofs)), fmt_s(median([c for _, c in proofs])),
                           "psql: up + down + up, one session", fmt_s(median([f for f, _ in proofs])),
                           fmt_ratio(ratios(proofs))])
        table.rows.append(["mercurio-migrate verify against the proof's server work", str(len(pairs)),
                           fmt_s(median([c for _, c in pairs])), "the row above",
                           fmt_s(median([c for _, c in proofs])),
                           fmt_ratio([v / p for (_, v), (_, p) in zip(pairs, proofs)])])
        section.targets.append(Target("verify", f"≤ {VERIFY_TARGET}× psql up+down+up", f"{median(ratios(pairs)):.2f}×",
                                      median(ratios(pairs)) <= VERIFY_TARGET))
        breakdown = breakdown_table(runs)

    n = 20 if ctx.quick else 1000
    files = ctx.migration_set(n)
    missing = command_exists(ctx, "lint")
    squawk = peers(ctx.install_peers).get("squawk")
    if missing:
        table.rows.append([f"mercurio-migrate lint ({n} folders)", "0", f"not available: {missing}", "", "", ""])
        section.targets.append(Target(f"lint {n} folders", f"< {LINT_TARGET_S:.0f} s", "not available", None))
    else:
        database = server.create_db("l")
        env = server.mercurio_env(database)
        lint_cmd = server.mercurio_cmd("--dir", str(files.ours), "lint")
        paths = sorted(str(p) for p in files.ours.glob("*/migration.sql"))
        squawk_cmd = [str(PEERS_BIN / "squawk"), "--pg-version=15.0", *paths]
        pairs, alone = [], []
        for _ in range(1 if ctx.quick else 5):
            ours = timed_status(lint_cmd, env, allowed=(0, 1))[0]
            alone.append(ours)
            if squawk and squawk.available:
                pairs.append((timed_status(squawk_cmd, server.env, allowed=(0, 1))[0], ours))
        server.drop_db(database)
        table.rows.append([f"mercurio-migrate lint ({n} folders)", str(len(alone)), fmt_s(median(alone)),
                           f"squawk {squawk.version} on the {n} migration.sql files" if pairs else
                           f"squawk not available: {squawk.reason if squawk else '?'}",
                           fmt_s(median([f for f, _ in pairs])) if pairs else "", fmt_ratio(ratios(pairs))])
        if n == 1000:
            section.targets.append(Target(f"lint {n} folders", f"< {LINT_TARGET_S:.0f} s", fmt_s(median(alone)),
                                          median(alone) < LINT_TARGET_S))
    section.tables.append(table)
    if breakdown is not None:
        section.tables.append(breakdown)
    if not command_exists(ctx, "verify"):
        try:
            section.tables.append(long_history_table(ctx))
        except BenchError as exc:
            section.notes.append(f"verify on a long history: not measured: {exc}")
    return section
