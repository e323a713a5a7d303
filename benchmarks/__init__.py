"""Reproducible side-by-side measurements of mercurio-migrate: `python -m benchmarks`."""

import sys
from pathlib import Path

# The harness imports mercurio_migrate in this process too (the throwaway cluster, the snapshot-plan
# benchmark's captures, the verify floor's snapshots, start-up's copy of the package without bytecode): take
# it from this tree's src/, not from wherever the interpreter's editable install points (another worktree's).
_SRC = str(Path(__file__).resolve().parent.parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
