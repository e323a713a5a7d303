"""Lock-taking DDL on an existing table runs without a statement_timeout.

Once a statement holds a strong lock, every query on the table waits for it to finish: a scan or rewrite
that takes longer than expected becomes an outage. A `statement_timeout` bounds how long the migration
can hold the table. Reported once per file, at the first lock-taking statement on an existing table.

Fix: `SET LOCAL statement_timeout = '60s';` at the top of the transaction (longer for deliberate
backfills, which belong outside the migration transaction anyway).
"""

from __future__ import annotations

from mercurio_migrate.lint.locks import LOCKING_KINDS, locked_tables

ID = "require-statement-timeout"
SEVERITY = "info"
CATEGORY = "lock-safety"
KINDS = LOCKING_KINDS
SQUAWK = ("require-statement-timeout", "require-timeout-settings")


def check(ctx):
    for stmt in ctx.file.statements:
        if stmt.statement_timeout:
            return
        tables = list(locked_tables(ctx, stmt))
        if tables:
            yield ctx.finding(stmt, f"locks existing table {', '.join(tables)} with no statement_timeout set",
                              "Add `SET LOCAL statement_timeout = '60s';` at the top of the transaction.")
            return
