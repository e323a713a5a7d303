"""Smoke run of every benchmark (`python -m benchmarks --quick` sizes) so they cannot rot.

Asserts that each produces figures, never how fast anything is. Peers are used when a full run already
installed them (benchmarks/.work/peers, sqitch); the smoke run installs nothing. A benchmark whose feature
is not in the tree yet reports "not available" and is skipped here.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import common  # noqa: E402
from benchmarks.__main__ import MODULES, render, render_section  # noqa: E402

FIGURE = re.compile(r"\d(\.\d+)?\s*(ms|s|×)")


@pytest.fixture(scope="module")
def bench(pg_cluster):
    work = Path(tempfile.mkdtemp(prefix="bench-smoke-", dir="/tmp"))
    os.chmod(work, 0o755)
    ctx = common.Context(common.Server(pg_cluster), quick=True, work=work, install_peers=False)
    sections: list[common.Section] = []
    yield ctx, sections
    for databases in ctx.applied.values():
        for database in databases:
            ctx.server.drop_db(database)
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_produces_figures(bench, name):
    ctx, sections = bench
    module = importlib.import_module(f"benchmarks.{name}")
    try:
        section = module.run(ctx)
    except common.NotAvailable as exc:
        pytest.skip(f"not available: {exc}")
    sections.append(section)
    assert not section.failed, section.notes
    assert section.tables
    cells = [cell for table in section.tables for row in table.rows for cell in row]
    assert any(FIGURE.search(cell) for cell in cells), cells
    assert not any(cell.startswith(("not measured", "failed")) for cell in cells), cells
    assert f"## {module.TITLE}" in render_section(section)


def test_report_renders(bench):
    ctx, sections = bench
    if not sections:
        pytest.skip("no benchmark ran")
    text = render(sections, common.machine_info(ctx.server), common.versions(), 1.0, True)
    assert text.startswith("# Benchmarks")
    assert "| PostgreSQL |" in text


@pytest.fixture
def bench_dir():
    """A folder for a benchmark run's cluster that the server's own user can reach (pytest's are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-term-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_terminated_run_stops_and_removes_its_cluster(bench_dir):
    """SIGTERM (a CI timeout) must not leave a PostgreSQL server running in /dev/shm."""
    import signal
    import subprocess
    import time

    tmp_path = bench_dir
    env = os.environ | {"MERCURIO_BENCH_DIR": str(tmp_path)}
    run = subprocess.Popen([sys.executable, "-m", "benchmarks", "--quick", "--no-install", "--only", "status",
                            "--output", str(tmp_path / "report.md")], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("mercurio-bench-*/cluster/pgdata/postmaster.pid")):
            assert run.poll() is None and time.monotonic() < deadline, "the run ended before its server started"
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM, run.stderr.read().decode()[-2000:]
    finally:
        if run.poll() is None:
            run.kill()
    assert not list(tmp_path.glob("mercurio-bench-*")), "the cluster's directory was left behind"
    servers = subprocess.run(["pgrep", "-f", f"postgres -D {tmp_path}"], capture_output=True, text=True).stdout
    assert not servers.strip(), "a server of the terminated run is still running"
    assert not (tmp_path / "report.md").exists()
