#!/usr/bin/env python3
"""Time `pplog summarize` end to end (and GoAccess on the same file); record the results.

Generates a synthetic log of N lines with genlog.py (elb_log unless --format says main or
combined; cached under benchmarks/data/),
runs each tool as a separate process, and measures wall time and peak RSS
(`resource.getrusage(RUSAGE_CHILDREN)`). With --scale K it also runs pplog on a K-times
larger file, to show that memory stays bounded as the input grows.

    python benchmarks/bench_summarize.py --lines 2000000 --scale 4 --record
    python benchmarks/bench_summarize.py --format main --baseline e7c8071 --record

--record appends a dated section to benchmarks/RESULTS.md with the machine description.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE))

import genlog  # noqa: E402

GOACCESS_FORMAT = '%h - %e [%d:%t %^] "%r" %s %b "%R" "%u"'


def ensure_log(lines: int, fmt: str = "elb_log") -> Path:
    DATA.mkdir(exist_ok=True)
    stem = "elb" if fmt == "elb_log" else fmt
    path = DATA / f"{stem}_{lines}.log"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            genlog.generate(fmt, lines, out=out)
        tmp.replace(path)
    return path


def run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def best_of(argv: list[str], repeat: int) -> tuple[float, float]:
    results = [run(argv) for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


def time_revision(
    rev: str, log: Path, repeat: int, fmt: str = "elb_log"
) -> tuple[float, float]:
    """Best wall time and peak RSS of `pplog summarize` as of git revision `rev`.

    The revision is checked out into a temporary worktree and imported from
    its src/ with this interpreter, so both runs share Python and polars.
    """
    import tempfile

    repo = HERE.parent
    with tempfile.TemporaryDirectory(prefix="pplog-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            code = (
                f"import sys; sys.path.insert(0, {str(tree / 'src')!r}); "
                "from pplog.cli import main; main()"
            )
            argv = [sys.executable, "-c", code, "summarize", "--format", fmt]
            argv += ["--to", "json", "--no-progress", str(log)]
            return best_of(argv, repeat)
        finally:
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                check=True,
                capture_output=True,
            )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import polars

    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}, polars {polars.__version__}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument(
        "--scale", type=int, default=0, help="also run pplog on K x the lines"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--format",
        default="elb_log",
        choices=("elb_log", "main", "combined"),
        help="log format to generate and read (main: clients from X-Forwarded-For)",
    )
    ap.add_argument(
        "--goaccess-lines",
        type=int,
        default=200_000,
        help="GoAccess is slow: time it on this many lines (0 = skip)",
    )
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also time pplog as of git revision REV (e.g. the first slice) on the same "
        "file, from a temporary worktree, and report the ratio",
    )
    ap.add_argument(
        "--record", action="store_true", help="append results to RESULTS.md"
    )
    args = ap.parse_args()

    pplog = [
        sys.executable,
        "-m",
        "pplog",
        "summarize",
        "--format",
        args.format,
        "--to",
        "json",
        "--no-progress",
    ]
    log = ensure_log(args.lines, args.format)
    size = log.stat().st_size / 2**20
    rows = []
    wall, peak = best_of([*pplog, str(log)], args.repeat)
    rows.append(("pplog summarize", args.lines, size, wall, peak))
    if args.baseline:
        b_wall, b_peak = time_revision(args.baseline, log, args.repeat, args.format)
        rows.append(
            (f"pplog summarize @ {args.baseline}", args.lines, size, b_wall, b_peak)
        )
    goaccess = shutil.which("goaccess")
    if goaccess and args.goaccess_lines:
        small = ensure_log(args.goaccess_lines, args.format)
        argv = [
            goaccess,
            str(small),
            "--log-format",
            GOACCESS_FORMAT + (' "%^"' if args.format == "main" else ""),
            "--date-format",
            "%d/%b/%Y",
            "--time-format",
            "%T",
            "-o",
            "/dev/null",
            "--output-format",
            "json",
        ]
        g_wall, g_peak = best_of(argv, 1)
        version = subprocess.run(
            [goaccess, "--version"], capture_output=True, text=True
        )
        label = (
            version.stdout.split("\n", 1)[0]
            .replace("GoAccess - ", "goaccess ")
            .rstrip(".")
        )
        rows.append(
            (
                f"{label} (json output)",
                args.goaccess_lines,
                small.stat().st_size / 2**20,
                g_wall,
                g_peak,
            )
        )
    if args.scale:
        big = ensure_log(args.lines * args.scale, args.format)
        b_wall, b_peak = best_of([*pplog, str(big)], 1)
        rows.append(
            (
                f"pplog summarize ({args.scale}x)",
                args.lines * args.scale,
                big.stat().st_size / 2**20,
                b_wall,
                b_peak,
            )
        )

    header = "| tool | lines | MiB | seconds | lines/s | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|"
    body = "\n".join(
        f"| {name} | {n:,} | {mib:,.0f} | {w:.2f} | {n / w:,.0f} | {p:,.0f} |"
        for name, n, mib, w, p in rows
    )
    table = f"{header}\n{body}"
    if args.baseline:
        base = next(r for r in rows if r[0].startswith("pplog summarize @"))
        table += (
            f"\n\nTime against pplog @ {args.baseline} on the same file: "
            f"{rows[0][3] / base[3]:.2f}x."
        )
    if args.scale:
        ratio = rows[-1][4] / rows[0][4]
        table += (
            f"\n\nPeak memory on {args.scale}x the input: {ratio:.2f}x the peak on 1x."
        )
    print(table)
    if args.record:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = (
            f"\n## {stamp}\n\nMachine: {machine()}.\n"
            f"Command: `python benchmarks/bench_summarize.py --lines {args.lines} "
            f"--scale {args.scale}"
            + (f" --format {args.format}" if args.format != "elb_log" else "")
            + (f" --baseline {args.baseline}" if args.baseline else "")
            + f" --record` (pplog best of {args.repeat}; wall time includes "
            f"interpreter start-up).\n\n{table}\n"
        )
        results = HERE / "RESULTS.md"
        if not results.exists():
            results.write_text(
                "# Benchmark results\n\nNewest last. Regenerate with the command shown.\n"
            )
        with results.open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
