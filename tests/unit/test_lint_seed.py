"""The seed's five examples (extracted from the markdown) produce exactly the expected findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SEED_FILES, seed_file
from mercurio_migrate.lint import lint_paths, load_config

EX1, EX2, EX3 = "20250823_143000_create_tenant_tables", "20250823_144000_create_identity_system", \
    "20250823_145000_add_event_system_indexes"
EX4, EX5 = "20250824_090000_migrate_legacy_user_data", "20250824_100000_add_funnel_versioning"

EXPECTED = {
    # Example 1: api_key is scoped by workspace only; its hash index is global
    ("tenant-columns", EX1, "migration.sql", 31),
    ("tenant-first-index", EX1, "migration.sql", 49),
    ("require-lock-timeout", EX1, "rollback.sql", 7),
    ("require-statement-timeout", EX1, "rollback.sql", 7),
    # Example 2: foreign keys lock tenant/workspace (created by Example 1); no rollback in the seed
    ("rollback-present", EX2, "migration.sql", 1),
    ("require-lock-timeout", EX2, "migration.sql", 10),
    ("require-statement-timeout", EX2, "migration.sql", 10),
    # Example 3: CONCURRENTLY inside BEGIN … COMMIT fails in PostgreSQL; no IF NOT EXISTS for a retry
    ("rollback-present", EX3, "migration.sql", 1),
    ("require-lock-timeout", EX3, "migration.sql", 10),
    ("require-statement-timeout", EX3, "migration.sql", 10),
    *{("non-transactional-in-transaction", EX3, "migration.sql", n) for n in (10, 13, 16, 21, 26, 31)},
    *{("robust-statements", EX3, "migration.sql", n) for n in (10, 13, 16, 21, 26, 31)},
    # Example 4: a data migration without a rollback
    ("rollback-present", EX4, "migration.sql", 1),
    # Example 5: new tables without tenant columns; lock-unsafe changes to the existing funnel_step
    ("require-lock-timeout", EX5, "migration.sql", 10),
    ("require-statement-timeout", EX5, "migration.sql", 10),
    ("tenant-columns", EX5, "migration.sql", 10),
    ("tenant-columns", EX5, "migration.sql", 22),
    ("foreign-key-not-valid", EX5, "migration.sql", 71),
    ("whole-table-dml", EX5, "migration.sql", 74),
    ("set-not-null", EX5, "migration.sql", 80),
    ("drop-constraint", EX5, "migration.sql", 83),
    ("drop-column", EX5, "migration.sql", 84),
    ("require-concurrent-index-creation", EX5, "migration.sql", 90),
    ("require-lock-timeout", EX5, "rollback.sql", 8),
    ("require-statement-timeout", EX5, "rollback.sql", 8),
    ("whole-table-dml", EX5, "rollback.sql", 11),
    ("set-not-null", EX5, "rollback.sql", 17),
    ("foreign-key-not-valid", EX5, "rollback.sql", 19),
    ("require-concurrent-index-deletion", EX5, "rollback.sql", 26),
}


def extract_seed(target: Path) -> Path:
    """The seed's five migrations and two rollbacks alone, as the seed document holds them."""
    for relative in SEED_FILES:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(seed_file(relative) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    root = extract_seed(tmp_path_factory.mktemp("seed") / "migrations")
    result = lint_paths([root], load_config({}, profile="mercurio"))
    return [(f.rule, Path(f.file).parent.name, Path(f.file).name, f.line, f) for f in result.findings]


def test_seed_findings_are_exactly_the_expected_ones(findings):
    assert {(rule, folder, name, line) for rule, folder, name, line, _ in findings} == EXPECTED
    assert len(findings) == len(EXPECTED), "no finding is reported twice"


def test_example_3_is_flagged_with_the_fix(findings):
    example_3 = [f for rule, folder, _, _, f in findings if folder == EX3 and rule == "non-transactional-in-transaction"]
    assert len(example_3) == 6 and all(f.severity == "error" for f in example_3)
    assert "Remove BEGIN/COMMIT" in example_3[0].fix


@pytest.mark.parametrize("rule, folder", [
    ("tenant-columns", EX2),  # visitor, lead, identity_link carry both columns, NOT NULL, with foreign keys
    ("tenant-first-index", EX2),  # every index leads with tenant_id, workspace_id
    ("tenant-first-index", EX3),  # the GIN index cannot lead with tenant_id
    ("pii-encrypted", EX2),  # lead stores only *_enc with fingerprints
    ("pii-encrypted", EX4),  # the plaintext copy is a TEMP table
    ("whole-table-dml", EX4),  # UPDATE restricted to the migrated ids
    ("rollback-completeness", EX1),
    ("rollback-completeness", EX5),  # restores funnel_id and its constraint, drops in dependency order
    ("table-comment", EX1), ("table-comment", EX2), ("table-comment", EX5),
    ("header-fields", EX1), ("header-fields", EX5),
    ("require-concurrent-index-creation", EX1),  # indexes on tables created in the same migration
    ("drop-table", EX1),  # the rollback drops what its migration created
])
def test_correct_statements_are_not_flagged(findings, rule, folder):
    assert not [f for r, fo, _, _, f in findings if r == rule and fo == folder]
