"""Every created table has a COMMENT ON TABLE; one with an `id` names its external ID (`external ID: xx_{id}`).

Mercurio documents each table in the database itself, and tables whose rows are exposed through the API
state the prefix of their external identifiers (`tn_{id}`, `ws_{id}`): the comment is what tells API code
and support staff which prefix maps to which table. A table without a comment is undocumented; one with a
surrogate `id` but no external ID leaves the prefix to guesswork. Temporary tables are exempt.

Fix: add `COMMENT ON TABLE name IS '<what it holds> - external ID: xx_{id}';` in the same migration (omit
the external ID only for tables without an `id`, such as link tables).
"""

from __future__ import annotations

import re

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import is_temporary

ID = "table-comment"
SEVERITY = "warning"
CATEGORY = "guideline"
PROFILE = "mercurio"  # a house rule: runs only with the mercurio profile
KINDS = ("CreateStmt",)
SQUAWK = ()
# matched against the comment's string value, not SQL text
_EXTERNAL_ID = re.compile(r"external id:\s*\S+", re.IGNORECASE)


def check(ctx):
    comments = {}
    for stmt in ctx.file.of_kind("CommentStmt"):
        if stmt.node.get("objtype") == "OBJECT_TABLE":
            comments[tree.object_name(stmt.node.get("object"))] = stmt
    for stmt in ctx.file.of_kind("CreateStmt"):
        if is_temporary(stmt):
            continue
        table = tree.relname(stmt.node.get("relation"))
        comment = comments.get(table)
        if comment is None:
            yield ctx.finding(stmt, f"table {table} has no COMMENT ON TABLE",
                              f"Add COMMENT ON TABLE {table} IS '… - external ID: xx_{{id}}';",
                              node=stmt.node.get("relation"))
            continue
        has_id = any(c.get("colname") == "id" for c in tree.column_defs(stmt.node))
        if has_id and not _EXTERNAL_ID.search(comment.node.get("comment") or ""):
            yield ctx.finding(comment, f"comment on {table} does not name its external ID",
                              "End the comment with ' - external ID: xx_{id}' (the API prefix of its ids).")
