"""A migration whose statements can all run in one transaction is wrapped in BEGIN … COMMIT.

Mercurio's format wraps each migration (and rollback) in an explicit `BEGIN; … COMMIT;` so the file means
the same thing in psql as in mercurio-migrate: all of it applies, or none of it does. A file without
transaction control relies on the tool to add the transaction, and a file with several transactions or
statements outside its block can stop half-applied, leaving a schema no migration describes.
Files holding statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, …) are exempt:
they must not be wrapped.

Fix: put `BEGIN;` before the first statement and `COMMIT;` after the last, with no other COMMIT or
ROLLBACK in between; move work that needs its own transaction into its own migration.
"""

from __future__ import annotations

from mercurio_migrate.lint.model import Mode

ID = "transaction-wrapping"
SEVERITY = "warning"
CATEGORY = "guideline"
PROFILE = "mercurio"  # a house rule: runs only with the mercurio profile
SQUAWK = ()


def check(ctx):
    statements = ctx.file.statements
    if not statements:
        return
    if ctx.file.mode == Mode.TOOL_TRANSACTION:
        yield ctx.finding(statements[0], "the file has no BEGIN … COMMIT around its statements",
                          "Wrap the whole file in `BEGIN;` … `COMMIT;`.")
    elif ctx.file.mode == Mode.AS_WRITTEN:
        outside = next((s for s in statements if s.control is None and not s.explicit_block), None)
        blocks = sum(s.control == "begin" for s in statements)
        if outside is not None:
            yield ctx.finding(outside, "statement runs outside the file's BEGIN … COMMIT block",
                              "Move it inside one BEGIN … COMMIT that wraps the whole file.")
        elif blocks > 1:
            second = [s for s in statements if s.control == "begin"][1]
            yield ctx.finding(second, f"the file runs as {blocks} separate transactions: it can stop half-applied",
                              "Use one BEGIN … COMMIT for the whole file, or split it into several migrations.")
