#!/usr/bin/env python3
"""How fast `pplog top` keeps up, and what it costs at a busy server's rate.

A writer process appends `combined` lines stamped with the current time to a
log at a fixed rate (ten slices a second; 5,000 clients, 400 paths, 1 in 20
an error), as nginx would, and `pplog top` follows the log:

- **keeping up** (`--rates`): this process runs `top`'s loop itself: poll,
  finish the 1-minute window and render the full-screen view into a 160x50
  console (everything the terminal view does but the terminal's own writes),
  once a second, polling again at once while the files hold more. It keeps
  up when, after the writer stops, the last line is read within one refresh
  and no cycle took longer than the refresh.
- **CPU** (`--cpu-rate`): the real `pplog top` command runs in a
  pseudo-terminal (its full-screen view), and its CPU time is read from
  /proc over the writer's run, leaving the first 5 seconds out (start-up:
  imports, detection).

    python benchmarks/bench_top.py --rates 100000,200000,300000 --seconds 15
    python benchmarks/bench_top.py --cpu-rate 5000 --seconds 60
    python benchmarks/bench_top.py --record      # both, written to RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import pty
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_summarize import machine  # noqa: E402

CLIENTS = 5000
PATHS = 400
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "curl/8.5.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
)


def _pool(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """(text before the time, text after it) for `n` lines."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        client = f"198.51.{rng.randrange(20)}.{rng.randrange(250)}"
        client = (
            client if rng.random() < 0.9 else f"2001:db8::{rng.randrange(CLIENTS):x}"
        )
        path = f"/api/v1/items/{rng.randrange(PATHS)}"
        status = 200 if rng.random() > 0.05 else rng.choice((404, 500, 502))
        agent = rng.choice(AGENTS)
        size = rng.randrange(100, 20000)
        out.append(
            (
                f"{client} - - [",
                f'] "GET {path} HTTP/1.1" {status} {size} "-" "{agent}"\n',
            )
        )
    return out


def write(log: Path, rate: int, seconds: float) -> int:
    """Append `rate` lines a second for `seconds` (ten slices a second)."""
    pool = _pool(min(rate, 100_000))
    per_slice = max(1, rate // 10)
    written, i = 0, 0
    start = time.monotonic()
    with log.open("a", encoding="utf-8") as f:
        slice_no = 0
        while time.monotonic() - start < seconds:
            stamp = dt.datetime.now(dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
            parts = []
            for _ in range(per_slice):
                before, after = pool[i % len(pool)]
                parts.append(before + stamp + after)
                i += 1
            f.write("".join(parts))
            f.flush()
            written += per_slice
            slice_no += 1
            delay = start + slice_no / 10 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return written


def _writer(log: Path, rate: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--write", str(log), str(rate), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


def keep_up(rate: int, seconds: float, refresh: float = 1.0) -> dict[str, object]:
    """Run `top`'s loop here against a writer at `rate` lines a second."""
    from rich.console import Console

    from pplog.outputs.live import SHOWN, render
    from pplog.run.live import Live

    with tempfile.TemporaryDirectory(prefix="pplog-top-") as tmp:
        log = Path(tmp) / "access.log"
        log.write_text(
            "".join(b + "01/Jan/2026:00:00:00 +0000" + a for b, a in _pool(300))
        )
        console = Console(
            file=io.StringIO(),
            width=160,
            height=50,
            force_terminal=True,
            color_system="truecolor",
        )
        live = Live([str(log)], geoip=(), tables=SHOWN)
        writer = _writer(log, rate, seconds)
        cycles: list[float] = []
        read = 0
        cpu0 = time.process_time()
        started = time.monotonic()
        finished_at = None
        try:
            while True:
                t0 = time.monotonic()
                read += live.poll().lines
                while live.behind and time.monotonic() - t0 < refresh:
                    read += live.poll().lines
                console.file = io.StringIO()
                console.print(render(live.view("1m"), console))
                took = time.monotonic() - t0
                cycles.append(took)
                if writer.poll() is not None:
                    if finished_at is None:
                        finished_at = time.monotonic()
                        written = int(writer.stdout.read())  # type: ignore[union-attr]
                    if read >= written or time.monotonic() - finished_at > 10:
                        break
                time.sleep(max(0.0, refresh - took))
        finally:
            live.close()
            if writer.poll() is None:
                writer.kill()
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - started
        behind = time.monotonic() - finished_at if finished_at else None
    steady = cycles[2:] or cycles
    return {
        "rate": rate,
        "written": written,
        "read": read,
        "mean_cycle": sum(steady) / len(steady),
        "max_cycle": max(steady),
        "caught_up_after": behind,
        "cpu_share": cpu / wall,
        "kept_up": read == written
        and max(steady) <= refresh * 1.05
        and (behind or 0) <= refresh * 1.5,
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_at(rate: int, seconds: float, warmup: float = 5.0) -> dict[str, object]:
    """The real `pplog top` in a pseudo-terminal, at `rate` lines a second."""
    with tempfile.TemporaryDirectory(prefix="pplog-top-") as tmp:
        log = Path(tmp) / "access.log"
        log.write_text(
            "".join(b + "01/Jan/2026:00:00:00 +0000" + a for b, a in _pool(300))
        )
        pid, fd = pty.fork()
        if pid == 0:  # the child: pplog top on the pty
            os.environ.update(TERM="xterm-256color", COLUMNS="160", LINES="50")
            os.execv(sys.executable, [sys.executable, "-m", "pplog", "top", str(log)])
        import fcntl
        import struct
        import termios

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        drained = 0

        def drain(until: float) -> None:
            nonlocal drained
            import select

            while time.monotonic() < until:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    try:
                        drained += len(os.read(fd, 1 << 16))
                    except OSError:
                        return

        drain(time.monotonic() + 4)  # started and drawn once
        writer = _writer(log, rate, seconds)
        drain(time.monotonic() + warmup)
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        drain(t0 + seconds - warmup)
        cpu1, t1 = _cpu_seconds(pid), time.monotonic()
        rss = _rss_mib(pid)
        written = int(writer.communicate(timeout=60)[0])
        os.write(fd, b"q")
        drain(time.monotonic() + 3)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return {
        "rate": rate,
        "written": written,
        "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "measured_seconds": t1 - t0,
        "rss_mib": rss,
        "exit": os.waitstatus_to_exitcode(status),
        "screen_bytes": drained,
    }


def record(
    keep: list[dict[str, object]], cpu: dict[str, object] | None, cmd: str
) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"\n## {now}: pplog top\n",
        f"Machine: {machine()}.\n",
        f"Command: `{cmd}`\n",
    ]
    if keep:
        out += [
            "\n| lines/s written | read | cycle mean | cycle max | last line read after "
            "the writer stopped | CPU (this process) | keeps up |",
            "\n| ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
        ]
        for r in keep:
            after = r["caught_up_after"]
            out.append(
                f"| {r['rate']:,} | {r['read']:,} of {r['written']:,} | "
                f"{r['mean_cycle']:.3f} s | {r['max_cycle']:.3f} s | "
                f"{after:.2f} s | {r['cpu_share']:.0%} | "
                f"{'yes' if r['kept_up'] else 'no'} |\n"
            )
    if cpu is not None:
        out.append(
            f"\nAt {cpu['rate']:,} lines/s for {cpu['measured_seconds']:.0f} s (after a "
            f"5 s warm-up), `pplog top` in a 160x50 pseudo-terminal used "
            f"**{cpu['cpu_share']:.1%} of one core**; RSS {cpu['rss_mib']:.0f} MiB; "
            f"exit {cpu['exit']} on `q`.\n"
        )
    with (HERE / "RESULTS.md").open("a", encoding="utf-8") as f:
        f.write("".join(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--write", nargs=3, metavar=("LOG", "RATE", "SECONDS"), help=argparse.SUPPRESS
    )
    ap.add_argument("--rates", default="", help="lines/s to keep up with, commas")
    ap.add_argument("--cpu-rate", type=int, help="lines/s for the CPU measurement")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--record", action="store_true", help="append to RESULTS.md")
    args = ap.parse_args(argv)
    if args.write:
        print(write(Path(args.write[0]), int(args.write[1]), float(args.write[2])))
        return 0
    rates = [int(r) for r in args.rates.split(",") if r]
    cpu_rate = args.cpu_rate
    if args.record and not rates and cpu_rate is None:
        rates, cpu_rate = [100_000, 200_000, 300_000], 5000
    keep = []
    for rate in rates:
        result = keep_up(rate, args.seconds)
        keep.append(result)
        print(result, flush=True)
    cpu = None
    if cpu_rate:
        cpu = cpu_at(cpu_rate, max(args.seconds, 30.0))
        print(cpu, flush=True)
    if args.record:
        cmd = "python benchmarks/bench_top.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        record(keep, cpu, cmd)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
