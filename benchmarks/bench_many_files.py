#!/usr/bin/env python3
"""Time pplog over a directory of many small logs (a host with many vhosts).

`--sites` rotation sets of `--rotations` + 1 plain files each (the live
log and `.1` ... `.N`), `--lines` lines a file, all in one directory. Each
command is a fresh process (wall time includes start-up):

- `summarize DIR --to json` and `doctor DIR`;
- `ingest 'DIR/*'` into a fresh dataset, then again with no new line, then
  with one new line in every live log;
- `top 'DIR/*' --since 100000d --to jsonl --duration 1` (every file read back;
  the view then runs its one second).

With --baseline REV, pplog as of git revision REV runs the same commands on
the same files (bench_summarize.py's way), and the summaries' JSON is
compared (without the dataset's name).

    python benchmarks/bench_many_files.py --record
    python benchmarks/bench_many_files.py --baseline e8d0a03 --record
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_summarize import ROOT, compiled, machine, pplog_from, revision_src  # noqa: E402

LINE = (
    '198.51.100.{c} - - [05/Dec/2026:10:{m:02d}:{s:02d} +0000] "GET /site{site}/{n} '
    'HTTP/1.1" {status} {n} "-" "Mozilla/5.0 (site {site})"\n'
)


def write_sites(root: Path, sites: int, rotations: int, lines: int) -> int:
    """The directory of logs; how many files."""
    root.mkdir(parents=True)
    for site in range(sites):
        for r in range(rotations + 1):
            name = root / (f"site{site}.access.log" + (f".{r}" if r else ""))
            with name.open("w") as f:
                for i in range(lines):
                    n = r * lines + i
                    f.write(
                        LINE.format(
                            c=site % 250,
                            m=n // 60 % 60,
                            s=n % 60,
                            site=site,
                            n=n,
                            status=(200, 404, 500)[n % 3],
                        )
                    )
    return sites * (rotations + 1)


def run(argv: list[str], timeout: float) -> tuple[float | str, str]:
    """Wall seconds and stdout of one command; instead of the seconds, what
    went wrong when it ran past `timeout` (it is then stopped) or failed."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s", ""
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1][:160]
        return f"failed after {wall:.1f} s: {last}", ""
    return wall, proc.stdout


def append_new_lines(root: Path, sites: int, minute: int) -> None:
    for site in range(sites):
        with (root / f"site{site}.access.log").open("a") as f:
            f.write(LINE.format(c=7, m=minute, s=0, site=site, n=9999, status=200))


def times(src: Path, logs: Path, sites: int, work: Path, timeout: float) -> dict:
    """Each command's seconds with pplog from `src`, and the summary's JSON."""
    pplog = pplog_from(src)
    out: dict = {}
    out["summarize"], summary = run(
        [*pplog, "summarize", str(logs), "--to", "json", "--no-progress"], timeout
    )
    out["doctor"], _ = run([*pplog, "doctor", str(logs)], timeout)
    data = work / "dataset"
    shutil.rmtree(data, ignore_errors=True)
    ingest = [*pplog, "ingest", f"{logs}/*", "--dataset", str(data)]
    out["ingest, first run"], _ = run(ingest, timeout)
    out["ingest, no new line"], _ = run(ingest, timeout)
    append_new_lines(logs, sites, 58)
    out["ingest, a line in each live log"], _ = run(ingest, timeout)
    out["top --since, 1 s view"], _ = run(
        [*pplog, "top", f"{logs}/*", "--since", "100000d", "--to", "jsonl"]
        + ["--duration", "1"],
        timeout,
    )
    doc = json.loads(summary) if summary else None
    if doc is not None:
        doc["overview"].pop("sources", None)
    return {"seconds": out, "summary": doc}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=400)
    ap.add_argument("--rotations", type=int, default=8)
    ap.add_argument("--lines", type=int, default=5)
    ap.add_argument("--baseline", help="git revision to compare with")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a command")
    ap.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        work = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="pplog-many-"))
        )
        runs = {"pplog": compiled(ROOT / "src")}
        if args.baseline:
            base = stack.enter_context(revision_src(args.baseline))
            runs[f"pplog @ {args.baseline}"] = compiled(base)
        results = {}
        files = 0
        for label, src in runs.items():
            logs = work / "logs"  # the same files, fresh for each, at one path
            shutil.rmtree(logs, ignore_errors=True)
            files = write_sites(logs, args.sites, args.rotations, args.lines)
            results[label] = times(src, logs, args.sites, work, args.timeout)
    commands = list(next(iter(results.values()))["seconds"])
    header = "| command | " + " | ".join(results) + " |"
    rows = [header, "|---|" + "---:|" * len(results)]
    for command in commands:
        cells = []
        for r in results.values():
            s = r["seconds"][command]
            cells.append(s if isinstance(s, str) else f"{s:.2f}")
        rows.append(f"| `{command}` | " + " | ".join(cells) + " |")
    summaries = [r["summary"] for r in results.values() if r["summary"] is not None]
    same = len(summaries) == len(results) and all(s == summaries[0] for s in summaries)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    text = "\n".join(
        [
            f"## {stamp}: many small files",
            "",
            f"Machine: {machine()}.",
            f"Command: `python benchmarks/bench_many_files.py --sites {args.sites} "
            f"--rotations {args.rotations} --lines {args.lines}{baseline} --record` "
            f"({files:,} files of {args.lines} lines in one directory; seconds of "
            "wall time, one run each, a fresh process).",
            "",
            *rows,
            "",
            *(
                [
                    "`summarize --to json` the same with both revisions: "
                    + ("yes." if same else "NO.")
                ]
                if len(results) > 1
                else []
            ),
            "",
        ]
    )
    print(text)
    if args.record:
        with (HERE / "RESULTS.md").open("a") as f:
            f.write("\n" + text)
    return 0 if same or len(results) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
