"""migration.sql starts with the Migration, Purpose, Author, Date and Requirements header, dated like its folder.

Mercurio's migration format opens every migration.sql with `-- Key: value` comment lines. `status` and
`log` show the Purpose, reviewers trace the Requirements, and the Date is how a reader ties the file to
its folder's UTC timestamp: a Date that disagrees with the folder means the file was copied from another
migration or the folder was renamed, and the header can no longer be trusted.

Fix: begin migration.sql with `-- Migration: …`, `-- Purpose: …`, `-- Author: …`, `-- Date: YYYY-MM-DD`
and `-- Requirements: …` (each non-empty), with Date equal to the folder timestamp's date
(`20250823_143000_…` → `2025-08-23`).
"""

from __future__ import annotations

ID = "header-fields"
SEVERITY = "error"
CATEGORY = "guideline"
PROFILE = "mercurio"  # a house rule: runs only with the mercurio profile
ROLES = ("migration",)
SQUAWK = ()
REQUIRED = ("migration", "purpose", "author", "date", "requirements")


def check(ctx):
    if ctx.role != "migration":
        return
    from mercurio_migrate.layout import parse_header

    header = parse_header(ctx.file.text)
    missing = [key.capitalize() for key in REQUIRED if not header.get(key, "").strip()]
    if missing:
        yield ctx.finding(None, f"header lacks {', '.join(missing)}",
                          "Add the missing `-- Key: value` lines at the top of migration.sql.")
    date = header.get("date", "").strip()
    if date and ctx.folder is not None:
        version = ctx.folder.version
        expected = f"{version[:4]}-{version[4:6]}-{version[6:8]}"
        if date[:10] != expected or (len(date) > 10 and not date[10:11].isspace()):
            line = next((n for n, text in enumerate(ctx.file.text.splitlines(), 1)
                         if text.strip().lower().startswith("-- date") or text.strip().lower().startswith("--date")), 1)
            yield ctx.finding(None, f"header Date {date!r} does not match the folder timestamp ({expected})",
                              f"Set `-- Date: {expected}`, or rename the folder to the intended timestamp.",
                              line=line)
