#!/usr/bin/env python3
"""Time `pplog doctor` and its peak memory on a log and on one --scale times as long.

Runs `pplog doctor LOG --to json` (a fresh process each, best of --repeat) on the
log of bench_summarize.py (elb_log, or --format main: X-Forwarded-For, whose trust
decisions the C split leaves some of) at --lines and at --scale times as many lines, with
this tree's src/ and, with --baseline REV, with REV's (from git). The findings
(JSON) of both must be byte-identical before a time is kept. Recorded: seconds,
lines/s, the peak RSS, and the ratio of the two peaks (memory must not grow with
the input).

    python benchmarks/bench_doctor.py --baseline 8f9d53e --record
    python benchmarks/bench_doctor.py --format main --scale 1 --baseline 8f9d53e --record
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_summarize import ensure_log, record, revision_src, run  # noqa: E402

FOUND = 3  # doctor's exit status when it found problems: a normal outcome here


def doctor(src: Path, log: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of `pplog doctor LOG --to json` from `src`."""
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); "
        "from pplog.cli import main; sys.argv[0] = 'pplog'; main()"
    )
    argv = [sys.executable, "-c", code, "doctor", str(log), "--to", "json"]
    return run(argv, out=out, ok=(0, FOUND))


def measure(src: Path, log: Path, repeat: int, out: Path) -> tuple[float, float]:
    runs = [doctor(src, log, out) for _ in range(repeat)]
    return min(w for w, _ in runs), max(m for _, m in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--format", choices=("elb_log", "main"), default="elb_log")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--baseline", metavar="REV")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    sizes = list(dict.fromkeys([args.lines, args.lines * args.scale]))
    rows: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="pplog-bench-") as tmp:
        for lines in sizes:
            log = ensure_log(lines, args.format)
            mine = Path(tmp) / f"mine_{lines}.json"
            wall, peak = measure(ROOT / "src", log, args.repeat, mine)
            rows.append(("pplog doctor", lines, wall, peak))
            if args.baseline:
                theirs = Path(tmp) / f"theirs_{lines}.json"
                with revision_src(args.baseline) as src:
                    b_wall, b_peak = measure(src, log, 1, theirs)
                if theirs.read_bytes() != mine.read_bytes():
                    msg = f"the findings on {log} differ from {args.baseline}'s"
                    raise SystemExit(msg)
                rows.append((f"pplog doctor @ {args.baseline}", lines, b_wall, b_peak))
    table = [
        "| tool | lines | seconds | lines/s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
        *(f"| {t} | {n:,} | {w:.2f} | {n / w:,.0f} | {m:.0f} |" for t, n, w, m in rows),
    ]
    peaks = {(t, n): m for t, n, _, m in rows}
    ratios = [
        f"{t}: peak on {sizes[-1]:,} lines "
        f"{peaks[t, sizes[-1]] / peaks[t, sizes[0]]:.2f}x the peak on {sizes[0]:,}"
        for t in dict.fromkeys(t for t, *_ in rows)
        if len(sizes) > 1
    ]
    text = "\n".join([*table, "", *ratios])
    print(text)
    if args.record:
        record(
            "pplog doctor"
            if args.format == "elb_log"
            else f"pplog doctor, {args.format}",
            f"best of {args.repeat}; the baseline once; findings byte-identical",
            text,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
