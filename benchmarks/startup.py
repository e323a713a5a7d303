"""3. CLI start-up: `--help`, and `status` on an empty set, against the bare interpreter's start-up.

`status` runs a second time from a copy of the package that has no bytecode, under PYTHONDONTWRITEBYTECODE:
what a source checkout costs on a machine that sets that variable (every module of the package compiled
on every call), against the compiled package that `python -m benchmarks` times everywhere else.

Also lists which heavy modules `--help` imports (they should load lazily, only when a command needs them)
and the biggest imports of each command, from `python -X importtime`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks import common
from benchmarks.common import Context, Section, Table, fmt_ratio, fmt_s, median, ratios, timed

NAME = "startup"
TITLE = "CLI start-up"
HEAVY = ("psycopg", "pglast", "rich", "cryptography")


def import_profile(args: list[str], env: dict, cwd: Path) -> tuple[list[tuple[str, float]], set[str]]:
    """(the five top-level imports costing most, in ms cumulative; the heavy packages imported at all)."""
    result = common.run([common.TOOL_PYTHON, "-X", "importtime", "-m", "mercurio_migrate", *args], env=env, cwd=cwd,
                 check=False)
    top: dict[str, float] = {}
    seen: set[str] = set()
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue
        package = name.strip().split(".")[0]
        if package in HEAVY:
            seen.add(package)
        if name.startswith(" ") and not name.startswith("  "):  # a top-level import (one space of indent)
            top[name.strip()] = max(top.get(name.strip(), 0), int(cumulative) / 1000)
    return sorted(top.items(), key=lambda item: -item[1])[:5], seen


def uncompiled_copy(work: Path) -> Path:
    """A directory holding a copy of the mercurio_migrate package without any __pycache__."""
    import mercurio_migrate

    root = Path(tempfile.mkdtemp(dir=work, prefix="uncompiled_"))
    shutil.copytree(Path(mercurio_migrate.__file__).parent, root / "mercurio_migrate",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    server = ctx.server
    reps = 2 if ctx.quick else 11
    empty = Path(tempfile.mkdtemp(dir=ctx.work, prefix="empty_"))
    (empty / "migrations").mkdir()
    database = server.create_db("s")
    env = server.mercurio_env(database)
    floor_cmd = [common.TOOL_PYTHON, "-c", "pass"]
    uncompiled = uncompiled_copy(ctx.work)
    uncompiled_env = env | {"PYTHONPATH": str(uncompiled), "PYTHONDONTWRITEBYTECODE": "1"}
    commands = {
        "mercurio-migrate --help": (server.mercurio_cmd("--help"), env),
        "mercurio-migrate status (empty set)": (server.mercurio_cmd("--dir", str(empty / "migrations"), "status"),
                                                env),
        "mercurio-migrate status (empty set), package without bytecode": (
            [common.TOOL_PYTHON, "-m", "mercurio_migrate", "--dir", str(empty / "migrations"), "status"],
            uncompiled_env),
    }
    table = Table("start-up", ["command", "runs", "median", "floor median", "ratio to floor (min–max)"])
    floors = []
    for label, (cmd, cmd_env) in commands.items():
        pairs = []
        try:
            for _ in range(reps):
                pairs.append((timed(floor_cmd, env=env, cwd=empty), timed(cmd, env=cmd_env, cwd=empty)))
        except common.BenchError as exc:
            table.rows.append([label, "0", f"failed: {exc}", "", ""])
            section.failed = True
            continue
        floors += [f for f, _ in pairs]
        table.rows.append([label, str(reps), fmt_s(median([c for _, c in pairs])),
                           fmt_s(median([f for f, _ in pairs])), fmt_ratio(ratios(pairs))])
    table.rows.insert(0, [f"python -c pass (floor: {common.TOOL_PYTHON} start-up)", str(len(floors)),
                          fmt_s(median(floors)), "", "1.00×"])
    section.tables.append(table)
    imports = Table("imports (python -X importtime)", ["command", "heavy packages imported",
                                                       "costliest top-level imports (cumulative)"])
    for label, args in (("--help", ["--help"]), ("status (empty set)", ["--dir", str(empty / "migrations"),
                                                                         "status"])):
        top, seen = import_profile(args, env, empty)
        imports.rows.append([label, ", ".join(sorted(seen)) or "none",
                             ", ".join(f"{name} {ms:.0f} ms" for name, ms in top)])
    section.tables.append(imports)
    section.notes.append("Floor: the same interpreter starting and exiting (`python -c pass`), measured pair by "
                         f"pair. Lazy means `--help` imports none of {', '.join(HEAVY)}.")
    server.drop_db(database)
    return section

