#!/usr/bin/env python3
"""Time `pplog summarize` end to end (and GoAccess, DuckDB and chDB on the same file); record the results.

Generates a synthetic log of N lines with genlog.py (elb_log unless --format says main or
combined; cached under benchmarks/data/), or takes an existing one with --log
(gzipped too: its lines and MiB are its text's),
runs each tool as a separate process, and measures wall time and peak RSS
(`os.wait4` of the child). With --scale K it also runs pplog on a K-times
larger file, to show that memory stays bounded as the input grows.

    python benchmarks/bench_summarize.py --lines 2000000 --scale 4 --peers --baseline e7c8071 --record
    python benchmarks/bench_summarize.py --format main --baseline e7c8071 --record

--peers (elb_log only; `pip install -e '.[bench]'`) also times DuckDB and chDB computing
pplog's three main tables with the SQL in peers.py, each in a fresh process
(`python benchmarks/peers.py duckdb|chdb LOG`), after checking on the same file that
their top 10 rows equal pplog's (`peers.py --check`).

--baseline REV times pplog as of git revision REV too (its src/, from `git archive`,
its C extension built as pip builds it, run with this interpreter). Before anything is timed, the JSON of this tree and of REV
(`summarize LOG --to json --top 0`) are compared byte for byte: if they differ, the
first differing line is printed and --record refuses (exit 1); without --record the
timing goes on. --check-against REV makes the same check against REV without timing
it; --record needs one of the two, so no time is recorded for output that changed.
The pplog of this tree (src/ next to benchmarks/) is the one timed.

--record appends a dated section to benchmarks/RESULTS.md (or --results FILE) with the
machine description, the table and, with --peers, how the peers were run: the
commands and their SQL verbatim.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import io
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE))

import genlog  # noqa: E402
import peers  # noqa: E402

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


def run(
    argv: list[str],
    cwd: Path | None = None,
    *,
    out: Path | None = None,
    ok: tuple[int, ...] = (0,),
) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process (its stdout to
    `out`, if given; an exit status outside `ok` stops the benchmark)."""
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(out.open("wb")) if out else subprocess.DEVNULL
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def best_of(
    argv: list[str], repeat: int, cwd: Path | None = None
) -> tuple[float, float]:
    results = [run(argv, cwd) for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


def best_of_each(
    commands: dict[str, tuple[list[str], Path | None]], repeat: int
) -> dict[str, tuple[float, float]]:
    """Best wall time and largest peak RSS of each command over `repeat`
    rounds, the commands taking turns within each round: a machine that is
    slower for a while slows each of them alike (five runs of this tree then
    five of a baseline gave 1.01x where the two alternating gave 1.09x)."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, cwd) in commands.items():
            results[name].append(run(argv, cwd))
    return {
        name: (min(w for w, _ in r), max(p for _, p in r))
        for name, r in results.items()
    }


def with_extension(src: Path) -> bool:
    """Build `src`'s C extension in place (a revision extracted by `git
    archive` holds only its source), with the compiler and flags this Python
    was built with, as `pip install` does; whether it was built. Without it
    that revision runs on polars' road alone."""
    import sysconfig

    c_source = src / "pplog" / "_splitc.c"
    if not c_source.exists():
        return False
    var = sysconfig.get_config_var
    out = c_source.with_name(f"_splitc{var('EXT_SUFFIX')}")
    cmd = [
        *shlex.split(var("LDSHARED") or "cc -shared"),
        *shlex.split(var("CFLAGS") or ""),
        *shlex.split(var("CCSHARED") or "-fPIC"),
        f"-I{sysconfig.get_paths()['include']}",
        str(c_source),
        "-o",
        str(out),
    ]
    return subprocess.run(cmd, check=False, capture_output=True).returncode == 0


def compiled(src: Path) -> Path:
    """`src` with pplog's bytecode written beside its modules, as `pip install`
    writes it and Python does on first import, unless told not to
    (PYTHONDONTWRITEBYTECODE, set on some machines): a fresh process then
    reads it instead of compiling 90 modules (0.04-0.08 s of every run)."""
    import compileall

    compileall.compile_dir(src / "pplog", quiet=1)
    return src


def pplog_from(src: Path) -> list[str]:
    """The `pplog` command imported from the `src` directory given, with this
    interpreter (its arguments follow)."""
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); "
        "from pplog.cli import main; main()"
    )
    return [sys.executable, "-c", code]


def pplog_argv(src: Path, fmt: str) -> list[str]:
    """`pplog summarize` imported from the `src` directory given, with this interpreter."""
    return [*pplog_from(src), "summarize", "--format", fmt, "--no-progress"]


@contextlib.contextmanager
def revision_src(rev: str) -> Iterator[Path]:
    """The src/ directory of git revision `rev`, extracted into a temporary directory.

    `git archive` reads the object store only: no worktree is added to the repository.
    """
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
        check=False,
        capture_output=True,
    )
    if archive.returncode != 0:
        err = archive.stderr.decode(errors="replace").strip()
        raise SystemExit(f"cannot read src/ at revision {rev!r}: {err}")
    with tempfile.TemporaryDirectory(prefix="pplog-baseline-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / "src"
        if (src / "pplog" / "_splitc.c").exists() and not with_extension(src):
            print(f"note: {rev}'s C extension did not build: it runs on polars' road")
        yield compiled(src)


def json_output(argv: list[str], log: Path, out: Path) -> Path:
    """Write `argv`'s whole JSON summary of `log` (`--to json --top 0`) to `out`."""
    cmd = [*argv, "--to", "json", "--top", "0", "-o", str(out), str(log)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[3:])} failed: {done.stderr.strip()}")
    return out


def first_difference(a: Path, b: Path) -> str | None:
    """The first line where files `a` and `b` differ, described; None if they are equal."""
    number = 0
    with a.open("rb") as fa, b.open("rb") as fb:
        for number, (la, lb) in enumerate(
            zip(iter(fa.readline, b""), iter(fb.readline, b""), strict=False), 1
        ):
            if la != lb:
                return f"line {number}: {la[:300]!r} != {lb[:300]!r}"
        rest_a, rest_b = fa.readline(), fb.readline()
        if rest_a or rest_b:
            longer = a if rest_a else b
            return f"line {number + 1}: only {longer} goes on: {(rest_a or rest_b)[:300]!r}"
    return None


def check_identical(
    current: list[str], rev: str, src: Path, log: Path, fmt: str
) -> str | None:
    """Compare this tree's JSON summary of `log` with revision `rev`'s; the first difference or None."""
    with tempfile.TemporaryDirectory(prefix="pplog-json-") as tmp:
        mine = json_output(current, log, Path(tmp) / "current.json")
        theirs = json_output(pplog_argv(src, fmt), log, Path(tmp) / f"{rev}.json")
        diff = first_difference(mine, theirs)
        size = mine.stat().st_size
    if diff is None:
        return None
    return f"{diff} (this tree's JSON first, {rev}'s second; {size:,} bytes)"


def revision_argv(src: Path, log: Path, fmt: str = "elb_log") -> list[str]:
    """`pplog summarize LOG` imported from `src`, a revision's src/
    (`revision_src`), with this interpreter: both runs share Python and
    polars."""
    return [*pplog_argv(src, fmt), "--to", "json", str(log)]


def peer_command(peer: str, log: Path) -> list[str]:
    """How `peer` is run on `log`: peers.py with this interpreter, from the repository root."""
    return [sys.executable, str(HERE / "peers.py"), peer, shown_path(log)]


def shown_path(path: Path) -> str:
    """`path` relative to the repository root when it is inside, as commands show it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def ratio(pplog_seconds: float, peer_seconds: float) -> str:
    r = peer_seconds / pplog_seconds
    return f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower"


def peers_section(log: Path, repeat: int) -> str:
    """The "How the peers were run" part of a RESULTS.md section."""
    path = shown_path(log)
    commands = "\n".join(f"python benchmarks/peers.py {p} {path}" for p in peers.PEERS)
    parts = [
        "### How the peers were run\n",
        f"Each peer is a fresh process, timed like pplog (best of {repeat}, in turn "
        "with pplog; wall time "
        "includes interpreter start-up and imports; peak RSS of the process), run "
        "from the repository root; each prints its three tables as JSON "
        f"(`--top` {peers.TOP}), which the benchmark discards. Before the timing, "
        f"`python benchmarks/peers.py --check {path}` found both peers' tables equal "
        "to pplog's top 10 on this file (same keys and values, same request counts "
        "rank by rank).\n",
        f"```sh\n{commands}\n```\n",
        "Both parse each line with one RE2 regex over the whole line (lines that do "
        "not match are left out), keep the columns the tables read in an in-memory "
        "table, then run the same three GROUP BYs (the same SQL text on both "
        "engines), with their default threads (every core). Their tables hold fewer "
        "columns than pplog's (no top user agent per client, no 2xx/3xx per path, no "
        "clients or times per error) and pplog computes its other tables too, so "
        "the peers do less work.\n",
    ]
    for peer in peers.PEERS:
        sql = ";\n\n".join(peers.statements(peer, path)) + ";"
        parts.append(
            f"{peers.version(peer)}, statements in order:\n\n```sql\n{sql}\n```\n"
        )
    return "\n".join(parts)


def record(title: str, how: str, text: str) -> None:
    """Append a dated section to RESULTS.md: `title`, the machine, the command
    this script ran with and `how` it measured (a parenthesis), then `text`."""
    script = Path(sys.argv[0]).name
    cmd = f"python benchmarks/{script} " + " ".join(sys.argv[1:])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"\n## {now}: {title}\n\n{machine()}\n\n`{cmd}` ({how})\n\n{text}\n"
    with (HERE / "RESULTS.md").open("a") as f:
        f.write(block)


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument(
        "--log",
        type=Path,
        help="time this existing log (in --format) instead of generating --lines",
    )
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
        "file, and report the ratio; its JSON output must be this tree's byte for byte",
    )
    ap.add_argument(
        "--check-against",
        metavar="REV",
        help="check that the JSON output is byte-identical to revision REV's, without "
        "timing REV (default: the --baseline revision)",
    )
    ap.add_argument(
        "--peers",
        action="store_true",
        help="also time DuckDB and chDB computing the same three tables (peers.py; "
        "needs the bench extra)",
    )
    ap.add_argument(
        "--record", action="store_true", help="append results to RESULTS.md"
    )
    ap.add_argument(
        "--results",
        type=Path,
        default=HERE / "RESULTS.md",
        help="the file --record appends to (default: benchmarks/RESULTS.md)",
    )
    args = ap.parse_args(argv)
    check_rev = args.check_against or args.baseline
    if args.record and not check_rev:
        ap.error(
            "--record needs --baseline REV or --check-against REV: the JSON output "
            "must equal an earlier revision's before a time is recorded"
        )
    if args.peers:
        if args.format != "elb_log":
            ap.error("--peers reads elb_log only; drop --format or --peers")
        import importlib.util

        missing = [p for p in peers.PEERS if importlib.util.find_spec(p) is None]
        if missing:
            raise SystemExit(
                f"--peers needs {' and '.join(missing)}: pip install -e '.[bench]'"
            )

    # the pplog of this tree, whatever the interpreter has installed
    current = pplog_argv(compiled(ROOT / "src"), args.format)
    pplog = [*current, "--to", "json"]
    if args.log and args.scale:
        ap.error("--scale generates its larger log: drop --log or --scale")
    log = args.log.resolve() if args.log else ensure_log(args.lines, args.format)
    lines = args.lines
    size = log.stat().st_size / 2**20
    packed = None  # a gzipped --log: its size on disk (lines and MiB: its text's)
    if args.log:
        with log.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        with gzip.open(log) if gz else log.open("rb") as f:
            lines = text = 0
            for chunk in iter(lambda: f.read(1 << 20), b""):
                lines += chunk.count(b"\n")
                text += len(chunk)
        if gz:
            packed, size = size, text / 2**20
    with contextlib.ExitStack() as stack:
        srcs = {
            rev: stack.enter_context(revision_src(rev))
            for rev in dict.fromkeys(r for r in (check_rev, args.baseline) if r)
        }
        identical = None
        if check_rev:
            diff = check_identical(
                current, check_rev, srcs[check_rev], log, args.format
            )
            if diff is None:
                identical = check_rev
                print(f"JSON output (--top 0) byte-identical to {check_rev}'s")
            else:
                print(
                    f"JSON output differs from {check_rev}'s: {diff}", file=sys.stderr
                )
                if args.record:
                    print("not recording: the output changed", file=sys.stderr)
                    return 1
        if args.peers:
            checked = subprocess.run(
                [sys.executable, str(HERE / "peers.py"), "--check", shown_path(log)],
                cwd=ROOT,
                check=False,
            )
            if checked.returncode != 0:
                print(
                    "the peers' tables differ from pplog's: not timing them",
                    file=sys.stderr,
                )
                return 1
        # this tree, the baseline and the peers take turns in each round
        commands: dict[str, tuple[list[str], Path | None]] = {
            "pplog summarize": ([*pplog, str(log)], None)
        }
        if args.baseline:
            commands[f"pplog summarize @ {args.baseline}"] = (
                revision_argv(srcs[args.baseline], log, args.format),
                None,
            )
        if args.peers:
            commands.update(
                {peer: (peer_command(peer, log), ROOT) for peer in peers.PEERS}
            )
        timed = best_of_each(commands, args.repeat)
    rows = []
    peer_times = {}
    for name, (t_wall, t_peak) in timed.items():
        if name in peers.PEERS:  # imported here, after the timing
            peer_times[name] = t_wall
            name = f"{peers.version(name)} (SQL below)"
        rows.append((name, lines, size, t_wall, t_peak))
    wall = timed["pplog summarize"][0]
    goaccess = shutil.which("goaccess")
    if goaccess and args.goaccess_lines:
        small = ensure_log(args.goaccess_lines, args.format)
        goaccess_argv = [
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
        g_wall, g_peak = best_of(goaccess_argv, 1)
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
    if packed is not None:
        table += f"\n\nThe log is gzipped: {packed:,.0f} MiB on disk, {size:,.0f} MiB of text."
    if args.baseline:
        base = next(r for r in rows if r[0].startswith("pplog summarize @"))
        table += (
            f"\n\nTime against pplog @ {args.baseline} on the same file: "
            f"{rows[0][3] / base[3]:.2f}x."
        )
    if args.scale:
        memory = rows[-1][4] / rows[0][4]
        table += (
            f"\n\nPeak memory on {args.scale}x the input: {memory:.2f}x the peak on 1x."
        )
    if identical:
        table += (
            f"\n\nJSON output (`--top 0`) byte-identical to pplog @ {identical}'s "
            "on the same file."
        )
    if peer_times:
        table += (
            f"\n\npplog vs DuckDB: {ratio(wall, peer_times['duckdb'])}, "
            f"vs chDB: {ratio(wall, peer_times['chdb'])}."
        )
    print(table)
    if args.record:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        given = sys.argv[1:] if argv is None else argv
        command = " ".join(
            ["python benchmarks/bench_summarize.py", *map(shlex.quote, given)]
        )
        section = (
            f"\n## {stamp}\n\nMachine: {machine()}.\n"
            f"Command: `{command}` (best of {args.repeat}, the tools taking turns "
            f"in each round; wall time includes interpreter start-up).\n\n{table}\n"
        )
        if peer_times:
            section += "\n" + peers_section(log, args.repeat)
        results = args.results
        if not results.exists():
            results.write_text(
                "# Benchmark results\n\nNewest last. Regenerate with the command shown.\n"
            )
        with results.open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
