"""The benchmark's pure arithmetic: how contenders are compared with each other."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.apply_all import head_to_head  # noqa: E402


def test_head_to_head_divides_times_of_the_same_round():
    ours = {0: 0.6, 1: 0.5, 2: 0.9}
    peer = {0: 0.3, 1: 1.0, 2: 0.9}
    assert head_to_head(ours, peer) == [2.0, 0.5, 1.0]


def test_head_to_head_skips_rounds_only_one_of_them_ran():
    # a slow peer runs fewer rounds: only the rounds both ran are compared
    assert head_to_head({0: 1.0, 1: 2.0, 2: 3.0}, {1: 4.0}) == [0.5]
    assert head_to_head({0: 1.0}, {}) == []


def test_head_to_head_ignores_a_zero_time():
    assert head_to_head({0: 1.0, 1: 1.0}, {0: 0.0, 1: 2.0}) == [0.5]
