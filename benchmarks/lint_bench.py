"""Speed: mercurio-migrate lint on 1,000 generated migration folders vs squawk on the same files.

Each tool runs as a whole process (what a CI job pays), several times; the median wall time is reported,
with the ratio. `taskset -c 0` pins both to one core when available. squawk is skipped (with a note) if it
is not on PATH (`pip install squawk-cli`).

An installed package has its bytecode compiled (pip does it); a source checkout run with
PYTHONDONTWRITEBYTECODE set compiles every imported module on every run. When that variable is set, lint is
timed both ways: as the environment runs it, and with a bytecode cache (PYTHONPYCACHEPREFIX in the
benchmark's temporary directory, so the source tree is not touched).

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
    warm_up = subprocess.run(command, capture_output=True, env=env)  # page cache, Python bytecode
    if warm_up.returncode not in (0, 1):  # 1: findings; anything else did not lint, and its time means nothing
        sys.exit(f"`{' '.join(command)}` exited {warm_up.returncode}: {warm_up.stderr.decode()[-500:]}")
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


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
    print(f"{folders} folders, {len(files)} files, {statements} statements; median of {runs} runs, one core")
    for label, seconds in ours.items():
        print(f"mercurio-migrate lint{label}: {seconds:.3f} s")
    if shutil.which("squawk"):
        theirs = timed(pin + ["squawk", "--reporter", "json", *files], runs)
        print(f"squawk: {theirs:.3f} s")
        for label, seconds in ours.items():
            print(f"ratio mercurio/squawk{label}: {seconds / theirs:.2f}")
    else:
        print("squawk not on PATH: pip install squawk-cli for the comparison")
    shutil.rmtree(root.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
