"""A soak of `pplog top` (slow suite): half an hour of traffic in which every
client and path is new, run in a fast loop (`benchmarks/soak_top.py`).

The totals of the since-start window stay exact while keys past the cap are
folded into `(other)`, and memory reaches a plateau once the 15-minute
windows are full: under the bound README.md documents (`RSS_BOUND_MIB`;
measured: 302 MiB at most, a mean of 259 MiB from 15 to 20 minutes and 258
MiB in the last 5), with no growth beyond noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RSS_BOUND_MIB = 400  # README.md, "Watching live": the peak RSS of this soak
GROWTH_MIB = 25  # allowed drift of the mean RSS once the 15-minute windows are full


@pytest.mark.slow
def test_thirty_minutes_of_new_keys_stay_bounded() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak_top.py"),
            "--seconds",
            "1800",
            "--rate",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout)
    assert result["requests_all_window"] == result["lines"] == 540_000
    assert result["folded"] > 0
    samples = result["samples"]
    assert result["rss_max_mib"] < RSS_BOUND_MIB, samples

    def mean(start: int, stop: int) -> float:
        values = [mib for second, mib in samples if start <= second < stop]
        return sum(values) / len(values)

    # the longest window holds 15 minutes: from then on, a plateau
    assert mean(1500, 1800) - mean(900, 1200) < GROWTH_MIB, samples
