"""A statement that cannot run in a transaction block (CREATE INDEX CONCURRENTLY, …) sits inside BEGIN … COMMIT.

PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM, DETACH PARTITION
CONCURRENTLY, CREATE/DROP DATABASE and a few others inside a transaction block: run as written (psql, or any
tool that keeps the file's BEGIN) the file fails with `cannot run inside a transaction block`.
mercurio-migrate runs such a file statement by statement, silently dropping the BEGIN and COMMIT, so the
file as written promises an atomicity it cannot have.

Fix: remove `BEGIN;` and `COMMIT;` from the file and keep in it only the statements that cannot run in a
transaction (plus `SET lock_timeout`); put transactional changes in a separate migration. Write
`CREATE INDEX CONCURRENTLY IF NOT EXISTS …` so a rerun after a failure works, and drop any INVALID index a
failed concurrent build left behind before retrying.
"""

from __future__ import annotations

from mercurio_migrate.lint.rules._util import describe

ID = "non-transactional-in-transaction"
SEVERITY = "error"
CATEGORY = "lock-safety"
SQUAWK = ("ban-concurrent-index-creation-in-transaction",)


def check(ctx):
    for stmt in ctx.file.statements:
        if stmt.non_transactional and stmt.explicit_block:
            yield ctx.finding(stmt, f"{describe(stmt)} cannot run inside the BEGIN … COMMIT block this file opens",
                              "Remove BEGIN/COMMIT from this file (mercurio-migrate then runs it statement by "
                              "statement) and use IF NOT EXISTS so a failed run can be retried.")
