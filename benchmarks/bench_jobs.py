#!/usr/bin/env python3
"""Time `pplog summarize --jobs N` on eight 250k-line files; record the results.

The 2M-line elb_log of bench_summarize.py is cut into eight files of 250,000 lines
(plain, and gzip'd), and `pplog summarize DIR --jobs N --to json --top 0` runs as a
separate process for each N, the variants in turn (--repeat rounds, best of
each kept). Recorded per run: wall time, user + system CPU of the
process and its workers, and wall / CPU (0.5 means both cores busy the whole time).
The JSON of every N must be byte-identical to --jobs 1 before a time is kept.

`--jobs N` is the cores pplog uses: `--jobs 1` gives polars one thread
(`pplog._threads`), `--jobs 2` two, in one process or more.

pplog gives each process at least 2 GiB (`pplog.tasks.POOL_MIN_BYTES`): on
340 MB, --jobs 2 maps in one process. --force-pool also runs each N > 1 with
that minimum at 0, so the pool's cost on small inputs is on record too.

    python benchmarks/bench_jobs.py --jobs 1 2 --repeat 3 --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_summarize import DATA, ensure_log, machine  # noqa: E402


def eight_files(lines: int, parts: int, *, compressed: bool) -> Path:
    """`parts` files of `lines / parts` lines each, cut from the 2M-line log."""
    kind = "gz" if compressed else "plain"
    folder = DATA / f"split_{lines}_{parts}_{kind}"
    if folder.exists():
        return folder
    source = ensure_log(lines)
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    per = lines // parts
    with source.open("rb") as f:
        for i in range(parts):
            name = tmp / f"access-{i}.log{'.gz' if compressed else ''}"
            opener = gzip.open if compressed else open
            with opener(name, "wb") as out:
                for _ in range(per):
                    out.write(f.readline())
    tmp.replace(folder)
    return folder


def run(argv: list[str], out: Path) -> tuple[float, float]:
    """Wall seconds and user+system CPU seconds of one child and its workers."""
    start = time.perf_counter()
    with out.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return wall, usage.ru_utime + usage.ru_stime


# `pplog` with every input pooled (POOL_MIN_BYTES 0); spawned workers need no
# patch: only this process plans the bins. `pplog.cli` is imported first, as
# the command does, so that it sets polars' allocator (`pplog._memory`).
FORCED = (
    "import sys; from pplog.cli import main; import pplog.tasks; "
    "pplog.tasks.POOL_MIN_BYTES = 0; sys.argv[0] = 'pplog'; main()"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--force-pool", action="store_true")
    parser.add_argument(
        "--single",
        type=int,
        nargs="*",
        default=[],
        help="also time one plain file of this many lines (e.g. 8000000)",
    )
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    pplog = [sys.executable, "-m", "pplog"]
    rows = []
    inputs = [
        ("plain", eight_files(args.lines, args.parts, compressed=False), args.lines),
        ("gzip", eight_files(args.lines, args.parts, compressed=True), args.lines),
        *((f"one file, {n:,} lines", ensure_log(n), n) for n in args.single),
    ]
    for kind, folder, count in inputs:
        reference: bytes | None = None
        variants = [(j, False) for j in args.jobs]
        if args.force_pool:
            variants += [(j, True) for j in args.jobs if j > 1]
        argvs = []
        for jobs, forced in variants:
            cli = [sys.executable, "-c", FORCED] if forced else pplog
            argv = [*cli, "summarize", str(folder), "--to", "json", "--top", "0"]
            argvs.append([*argv, "--jobs", str(jobs)])
        # round-robin, so that a slow spell of the machine hits every variant
        runs: list[list[tuple[float, float]]] = [[] for _ in variants]
        for _ in range(args.repeat):
            for (jobs, _forced), argv, got in zip(variants, argvs, runs, strict=True):
                out = DATA / f"jobs_{jobs}.json"
                got.append(run(argv, out))
                body = out.read_bytes()
                if reference is None:
                    reference = body
                elif body != reference:
                    msg = f"--jobs {jobs} JSON differs from --jobs {args.jobs[0]}"
                    raise SystemExit(msg)
        for (jobs, forced), got in zip(variants, runs, strict=True):
            wall, cpu = min(got)
            label = f"{jobs} (pool forced)" if forced else str(jobs)
            rows.append((kind, label, wall, cpu, wall / cpu, count / wall))
            print(
                f"{kind:5} --jobs {label}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
                f"wall/CPU {wall / cpu:.2f}, {count / wall:,.0f} lines/s"
            )
    if args.record:
        table = [
            "| input | --jobs | wall s | user+sys s | wall / CPU | lines/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        table += [
            f"| {k} | {j} | {w:.2f} | {c:.2f} | {r:.2f} | {lps:,.0f} |"
            for k, j, w, c, r, lps in rows
        ]
        cmd = "python benchmarks/bench_jobs.py " + " ".join(sys.argv[1:])
        text = (
            f"\n## --jobs on {args.parts} files of {args.lines // args.parts:,} lines "
            f"({dt.date.today()})\n\n{machine()}\n\n`{cmd}`; best of {args.repeat} "
            "(the variants run in turn), JSON identical for every --jobs.\n\n"
            + "\n".join(table)
            + "\n"
        )
        with (HERE / "RESULTS.md").open("a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
