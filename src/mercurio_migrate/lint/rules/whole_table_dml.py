"""UPDATE or DELETE of every row of an existing table inside the migration's transaction.

A backfill in the migration transaction locks every row it touches until COMMIT (and, next to DDL on the
same table, behind an ACCESS EXCLUSIVE lock): the application's writes to those rows wait for the whole
backfill, the table bloats by a full copy, and a failure rolls all of it back. The rule reports UPDATE and
DELETE without a WHERE clause, and those whose WHERE only joins the table to others (`UPDATE t … FROM u
WHERE t.x = u.y`) without restricting its own rows.

Fix: backfill in batches (`… WHERE id BETWEEN $1 AND $2`, committed one by one) from a script or a
migration without a transaction, after the schema change is deployed.
"""

from __future__ import annotations

from mercurio_migrate.lint import tree

ID = "whole-table-dml"
SEVERITY = "warning"
CATEGORY = "lock-safety"
KINDS = ("UpdateStmt", "DeleteStmt")
SQUAWK = ()


def _restricts(conjunct, target: set[str]) -> bool:
    refs = [tree.strings(b.get("fields")) for k, b in tree.walk(conjunct) if k == "ColumnRef"]

    def on_target(fields):
        # an unqualified column is taken to be the target's: when in doubt, do not report
        return fields[0] in target if len(fields) > 1 else True

    kind, body = tree.unwrap(conjunct)
    if kind == "A_Expr" and body.get("kind") == "AEXPR_OP" and tree.strings(body.get("name")) == ["="]:
        sides = [tree.unwrap(body.get("lexpr")), tree.unwrap(body.get("rexpr"))]
        if all(k == "ColumnRef" for k, _ in sides):
            fields = [tree.strings(b.get("fields")) for _, b in sides]
            if sum(on_target(f) for f in fields) == 1 and all(len(f) > 1 for f in fields):
                return False  # a join condition: every target row that has a partner matches
    return any(on_target(f) for f in refs)


def check(ctx):
    for stmt in ctx.file.of_kind("UpdateStmt", "DeleteStmt"):
        relation = stmt.node.get("relation") or {}
        table = tree.relname(relation)
        if not stmt.in_transaction or not ctx.existing_table(table, stmt):
            continue
        target = {table, (relation.get("alias") or {}).get("aliasname", table)}
        where = stmt.node.get("whereClause")
        if where is not None:
            kind, body = tree.unwrap(where)
            conjuncts = body.get("args") if kind == "BoolExpr" and body.get("boolop") == "AND_EXPR" else [where]
            if any(_restricts(c, target) for c in conjuncts):
                continue
        verb = "UPDATE" if stmt.kind == "UpdateStmt" else "DELETE"
        yield ctx.finding(stmt, f"{verb} of every row of {table} inside the migration transaction",
                          "Backfill in committed batches outside the migration transaction.")
