#!/usr/bin/env python3
"""What each parsed column of a log costs on its own, in one process.

For every column `parse` gives a log (`pplog.pipeline.parse_lines`, as the
summary runs it: free text left escaped), one streaming query that reads the
file, parses only what that column needs (polars' projection pushdown drops
the rest) and counts its nulls; best wall and CPU seconds of --repeat runs.
The first rows are the floor: the lines alone, and every column at once.
A column's cost above the floor of "lines alone" is the parse work only it
needs, plus what it shares with the others (the split at the quotes, say),
so the rows do not add up to the "every column" row.

The lines are read as a summary of a large file reads them: cut and split
in C where the extension is built (`pplog._fastsplit`); with
``PPLOG_NO_C_SPLIT=1``, by polars' reader and expressions alone.

    python benchmarks/profile_columns.py --log benchmarks/data/elb_2000000.log
    python benchmarks/profile_columns.py --log benchmarks/data/main_2000000.log --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import polars as pl  # noqa: E402
from profile_summarize import _cpu  # noqa: E402 - which puts src/ on the path

from pplog import _fastsplit, sources  # noqa: E402
from pplog.pipeline import parse_lines  # noqa: E402
from pplog.pipeline.spec import LogSpec  # noqa: E402
from pplog.schema import LINE  # noqa: E402


def _best(lf: pl.LazyFrame, columns: list[str], repeat: int) -> tuple[float, float]:
    query = lf.select(pl.col(c).is_null().sum() for c in columns)
    best: tuple[float, float] | None = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _cpu()
        query.collect(engine="streaming")
        run = (time.perf_counter() - wall, _cpu() - cpu)
        best = run if best is None or run < best else best
    assert best is not None
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    srcs = sources.expand([args.log])
    group = LogSpec.build().groups(srcs)[0]
    if group.format is None:
        print(f"error: no format fits {args.log}", file=sys.stderr)
        return 1
    lines, _ = sources.scan_lines(srcs, split=group.format)
    rows = parse_lines(lines, group.format, decode=False)
    names = rows.collect_schema().names()
    road = "the C road" if _fastsplit.available() else "polars alone"
    print(
        f"`python benchmarks/profile_columns.py --log {args.log} "
        f"--repeat {args.repeat}` ({group.format.name}, {road}; best of the runs)\n"
    )
    print("| column | wall s | CPU s |")
    print("| --- | ---: | ---: |")
    wall, cpu = _best(rows, [LINE], args.repeat)
    print(f"| the lines alone (line numbers) | {wall:.2f} | {cpu:.2f} |")
    wall, cpu = _best(rows, names, args.repeat)
    print(f"| every column at once | {wall:.2f} | {cpu:.2f} |")
    for name in names:
        if name == LINE:
            continue
        wall, cpu = _best(rows, [name], args.repeat)
        print(f"| `{name}` | {wall:.2f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
