#!/usr/bin/env python3
"""Time `pplog ingest`: a 2M-line log into Parquet, then small increments.

1. A fresh dataset from the synthetic 2M-line elb_log (lines/s into Parquet).
2. A large dataset (the same log split into many commits, so the state has
   history), then a run that finds 1,000 new lines: its time must follow the
   new data, not the history.

Each run is a separate `pplog ingest` process; wall time includes start-up.

    python benchmarks/bench_ingest.py --lines 2000000 --repeat 3 --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_summarize import ROOT, compiled, ensure_log, machine  # noqa: E402


def ingest(log: str, dataset: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `pplog ingest` run."""
    argv = [sys.executable, "-m", "pplog", "ingest", log, "--dataset", str(dataset)]
    argv += ["--format", "elb_log", "--compact-threshold", "0"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"pplog ingest failed: {err}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--steps", type=int, default=50, help="commits in the history")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="fresh datasets to time (best wall time, largest peak)",
    )
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    compiled(ROOT / "src")
    log = ensure_log(args.lines)
    size = log.stat().st_size / 2**20
    rows = []
    with tempfile.TemporaryDirectory(prefix="pplog-bench-") as tmp:
        work = Path(tmp)
        runs = []
        for k in range(max(1, args.repeat)):
            runs.append(ingest(str(log), work / f"fresh-{k}"))
            shutil.rmtree(work / f"fresh-{k}")
        wall, peak = min(r[0] for r in runs), max(r[1] for r in runs)
        rows.append(("fresh dataset", args.lines, size, wall, peak))
        # history: the log grows in `steps` pieces, one ingest run each
        live = work / "access.log"
        history = work / "history"
        step = log.stat().st_size // args.steps + 1
        # copied piece by piece: a child forked from a parent holding the whole
        # log would report the parent's pages in its peak RSS
        with log.open("rb") as src, live.open("wb") as out:
            while True:
                piece = src.read(step)
                if not piece:
                    break
                out.write(piece + src.readline())
                out.flush()
                ingest(str(live), history)
            src.seek(0)
            tail = b"".join(src.readline() for _ in range(1000))
        with live.open("ab") as out:
            out.write(tail)
        wall, peak = ingest(str(live), history)
        rows.append(
            (
                f"1,000 new lines, after {args.steps} commits",
                1000,
                len(tail) / 2**20,
                wall,
                peak,
            )
        )
        shutil.rmtree(history)
    header = "| run | lines | MiB | seconds | lines/s | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|"
    body = "\n".join(
        f"| {name} | {n:,} | {mib:,.1f} | {w:.2f} | {n / w:,.0f} | {p:,.0f} |"
        for name, n, mib, w, p in rows
    )
    table = f"{header}\n{body}"
    print(table)
    if args.record:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = (
            f"\n## {stamp}: pplog ingest\n\nMachine: {machine()}.\n"
            f"Command: `python benchmarks/bench_ingest.py --lines {args.lines} "
            f"--steps {args.steps} --repeat {args.repeat} --record` (wall time "
            "includes interpreter start-up; the fresh dataset: best of the runs).\n\n"
            f"{table}\n"
        )
        with (HERE / "RESULTS.md").open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
