#!/usr/bin/env python3
"""Where the time of `pplog summarize LOG` goes, step by step, in one process.

Runs the steps `pplog.tasks.map_task` and `pplog.run.summarize` run, timing
each on its own (best of --repeat, wall and CPU seconds): interpreter and
import start-up (a fresh `python -c "import pplog.cli"`), the input check
(UTF-8, CR, NUL, line lengths), format detection, parse and spool, the trust
decisions (formats that need them), the map queries into the Partial (each
frame), finish and the JSON output. The steps add up to about the
end-to-end time of `bench_summarize.py`; a step timed alone can be a little
faster than inside the whole run.

    python benchmarks/profile_summarize.py --log benchmarks/data/elb_2000000.log
    python benchmarks/profile_summarize.py --log benchmarks/data/main_2000000.log --repeat 5
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import polars as pl  # noqa: E402

from pplog import _fastsplit, sources, tasks  # noqa: E402
from pplog.clientip import PAIR_KEY, attribute, with_pair_key  # noqa: E402
from pplog.outputs.json import chunks  # noqa: E402
from pplog.pipeline import parse_lines  # noqa: E402
from pplog.pipeline.spec import LogSpec  # noqa: E402
from pplog.reports import mapping  # noqa: E402
from pplog.reports._spool import spooled, with_report_columns  # noqa: E402
from pplog.reports.finish import FinishSettings, finish  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - wall, _cpu() - cpu


def startup() -> float:
    """Wall seconds of a fresh interpreter importing the CLI."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pplog.cli"], check=True)
    return time.perf_counter() - start


def profile(log: Path) -> dict[str, tuple[float, float]]:
    steps: dict[str, tuple[float, float]] = {}
    srcs = sources.expand([log])
    spec = LogSpec.build()
    groups, w, c = _timed(lambda: spec.groups(srcs))
    steps["format detection"] = (w, c)
    fmt, policy = groups[0].format, groups[0].policy
    # where the C road reads the file, only its head is judged first (the C
    # code checks the rest of the text as it cuts it)
    whole = not _fastsplit.applies(fmt)
    _, w, c = _timed(lambda: sources._judged(srcs, None, whole=whole))
    label = (
        "UTF-8, CR, NUL, line lengths"
        if whole
        else "its head: the C road checks the rest"
    )
    steps[f"input check ({label})"] = (w, c)
    with tempfile.TemporaryDirectory(prefix="pplog-profile-") as tmp:
        lines, native = sources.scan_lines(srcs, split=fmt, policy=policy)
        rows = with_pair_key(parse_lines(lines, fmt, decode=False), policy)
        # the header kept only where the C split did not decide, as map_task does
        decided = tasks._decided(rows, policy)
        spool, w, c = _timed(
            lambda: spooled(rows, Path(tmp), with_offset=not native, decided=decided)
        )
        steps["read, parse, spool to Parquet"] = (w, c)
        if PAIR_KEY in spool.collect_schema().names():
            attributed, w, c = _timed(
                lambda: attribute(spool, policy, eager_decisions=True)
            )
            steps["trust decisions (once per distinct peer and header)"] = (w, c)
        else:
            attributed = attribute(spool, policy, eager_decisions=True)
        frame = with_report_columns(attributed)
        queries: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        collect = mapping._collect

        def timed_collect(lf: pl.LazyFrame) -> pl.DataFrame:
            out, w, c = _timed(lambda: collect(lf))
            name = _frame_name(out)
            queries[name][0] += w
            queries[name][1] += c
            return out

        mapping._collect = timed_collect
        try:
            # as `summarize` maps one task cut to its default top 10 rows: the
            # pairs of the shown clients and paths only (`mapping.Shown`)
            settings = mapping.MapSettings(escape=fmt.escape, shown=mapping.Shown(10))
            partial, w, c = _timed(lambda: mapping.partial_of(frame, settings))
        finally:
            mapping._collect = collect
        steps["map: queries over the spool into the Partial"] = (w, c)
        for name, (qw, qc) in sorted(queries.items(), key=lambda kv: -kv[1][0]):
            steps[f"  of which: {name}"] = (qw, qc)
    tables, w, c = _timed(
        lambda: finish(partial, FinishSettings(top=10, policy=policy))
    )
    steps["finish: every table from the Partial"] = (w, c)
    summary = tables.summary(top=10, by="path")
    _, w, c = _timed(lambda: "".join(chunks(summary)))
    steps["JSON output"] = (w, c)
    return steps


def _frame_name(frame: pl.DataFrame) -> str:
    """The Partial frame a map query returned, from its columns."""
    cols = frame.columns
    for key, name in [
        ("client_hash", "distinct (client, path) pairs as hashes"),
        ("http_user_agent", "per (client, user agent, visitor) sums"),
        ("lines", "overview sums, rejects by reason"),
        ("rank", "first rejected lines"),
        ("measure", "latency value counts"),
        ("peer", "balancers"),
        ("http_referer", "referrers"),
        ("host", "hosts"),
        ("time", "timeline"),
    ]:
        if key in cols:
            return name
    if cols[:2] == ["status", "path"]:
        return "errors per (status, path, client)"
    return "paths" if cols[0] == "path" else "status codes"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):
        for step, (w, c) in profile(args.log).items():
            if step not in best or w < best[step][0]:
                best[step] = (w, c)
    start = min(startup() for _ in range(args.repeat))
    print(
        f"`python benchmarks/profile_summarize.py --log {args.log} --repeat {args.repeat}`"
    )
    print("(best of the runs, each step timed alone)\n")
    print("| step | wall s | CPU s |")
    print("| --- | ---: | ---: |")
    print(f"| start-up: interpreter, polars and pplog imports | {start:.2f} | |")
    for step, (w, c) in best.items():
        print(f"| {step} | {w:.2f} | {c:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
