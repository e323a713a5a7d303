"""Domain tables carry tenant_id and workspace_id, NOT NULL, each with a foreign key.

Mercurio isolates tenants by data, not by database: every query is scoped by `tenant_id` and
`workspace_id`. A domain table without them cannot be scoped (one tenant can read another's rows), a
nullable one lets rows escape every tenant, and one without a foreign key keeps orphans after a tenant or
workspace is deleted. Temporary tables and the tables listed in `tenant_exempt_tables` (default `tenant`,
`workspace`) are exempt.

Fix: add `tenant_id BIGINT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE` and
`workspace_id BIGINT NOT NULL REFERENCES workspace(id) ON DELETE CASCADE`, or list the table in
`[tool.mercurio-migrate.lint] tenant_exempt_tables` when it is genuinely global.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree
from mercurio_migrate.lint.rules._util import is_temporary

ID = "tenant-columns"
SEVERITY = "error"
CATEGORY = "guideline"
PROFILE = "mercurio"  # a house rule: runs only with the mercurio profile
KINDS = ("CreateStmt",)
SQUAWK = ()
COLUMNS = ("tenant_id", "workspace_id")


def check(ctx):
    for stmt in ctx.file.of_kind("CreateStmt"):
        table = tree.relname(stmt.node.get("relation"))
        if is_temporary(stmt) or table.lower() in ctx.config.tenant_exempt_tables or stmt.node.get("partbound"):
            continue
        columns = {c.get("colname"): c for c in tree.column_defs(stmt.node)}
        table_level = list(tree.table_constraints(stmt.node))
        problems = []
        for name in COLUMNS:
            column = columns.get(name)
            if column is None:
                problems.append(f"no {name}")
                continue
            inline = {c.get("contype") for c in tree.column_constraints(column)}
            keyed = {k for c in table_level if c.get("contype") == "CONSTR_PRIMARY" for k in tree.strings(c.get("keys"))}
            if "CONSTR_NOTNULL" not in inline and "CONSTR_PRIMARY" not in inline and name not in keyed:
                problems.append(f"{name} is nullable")
            foreign = "CONSTR_FOREIGN" in inline or any(
                c.get("contype") == "CONSTR_FOREIGN" and name in tree.strings(c.get("fk_attrs")) for c in table_level)
            if not foreign:
                problems.append(f"{name} has no foreign key")
        if problems:
            yield ctx.finding(stmt, f"domain table {table}: {', '.join(problems)}",
                              "Add tenant_id/workspace_id BIGINT NOT NULL REFERENCES tenant(id)/workspace(id), or "
                              "list the table in tenant_exempt_tables if it is global.",
                              node=stmt.node.get("relation"))
