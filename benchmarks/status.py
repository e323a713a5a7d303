"""2. Status with all applied, `up` with nothing pending (the cost every deploy pays), and rollback all.

Status and no-op floor: one psql process that connects and reads the tool's history table. Rollback floor:
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


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    n = 5 if ctx.quick else 1000
    pairs_fast = 2 if ctx.quick else 7
    rollback_pairs = {"mercurio-migrate": 1 if ctx.quick else 3, "dbmate": 1, "yoyo": 1 if ctx.quick else 2,
                      "sqitch": 1}
    files = ctx.migration_set(n)
    section.notes.append(
        f"N = {n} migrations applied. Status and no-op floor: one psql process reading the tool's history table. "
        "Rollback floor: one psql session over every rollback.sql, newest first. dbmate rolls back one migration "
        "per call, so its figure is N calls.")
    read = Table(f"status and no-op up, N = {n}", ["tool", "command", "pairs", "median", "floor median",
                                                   "ratio to floor (min–max)"])
    back = Table(f"rollback all, N = {n}", ["tool", "command", "pairs", "median", "per migration",
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
                for _ in range(pairs_fast if tool in ("mercurio-migrate", "dbmate") else max(2, pairs_fast // 2)):
                    pairs.append((ctx.floor_query(tool, database), ctx.run_tool(tool, verb, files, database)))
                if tool == "mercurio-migrate":
                    ours[verb] = pairs
                read.rows.append([tool, VERBS[verb][tool], str(len(pairs)), fmt_s(median([c for _, c in pairs])),
                                  fmt_s(median([f for f, _ in pairs])), fmt_ratio(ratios(pairs))])
        finally:
            ctx.keep_applied(tool, n, database)
        pairs = []
        for _ in range(rollback_pairs[tool]):
            floor_db = ctx.server.create_db("fr")
            ctx.floor_apply(files, floor_db)
            floor = ctx.floor_rollback(files, floor_db)
            ctx.server.drop_db(floor_db)
            database = ctx.applied_db(tool, n)
            seconds = ctx.run_tool(tool, "rollback", files, database)
            left = ctx.count_tables(database)
            ctx.server.drop_db(database)
            if left:
                raise AssertionError(f"{tool} rollback left {left} of {n} tables")
            pairs.append((floor, seconds))
        if tool == "mercurio-migrate":
            ours["rollback"] = pairs
        contender = [c for _, c in pairs]
        back.rows.append([tool, VERBS["rollback"][tool], str(len(pairs)), fmt_s(median(contender)),
                          f"{median(contender) / n * 1000:.2f} ms", fmt_ratio(ratios(pairs))])
    section.tables += [read, back]
    if not ctx.quick:
        for verb, label in (("noop", "`up` with nothing pending"), ("status", "`status`")):
            if ours.get(verb):
                value = median([c for _, c in ours[verb]])
                section.targets.append(Target(f"{label}, {n} applied", f"≤ {WALL_TARGET:.2f} s wall",
                                              fmt_s(value), value <= WALL_TARGET))
    return section
