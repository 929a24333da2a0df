#!/usr/bin/env python3
"""Time `pplog summarize DATASET`: merged rollups against re-reading the rows.

Ingests the 2M-line elb_log of bench_summarize.py into a fresh dataset (one
`pplog ingest` process, timed), then summarizes the dataset two ways, each in a
fresh process, best of --repeat:

- rollups: `pplog summarize DATASET` as shipped (merges each file's Partial);
- rows: the same command with rollups turned off (`pplog.run._ROLLUPS`), so
  every row is read back and mapped, as before rollups existed.

Both JSON outputs (--top 0) must be byte-identical before a time is kept.
Recorded: the whole command (start-up included) and the summarize call alone
(measured inside the process).

    python benchmarks/bench_dataset.py --repeat 3 --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_summarize import ensure_log, machine  # noqa: E402

# Runs `pplog summarize` in this interpreter, timing the library call; argv[1]
# is 0 to turn rollups off.
CHILD = """
import sys, time
import pplog, pplog.run
from pplog.outputs.json import chunks
pplog.run._ROLLUPS = sys.argv[1] == "1"
start = time.perf_counter()
summary = pplog.summarize(sys.argv[2], top=0)
took = time.perf_counter() - start
sys.stdout.write("".join(chunks(summary)))
sys.stderr.write(f"{took}\\n")
"""


def summarize(dataset: Path, *, rollups: bool) -> tuple[float, float, bytes]:
    """Whole-process seconds, seconds inside `summarize`, and the JSON."""
    argv = [sys.executable, "-c", CHILD, "1" if rollups else "0", str(dataset)]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=True)
    wall = time.perf_counter() - start
    return wall, float(done.stderr.decode().strip().splitlines()[-1]), done.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    log = ensure_log(args.lines)
    with tempfile.TemporaryDirectory(prefix="pplog-bench-") as tmp:
        dataset = Path(tmp) / "dataset"
        argv = [sys.executable, "-m", "pplog", "ingest", str(log)]
        argv += ["--dataset", str(dataset), "--format", "elb_log"]
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        ingest = time.perf_counter() - start
        results = {}
        for rollups in (True, False):
            runs = [summarize(dataset, rollups=rollups) for _ in range(args.repeat)]
            wall = min(r[0] for r in runs)
            call = min(r[1] for r in runs)
            results[rollups] = (wall, call, runs[0][2])
        if results[True][2] != results[False][2]:
            msg = "rollups and rows give different JSON"
            raise SystemExit(msg)
    (rw, rc, _), (ow, oc, _) = results[True], results[False]
    lines = [
        f"ingest (fresh dataset): {ingest:.2f} s, {args.lines / ingest:,.0f} lines/s",
        f"summarize DATASET, rollups: {rw:.2f} s whole command, {rc:.2f} s in summarize",
        f"summarize DATASET, rows:    {ow:.2f} s whole command, {oc:.2f} s in summarize",
        f"rollups faster: {ow / rw:.1f}x whole command, {oc / rc:.1f}x in summarize",
    ]
    print("\n".join(lines))
    if args.record:
        cmd = "python benchmarks/bench_dataset.py " + " ".join(sys.argv[1:])
        text = (
            f"\n## summarize DATASET: rollups against rows ({dt.date.today()})\n\n"
            f"{machine()}\n\n`{cmd}`: {args.lines:,} lines ingested into a fresh "
            f"dataset; best of {args.repeat}; JSON (--top 0) identical on both "
            "roads.\n\n| | whole command s | in summarize s |\n| --- | ---: | ---: |\n"
            f"| rollups merged | {rw:.2f} | {rc:.2f} |\n"
            f"| rows re-read | {ow:.2f} | {oc:.2f} |\n"
            f"| rollups faster | {ow / rw:.1f}x | {oc / rc:.1f}x |\n\n"
            f"ingest of the same {args.lines:,} lines: {ingest:.2f} s "
            f"({args.lines / ingest:,.0f} lines/s).\n"
        )
        with (HERE / "RESULTS.md").open("a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
