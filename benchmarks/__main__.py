"""`python -m benchmarks`: runs every benchmark on a throwaway PostgreSQL and writes docs/benchmarks.md.

    python -m benchmarks                 # everything (under 15 minutes on 2 cores), writes docs/benchmarks.md
    python -m benchmarks --quick         # tiny N: checks that every benchmark still runs
    python -m benchmarks --only status   # one benchmark (repeatable)

A benchmark whose feature is not there (a command or migration folder missing) reports
"not available: <reason>" instead of failing.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import common

MODULES = ("apply_all", "snapshot_plan", "status", "startup", "fixed_cost", "lock_impact", "data_migration", "verify_lint")
DOCS = common.REPO / "docs" / "benchmarks.md"


def run_all(names: list[str], quick: bool, install_peers: bool = True,
            data_rows: int | None = None) -> tuple[list[common.Section], dict, dict, float]:
    started = time.perf_counter()
    common.WORK.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run_", dir=common.WORK))
    common.peers(install_peers)
    versions = common.versions()  # before the run: the tree may change under a long run
    versions["mercurio-migrate timed as"] = common.install_tool(into_venv=not quick)
    if common.TOOL_PYTHON != Path(sys.executable):
        versions["interpreter start-up (python -c pass)"] = (
            f"{common.fmt_s(common.interpreter_startup(common.TOOL_PYTHON))} in the tool's venv, "
            f"{common.fmt_s(common.interpreter_startup(Path(sys.executable)))} for {sys.executable} (its .pth files run)")
    server = common.Server()
    sections = []
    try:
        ctx = common.Context(server, quick, work, install_peers, data_rows)
        machine = common.machine_info(server)
        for name in names:
            module = importlib.import_module(f"benchmarks.{name}")
            print(f"== {module.TITLE} ...", file=sys.stderr, flush=True)
            begun = time.perf_counter()
            try:
                section = module.run(ctx)
            except common.NotAvailable as exc:
                section = common.Section(name, module.TITLE, notes=[f"not available: {exc}"])
            except Exception as exc:  # noqa: BLE001 - one failed benchmark must not hide the others
                traceback.print_exc()
                section = common.Section(name, module.TITLE, notes=[f"FAILED: {type(exc).__name__}: {exc}"])
                section.failed = True
            section.seconds = time.perf_counter() - begun
            sections.append(section)
            print(render_section(section), flush=True)
        for databases in ctx.applied.values():
            for database in databases:
                server.drop_db(database)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    return sections, machine, versions, time.perf_counter() - started


def render_table(table: common.Table) -> str:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.headers) + " |",
             "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def render_section(section: common.Section) -> str:
    out = [f"## {section.title}", "", f"_{section.seconds:.0f} s_", ""]
    out += [note + "\n" for note in section.notes]
    out += [render_table(table) for table in section.tables]
    if section.targets:
        out.append(render_table(targets_table(section.targets)))
    return "\n".join(out)


def targets_table(targets: list[common.Target]) -> common.Table:
    mark = {True: "met", False: "**missed**", None: "not measured"}
    return common.Table("targets", ["what", "target", "measured", ""],
                        [[t.what, t.target, t.measured, mark[t.met]] for t in targets])


def render(sections: list[common.Section], machine: dict, versions: dict, seconds: float, quick: bool) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Benchmarks", "",
           f"Written by `python -m benchmarks{' --quick' if quick else ''}` on {now} in {seconds / 60:.1f} minutes. "
           "Every figure is a median over repeated runs of whole commands (process start to exit); each ratio is "
           "the median of ratios computed pair by pair in the same run (floor and contender back to back), "
           "because these machines are noisy: never compare absolute times across runs.", ""]
    out.append(render_table(common.Table("machine", ["", ""], [[k, v] for k, v in machine.items()])))
    out.append(render_table(common.Table("versions", ["", ""], [[k, v] for k, v in versions.items()])))
    targets = [t for s in sections for t in s.targets]
    if targets:
        out.append("## Targets\n")
        out.append(render_table(targets_table(targets)))
    out += [render_section(s) for s in sections]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run, not a measurement")
    parser.add_argument("--only", action="append", choices=MODULES, metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(MODULES)}")
    parser.add_argument("--output", type=Path, help="where to write the report (default: docs/benchmarks.md for "
                        "a full run, benchmarks/.work/ otherwise)")
    parser.add_argument("--no-install", action="store_true",
                        help="use the peers already installed; install none (they are reported not available)")
    parser.add_argument("--data-rows", type=int, metavar="N",
                        help="legacy rows for the data-migration benchmark (default 200,000; the issue's 1,000,000 "
                        "adds ~5 minutes)")
    args = parser.parse_args(argv)
    # a SIGTERM (a CI job's timeout, `kill`) ends the run through the same clean-up as Ctrl-C: the running
    # command is killed, the throwaway cluster stopped and its directory removed
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    names = [m for m in MODULES if not args.only or m in args.only]
    output = args.output or (DOCS if not args.quick and not args.only else common.WORK / "benchmarks-partial.md")
    sections, machine, versions, seconds = run_all(names, args.quick, not args.no_install, args.data_rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(sections, machine, versions, seconds, args.quick))
    print(f"wrote {output} ({seconds / 60:.1f} minutes)", file=sys.stderr)
    return 1 if any(s.failed for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
