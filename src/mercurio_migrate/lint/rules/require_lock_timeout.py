"""Lock-taking DDL on an existing table runs without a lock_timeout.

DDL waits for its lock behind any running transaction on the table, and while it waits every other query
on that table queues behind it: one slow report turns a millisecond ALTER into an outage. A `lock_timeout`
makes the migration give up (and be retried) instead. The rule reports the first statement in a file that
takes more than a row lock on a table that existed before the migration (ALTER/DROP/RENAME/TRUNCATE,
CREATE INDEX, CREATE TRIGGER, a foreign key to it) with no `lock_timeout` set earlier in the file.

Fix: start the file (after BEGIN) with `SET LOCAL lock_timeout = '5s';` (or `SET lock_timeout` in a file
without a transaction), and retry the migration if it times out.
"""

from __future__ import annotations

from mercurio_migrate.lint.locks import LOCKING_KINDS, locked_tables

ID = "require-lock-timeout"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = LOCKING_KINDS
SQUAWK = ("require-lock-timeout", "require-timeout-settings")


def check(ctx):
    for stmt in ctx.file.statements:
        if stmt.lock_timeout:
            return
        tables = list(locked_tables(ctx, stmt))
        if tables:
            yield ctx.finding(stmt, f"locks existing table {', '.join(tables)} with no lock_timeout set",
                              "Add `SET LOCAL lock_timeout = '5s';` at the top of the transaction.")
            return
