#!/usr/bin/env python3
"""Time `pplog summarize DATASET`: merged rollups against re-reading the rows.

Ingests the 2M-line elb_log of bench_summarize.py into a fresh dataset (one
`pplog ingest` process, timed), then summarizes the dataset two ways, each in a
fresh process, best of --repeat:

- rollups: `pplog summarize DATASET` as shipped (merges each file's Partial);
- rows: the same command with rollups turned off (`pplog.run.dataset._ROLLUPS`), so
  every row is read back and mapped, as before rollups existed;
- compacted: rollups again after `pplog compact` merged the day's files (and
  their rollups) into one, as ingest does once a partition holds 32 files.

Both JSON outputs (--top 0) must be byte-identical before a time is kept.
Recorded: the whole process (start-up included), the first `summarize` call
in it (lazy imports included) and a second, warm call (what a notebook sees).

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
import pplog, pplog.run.dataset
from pplog.outputs.json import chunks
pplog.run.dataset._ROLLUPS = sys.argv[1] == "1"
top = int(sys.argv[3])
start = time.perf_counter()
summary = pplog.summarize(sys.argv[2], top=top)
cold = time.perf_counter() - start
start = time.perf_counter()
pplog.summarize(sys.argv[2], top=top)
warm = time.perf_counter() - start
sys.stdout.write("".join(chunks(summary)))
sys.stderr.write(f"{cold} {warm}\\n")
"""


def summarize(
    dataset: Path, *, rollups: bool, top: int = 10
) -> tuple[float, float, float, bytes]:
    """Whole-process seconds, the first and the second `summarize` call, JSON."""
    argv = [sys.executable, "-c", CHILD, "1" if rollups else "0", str(dataset)]
    start = time.perf_counter()
    done = subprocess.run([*argv, str(top)], capture_output=True, check=True)
    cold, warm = (float(x) for x in done.stderr.decode().split()[-2:])
    # the process as a command would run it: start-up, one call, output
    wall = time.perf_counter() - start - warm
    return wall, cold, warm, done.stdout


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
        outputs = {}
        for name, rollups in (("rollups", True), ("rows", False), ("compacted", True)):
            if name == "compacted":
                compact = [sys.executable, "-m", "pplog", "compact", str(dataset)]
                subprocess.run([*compact, "--min-files", "2"], check=True)
            outputs[name] = summarize(dataset, rollups=rollups, top=0)[3]
            runs = [summarize(dataset, rollups=rollups) for _ in range(args.repeat)]
            results[name] = tuple(min(r[i] for r in runs) for i in range(3))
        if not outputs["rollups"] == outputs["rows"] == outputs["compacted"]:
            msg = "rollups and rows give different JSON"
            raise SystemExit(msg)
    rw, rc, rh = results["rollups"]
    ow, oc, oh = results["rows"]
    cw, cc, ch = results["compacted"]
    lines = [
        f"ingest (fresh dataset): {ingest:.2f} s, {args.lines / ingest:,.0f} lines/s",
        f"rows re-read:     {ow:.2f} s command, {oc:.2f} s first call, {oh:.2f} s warm",
        f"rollups merged:   {rw:.2f} s command, {rc:.2f} s first call, {rh:.2f} s warm",
        f"after compaction: {cw:.2f} s command, {cc:.2f} s first call, {ch:.2f} s warm",
        f"rollups faster:   {ow / rw:.1f}x, {oc / rc:.1f}x, {oh / rh:.1f}x",
        f"compacted faster: {ow / cw:.1f}x, {oc / cc:.1f}x, {oh / ch:.1f}x",
    ]
    print("\n".join(lines))
    if args.record:
        cmd = "python benchmarks/bench_dataset.py " + " ".join(sys.argv[1:])
        text = (
            f"\n## summarize DATASET: rollups against rows ({dt.date.today()})\n\n"
            f"{machine()}\n\n`{cmd}`: {args.lines:,} lines ingested into a fresh "
            f"dataset; best of {args.repeat}; JSON (--top 0) identical on every "
            "road; times with the default --top 10.\n\n"
            "| | whole command s | first summarize call s | warm call s |\n"
            "| --- | ---: | ---: | ---: |\n"
            f"| rows re-read | {ow:.2f} | {oc:.2f} | {oh:.2f} |\n"
            f"| rollups merged (as ingested) | {rw:.2f} | {rc:.2f} | {rh:.2f} |\n"
            f"| rollups after `pplog compact` | {cw:.2f} | {cc:.2f} | {ch:.2f} |\n"
            f"| rollups faster (as ingested) | {ow / rw:.1f}x | {oc / rc:.1f}x "
            f"| {oh / rh:.1f}x |\n"
            f"| rollups faster (compacted) | {ow / cw:.1f}x | {oc / cc:.1f}x "
            f"| {oh / ch:.1f}x |\n\n"
            f"ingest of the same {args.lines:,} lines: {ingest:.2f} s "
            f"({args.lines / ingest:,.0f} lines/s).\n"
        )
        with (HERE / "RESULTS.md").open("a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
