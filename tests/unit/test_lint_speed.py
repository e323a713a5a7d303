"""What makes lint fast never changes what it reports.

Rule dispatch by statement kind is checked against running every rule on every file, the cached subtree
walks against ``tree.walk``; a migrations directory is read by ``layout.discover``, so lint sees (and
refuses) exactly what every other command sees.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import mercurio_migrate.lint as lint
from mercurio_migrate.errors import LayoutError
from mercurio_migrate.layout import discover
from mercurio_migrate.lint import LintResult, lint_paths, load_config, tree
from mercurio_migrate.lint.model import parse_file

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "lint"
sys.path.insert(0, str(REPO / "benchmarks"))

from lint_corpus import build  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The benchmark corpus: the seed's examples, the shipped migrations and 120 generated folders."""
    target = tmp_path_factory.mktemp("corpus") / "migrations"
    build(target, 120)
    return target


def _everything(paths: list[Path]) -> LintResult:
    return lint_paths(paths, load_config(None, select="all", profile="mercurio"))


def test_dispatch_by_statement_kind_changes_no_finding(corpus, monkeypatch):
    loose = sorted(FIXTURES.glob("*/*.sql"))
    dispatched = _everything([corpus, *loose])
    monkeypatch.setattr(lint, "DISPATCH", False)
    every_rule_everywhere = _everything([corpus, *loose])
    assert dispatched.findings == every_rule_everywhere.findings
    assert (dispatched.files, dispatched.suppressed) == (every_rule_everywhere.files, every_rule_everywhere.suppressed)
    assert len(dispatched.findings) > 1000


def test_rules_declare_only_known_kinds_and_roles():
    from mercurio_migrate.lint.rules import registry

    for rule in registry().values():
        assert rule.roles is None or rule.roles <= {"migration", "rollback", "sql"}, rule.id
        assert rule.kinds is None or all(k.endswith("Stmt") for k in rule.kinds), rule.id


GOOD = {"20250101_000000_a/migration.sql": "SELECT 1;", "20250101_000000_a/rollback.sql": "SELECT 2;"}
LAYOUTS = {
    "clean": {},
    "stray files and a BOM": {"README.md": "x", "notes.txt": "x", "20250102_000000_b/migration.sql": "\ufeffSELECT 1;",
                              "20250102_000000_b/x.txt": "y", ".hidden/migration.sql": "x", "_draft/z": "x"},
    "bad folder name": {"2025_bad/migration.sql": "x"},
    "not a date": {"20251399_000000_b/migration.sql": "x"},
    "duplicate version": {"20250101_000000_b/migration.sql": "x"},
    "empty migration": {"20250102_000000_b/migration.sql": "  \n"},
    "empty rollback": {"20250102_000000_b/migration.sql": "x", "20250102_000000_b/rollback.sql": ""},
    "no migration": {"20250102_000000_b/rollback.sql": "x"},
    "NUL byte": {"20250102_000000_b/migration.sql": "a\x00"},
    "non-UTF-8 fixture": {"20250102_000000_b/migration.sql": "x", "20250102_000000_b/fixture.sql": b"\xff"},
    "migration.sql is a folder": {"20250102_000000_b/migration.sql": None},
    "rollback.sql is a folder": {"20250102_000000_b/migration.sql": "x", "20250102_000000_b/rollback.sql": None},
    "fixture.sql is a folder": {"20250102_000000_b/migration.sql": "x", "20250102_000000_b/fixture.sql": None},
}


@pytest.mark.parametrize("extra", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_lint_reads_a_directory_as_discover_does(tmp_path, extra):
    root = tmp_path / "migrations"
    for relative, data in {**GOOD, **extra}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
    try:
        migrations = discover(root).migrations
    except LayoutError as refused:
        with pytest.raises(LayoutError) as linted:
            _everything([root])
        assert linted.value.problems == refused.problems
        return
    result = _everything([root])
    assert result.files == sum(1 + (m.rollback is not None) for m in migrations)
    # an empty rollback.sql (a no-op rollback) is read, and has nothing to find
    assert {f.file for f in result.findings} == {m.migration.path for m in migrations} | {
        m.rollback.path for m in migrations if m.rollback and m.rollback.text.strip()}


def test_cached_walks_are_tree_walks(corpus):
    for path in sorted(corpus.glob("*/migration.sql"))[:60]:
        sql = parse_file(path, path.read_text(), "migration")
        for stmt in sql.statements:
            assert sql.walked(stmt.node) == list(tree.walk(stmt.node))
            assert sql.nodes(stmt.node, "Constraint") == [b for k, b in tree.walk(stmt.node) if k == "Constraint"]
            assert sql.walked(stmt.node) is sql.walked(stmt.node)
