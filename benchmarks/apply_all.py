"""1. Apply all: N synthetic migrations on a fresh database, each tool against the single-session psql floor.

Each pair is (floor on a fresh database, contender on another fresh database), back to back; the ratio is
the median of the per-pair ratios. The pairs go round robin (one per contender a round), so that whatever
the machine does over the minutes of the section reaches every contender alike.
"""

from __future__ import annotations

from benchmarks.common import Context, Section, Table, Target, fmt_ratio, fmt_s, median, ratios

NAME = "apply_all"
TITLE = "Apply all"
# the second mercurio-migrate row isolates the cost of up's before/after validation report
CONTENDERS = ("mercurio-migrate", "mercurio-migrate-no-validate", "dbmate", "yoyo", "sqitch", "psql-per-file")
TARGETS = {200: 1.25, 1000: 1.15}
# pairs per contender: the slow ones (tens of ms a migration) get fewer so that the whole run stays under
# 15 minutes on 2 cores (the close contenders, ours and dbmate, get the most: their ratios are near 1 and
# this machine's noise is ±15 % a run)
PAIRS = {200: {"mercurio-migrate": 15, "mercurio-migrate-no-validate": 7, "dbmate": 15, "yoyo": 3, "sqitch": 2,
               "psql-per-file": 2},
         1000: {"mercurio-migrate": 7, "mercurio-migrate-no-validate": 3, "dbmate": 7, "yoyo": 1, "sqitch": 1,
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
    for n, pair_counts in plan(ctx):
        files = ctx.migration_set(n)
        table = Table(f"N = {n}", ["contender", "pairs", "median", "per migration", "floor median",
                                   "ratio to floor (min–max)"])
        floors: list[float] = []
        unavailable = {tool: reason for tool in CONTENDERS if (reason := ctx.tool_available(tool))}
        results: dict[str, list[tuple[float, float]]] = {tool: [] for tool in CONTENDERS if tool not in unavailable}
        # round robin: each round gives every contender still short of its pairs one pair, so that the
        # machine's drift over minutes reaches every contender alike (ours and dbmate are compared too)
        for round_ in range(max(pair_counts.values())):
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
        table.rows.insert(0, ["psql, one session (floor)", str(len(floors)), fmt_s(median(floors)),
                              f"{median(floors) / n * 1000:.2f} ms", "", "1.00×"])
        section.tables.append(table)
        ours = ratios(results.get("mercurio-migrate", []))
        if n in TARGETS and ours:
            section.targets.append(Target(f"apply all, N = {n}", f"≤ {TARGETS[n]:.2f}× the psql floor",
                                          f"{median(ours):.2f}×", median(ours) <= TARGETS[n]))
            # compared through each one's pair-by-pair ratio to the floor, not through absolute times
            slower = [tool for tool in ("dbmate", "yoyo", "sqitch") if results.get(tool)
                      and median(ratios(results[tool])) <= median(ours)]
            measured = [tool for tool in ("dbmate", "yoyo", "sqitch") if results.get(tool)]
            section.targets.append(Target(
                f"apply all, N = {n}: faster than every peer", "faster than " + ", ".join(measured),
                "slower than " + ", ".join(slower) if slower else "faster than all " + str(len(measured)),
                not slower if measured else None))
    return section
