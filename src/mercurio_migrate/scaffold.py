"""`new NAME`: a migration folder from templates, the header filled in."""

from __future__ import annotations

import getpass
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from mercurio_migrate.errors import UsageError
from mercurio_migrate.layout import MAX_FOLDER_NAME, check_folder_name

MIGRATION_TEMPLATE = """\
-- Migration: {title}
-- Purpose: TODO: why this change is needed
-- Author: {author}
-- Date: {date}
-- Requirements: TODO

BEGIN;

-- TODO: the change

COMMIT;
"""

ROLLBACK_TEMPLATE = """\
-- Rollback: {title}
-- This reverses migration {folder}

BEGIN;

-- TODO: undo every object the migration creates, in reverse dependency order

COMMIT;
"""


def author_name() -> str:
    try:
        out = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except OSError:
        pass
    return getpass.getuser()


def create(directory: Path, name: str, now: datetime | None = None) -> Path:
    now = now or datetime.now(UTC)
    folder_name = f"{now:%Y%m%d_%H%M%S}_{name}"
    checked = check_folder_name(folder_name)
    if isinstance(checked, str):
        raise UsageError(f"cannot create {folder_name!r}: {checked}",
                         hint=f"Give a lower snake_case name; the folder name may be at most {MAX_FOLDER_NAME} characters.")
    folder = directory / folder_name
    if any(p.name.startswith(f"{now:%Y%m%d_%H%M%S}_") for p in directory.glob("*")) if directory.exists() else False:
        raise UsageError(f"a migration with version {now:%Y%m%d_%H%M%S} already exists", hint="Wait a second and retry.")
    folder.mkdir(parents=True)
    title = name.replace("_", " ").capitalize()
    fields = {"title": title, "author": author_name(), "date": f"{now:%Y-%m-%d}", "folder": folder_name}
    (folder / "migration.sql").write_text(MIGRATION_TEMPLATE.format(**fields), encoding="utf-8")
    (folder / "rollback.sql").write_text(ROLLBACK_TEMPLATE.format(**fields), encoding="utf-8")
    return folder
