"""The corpus the lint benchmarks share: the seed's five examples, the shipped migrations, and generated
migration folders whose statements exercise every rule (and every squawk rule that applies to PostgreSQL 13+).

`python benchmarks/lint_corpus.py OUT_DIR [FOLDERS]` writes it; the other scripts import `build`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# the seed's five examples and two rollbacks, kept byte for byte in migrations/ (tests/conftest.py: SEED_FILES)
SEED_FILES = (
    "20250823_143000_create_tenant_tables/migration.sql",
    "20250823_143000_create_tenant_tables/rollback.sql",
    "20250823_144000_create_identity_system/migration.sql",
    "20250823_145000_add_event_system_indexes/migration.sql",
    "20250824_090000_migrate_legacy_user_data/migration.sql",
    "20250824_100000_add_funnel_versioning/migration.sql",
    "20250824_100000_add_funnel_versioning/rollback.sql",
)
HEADER = "-- Migration: generated {n}\n-- Purpose: lint corpus\n-- Author: benchmark\n-- Date: {date}\n-- Requirements: 0\n\n"

# one statement (or a few) per case; {n} keeps names unique across folders
STATEMENTS = [
    "CREATE TABLE item_{n} (id BIGSERIAL PRIMARY KEY, tenant_id BIGINT NOT NULL REFERENCES tenant(id), "
    "workspace_id BIGINT NOT NULL REFERENCES workspace(id), label VARCHAR(80), code CHAR(3), payload JSON, "
    "seen_at TIMESTAMP, qty INTEGER, small SMALLINT, email TEXT);",
    "COMMENT ON TABLE item_{n} IS 'Items - external ID: it_{{id}}';",
    "CREATE INDEX item_{n}_label ON item_{n} (label);",
    "CREATE INDEX legacy_{n}_a ON legacy (a);",
    "DROP INDEX legacy_{n}_old;",
    "ALTER TABLE legacy ADD COLUMN uid_{n} UUID DEFAULT gen_random_uuid();",
    "ALTER TABLE legacy ADD COLUMN at_{n} TIMESTAMPTZ DEFAULT now();",
    "ALTER TABLE legacy ADD COLUMN req_{n} BIGINT NOT NULL;",
    "ALTER TABLE legacy ADD CONSTRAINT legacy_{n}_fk FOREIGN KEY (owner_id) REFERENCES owner(id);",
    "ALTER TABLE legacy ADD CONSTRAINT legacy_{n}_ck CHECK (qty > 0);",
    "ALTER TABLE legacy ADD CONSTRAINT legacy_{n}_uq UNIQUE (code);",
    "ALTER TABLE legacy ADD PRIMARY KEY (id);",
    "ALTER TABLE legacy ALTER COLUMN name_{n} SET NOT NULL;",
    "ALTER TABLE legacy ALTER COLUMN name_{n} DROP NOT NULL;",
    "ALTER TABLE legacy ALTER COLUMN qty TYPE BIGINT;",
    "ALTER TABLE legacy RENAME COLUMN a_{n} TO b_{n};",
    "ALTER TABLE legacy_{n} RENAME TO legacy_{n}_old;",
    "ALTER TABLE legacy DROP COLUMN gone_{n};",
    "DROP TABLE legacy_{n}_gone;",
    "TRUNCATE legacy_{n}_t CASCADE;",
    "CREATE DOMAIN positive_{n} AS BIGINT CHECK (VALUE > 0);",
    "ALTER DOMAIN positive_{n} ADD CONSTRAINT small_{n} CHECK (VALUE < 10);",
    "ALTER TYPE status_{n} ADD VALUE 'archived';",
    "ALTER TABLE legacy ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;",
    "ALTER TABLE events DETACH PARTITION events_{n};",
    "REINDEX INDEX legacy_{n}_a;",
    "UPDATE legacy SET qty = 0;",
    "ALTER TABLE legacy ADD COLUMN ser_{n} SERIAL;",
    "ALTER TABLE legacy ADD COLUMN ts_{n} TIMESTAMP;",
]
NON_TRANSACTIONAL = [
    "CREATE INDEX CONCURRENTLY legacy_{n}_c ON legacy (c);",
    "DROP INDEX CONCURRENTLY legacy_{n}_d;",
]


def seed_folders(target: Path) -> int:
    """The seed's files alone (as the seed document holds them), from the reference migrations."""
    for relative in SEED_FILES:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((REPO / "migrations" / relative).read_text(encoding="utf-8"), encoding="utf-8")
    return len({r.split("/")[0] for r in SEED_FILES})


def generated_folders(target: Path, count: int, start_day: int = 0) -> int:
    """`count` folders: in turn a transactional one (a slice of STATEMENTS in BEGIN … COMMIT), one with
    the same statements and no transaction control, and a CONCURRENTLY one written inside BEGIN."""
    statements = 0
    for i in range(count):
        n = i + 1
        day = start_day + i
        version = f"2026{(day // 28) % 12 + 1:02d}{day % 28 + 1:02d}_{i // 336 % 24:02d}{i % 60:02d}00"
        version = f"{2026 + i // 4000}{version[4:]}"
        folder = target / f"{version}_generated_{n}"
        date = f"{version[:4]}-{version[4:6]}-{version[6:8]}"
        kind = i % 3
        if kind == 2:
            body = ["BEGIN;"] + [s.format(n=n) for s in NON_TRANSACTIONAL] + ["COMMIT;"]
        else:
            chunk = [s.format(n=n) for s in STATEMENTS[(i * 7) % len(STATEMENTS):][:10]]
            if len(chunk) < 10:
                chunk += [s.format(n=n) for s in STATEMENTS[: 10 - len(chunk)]]
            body = ["BEGIN;", *chunk, "COMMIT;"] if kind == 0 else chunk
        statements += sum(1 for s in body if s not in ("BEGIN;", "COMMIT;"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "migration.sql").write_text(HEADER.format(n=n, date=date) + "\n".join(body) + "\n")
        (folder / "rollback.sql").write_text("BEGIN;\nSELECT 1;\nCOMMIT;\n")
    return statements


def build(target: Path, generated: int = 120) -> dict:
    """Write the whole corpus into `target` (a migrations directory); return what it holds."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    seed = seed_folders(target)
    shipped = 0
    for folder in sorted((REPO / "migrations").iterdir()):
        if folder.is_dir() and not (target / folder.name).exists():
            shutil.copytree(folder, target / folder.name)
            shipped += 1
    statements = generated_folders(target, generated)
    return {"seed_folders": seed, "shipped_folders": shipped, "generated_folders": generated,
            "generated_statements": statements}


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/mercurio-lint-corpus")
    print(build(out, int(sys.argv[2]) if len(sys.argv) > 2 else 120))
