"""2. Status with all applied, `up` with nothing pending (the cost every deploy pays), and rollback all.

Status and no-op floor: one psql process that connects and reads the tool's history table; `status` and
no-op `up` are timed again with a terminal for their output (a pseudo-terminal), against psql on one, since
that is where a user reads them and where they render differently. Rollback floor:
one psql session over every rollback.sql, newest first, on a database the floor applied.
"""

from __future__ import annotations

from benchmarks.common import Context, Section, Table, Target, fmt_ratio, fmt_s, median, ratios

NAME = "status"
TITLE = "Status, up with nothing pending, rollback all"
TOOLS = ("mercurio-migrate", "dbmate", "yoyo", "sqitch")
VERBS = {
    "status": {"mercurio-migrate": "status", "dbmate": "status", "yoyo": "list", "sqitch": "status"},
    "noop": {"mercurio-migrate": "up", "dbmate": "migrate", "yoyo": "apply", "sqitch": "deploy"},
    "rollback": {"mercurio-migrate": "down --all", "dbmate": "rollback, once per migration",
                 "yoyo": "rollback --all", "sqitch": "revert"},
}
WALL_TARGET = 0.25
TERMINAL_PAIRS = 5  # status and no-op up again with a terminal for output: fewer pairs (the run's 15 minutes)


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    # status and no-op at N = 1,000 (the target); rollback at N = 200: dbmate needs one process per migration
    n, n_back = (3, 3) if ctx.quick else (1000, 200)
    read_pairs = {"mercurio-migrate": 7, "dbmate": 7, "yoyo": 2, "sqitch": 3}
    back_pairs = {"mercurio-migrate": 3, "dbmate": 1, "yoyo": 2, "sqitch": 1}
    if ctx.quick:
        read_pairs = back_pairs = dict.fromkeys(TOOLS, 1)
    files, back_files = ctx.migration_set(n), ctx.migration_set(n_back)
    section.notes.append(
        f"Status and no-op `up` with N = {n} applied; floor: one psql process reading the tool's history table. "
        f"Rollback all with N = {n_back} applied; floor: one psql session over every rollback.sql, newest first. "
        "dbmate rolls back one migration per call, so its figure is N calls.")
    read = Table(f"status and no-op up, N = {n}", ["tool", "command", "pairs", "median", "floor median",
                                                   "ratio to floor (min–max)"])
    back = Table(f"rollback all, N = {n_back}", ["tool", "command", "pairs", "median", "per migration",
                                                  "ratio to floor (min–max)"])
    ours: dict[str, list[tuple[float, float]]] = {}
    for tool in TOOLS:
        reason = ctx.tool_available(tool)
        if reason:
            read.rows.append([tool, "", "0", reason, "", ""])
            back.rows.append([tool, "", "0", reason, "", ""])
            continue
        database = ctx.applied_db(tool, n)
        try:
            for verb in ("status", "noop"):
                pairs = []
                for _ in range(read_pairs[tool]):
                    pairs.append((ctx.floor_query(tool, database), ctx.run_tool(tool, verb, files, database)))
                if tool == "mercurio-migrate":
                    ours[verb] = pairs
                read.rows.append([tool, VERBS[verb][tool], str(len(pairs)), fmt_s(median([c for _, c in pairs])),
                                  fmt_s(median([f for f, _ in pairs])), fmt_ratio(ratios(pairs))])
            if tool == "mercurio-migrate":
                # as a user at a terminal runs them: the output is rendered for a terminal (floor: psql too)
                for verb in ("status", "noop"):
                    pairs = [(ctx.on_terminal("floor", files, database), ctx.on_terminal(verb, files, database))
                             for _ in range(min(read_pairs[tool], TERMINAL_PAIRS))]
                    ours[f"{verb} on a terminal"] = pairs
                    read.rows.append([tool, f"{VERBS[verb][tool]}, on a terminal", str(len(pairs)),
                                      fmt_s(median([c for _, c in pairs])), fmt_s(median([f for f, _ in pairs])),
                                      fmt_ratio(ratios(pairs))])
        finally:
            ctx.keep_applied(tool, n, database)
        pairs = []
        for _ in range(back_pairs[tool]):
            floor_db = ctx.server.create_db("fr")
            ctx.floor_apply(back_files, floor_db)
            floor = ctx.floor_rollback(back_files, floor_db)
            ctx.server.drop_db(floor_db)
            database = ctx.applied_db(tool, n_back)
            seconds = ctx.run_tool(tool, "rollback", back_files, database)
            left = ctx.count_tables(database)
            ctx.server.drop_db(database)
            if left:
                raise AssertionError(f"{tool} rollback left {left} of {n_back} tables")
            pairs.append((floor, seconds))
        if tool == "mercurio-migrate":
            ours["rollback"] = pairs
        contender = [c for _, c in pairs]
        back.rows.append([tool, VERBS["rollback"][tool], str(len(pairs)), fmt_s(median(contender)),
                          f"{median(contender) / n_back * 1000:.2f} ms", fmt_ratio(ratios(pairs))])
    section.tables += [read, back]
    if not ctx.quick:
        for verb, label in (("noop", "`up` with nothing pending"), ("status", "`status`"),
                            ("status on a terminal", "`status` on a terminal")):
            if ours.get(verb):
                value = median([c for _, c in ours[verb]])
                section.targets.append(Target(f"{label}, {n} applied", f"≤ {WALL_TARGET:.2f} s wall",
                                              fmt_s(value), value <= WALL_TARGET))
    return section
