"""A domain with a CHECK constraint (CREATE DOMAIN … CHECK, ALTER DOMAIN … ADD CONSTRAINT).

Adding a constraint to a domain checks every column of every table using it, under locks, with no NOT
VALID-then-VALIDATE path as cheap as a table's; and changing the rule later touches all of them at once.
Table CHECK constraints can be added and replaced one table at a time, online.

Fix: use the base type and put the CHECK on each table column (added NOT VALID on existing tables).
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "domain-constraint"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("CreateDomainStmt", "AlterDomainStmt")
SQUAWK = ("ban-create-domain-with-constraint", "ban-alter-domain-with-add-constraint")


def check(ctx):
    for stmt in ctx.file.of_kind("CreateDomainStmt", "AlterDomainStmt"):
        if stmt.kind == "CreateDomainStmt":
            checks = [c for c in stmt.node.get("constraints") or () if tree.unwrap(c)[1].get("contype") == "CONSTR_CHECK"]
            if checks:
                yield ctx.finding(stmt, "domain with a CHECK constraint", "Put the CHECK on table columns instead.",
                                  node=checks[0])
        elif stmt.node.get("subtype") == "C":
            yield ctx.finding(stmt, "ALTER DOMAIN … ADD CONSTRAINT checks every column using the domain",
                              "Put the CHECK on table columns (NOT VALID, then VALIDATE).")
