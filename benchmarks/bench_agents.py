#!/usr/bin/env python3
"""Time user-agent work when every request has a new user agent (an attack).

For each size N, two `combined` logs of N lines are written (standard library
only, deterministic): `same`, where every line has one of 8 real user agents,
and `unique`, where every line's user agent is a new one (a browser, a bot, a
library or junk, each with a unique token). `pplog summarize LOG --to json
--top 0` runs as a separate process on each; the difference between the two is
what the distinct agents cost (classes at map time, ua-parser and the tables
at finish time). Each distinct agent is parsed once, so that difference must
grow in proportion to N: the last column, microseconds per distinct agent,
stays flat. `parse_agents` alone is timed in this process too.

    python benchmarks/bench_agents.py --lines 50000 100000 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REPO = HERE.parent

AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/{v}.0.{n}.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/{n} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-{n}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0 id{n}",
    "Mozilla/5.0 (compatible; Crawler{n}bot/{v}.1; +http://example.com/bot)",
    "python-requests/2.{v}.{n}",
    "curl/8.{v}.{n}",
    "x{n} junk {v} (nothing anyone knows)",
)
LINE = (
    '203.0.113.{a} - - [10/Oct/2025:13:{m:02d}:{s:02d} +0000] "GET /p/{p} HTTP/1.1" '
    '200 {b} "-" "{ua}"\n'
)


def write_log(lines: int, *, unique: bool) -> Path:
    """A `combined` log of `lines` lines; `unique`: a new user agent on each."""
    path = DATA / f"agents_{'unique' if unique else 'same'}_{lines}.log"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(16)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="ascii") as out:
        for i in range(lines):
            kind = AGENTS[i % len(AGENTS)]
            ua = kind.format(v=rng.randrange(60, 130), n=i if unique else 0)
            out.write(
                LINE.format(
                    a=i % 250,
                    m=(i // 60) % 60,
                    s=i % 60,
                    p=i % 97,
                    b=rng.randrange(200, 9000),
                    ua=ua,
                )
            )
    tmp.replace(path)
    return path


def summarize_seconds(log: Path, repeat: int) -> float:
    """Best wall time of `pplog summarize LOG --to json --top 0` in a new process."""
    argv = [sys.executable, "-m", "pplog", "summarize", str(log)]
    argv += ["--format", "combined", "--to", "json", "--top", "0", "-o", "/dev/null"]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def parse_seconds(log: Path) -> float:
    """`parse_agents` alone on the log's distinct user agents (this process)."""
    import polars as pl

    from pplog.enrich import useragents
    from pplog.enrich.useragents import parse_agents

    agents = pl.Series([line.rsplit('"', 2)[1] for line in log.open()]).unique()
    parse_agents(agents.head(10))  # the rules are built once per process
    # ... and answers are kept per process: forget them, or the agents met
    # in the warm-up and in the smaller logs before would not be parsed
    useragents._ANSWERED.known.clear()
    start = time.perf_counter()
    parse_agents(agents)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lines", type=int, nargs="+", default=[50_000, 100_000, 200_000]
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        "| lines | same agents (s) | unique agents (s) | difference (s) "
        "| µs per distinct agent | parse_agents alone (s) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for lines in args.lines:
        same = summarize_seconds(write_log(lines, unique=False), args.repeat)
        unique_log = write_log(lines, unique=True)
        unique = summarize_seconds(unique_log, args.repeat)
        parse = parse_seconds(unique_log)
        extra = unique - same
        print(
            f"| {lines:,} | {same:.2f} | {unique:.2f} | {extra:.2f} "
            f"| {extra / lines * 1e6:.1f} | {parse:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
