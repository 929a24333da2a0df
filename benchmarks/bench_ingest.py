#!/usr/bin/env python3
"""Time `pplog ingest`: a 2M-line log into Parquet, then small increments.

1. A fresh dataset from the synthetic 2M-line elb_log (lines/s into Parquet).
2. A large dataset (the same log split into many commits, so the state has
   history), then a run that finds 1,000 new lines: its time must follow the
   new data, not the history.

Each run is a separate `pplog ingest` process; wall time includes start-up.
With --baseline REV, the fresh dataset is also made by pplog as of git
revision REV (its src/ from `git archive`, as bench_summarize.py runs one),
the two taking turns in each of the --repeat rounds.

    python benchmarks/bench_ingest.py --lines 2000000 --repeat 3 --record
    python benchmarks/bench_ingest.py --repeat 5 --baseline a7d4f2b --record
"""

from __future__ import annotations

import argparse
import contextlib
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

from bench_summarize import (  # noqa: E402
    ROOT,
    compiled,
    ensure_log,
    machine,
    pplog_from,
    revision_src,
)


def ingest(log: str, dataset: Path, src: Path = ROOT / "src") -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `pplog ingest` run, pplog
    imported from `src` (this tree's, or a revision's src/)."""
    argv = [*pplog_from(src), "ingest", log, "--dataset", str(dataset)]
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
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also time the fresh dataset with pplog as of git revision REV",
    )
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    compiled(ROOT / "src")
    log = ensure_log(args.lines)
    size = log.stat().st_size / 2**20
    rows = []
    with contextlib.ExitStack() as stack:
        work = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="pplog-bench-"))
        )
        # this tree and the baseline take turns in each round
        sources = {"fresh dataset": ROOT / "src"}
        if args.baseline:
            base = stack.enter_context(revision_src(args.baseline))
            sources[f"fresh dataset @ {args.baseline}"] = base
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in sources}
        for k in range(max(1, args.repeat)):
            for name, src in sources.items():
                runs[name].append(ingest(str(log), work / f"fresh-{k}", src))
                shutil.rmtree(work / f"fresh-{k}")
        for name, timed in runs.items():
            wall, peak = min(r[0] for r in timed), max(r[1] for r in timed)
            rows.append((name, args.lines, size, wall, peak))
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
    if args.baseline:
        table += (
            f"\n\nFresh dataset against pplog @ {args.baseline}: "
            f"{rows[0][3] / rows[1][3]:.2f}x the time."
        )
    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    print(table)
    if args.record:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = (
            f"\n## {stamp}: pplog ingest\n\nMachine: {machine()}.\n"
            f"Command: `python benchmarks/bench_ingest.py --lines {args.lines} "
            f"--steps {args.steps} --repeat {args.repeat}{baseline} --record` (wall "
            "time includes interpreter start-up; the fresh dataset: best of the "
            "runs, taking turns with the baseline).\n\n"
            f"{table}\n"
        )
        with (HERE / "RESULTS.md").open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
