"""Side by side with squawk: does mercurio-migrate lint report every problem squawk reports?

Builds the corpus (benchmarks/lint_corpus.py), runs squawk on every SQL file the way mercurio-migrate runs
it (`--assume-in-transaction` for files without transaction control, which the tool wraps in one) and
mercurio-migrate lint with every rule selected, then matches each squawk finding to a mercurio finding on
the same statement from a rule that declares that squawk rule in its SQUAWK list. Prints a markdown table.

Needs `squawk` on PATH (`pip install squawk-cli`); installs nothing. Exit 2 when squawk is missing, 1 when
a squawk finding has no counterpart, 0 otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lint_corpus import build  # noqa: E402

from mercurio_migrate.lint import FileContext, lint_paths, load_config  # noqa: E402
from mercurio_migrate.lint.locks import locked_tables  # noqa: E402
from mercurio_migrate.lint.model import Mode, parse_file  # noqa: E402
from mercurio_migrate.lint.rules import registry  # noqa: E402
from mercurio_migrate.lint.schema import Schema  # noqa: E402


def squawk_findings(files: list[Path], assume_tx: bool) -> list[dict]:
    if not files:
        return []
    command = ["squawk", "--reporter", "json", "--pg-version", "13.0", "--no-error-on-unmatched-pattern"]
    if assume_tx:
        command.append("--assume-in-transaction")
    out = subprocess.run(command + [str(f) for f in files], capture_output=True, text=True)
    start = out.stdout.find("[")
    return json.loads(out.stdout[start:]) if start >= 0 else []


def main() -> int:
    if shutil.which("squawk") is None:
        print("squawk is not on PATH: pip install squawk-cli (the benchmark extra), then rerun", file=sys.stderr)
        return 2
    version = subprocess.run(["squawk", "--version"], capture_output=True, text=True).stdout.strip()
    corpus = Path(tempfile.mkdtemp(prefix="lint-compare-")) / "migrations"
    facts = build(corpus, generated=120)
    files = sorted(corpus.glob("*/*.sql"))
    parsed = {str(f): parse_file(f, f.read_text(encoding="utf-8"), "sql") for f in files}
    wrapped = [f for f in files if parsed[str(f)].mode == Mode.TOOL_TRANSACTION]
    as_written = [f for f in files if parsed[str(f)].mode != Mode.TOOL_TRANSACTION]
    theirs = squawk_findings(wrapped, True) + squawk_findings(as_written, False)
    config = load_config({}, select="all", profile="mercurio")  # every rule, the house rules included
    ours = lint_paths([corpus], config).findings

    def statement_of(path: str, line: int) -> int | None:
        for stmt in parsed[path].statements:
            last = parsed[path].line_column(stmt.end)[0]
            if stmt.line <= line <= last:
                return stmt.index
        return None

    covers = {}
    for rule in registry().values():
        for name in rule.squawk:
            covers.setdefault(name, set()).add(rule.id)
    ours_at = {}
    for finding in ours:
        statement = finding.statement if finding.statement is not None else statement_of(finding.file, finding.line)
        ours_at.setdefault((finding.file, statement), set()).add(finding.rule)
    totals, matched, missed, reverting, no_lock = Counter(), Counter(), [], Counter(), Counter()
    for item in theirs:
        rule = item.get("rule_name") or item.get("rule") or "?"
        path = str(Path(item["file"]))
        line = item.get("line", 0) + 1
        totals[rule] += 1
        hit = ours_at.get((path, statement_of(path, line)), set()) & covers.get(rule, set())
        if not hit and rule in ("require-lock-timeout", "require-statement-timeout"):
            hit = {f.rule for f in ours if f.file == path} & covers[rule]  # both report once per file
        if hit:
            matched[rule] += 1
        elif path.endswith("rollback.sql") and rule.startswith(("ban-drop", "require-concurrent-index-deletion")):
            reverting[rule] += 1  # the rollback drops what its own migration created: that is its job
        elif rule in ("require-lock-timeout", "require-statement-timeout") and not any(
                list(locked_tables(FileContext(parsed[path], None, Schema(), config), stmt))
                for stmt in parsed[path].statements):
            no_lock[rule] += 1  # the file locks no table that existed before it (functions, temp or new tables)
        else:
            missed.append((rule, path, line))
    print(f"corpus: {facts}; {len(files)} SQL files; squawk {version}; mercurio-migrate lint --select all\n")
    print("| squawk rule | squawk findings | also reported by mercurio-migrate | rollback undoing its migration | "
          "file locks no pre-existing table | not reported | mercurio rule(s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    unmatched = Counter(rule for rule, _, _ in missed)
    for rule in sorted(totals):
        print(f"| `{rule}` | {totals[rule]} | {matched[rule]} | {reverting[rule]} | {no_lock[rule]} | {unmatched[rule]} | "
              f"{', '.join(sorted(covers.get(rule, ()))) or '—'} |")
    print(f"| **total** | **{sum(totals.values())}** | **{sum(matched.values())}** | **{sum(reverting.values())}** | "
          f"**{sum(no_lock.values())}** | **{len(missed)}** | |\n")
    guideline = Counter(f.rule for f in ours if registry()[f.rule].category == "guideline")
    print("Findings squawk has no rule for (mercurio guideline rules): "
          + ", ".join(f"`{r}` {n}" for r, n in sorted(guideline.items())))
    extra = Counter(f.rule for f in ours if registry()[f.rule].category != "guideline" and not registry()[f.rule].squawk)
    if extra:
        print("Lock-safety findings squawk has no rule for: " + ", ".join(f"`{r}` {n}" for r, n in sorted(extra.items())))
    for rule, path, line in missed:
        print(f"MISSED {rule} {path}:{line}", file=sys.stderr)
    shutil.rmtree(corpus.parent, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
