"""The shortcuts that make lint fast never change what it reports.

Each shortcut is checked against the plain way of doing the same thing: rule dispatch by statement kind
against running every rule on every file, the hand-written JSON report against ``json.dumps``, the lint's
own folder reader against ``layout.discover``, the cached subtree walks against ``tree.walk``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import mercurio_migrate.lint as lint
from mercurio_migrate.layout import discover
from mercurio_migrate.lint import Finding, LintResult, lint_paths, load_config, tree
from mercurio_migrate.lint.model import parse_file
from mercurio_migrate.lint.report import as_json

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


def _as_json_reference(result: LintResult) -> str:
    return json.dumps({"findings": [f.as_dict() for f in result.findings], "files": result.files,
                       "suppressed": result.suppressed, "counts": result.counts()}, indent=2) + "\n"


@pytest.mark.parametrize("findings", [
    [],
    [Finding("a-b", "error", '/x/é"q.sql', 3, 4, "m \u2028 ü \\ \n \t ok 😀", "fix %s"),
     Finding("c", "info", "f", 10**20, 1, "%d", "")],
    [Finding("c", "warning", "f", True, 1, "", "")],  # not an int: the json module writes it
    [Finding("c", "warning", "f", 1, 1.5, "", "")],
    [Finding("c", "warning", None, 1, 1, "", "")],
])
def test_json_report_is_what_json_dumps_writes(findings):
    result = LintResult(findings=findings, files=2, suppressed=1)
    assert as_json(result) == _as_json_reference(result)


def test_json_report_of_the_corpus_is_what_json_dumps_writes(corpus):
    result = _everything([corpus])
    assert as_json(result) == _as_json_reference(result)


def _shape(migrations) -> list:
    return [(m.version, m.name, str(m.folder), str(m.migration.path), m.migration.text,
             m.rollback and (str(m.rollback.path), m.rollback.text)) for m in migrations]


def _read(reader, root: Path):
    try:
        return _shape(reader(root))
    except Exception as exc:  # the same error, with the same message
        return type(exc).__name__, str(exc)


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
def test_folder_reader_reads_what_discover_reads(tmp_path, extra):
    root = tmp_path / "migrations"
    for relative, data in {**GOOD, **extra}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
    assert _read(lint._migrations, root) == _read(lambda r: discover(r).migrations, root)


def test_folder_reader_reads_the_corpus_as_discover_does(corpus):
    assert _shape(lint._migrations(corpus)) == _shape(discover(corpus).migrations)


def test_cached_walks_are_tree_walks(corpus):
    for path in sorted(corpus.glob("*/migration.sql"))[:60]:
        sql = parse_file(path, path.read_text(), "migration")
        for stmt in sql.statements:
            assert sql.walked(stmt.node) == list(tree.walk(stmt.node))
            assert sql.nodes(stmt.node, "Constraint") == [b for k, b in tree.walk(stmt.node) if k == "Constraint"]
            assert sql.walked(stmt.node) is sql.walked(stmt.node)


@pytest.fixture()
def two_halves(monkeypatch):
    monkeypatch.setattr(lint, "PARALLEL_FROM", 10)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_two_processes_find_what_one_finds(corpus, two_halves):
    one = lint_paths([corpus], load_config(None, select="all", profile="mercurio"))
    two = lint_paths([corpus], load_config(None, select="all", profile="mercurio"), workers=2)
    assert two.findings == one.findings
    assert (two.files, two.suppressed) == (one.files, one.suppressed)


def test_without_a_second_process_the_first_lints_both_halves(corpus, two_halves, monkeypatch):
    import os

    def no_fork():
        raise OSError("no fork here")

    monkeypatch.setattr(os, "fork", no_fork, raising=False)
    one = lint_paths([corpus], load_config(None, select="all", profile="mercurio"))
    two = lint_paths([corpus], load_config(None, select="all", profile="mercurio"), workers=2)
    assert two.findings == one.findings and two.files == one.files


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="needs CPU affinity")
def test_the_default_number_of_processes_follows_the_cpu_affinity():
    import os
    import subprocess
    import sys

    probe = ("import os, sys; os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(',')}); "
             "from mercurio_migrate.lint import default_workers; print(default_workers())")
    cpus = sorted(os.sched_getaffinity(0))
    one = subprocess.run([sys.executable, "-c", probe, str(cpus[0])], capture_output=True, text=True, check=True)
    assert one.stdout.strip() == "1"
    if len(cpus) >= 2:
        two = subprocess.run([sys.executable, "-c", probe, f"{cpus[0]},{cpus[1]}"], capture_output=True, text=True,
                             check=True)
        assert two.stdout.strip() == "2"
