"""Speed: mercurio-migrate lint on 1,000 generated migration folders vs squawk on the same files.

Each tool runs as a whole process (what a CI job pays), several times; the median wall time is reported,
with the ratio. `taskset -c 0` pins both to one core when available. squawk is skipped (with a note) if it
is not on PATH (`pip install squawk-cli`).

An installed package has its bytecode compiled (pip does it); a source checkout run with
PYTHONDONTWRITEBYTECODE set compiles every imported module on every run. When that variable is set, lint is
timed both ways: as the environment runs it, and with a bytecode cache (PYTHONPYCACHEPREFIX in the
benchmark's temporary directory, so the source tree is not touched).

With two processors, lint is also timed unpinned, `--jobs 2` (a large directory linted as two halves in two
processes; same findings, and the default when two processors are available) against `--jobs 1`, run in
turn and compared pair by pair. squawk is always timed on one core.

    python benchmarks/lint_bench.py [FOLDERS] [RUNS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lint_corpus import generated_folders  # noqa: E402


def timed(command: list[str], runs: int, env: dict | None = None) -> float:
    subprocess.run(command, capture_output=True, env=env)  # warm-up: page cache, Python bytecode
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def paired(first: list[str], second: list[str], runs: int, env: dict | None = None) -> tuple[float, float, float]:
    """(median of first, median of second, median of the ratios first/second), the two run in turn."""
    subprocess.run(first, capture_output=True, env=env)
    subprocess.run(second, capture_output=True, env=env)
    a, b = [], []
    for _ in range(runs):
        for command, samples in ((first, a), (second, b)):
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, env=env)
            samples.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b))


def main() -> int:
    folders = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    root = Path(tempfile.mkdtemp(prefix="lint-bench-")) / "migrations"
    root.mkdir(parents=True)
    statements = generated_folders(root, folders)
    files = sorted(str(p) for p in root.glob("*/*.sql"))
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    lint = pin + [sys.executable, "-m", "mercurio_migrate", "lint", "--format", "json", str(root)]
    ours = {"": timed(lint, runs)}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(root.parent / "pycache")
        ours = {" (no bytecode cache)": ours[""], " (bytecode cached)": timed(lint, runs, env)}
    two = None
    if pin and len(os.sched_getaffinity(0)) >= 2:
        unpinned = lint[len(pin):]
        two = paired(unpinned + ["--jobs", "2"], unpinned + ["--jobs", "1"], runs, env if len(ours) > 1 else None)
    print(f"{folders} folders, {len(files)} files, {statements} statements; median of {runs} runs, one core")
    for label, seconds in ours.items():
        print(f"mercurio-migrate lint{label}: {seconds:.3f} s")
    if two is not None:
        cached = " (bytecode cached)" if len(ours) > 1 else ""
        print(f"mercurio-migrate lint, unpinned{cached}: --jobs 2 {two[0]:.3f} s, --jobs 1 {two[1]:.3f} s, "
              f"ratio pair by pair {two[2]:.2f}")
    if shutil.which("squawk"):
        theirs = timed(pin + ["squawk", "--reporter", "json", *files], runs)
        print(f"squawk: {theirs:.3f} s")
        for label, seconds in ours.items():
            print(f"ratio mercurio/squawk{label}: {seconds / theirs:.2f}")
        if two is not None:
            print(f"ratio mercurio --jobs 2 unpinned/squawk one core: {two[0] / theirs:.2f}")
    else:
        print("squawk not on PATH: pip install squawk-cli for the comparison")
    shutil.rmtree(root.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
