"""Every lint rule against its failing and passing fixture (tests/fixtures/lint/<rule_id>/).

In a failing fixture each line that must carry a finding is marked `-- expect`; the test asserts exactly
those lines (of migration.sql and rollback.sql) are reported, so a rule that fires on the wrong statement
or too often fails as surely as one that does not fire. A passing fixture must produce no finding.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mercurio_migrate.lint import lint_paths, load_config
from mercurio_migrate.lint.rules import registry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lint"
FOLDER = "20250823_143000_fixture"


def _build(tmp_path: Path, rule_id: str, variant: str) -> Path:
    source = FIXTURES / rule_id
    root = tmp_path / "migrations"
    if (source / "before.sql").exists():
        before = root / "20250101_000000_before"
        before.mkdir(parents=True)
        (before / "migration.sql").write_text((source / "before.sql").read_text())
    folder = root / FOLDER
    folder.mkdir(parents=True)
    (folder / "migration.sql").write_text((source / f"{variant}.sql").read_text())
    rollback = source / f"{variant}.rollback.sql"
    if rollback.exists():
        (folder / "rollback.sql").write_text(rollback.read_text())
    return root


def _reported(root: Path, rule_id: str) -> set[tuple[str, int]]:
    result = lint_paths([root], load_config({}, select=rule_id, profile=registry()[rule_id].profile))
    assert {f.rule for f in result.findings} <= {rule_id}
    return {(Path(f.file).name, f.line) for f in result.findings if FOLDER in f.file}


def _expected(root: Path) -> set[tuple[str, int]]:
    expected = set()
    for name in ("migration.sql", "rollback.sql"):
        path = root / FOLDER / name
        if path.exists():
            expected |= {(name, n) for n, line in enumerate(path.read_text().splitlines(), 1) if "-- expect" in line}
    return expected


RULES = sorted(registry())


def test_every_rule_has_both_fixtures_and_documentation():
    for rule_id, rule in registry().items():
        assert (FIXTURES / rule_id / "fail.sql").is_file(), rule_id
        assert (FIXTURES / rule_id / "pass.sql").is_file(), rule_id
        assert "Fix:" in rule.doc and len(rule.doc.split()) > 25, f"{rule_id}: docstring must explain why and fix"
        assert rule.severity in ("error", "warning", "info", "off")


@pytest.mark.parametrize("rule_id", RULES)
def test_failing_fixture_reports_exactly_the_marked_lines(tmp_path, rule_id):
    root = _build(tmp_path, rule_id, "fail")
    expected = _expected(root)
    assert expected, "a failing fixture marks at least one line with -- expect"
    assert _reported(root, rule_id) == expected


@pytest.mark.parametrize("rule_id", RULES)
def test_passing_fixture_reports_nothing(tmp_path, rule_id):
    root = _build(tmp_path, rule_id, "pass")
    assert _reported(root, rule_id) == set()
