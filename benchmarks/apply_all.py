"""1. Apply all: N synthetic migrations on a fresh database, each tool against the single-session psql floor.

Each pair is (floor on a fresh database, contender on another fresh database), back to back; the ratio is
the median of the per-pair ratios. The pairs go round robin (one per contender a round), so that whatever
the machine does over the minutes of the section reaches every contender alike. "Faster than every peer"
compares our time with each peer's directly, round by round (the two ran seconds apart), not through their
ratios to two different floor runs.
"""

from __future__ import annotations

from benchmarks.common import Context, Section, Table, Target, fmt_ratio, fmt_s, median, ratios, timed

NAME = "apply_all"
TITLE = "Apply all"
# the second mercurio-migrate row isolates the cost of up's before/after validation report
CONTENDERS = ("mercurio-migrate", "mercurio-migrate-no-validate", "dbmate", "yoyo", "sqitch", "psql-per-file")
TARGETS = {200: 1.25, 1000: 1.15}
ROUND_TRIPS = 2000  # SELECT 1 statements of the round-trip probe (see run)
# pairs per contender: the slow ones (tens of ms a migration) get fewer so that the whole run stays under
# 15 minutes on 2 cores. The close contenders, ours and dbmate, get the most: their ratios are near 1, and
# one pair's ratio is noisy here because the floor is: its psql sends each statement as a round trip
# (1,000 at N = 200), and the time a round trip takes on these virtual machines varies about twofold
# from one run to the next.
PAIRS = {200: {"mercurio-migrate": 25, "mercurio-migrate-no-validate": 9, "dbmate": 25, "yoyo": 3, "sqitch": 2,
               "psql-per-file": 2},
         1000: {"mercurio-migrate": 9, "mercurio-migrate-no-validate": 3, "dbmate": 9, "yoyo": 1, "sqitch": 1,
                "psql-per-file": 1}}


def plan(ctx: Context) -> list[tuple[int, dict[str, int]]]:
    return [(3, dict.fromkeys(CONTENDERS, 1))] if ctx.quick else sorted(PAIRS.items())


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    section.notes.append(
        "Synthetic migrations in the guidelines' shape (a multi-tenant table with BIGSERIAL key, tenant_id, JSONB, "
        "TIMESTAMPTZ, one index, one comment, BEGIN/COMMIT, with rollback). Floor: one psql session over all "
        "files concatenated (records no history). dbmate and yoyo get the same statements without BEGIN/COMMIT "
        "(each wraps a migration in its own transaction); sqitch runs the files as written through psql.")
    # The noise of the floor's round trips, measured once a round over the section: psql waits for each
    # statement's answer, so its time follows how fast these virtual machines pass the turn between two
    # processes, and that moves from one run to the next.
    round_trips = 50 if ctx.quick else ROUND_TRIPS
    probe = ctx.work / "round_trips.sql"
    probe.write_text("SELECT 1;\n" * round_trips)
    probes: list[float] = []
    for n, pair_counts in plan(ctx):
        files = ctx.migration_set(n)
        table = Table(f"N = {n}", ["contender", "pairs", "median", "per migration", "floor median",
                                   "ratio to floor (min–max)"])
        floors: list[float] = []
        unavailable = {tool: reason for tool in CONTENDERS if (reason := ctx.tool_available(tool))}
        results: dict[str, list[tuple[float, float]]] = {tool: [] for tool in CONTENDERS if tool not in unavailable}
        by_round: dict[str, dict[int, float]] = {tool: {} for tool in results}  # contender times by round
        # round robin: each round gives every contender still short of its pairs one pair, so that the
        # machine's drift over minutes reaches every contender alike (ours and dbmate are compared too)
        for round_ in range(max(pair_counts.values())):
            probes.append(timed(ctx.server.psql_cmd("postgres", "-f", str(probe)), env=ctx.server.env))
            for tool, pairs in results.items():
                if round_ >= pair_counts[tool]:
                    continue
                floor_db = ctx.server.create_db("f")
                floor = ctx.floor_apply(files, floor_db)
                ctx.server.drop_db(floor_db)
                db = ctx.server.create_db("c")
                seconds = ctx.run_tool(tool, "apply", files, db)
                if ctx.count_tables(db) != n:
                    raise AssertionError(f"{tool} applied {ctx.count_tables(db)} of {n} migrations")
                if tool == "psql-per-file":
                    ctx.server.drop_db(db)
                else:
                    ctx.keep_applied(tool, n, db)
                pairs.append((floor, seconds))
                by_round[tool][round_] = seconds
                floors.append(floor)
        for tool in CONTENDERS:
            if tool in unavailable:
                table.rows.append([tool, "0", unavailable[tool], "", "", ""])
                continue
            pairs = results[tool]
            contender = [c for _, c in pairs]
            label = {"mercurio-migrate": "mercurio-migrate up",
                     "mercurio-migrate-no-validate": "mercurio-migrate up --no-validate", "dbmate": "dbmate migrate",
                     "yoyo": "yoyo apply", "sqitch": "sqitch deploy",
                     "psql-per-file": "psql -f, one process per file"}[tool]
            table.rows.append([label, str(len(pairs)), fmt_s(median(contender)),
                               f"{median(contender) / n * 1000:.2f} ms", fmt_s(median([f for f, _ in pairs])),
                               fmt_ratio(ratios(pairs))])
        table.rows.insert(0, ["psql, one session (floor)", str(len(floors)),
                              f"{fmt_s(median(floors))} ({fmt_s(min(floors))}–{fmt_s(max(floors))})",
                              f"{median(floors) / n * 1000:.2f} ms", "", "1.00×"])
        section.tables.append(table)
        ours = ratios(results.get("mercurio-migrate", []))
        # peers compared with ours directly, round by round: the two ran seconds apart on fresh databases, so
        # their time ratio does not carry the noise of two floor runs (see PAIRS)
        against = {tool: head_to_head(by_round["mercurio-migrate"], by_round[tool])
                   for tool in ("dbmate", "yoyo", "sqitch") if by_round.get(tool) and by_round.get("mercurio-migrate")}
        for tool, values in against.items():
            section.notes.append(f"N = {n}: mercurio-migrate up ÷ {tool}, round by round: {fmt_ratio(values)} "
                                 f"over {len(values)} round{'s' if len(values) > 1 else ''}.")
        if n in TARGETS and ours:
            section.targets.append(Target(f"apply all, N = {n}", f"≤ {TARGETS[n]:.2f}× the psql floor",
                                          f"{median(ours):.2f}×", median(ours) <= TARGETS[n]))
            slower = [tool for tool, values in against.items() if median(values) >= 1]
            measured = list(against)
            times = ", ".join(f"{tool} {median(values):.2f}×" for tool, values in against.items())
            section.targets.append(Target(
                f"apply all, N = {n}: faster than every peer", "faster than " + ", ".join(measured),
                ("slower than " + ", ".join(slower) if slower else "faster than all " + str(len(measured)))
                + (f" (our time ÷ theirs, round by round: {times})" if times else ""),
                not slower if measured else None))
    if probes:
        section.notes.append(
            f"Round trips: psql sending {round_trips:,} × SELECT 1, once a round "
            f"({len(probes)} run{'s' if len(probes) > 1 else ''}), took {fmt_s(median(probes))} (min "
            f"{fmt_s(min(probes))}, max {fmt_s(max(probes))}). The floor waits for the answer to each of its "
            "statements (5 a migration), so its time moves with that; `up` sends a batch of migrations as one "
            "message.")
    return section


def head_to_head(ours: dict[int, float], peer: dict[int, float]) -> list[float]:
    """Our time ÷ the peer's, for each round in which both ran."""
    return [ours[r] / peer[r] for r in sorted(ours.keys() & peer.keys()) if peer[r] > 0]
