"""The validation report's second snapshot after a long run: the plan made on the empty database, or a new one.

`up` prepares its catalog snapshot once per session, at the session's first snapshot (the report's "before",
on a fresh database: an empty catalog), and runs it with that generic plan. After N migrations the report
takes its second snapshot. Each pair: two fresh databases; on each, one session takes the first capture
(which prepares the statement), runs the N synthetic migrations (the floor's SQL), and then takes the second
capture `since` the first, once with the plan made on the empty catalog and once with `replan=True`
(DEALLOCATE, PREPARE and EXECUTE in one message: planning included). `up` replans from
`engine.REPLAN_AFTER` migrations.
"""

from __future__ import annotations

import time

from benchmarks.common import Context, Section, Table, fmt_ratio, fmt_s, median

NAME = "snapshot_plan"
TITLE = "Validation snapshot after a long run: old plan or a new one"


def second_capture_seconds(ctx: Context, sql: str, replan: bool) -> float:
    from mercurio_migrate import validation

    database = ctx.server.create_db("sp")
    try:
        with ctx.server.connect(database) as conn:
            first = validation.capture(conn)
            conn.execute(sql)
            started = time.perf_counter()
            validation.capture(conn, since=first, replan=replan)
            return time.perf_counter() - started
    finally:
        ctx.server.drop_db(database)


def run(ctx: Context) -> Section:
    from mercurio_migrate.engine import REPLAN_AFTER

    section = Section(NAME, TITLE)
    sizes, pairs = ((3,), 1) if ctx.quick else (sorted({200, 500, REPLAN_AFTER, 1000}), 3)
    table = Table("the report's second capture", ["migrations", "pairs", "plan from the empty catalog",
                                                   "planned again", "new plan / old plan (min–max)"])
    for n in sizes:
        sql = ctx.migration_set(n).concatenated.read_text()
        measured = []
        for index in range(pairs):
            order = (False, True) if index % 2 == 0 else (True, False)
            seconds = {replan: second_capture_seconds(ctx, sql, replan) for replan in order}
            measured.append((seconds[False], seconds[True]))
        table.rows.append([str(n), str(pairs), fmt_s(median([old for old, _ in measured])),
                           fmt_s(median([new for _, new in measured])),
                           fmt_ratio([new / old for old, new in measured])])
    section.tables.append(table)
    section.notes.append(f"`up` plans the second capture again after {REPLAN_AFTER} migrations or more "
                         "(engine.REPLAN_AFTER); below that it keeps the plan.")
    return section
