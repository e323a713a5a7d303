"""``preflight`` (mercurio profile): the data-quality report to read before Example 4
(20250824_090000_migrate_legacy_user_data) runs. Example 4 moves every not-yet-migrated row of
``legacy_user_table`` in one transaction, so one bad row aborts all of it, and some rows it accepts produce
wrong data. The report lists both kinds:

errors (Example 4 would fail):
  invalid_anonymous_id      anonymous_id not matching ^a_[a-zA-Z0-9]{12}$ (visitor's CHECK)
  missing_tenant_workspace  tenant_id or workspace_id is NULL (visitor/lead columns are NOT NULL)
  unknown_tenant_workspace  tenant or workspace does not exist, or the workspace is another tenant's
warnings (Example 4 runs, a follow-up migration repairs the result, see docs/mercurio-schema.md):
  duplicate_email           one e-mail (after normalisation) on several rows of a workspace: duplicate leads
  duplicate_phone           the same for phone numbers (E.164 after normalisation)
  shared_anonymous_id       one anonymous id in several tenants/workspaces: cross-tenant identity links
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import click

from mercurio_migrate.cli import Context, pass_context
from mercurio_migrate.errors import UsageError

ANONYMOUS_ID_PATTERN = "^a_[a-zA-Z0-9]{12}$"
LEGACY_TABLE = "legacy_user_table"

ERRORS = ("invalid_anonymous_id", "missing_tenant_workspace", "unknown_tenant_workspace")
WARNINGS = ("duplicate_email", "duplicate_phone", "shared_anonymous_id")
EXPLANATIONS = {
    "invalid_anonymous_id": f"visitor's CHECK ({ANONYMOUS_ID_PATTERN}) rejects it: Example 4 aborts as a whole",
    "missing_tenant_workspace": "visitor/lead need both: Example 4 aborts as a whole",
    "unknown_tenant_workspace": "no such tenant/workspace, or the workspace is another tenant's: Example 4 (or "
                                "20250824_110000) aborts",
    "duplicate_email": "Example 4 makes one lead per row; 20250824_111000 marks all but the oldest as "
                       "merged_into_id duplicates",
    "duplicate_phone": "as duplicate_email, for phone numbers (merged only among leads without e-mail)",
    "shared_anonymous_id": "Example 4 keeps one visitor and links the others' leads to it across tenants; "
                           "20250824_110000 re-keys visitors per tenant and repairs the links",
}


@dataclass
class PreflightFinding:
    category: str
    ids: list[int]
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreflightReport:
    table: str
    rows_checked: int
    findings: dict[str, list[PreflightFinding]]

    def count(self, category: str) -> int:
        return len(self.findings.get(category, []))

    @property
    def error_rows(self) -> int:
        return sum(len({i for f in self.findings.get(c, []) for i in f.ids}) for c in ERRORS)

    @property
    def warning_groups(self) -> int:
        return sum(self.count(c) for c in WARNINGS)

    def failed(self, errors_only: bool = False) -> bool:
        return bool(self.error_rows or (not errors_only and self.warning_groups))

    def as_dict(self, limit: int | None = None) -> dict:
        return {
            "table": self.table,
            "rows_checked": self.rows_checked,
            "error_rows": self.error_rows,
            "warning_groups": self.warning_groups,
            "categories": {
                category: {
                    "severity": "error" if category in ERRORS else "warning",
                    "count": self.count(category),
                    "explanation": EXPLANATIONS[category],
                    "findings": [f.as_dict() for f in self.findings.get(category, [])[:limit]],
                }
                for category in (*ERRORS, *WARNINGS)
            },
        }


def mask_email(normalised: str) -> str:
    local, sep, domain = normalised.partition("@")
    return f"{local[:1]}***{sep}{domain}" if sep else f"{normalised[:1]}***"


def mask_phone(normalised: str) -> str:
    return normalised[:2] + "*" * max(0, len(normalised) - 4) + normalised[-2:]


def _exists(conn, relation: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()[0]


def _has_column(conn, table: str, column: str) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
        "AND NOT attisdropped AND attnum > 0)", (table, column)).fetchone()[0]


def preflight_report(conn, table: str = LEGACY_TABLE) -> PreflightReport:
    """Check the rows Example 4 would migrate (``migrated_at IS NULL``); returns every finding."""
    from mercurio_migrate.pii import normalize

    if not _exists(conn, table):
        raise UsageError(f"{table} does not exist in this database",
                         hint="Point DATABASE_URL at the database holding the legacy users, or apply migrations "
                              "up to 20250824_081000_create_legacy_user_table and load them.")
    pending = "migrated_at IS NULL" if _has_column(conn, table, "migrated_at") else "TRUE"
    rows = conn.execute(
        f"SELECT id, tenant_id, workspace_id, anonymous_id, email, phone FROM {table} WHERE {pending} ORDER BY id"
    ).fetchall()
    findings: dict[str, list[PreflightFinding]] = defaultdict(list)
    emails: dict[tuple, list[int]] = defaultdict(list)
    phones: dict[tuple, list[int]] = defaultdict(list)
    anonymous: dict[str, set[tuple]] = defaultdict(set)
    anonymous_rows: dict[str, list[int]] = defaultdict(list)
    valid_anonymous = re.compile(ANONYMOUS_ID_PATTERN)
    for row_id, tenant_id, workspace_id, anonymous_id, email, phone in rows:
        valid_id = anonymous_id is not None and bool(valid_anonymous.match(anonymous_id))
        if anonymous_id is not None and not valid_id:
            findings["invalid_anonymous_id"].append(PreflightFinding("invalid_anonymous_id", [row_id],
                                                            {"anonymous_id": anonymous_id}))
        if tenant_id is None or workspace_id is None:
            findings["missing_tenant_workspace"].append(PreflightFinding(
                "missing_tenant_workspace", [row_id], {"tenant_id": tenant_id, "workspace_id": workspace_id}))
            continue
        scope = (tenant_id, workspace_id)
        if email is not None:
            emails[(*scope, normalize(email))].append(row_id)
        if phone is not None:
            phones[(*scope, normalize(phone))].append(row_id)
        if valid_id:
            anonymous[anonymous_id].add(scope)
            anonymous_rows[anonymous_id].append(row_id)
    if _exists(conn, "tenant") and _exists(conn, "workspace"):
        for row_id, tenant_id, workspace_id, reason in conn.execute(
            f"SELECT u.id, u.tenant_id, u.workspace_id, CASE WHEN t.id IS NULL THEN 'unknown tenant' "
            f"WHEN w.id IS NULL THEN 'unknown workspace' ELSE 'workspace belongs to tenant ' || w.tenant_id END "
            f"FROM {table} u LEFT JOIN tenant t ON t.id = u.tenant_id LEFT JOIN workspace w ON w.id = u.workspace_id "
            f"WHERE {pending.replace('migrated_at', 'u.migrated_at')} AND u.tenant_id IS NOT NULL "
            f"AND u.workspace_id IS NOT NULL AND (t.id IS NULL OR w.id IS NULL OR w.tenant_id <> u.tenant_id) "
            f"ORDER BY u.id"
        ):
            findings["unknown_tenant_workspace"].append(PreflightFinding(
                "unknown_tenant_workspace", [row_id],
                {"tenant_id": tenant_id, "workspace_id": workspace_id, "reason": reason}))
    for (tenant_id, workspace_id, value), ids in emails.items():
        if len(ids) > 1:
            findings["duplicate_email"].append(PreflightFinding(
                "duplicate_email", ids, {"tenant_id": tenant_id, "workspace_id": workspace_id,
                                         "email": mask_email(value)}))
    for (tenant_id, workspace_id, value), ids in phones.items():
        if len(ids) > 1:
            findings["duplicate_phone"].append(PreflightFinding(
                "duplicate_phone", ids, {"tenant_id": tenant_id, "workspace_id": workspace_id,
                                         "phone": mask_phone(value)}))
    for anonymous_id, scopes in anonymous.items():
        if len(scopes) > 1:
            findings["shared_anonymous_id"].append(PreflightFinding(
                "shared_anonymous_id", anonymous_rows[anonymous_id],
                {"anonymous_id": anonymous_id, "scopes": [list(s) for s in sorted(scopes)]}))
    return PreflightReport(table, len(rows), dict(findings))


def _describe(finding: PreflightFinding) -> str:
    ids = ", ".join(str(i) for i in finding.ids[:20]) + (" …" if len(finding.ids) > 20 else "")
    detail = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in finding.detail.items())
    return f"id {ids}: {detail}" if len(finding.ids) == 1 else f"ids {ids}: {detail}"


def render_text(report: PreflightReport, limit: int) -> None:
    print(f"preflight for 20250824_090000_migrate_legacy_user_data: {report.rows_checked} row(s) of "
          f"{report.table} not yet migrated")
    for category in (*ERRORS, *WARNINGS):
        found = report.findings.get(category, [])
        severity = "error" if category in ERRORS else "warning"
        unit = "row(s)" if category in ERRORS else "group(s)"
        print(f"{severity:7} {category}: {len(found)} {unit}" + (f" - {EXPLANATIONS[category]}" if found else ""))
        for finding in found[:limit]:
            print(f"          {_describe(finding)}")
        if len(found) > limit:
            print(f"          … {len(found) - limit} more (--limit)")
    if report.error_rows:
        print(f"result: {report.error_rows} row(s) would make Example 4 fail; fix them first "
              "(see docs/mercurio-schema.md, 'Dirty legacy data')")
    elif report.warning_groups:
        print(f"result: Example 4 can run; {report.warning_groups} group(s) are repaired by the follow-up migrations")
    else:
        print("result: clean")


@click.command()
@click.option("--table", default=LEGACY_TABLE, show_default=True, help="The legacy user table to check.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0),
              help="Findings to list per category (counts are always complete).")
@click.option("--errors-only", is_flag=True,
              help="Exit 1 only for rows that would make Example 4 fail, not for duplicates/shared ids.")
@pass_context
def preflight(obj: Context, table: str, limit: int, errors_only: bool) -> None:
    """Data-quality report on legacy_user_table before Example 4 migrates it (exit 1: offending rows)."""
    from mercurio_migrate.database import connect

    if not obj.settings().mercurio:
        raise UsageError("preflight belongs to the mercurio profile: it checks Mercurio's legacy_user_table before "
                         "its legacy data migration, which this project does not have",
                         hint='Set profile = "mercurio" under [tool.mercurio-migrate] in pyproject.toml (or '
                              "MERCURIO_PROFILE=mercurio) if this is a Mercurio database (docs/profile.md).")
    if not table.replace("_", "").isalnum():
        raise UsageError(f"--table {table!r} is not a plain table name")
    with connect(obj.engine().database_url()) as conn:
        report = preflight_report(conn, table)
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json(report.as_dict(limit) | {"ok": not report.failed(errors_only)})
    else:
        render_text(report, limit)
    if report.failed(errors_only):
        # SystemExit, not click's Exit: cli.main runs click with standalone_mode=False, which returns Exit's code
        sys.exit(1)
