"""PII columns (email, phone, names, …) are stored only encrypted (`*_enc`), with HMAC fingerprints for matching.

Mercurio never stores personal data in clear: a column like `email` or `first_name` ends up in backups,
replicas, logs of slow queries and every `SELECT *`. The value is kept AES-encrypted in `<name>_enc`;
lookups and de-duplication use an HMAC-SHA256 `<name>_fingerprint`, so an encrypted email or phone without
its fingerprint cannot be matched. The PII names are configurable (`pii_columns`); temporary tables are
exempt (they vanish with the session).

Fix: store `<name>_enc TEXT` (encrypt with `encrypt_pii()`) and, for values you match on (email, phone),
`<name>_fingerprint VARCHAR(64)` (`hmac_sha256(value, get_hmac_key())`); never a plaintext column.
"""

from __future__ import annotations

from mercurio_migrate.lint.rules._util import column_definitions, is_temporary

ID = "pii-encrypted"
SEVERITY = "error"
CATEGORY = "guideline"
PROFILE = "mercurio"  # a house rule: runs only with the mercurio profile
KINDS = ("CreateStmt", "AlterTableStmt")
SQUAWK = ()
MATCHED = ("email", "email_address", "phone", "phone_number", "mobile", "mobile_phone")


def check(ctx):
    per_table: dict[tuple[int, str], set] = {}
    for stmt, table, column, _how in column_definitions(ctx, ("create", "add")):
        if is_temporary(stmt):
            continue
        name = column.get("colname", "").lower()
        per_table.setdefault((stmt.index, table), set()).add(name)
        if name in ctx.config.pii_columns:
            yield ctx.finding(stmt, f"{table}.{name} stores personal data in clear",
                              f"Store {name}_enc (encrypted){' and ' + name + '_fingerprint (HMAC)' if name in MATCHED else ''} "
                              "instead.", node=column)
    for (index, table), names in per_table.items():
        stmt = ctx.file.statements[index]
        for base in MATCHED:
            if f"{base}_enc" in names and f"{base}_fingerprint" not in names and not _known(ctx, table, base):
                yield ctx.finding(stmt, f"{table}.{base}_enc has no {base}_fingerprint: it cannot be matched",
                                  f"Add {base}_fingerprint VARCHAR(64) (HMAC-SHA256 of the value).",
                                  node=stmt.node.get("relation"))


def _known(ctx, table: str, base: str) -> bool:
    columns = ctx.schema.columns(table)
    return bool(columns) and f"{base}_fingerprint" in columns
