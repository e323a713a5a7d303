"""B-tree indexes on tenant-scoped tables lead with tenant_id, then workspace_id.

Every query on a domain table filters by tenant (and workspace) first. An index that does not start with
those columns cannot serve those queries alone, and a lookup through it crosses tenants before filtering
them out ("tenant-first indexing"). The rule looks at tables whose columns are known (created in this
migration or an earlier one); for a table it cannot see, it only checks indexes that mention tenant_id or
workspace_id. GIN, GiST and other non-B-tree indexes are skipped: they cannot lead with a scalar column
without the btree_gin/btree_gist extensions.

Fix: put `tenant_id, workspace_id` first in the column list (only the ones the table has), e.g.
`CREATE INDEX … ON lead (tenant_id, workspace_id, email_fingerprint)`.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "tenant-first-index"
SEVERITY = "warning"
CATEGORY = "guideline"
PROFILE = "mercurio"  # a house rule: runs only with the mercurio profile
KINDS = ("IndexStmt",)
SQUAWK = ()


def check(ctx):
    for stmt in ctx.file.of_kind("IndexStmt"):
        node = stmt.node
        table = tree.relname(node.get("relation"))
        if table.lower() in ctx.config.tenant_exempt_tables or node.get("accessMethod", "btree") != "btree":
            continue
        keys = tree.index_columns(node)
        known = ctx.columns(table)
        present = set(known) if known is not None else {k for k in keys if k}
        expected = [c for c in ("tenant_id", "workspace_id") if c in present]
        if expected and keys[: len(expected)] != expected:
            shown = ", ".join(k or "(expression)" for k in keys)
            yield ctx.finding(stmt, f"index {node.get('idxname', '')} on {table} ({shown}) does not lead with "
                              f"{', '.join(expected)}",
                              f"Start the column list with {', '.join(expected)}.", node=node.get("relation"))
