#!/usr/bin/env python3
"""Time the notebook road: `pplog.read_log(LOG)` into a DataFrame, and its peak memory.

Each run is a fresh interpreter that imports pplog from this tree's src/ (and,
with --baseline REV, from REV's, extracted from git), reads the log with
`pplog.read_log` and writes the frame's shape and a hash of every row to
stdout; both trees' outputs must be identical before a time is kept. The logs
are those of bench_summarize.py (`elb_log` and `main`), the variants run in
turn (--repeat rounds, best of each kept). Recorded: seconds of the whole
process (start-up included), lines/s and peak RSS.

    python benchmarks/bench_notebook.py --baseline 7cb6bff --record
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

# The frame's shape, columns and a hash of its rows (the same polars, the same
# hash): what two trees must agree on.
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import pplog
df = pplog.read_log(sys.argv[2], format=sys.argv[3])
print(df.shape, df.columns, df.hash_rows(seed=0).sum())
"""


def read(src: Path, log: Path, fmt: str, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `read_log` process from `src`."""
    return run([sys.executable, "-c", CHILD, str(src), str(log), fmt], out=out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--formats", nargs="+", default=["elb_log", "main"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--baseline", metavar="REV")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="pplog-bench-") as tmp:
        trees = [("this tree", ROOT / "src")]
        baseline = revision_src(args.baseline) if args.baseline else None
        if baseline is not None:
            trees.append((f"at {args.baseline}", baseline.__enter__()))
        try:
            for fmt in args.formats:
                log = ensure_log(args.lines, fmt)
                best: dict[str, tuple[float, float]] = {}
                outputs: dict[str, bytes] = {}
                for _ in range(args.repeat):  # the trees in turn
                    for name, src in trees:
                        out = Path(tmp) / "out.txt"
                        wall, peak = read(src, log, fmt, out)
                        outputs.setdefault(name, out.read_bytes())
                        if out.read_bytes() != outputs[name]:
                            raise SystemExit(f"{name}: two reads of {log} differ")
                        old = best.get(name, (float("inf"), 0.0))
                        best[name] = (min(old[0], wall), max(old[1], peak))
                if len(set(outputs.values())) > 1:
                    raise SystemExit(f"the frames read from {log} differ")
                for name, _ in trees:
                    wall, peak = best[name]
                    rows.append((fmt, name, args.lines, wall, peak))
        finally:
            if baseline is not None:
                baseline.__exit__(None, None, None)
    table = [
        "| format | pplog | lines | seconds | lines/s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {f} | {t} | {n:,} | {w:.2f} | {n / w:,.0f} | {m:.0f} |"
            for f, t, n, w, m in rows
        ),
    ]
    text = "\n".join(table)
    print(text)
    if args.record:
        record(
            "pplog.read_log (the notebook road)",
            (
                f"best of {args.repeat}, the trees in turn; a fresh process each, "
                "start-up included; the frames' rows hash the same"
            ),
            text,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
