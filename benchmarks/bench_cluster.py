#!/usr/bin/env python3
"""Time `pplog summarize` on a local Dask cluster against one process and --jobs 2.

The 4M-line elb_log (genlog) is cut into sixteen plain files of 250,000 lines, and
`pplog summarize DIR --to json --top 0` runs as a separate process:

- `--jobs 1` (one process, polars' threads on every core);
- `--jobs 2` (below 2 GiB that is one process too), and `--jobs 2` with the pool
  forced (`POOL_MIN_BYTES` 0: two processes);
- `--cluster ADDRESS` against a `distributed.LocalCluster` of two single-threaded
  worker processes (each with `POLARS_MAX_THREADS` = cores / 2), started once
  and timed apart from the runs.

The four runs take turns, round after round (the cluster started first and
idle during the others), and each keeps its best; the cluster's time is also
compared with `--jobs 2`'s round by round. The JSON of every run must equal
--jobs 1's, byte for byte, before a time is kept. For the cluster runs the scheduler's task stream gives the compute time of
the map and merge tasks; overhead per task is the workers' time not spent
computing while the cluster held the run ((workers x span - compute) / tasks).
The partials' sizes (pickled, as Dask sends them) per input line show what grows
with the input (the map tasks' partials) and what does not (the merged one).

    python benchmarks/bench_cluster.py --repeat 3 --record
    python benchmarks/bench_cluster.py --lines 20000 --repeat 1   # a quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_jobs import FORCED, eight_files, run  # noqa: E402
from bench_summarize import DATA, machine  # noqa: E402

WORKERS = 2
CLUSTER = "--cluster (LocalCluster)"


def _pickled_size(value: object) -> int:
    """Bytes of `value` pickled (runs on a worker: pickled by value from here)."""
    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def partial_sizes(client: Any, folder: Path) -> tuple[int, int, int, int]:
    """(map tasks, their partials' total pickled bytes, the merged partial's
    bytes, input lines), mapped on the cluster as `summarize --cluster` maps."""
    from pplog import sources
    from pplog.pipeline import LogSpec
    from pplog.reports.partial import merge
    from pplog.run import cluster as dask_cluster
    from pplog.run._common import map_settings
    from pplog.tasks import Task

    spec = LogSpec()
    srcs = sources.expand([str(folder)])
    groups = spec.groups(srcs)
    tasks = [Task(tuple(g.sources), g.format, g.policy) for g in groups]
    ranks = {s.name: i for i, s in enumerate(srcs)}
    settings = map_settings(spec, groups[0].policy, ranks)
    work = dask_cluster.map_work(tasks, settings)
    maps = [client.submit(w.fn, *w.args, pure=False) for w in work]
    sizes = client.gather([client.submit(_pickled_size, f, pure=False) for f in maps])
    merged = client.submit(merge, maps, pure=False)
    lines = client.submit(lambda p: p.lines, merged, pure=False).result()
    merged_size = client.submit(_pickled_size, merged, pure=False).result()
    return len(maps), sum(sizes), merged_size, lines


def _polars_threads() -> int:
    import polars as pl

    return pl.thread_pool_size()


def task_stream(records: list[dict[str, Any]]) -> tuple[int, int, float, float]:
    """(map tasks, merge tasks, compute seconds, seconds from first start to
    last stop) of one run's pplog tasks in the scheduler's task stream."""
    maps = merges = 0
    compute = 0.0
    first, last = float("inf"), 0.0
    for rec in records:
        key = str(rec.get("key", ""))
        if not key.startswith(("pplog-map-", "pplog-merge-")):
            continue
        maps += key.startswith("pplog-map-")
        merges += key.startswith("pplog-merge-")
        for part in rec.get("startstops", ()):
            start, stop = part["start"], part["stop"]
            first, last = min(first, start), max(last, stop)
            if part.get("action") == "compute":
                compute += stop - start
    return maps, merges, compute, max(0.0, last - first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4_000_000, help="in all")
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    import distributed

    folder = eight_files(args.lines, args.parts, compressed=False)
    out = DATA / "cluster.json"
    base = [sys.executable, "-m", "pplog"]
    tail = ["summarize", str(folder), "--to", "json", "--top", "0"]
    rows: list[tuple[str, float, float]] = []
    threads = str(max(1, (os.cpu_count() or 1) // WORKERS))
    started = time.perf_counter()
    # only the workers get the threads variable (also when restarted); the
    # other runs are started without it, as a user would
    cluster = distributed.LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        env={"POLARS_MAX_THREADS": threads},
    )
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(WORKERS)
        seen = set(client.run(_polars_threads).values())
        if seen != {int(threads)}:
            raise SystemExit(f"the workers run polars on {seen} threads, not {threads}")
        startup = time.perf_counter() - started
        client.get_task_stream()  # the scheduler records tasks from now on
        print(f"LocalCluster of {WORKERS} workers: {startup:.2f} s to start")
        # the four runs take turns, round after round, so that the machine's
        # drift over the benchmark falls on all of them alike
        runs: dict[str, list[str]] = {
            "--jobs 1": [*base, *tail, "--jobs", "1"],
            "--jobs 2": [*base, *tail, "--jobs", "2"],
            "--jobs 2, pool forced": [
                sys.executable,
                "-c",
                FORCED,
                *tail,
                "--jobs",
                "2",
            ],
            CLUSTER: [*base, *tail, "--cluster", cluster.scheduler_address],
        }
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
        streams = []
        reference: bytes | None = None
        for _ in range(args.repeat):
            for label, argv in runs.items():
                since = time.time()
                wall, cpu = run(argv, out)
                body = out.read_bytes()
                if reference is None:
                    reference = body
                elif body != reference:
                    raise SystemExit(f"{label}: the JSON differs from --jobs 1's")
                times[label].append((wall, cpu))
                if label == CLUSTER:
                    stream = task_stream(client.get_task_stream(start=since))
                    streams.append(((wall, cpu), stream))
        for label, measured in times.items():
            wall, cpu = min(measured)
            rows.append((label, wall, cpu))
            print(f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU")
        (wall, cpu), (n_maps, n_merges, compute, span) = min(
            streams, key=lambda s: s[0]
        )
        tasks = n_maps + n_merges
        overhead = (WORKERS * span - compute) / max(tasks, 1)
        print(
            f"task stream: {n_maps} map + {n_merges} merge tasks, {compute:.2f} s "
            f"compute over {span:.2f} s on {WORKERS} workers: "
            f"{overhead * 1000:.0f} ms overhead per task; "
            f"{wall - span:.2f} s of the run outside the workers (start-up, "
            "detection, splitting, finish)"
        )
        n, map_bytes, merged_bytes, lines = partial_sizes(client, folder)
        print(
            f"partials: {n} map tasks, {map_bytes / lines:.1f} B per input line in "
            f"all; merged {merged_bytes / lines:.1f} B per line "
            f"({merged_bytes / 2**20:.1f} MiB for {lines:,} lines)"
        )
    jobs2 = next(w for label, w, _ in rows if label == "--jobs 2")
    forced = next(w for label, w, _ in rows if label == "--jobs 2, pool forced")
    paired = [
        c[0] / j[0] for c, j in zip(times[CLUSTER], times["--jobs 2"], strict=True)
    ]
    ratios = (
        f"Cluster / `--jobs 2`: {wall / jobs2:.2f}x, best against best (target: at "
        f"most 1.3x); round by round {', '.join(f'{r:.2f}' for r in paired)}x "
        f"(median {statistics.median(paired):.2f}x); cluster / `--jobs 2` with the "
        f"pool forced: {wall / forced:.2f}x."
    )
    print(ratios)
    if args.record:
        table = [
            "| run | wall s | CPU s (not the cluster's workers) | lines/s |",
            "| --- | ---: | ---: | ---: |",
        ]
        table += [
            f"| {label} | {w:.2f} | {c:.2f} | {args.lines / w:,.0f} |"
            for label, w, c in rows
        ]
        cmd = "python benchmarks/bench_cluster.py " + " ".join(sys.argv[1:])
        text = (
            f"\n## A local Dask cluster on {args.parts} files of "
            f"{args.lines // args.parts:,} lines ({dt.date.today()})\n\n{machine()}\n\n"
            f"`{cmd}`; best of {args.repeat}, JSON identical for every run. "
            f"LocalCluster: {WORKERS} single-threaded worker processes "
            f"(POLARS_MAX_THREADS={threads}), {startup:.2f} s to start (not in "
            "the times).\n\n" + "\n".join(table) + "\n\n"
            f"Task stream of the best cluster run: {n_maps} map and {n_merges} merge "
            f"tasks, {compute:.2f} s of compute in {span:.2f} s on {WORKERS} workers, "
            f"so {overhead * 1000:.0f} ms of scheduler and transfer overhead per "
            f"task; {wall - span:.2f} s of the run outside the workers (interpreter "
            f"start, detection, planning, finish). {ratios}\n\n"
            f"Partials (pickled): the {n} map tasks' {map_bytes / lines:.1f} B per "
            f"input line in all, growing with the input; merged, "
            f"{merged_bytes / lines:.1f} B per line ({merged_bytes / 2**20:.1f} MiB), "
            "bounded by the distinct keys (clients, paths, pairs), not the lines.\n"
        )
        with (HERE / "RESULTS.md").open("a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
