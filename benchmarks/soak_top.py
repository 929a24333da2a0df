#!/usr/bin/env python3
"""`pplog top` for a simulated half hour: does its memory stay bounded?

Thirty minutes of traffic run in a fast loop: a simulated clock moves one
second a step, and each step appends `--rate` lines in which every client
address and every path is new (the worst case for memory: nothing repeats),
then `top` polls and finishes its view (every window in turn). The resident
set size is sampled as it runs; the run prints one JSON object with the
samples (simulated second, MiB) and what `top` folded into ``(other)``.

    python benchmarks/soak_top.py                      # 1800 s at 300 lines/s
    python benchmarks/soak_top.py --seconds 600 --rate 1000 --max-keys 2000

`tests/test_top_soak.py` (slow suite) runs it and checks the bound that
README.md documents.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

WINDOWS = ("1m", "5m", "15m", "all")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def soak(seconds: int, rate: int, max_keys: int, every: int) -> dict[str, object]:
    from pplog.run.live import Live

    start = 1_800_000_000.0
    now = [start]
    with tempfile.TemporaryDirectory(prefix="pplog-soak-") as tmp:
        log = Path(tmp) / "access.log"
        log.write_text("")
        samples: list[tuple[int, float]] = []
        n = 0
        wall = time.monotonic()
        with Live(
            [str(log)], geoip=(), max_keys=max_keys, clock=lambda: now[0]
        ) as live:
            for step in range(seconds):
                now[0] = start + step
                stamp = dt.datetime.fromtimestamp(now[0], dt.UTC).strftime(
                    "%d/%b/%Y:%H:%M:%S +0000"
                )
                lines = []
                for _ in range(rate):
                    client = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
                    status = 200 if n % 10 else 404
                    lines.append(
                        f'{client} - - [{stamp}] "GET /item/{n} HTTP/1.1" {status} '
                        f'512 "-" "agent/{n % 997}"\n'
                    )
                    n += 1
                with log.open("a", encoding="utf-8") as f:
                    f.write("".join(lines))
                live.poll()
                if step % every == 0:
                    view = live.view(WINDOWS[(step // every) % len(WINDOWS)])
                    samples.append((step, round(rss_mib(), 1)))
            final = live.view("all")
            requests = int(final.summary.overview["requests"].item())
            folded = live.folded
    return {
        "seconds": seconds,
        "rate": rate,
        "lines": n,
        "requests_all_window": requests,
        "max_keys": max_keys,
        "folded": folded,
        "clients_shown": final.summary.clients.height,
        "samples": samples,
        "rss_end_mib": samples[-1][1],
        "rss_max_mib": max(s[1] for s in samples),
        "wall_seconds": round(time.monotonic() - wall, 1),
        "last_window": view.window,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=1800)
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--max-keys", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=5, help="finish a view every N steps")
    args = ap.parse_args(argv)
    print(json.dumps(soak(args.seconds, args.rate, args.max_keys, args.every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
