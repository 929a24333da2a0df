"""`pplog top` (`run.live.Live`, `outputs.live`): windows, caps, warnings, CLI.

The follower itself (rotation, copytruncate) is tested in `test_follow.py`;
`test_top_real.py` runs `top` against real nginx and inside tmux.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

import pplog
import pplog.run.live
from pplog.outputs.json import chunks, one_line
from pplog.outputs.live import render
from pplog.reports.partial import OTHER, capped, merge
from pplog.run.live import Live

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_logs" / "elb-access.log"
T0 = 1_800_000_000 - 1_800_000_000 % 60 + 10  # 10 s into a minute


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def line(
    when: float,
    client: str = "203.0.113.7",
    path: str = "/",
    status: int = 200,
    agent: str = "Mozilla/5.0",
) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{client} - - [{stamp}] "GET {path} HTTP/1.1" {status} 12 "-" "{agent}"\n'


def caught_up(live: Live) -> Live:
    """`live` after the polls that read its whole backlog (`--since`)."""
    live.poll()
    while live.behind:
        live.poll()
    return live


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def comparable(doc: dict) -> dict:
    """A summary document without what names the inputs."""
    doc = dict(doc)
    doc["overview"] = {
        k: v
        for k, v in doc["overview"].items()
        if k not in ("sources", "formats", "geoip")
    }
    return doc


def test_all_window_equals_summarize_of_the_lines_read(tmp_path: Path) -> None:
    """Lines written after start, read over several polls, give the tables
    `summarize` gives for those lines (the lines there before are skipped)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    log = tmp_path / "access.log"
    log.write_text("".join(lines[:300]), encoding="utf-8")
    with Live([str(log)], geoip=()) as live:
        assert live.poll().lines == 0
        for start in range(300, 3000, 900):
            append(log, "".join(lines[start : start + 900]))
            live.poll()
        got = json.loads(one_line(live.view("all").summary))
    written = tmp_path / "written.log"
    written.write_text("".join(lines[300:]), encoding="utf-8")
    want = json.loads("".join(chunks(pplog.summarize(str(written), geoip=()))))
    assert got["overview"]["lines"] == 2700
    assert comparable(got) == comparable(want)


def test_an_empty_log_gives_what_summarize_gives_then_its_lines_decide(
    tmp_path: Path,
) -> None:
    """Before the first line, the view is `summarize`'s of the empty log: the
    same keys and values, its input named (the user-agent tables and the
    sources were missing, the format "mixed"). The first lines then decide
    the format: nothing was assumed for good."""
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    want = json.loads("".join(chunks(pplog.summarize(str(log), geoip=()))))
    with Live([str(log)], geoip=()) as live:
        live.poll()
        empty = json.loads(one_line(live.view("all").summary))
        assert empty == want
        assert empty["overview"]["sources"] == [str(log)]
        append(log, SAMPLE.read_text(encoding="utf-8"))  # elb_log lines
        read = json.loads(one_line(caught_up(live).view("all").summary))
    assert read["overview"]["format"] == "elb_log"
    assert read["overview"]["lines"] == 3000 and read["overview"]["rejected"] == 0


def test_windows_follow_the_clock(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(T0 - 100), encoding="utf-8")
    clock = Clock(T0)
    with Live([str(log)], clock=clock, geoip=()) as live:

        def requests(window: str) -> int:
            return int(live.view(window).summary.overview["requests"].item())

        def step(at: float, n: int, when: float | None = None) -> None:
            clock.now = at
            append(log, "".join(line(when or at) for _ in range(n)))
            live.poll()

        step(T0, 10)
        step(T0 + 30, 5)
        assert [requests(w) for w in ("1m", "5m", "15m", "all")] == [15, 15, 15, 15]
        step(T0 + 100, 7)  # the next minute: 40 s past the first polls
        assert requests("1m") == 7
        assert requests("5m") == 22
        step(T0 + 400, 3)  # 6 minutes on
        assert [requests(w) for w in ("1m", "5m", "15m", "all")] == [3, 3, 25, 25]
        # lines logged 5 minutes ago reach the file now: placed by their time
        step(T0 + 410, 4, when=T0 + 100)
        assert [requests(w) for w in ("1m", "5m", "15m", "all")] == [3, 3, 29, 29]
        step(T0 + 1400, 2)  # 16 minutes on: only "all" remembers
        assert [requests(w) for w in ("1m", "5m", "15m", "all")] == [2, 2, 2, 31]


def test_keys_past_the_cap_fold_into_other(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(T0), encoding="utf-8")
    clock = Clock(T0)
    with Live([str(log)], clock=clock, max_keys=5, top=0, geoip=()) as live:
        for i in range(3):
            clock.now = T0 + 70 * i  # three minutes: sealed and merged
            text = "".join(
                line(
                    clock.now,
                    f"198.51.100.{n}",
                    f"/item/{i}/{n}",
                    404 if n % 3 else 200,
                )
                for n in range(40)
            )
            append(log, text)
            live.poll()
        view = live.view("all")
    summary = view.summary
    assert summary.overview["requests"].item() == 120  # totals stay exact
    assert view.folded > 0
    clients = summary.clients.get_column("client_ip").to_list()
    assert OTHER in clients
    assert len(clients) <= 6
    assert summary.clients.get_column("requests").sum() == 120
    assert summary.paths.get_column("requests").sum() == 120
    assert summary.errors.get_column("requests").sum() == 78  # 26 of 40, 3 times


def address(n: int) -> str:
    return f"11.{n // 65536}.{(n // 256) % 256}.{n % 256}"


def test_clients_past_the_cap_are_estimated_not_miscounted(tmp_path: Path) -> None:
    """With clients folded into (other), the overview's distinct clients is a
    HyperLogLog estimate, said to be one, not the number of rows left."""
    log = tmp_path / "access.log"
    log.write_text(line(T0), encoding="utf-8")
    clock = Clock(T0)
    written = []
    with Live([str(log)], clock=clock, max_keys=50, top=5, geoip=()) as live:
        live.poll()
        for i in range(3):
            clock.now = T0 + 70 * i  # three minutes: sealed and merged
            text = "".join(  # each minute shares half its clients with the last
                line(clock.now, address(n), f"/p/{n % 7}")
                for n in range(750 * i, 750 * i + 1500)
            )
            # health checks from other addresses are not visitors
            text += line(clock.now, "10.9.9.9", agent="ELB-HealthChecker/2.0") * 20
            append(log, text)
            written.append(text)
            live.poll()
        views = {w: live.view(w) for w in ("all", "5m")}
        console = Console(
            file=io.StringIO(), width=120, height=40, record=True, color_system=None
        )
        console.print(render(views["all"], console))
    whole = tmp_path / "written.log"
    whole.write_text("".join(written), encoding="utf-8")
    exact = pplog.summarize(str(whole), geoip=()).overview["clients"].item()
    assert exact == 3000
    got = json.loads(one_line(views["all"].summary))["overview"]
    assert got["requests"] == 3 * 1520  # totals stay exact
    assert abs(got["clients"] - exact) <= 0.05 * exact  # not 50 or 51
    assert "overview.clients" in got["approximate"]
    assert f"clients ≈{got['clients']:,}" in console.export_text()
    # the 5m window merges the minute partials, each folded on its own
    last = json.loads(one_line(views["5m"].summary))["overview"]
    assert abs(last["clients"] - exact) <= 0.05 * exact


def test_a_folded_partial_merged_with_others_estimates_their_union(
    tmp_path: Path,
) -> None:
    from pplog.reports.finish import finish

    def mapped(name: str, clients: range) -> pplog.reports.Partial:
        log = tmp_path / name
        log.write_text(
            "".join(line(T0, address(n), f"/{n % 5}") for n in clients),
            encoding="utf-8",
        )
        with Live([str(log)], geoip=(), since="2020-01-01") as live:
            live.poll()
            partial = live.partial("all")
        assert partial is not None
        return partial

    a, b = mapped("a.log", range(4000)), mapped("b.log", range(3000, 6000))
    small_a, folded = capped(a, 100)
    assert folded and "hll_visitors" in small_a.frames
    assert capped(b, 10_000)[1] == 0  # listed whole: counted exactly
    assert finish(b).overview["clients"].item() == 3000
    assert "approximate" not in finish(b).overview.columns
    for partial in (merge([small_a, b]), capped(merge([small_a, b]), 100)[0]):
        overview = finish(partial).overview
        assert abs(overview["clients"].item() - 6000) <= 0.05 * 6000
        # the tables' distinct counts fold the clients past the cap into one:
        # named beside the estimate (a browser's 4,000 visitors shown as 100)
        assert overview["approximate"].item() == (
            "overview.clients, paths.clients, errors.clients, browsers.visitors, "
            "operating_systems.visitors, devices.visitors"
        )


def test_capped_partial_keeps_sums_and_kept_clients_pairs(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    rows = [line(T0, f"192.0.2.{n % 30}", f"/p/{n % 17}") for n in range(600)]
    rows += [line(T0, "203.0.113.1", f"/only/{n}") for n in range(50)]
    log.write_text("".join(rows), encoding="utf-8")
    from pplog import sources
    from pplog.pipeline import LogSpec
    from pplog.reports.finish import FinishSettings, finish
    from pplog.reports.mapping import MapSettings
    from pplog.tasks import Task, map_task

    spec = LogSpec(geoip=())
    group = spec.groups(sources.expand([str(log)]))[0]
    task = Task(tuple(group.sources), group.format, group.policy)
    partial = map_task(task, MapSettings())
    small, folded = capped(partial, 5)
    assert folded > 0
    for name in ("clients", "paths", "errors", "latency"):
        frame = small.get(name)
        if frame is not None and frame.height:
            assert frame.height <= 4 * 5 + 1
    assert small["totals"].equals(partial["totals"])
    every = FinishSettings(top=0)
    full, cut = finish(partial, every), finish(small, every)
    assert cut.overview["requests"].item() == 650
    one = cut.clients.filter(pl.col("client_ip") == "203.0.113.1")
    assert one["paths"].item() == 50  # a kept client's distinct paths stay exact
    assert cut.clients["requests"].sum() == full.clients["requests"].sum()
    # merging capped partials keeps the totals too
    twice, _ = capped(merge([small, small]), 5)
    assert finish(twice).overview["requests"].item() == 1300


def test_lines_arriving_late_warn_about_buffering(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(T0 - 5), encoding="utf-8")
    clock = Clock(T0)
    said: list[str] = []
    with Live([str(log)], clock=clock, on_warning=said.append, geoip=()) as live:
        clock.now = T0 + 1
        append(log, line(T0 + 1))
        live.poll()
        assert said == []
        clock.now = T0 + 40  # nginx flushed lines logged 30 s ago
        append(log, "".join(line(T0 + 10) for _ in range(20)))
        live.poll()
        assert len(said) == 1
        assert "buffer" in said[0]
        assert live.view().warnings == said


def test_nginx_conf_buffered_access_log_warns(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(T0), encoding="utf-8")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "http {\n"
        "  log_format elb_log '$proxy_protocol_addr - $remote_user [$time_local] '\n"
        '    \'"$request" $status $body_bytes_sent "$http_referer" \'\n'
        "    '\"$http_user_agent\"';\n"
        f"  server {{ access_log {log} elb_log buffer=64k flush=1m; }}\n"
        "}\n",
        encoding="utf-8",
    )
    said: list[str] = []
    with Live([str(log)], nginx_conf=str(conf), on_warning=said.append, geoip=()):
        pass
    assert len(said) == 1
    assert "buffer=64k flush=1m" in said[0]


def test_screen_escapes_log_text(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(T0), encoding="utf-8")
    clock = Clock(T0)
    with Live([str(log)], clock=clock, geoip=()) as live:
        append(log, line(T0, path="/[bold]x\\x1b[31mred", status=500) * 3)
        live.poll()
        view = live.view("1m")
    console = Console(
        file=io.StringIO(), width=120, height=40, record=True, color_system=None
    )
    console.print(render(view, console))
    text = console.export_text()
    assert "\x1b" not in text
    assert "/[bold]x\\x1B[31mred" in text  # escaped, never markup
    assert "requests 3" in text


def _run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pplog", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        **kw,  # type: ignore[arg-type]
    )


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    missing = _run("top", str(tmp_path / "nope*.log"), "--to", "jsonl")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: no file matches")
    assert len(missing.stderr.splitlines()) == 1
    stdin = _run("top", "-", "--to", "jsonl")
    assert stdin.returncode == 2
    assert "stdin cannot be followed" in stdin.stderr
    log = tmp_path / "a.log"
    log.write_text(line(T0), encoding="utf-8")
    screen = _run("top", str(log), "--to", "terminal")
    assert screen.returncode == 2
    assert "needs a terminal" in screen.stderr


def test_sigterm_reads_what_was_written_then_writes_the_last_object(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(time.time()), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pplog", "top", str(log), "--refresh", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert json.loads(first)["overview"]["requests"] == 0
        now = time.time()
        append(log, "".join(line(now, f"192.0.2.{n}") for n in range(25)))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    last = json.loads(out.splitlines()[-1])
    assert last["overview"]["requests"] == 25
    assert last["overview"]["clients"] == 25


@pytest.mark.parametrize("window", ["1m", "all"])
def test_jsonl_duration_stops_with_a_last_object(tmp_path: Path, window: str) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(time.time()), encoding="utf-8")
    done = _run("top", str(log), "--to", "jsonl", "--window", window, "--duration", "0")
    assert done.returncode == 0, done.stderr
    objects = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(objects) == 2
    assert objects[-1]["overview"]["lines"] == 0


def test_top_help_has_examples() -> None:
    out = _run("top", "--help")
    assert out.returncode == 0
    assert "pplog top /var/log/nginx/access.log" in out.stdout
    assert "--since" in out.stdout


def test_since_reads_rotated_files_back_to_then(tmp_path: Path) -> None:
    """`--since 10m`: the rotated member written since then is read, lines
    older than 10 minutes are left out, the live file is read from its start."""
    now = time.time()
    rotated = tmp_path / "access.log.1"
    rotated.write_text(
        line(now - 3600, "192.0.2.1") * 4 + line(now - 300, "192.0.2.2") * 3,
        encoding="utf-8",
    )
    old = tmp_path / "access.log.2"
    old.write_text(line(now - 7200, "192.0.2.9") * 5, encoding="utf-8")
    os.utime(old, (now - 7000, now - 7000))
    log = tmp_path / "access.log"
    log.write_text(line(now - 60, "192.0.2.3") * 2, encoding="utf-8")
    with Live([str(log)], since="10m", geoip=()) as live:
        summary = caught_up(live).view("all").summary
    clients = dict(summary.clients.select("client_ip", "requests").iter_rows())
    assert clients == {"192.0.2.2": 3, "192.0.2.3": 2}
    assert summary.overview["lines"].item() == 9  # the filtered lines were read


def test_since_on_a_rotated_file_reads_its_older_rotations_not_the_live_log(
    tmp_path: Path,
) -> None:
    """Following `access.log.1 --since`, the live `access.log` (newer, not
    named) was read too: 1,050 lines of the sample rotation set where
    `summarize` of `.1` and `.2.gz` gives 700. Only older rotations are."""
    now = time.time()
    (tmp_path / "access.log.2").write_text(line(now - 600, "192.0.2.2") * 2)
    (tmp_path / "access.log.1").write_text(line(now - 300, "192.0.2.1") * 3)
    (tmp_path / "access.log").write_text(line(now - 60, "192.0.2.9") * 5)
    with Live([str(tmp_path / "access.log.1")], since="1h", geoip=()) as live:
        summary = caught_up(live).view("all").summary
    clients = dict(summary.clients.select("client_ip", "requests").iter_rows())
    assert clients == {"192.0.2.1": 3, "192.0.2.2": 2}


def test_a_long_backlog_maps_the_minutes_no_window_keeps_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--since` over three hours of lines: the minutes older than the 15m
    window only count in everything-before, and are mapped as one partial
    per poll (one a minute before: 2M lines of 2,150 minutes took 93 s,
    4.5 s now). Every window's tables are those of `summarize` over the
    lines each holds."""
    now = T0 + 3 * 3600
    log = tmp_path / "access.log"
    text = "".join(
        line(T0 + 60 * m + s, f"192.0.2.{(m * 7 + s) % 50}", f"/p/{m % 13}", 200 + s)
        for m in range(180)
        for s in (0, 20, 40)
    )
    log.write_text(text, encoding="utf-8")
    mapped: list[int] = []
    real = pplog.run.live.partial_of

    def counted(rows: pl.LazyFrame, *args: object, **kwargs: object) -> object:
        mapped.append(rows.select(pl.len()).collect().item())
        return real(rows, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pplog.run.live, "partial_of", counted)
    with Live([str(log)], since="4h", clock=Clock(now), geoip=()) as live:
        views = {w: caught_up(live).view(w).summary for w in ("all", "15m", "5m")}
    # the minutes before the 15m window in one partial, each after on its own
    assert len(mapped) <= 1 + 16, mapped
    assert max(mapped) >= 164 * 3, mapped
    # the 15m and 5m windows hold the last 14 and 4 minutes' lines here (as
    # before this change: minutes are placed by their time)
    for window, minutes in (("all", 180), ("15m", 14), ("5m", 4)):
        lines = text.splitlines(keepends=True)[-3 * minutes :]
        part = tmp_path / f"{window}.log"
        part.write_text("".join(lines), encoding="utf-8")
        want = pplog.summarize(str(part), top=10, geoip=())
        got = views[window]
        assert got.overview["requests"].item() == 3 * minutes
        assert got.clients.equals(want.clients), window
        assert got.paths.equals(want.paths), window
        assert got.errors.equals(want.errors), window


def test_latency_percentiles_on_screen(tmp_path: Path) -> None:
    fmt = (
        '$remote_addr - $remote_user [$time_local] "$request" $status '
        '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time'
    )
    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    clock = Clock(T0)
    with Live([str(log)], log_format=fmt, clock=clock, geoip=()) as live:
        rows = [line(T0).rstrip("\n") + f" {ms / 1000:.3f}\n" for ms in range(1, 101)]
        append(log, "".join(rows))
        live.poll()
        view = live.view("1m")
    assert view.latency == {"request_time": (0.05, 0.095, 0.099)}
    console = Console(file=io.StringIO(), width=120, height=40, record=True)
    console.print(render(view, console))
    assert "request_time: p50 50 ms  p95 95 ms  p99 99 ms" in console.export_text()


def test_a_file_no_preset_fits_warns_once_and_counts_rejects(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    said: list[str] = []
    with Live([str(log)], on_warning=said.append, geoip=()) as live:
        append(log, "this is not an access log line\n" * 30)
        live.poll()
        append(log, "nor is this\n" * 5)
        live.poll()
        summary = live.view("all").summary
    assert len(said) == 1
    assert "no preset fits" in said[0]
    assert summary.overview["rejected"].item() == 35
    assert summary.overview["requests"].item() == 0


def test_the_last_read_on_stop_stays_bounded(tmp_path: Path) -> None:
    """On a stop, a backlog is read a bounded piece at a time before the
    `final` read, which then finds only what is left."""
    from pplog.outputs.live import write_jsonl
    from pplog.sources import Follower

    class Recording(Follower):
        finals: list[int]

        def poll(self, *, final: bool = False) -> list:  # type: ignore[override]
            chunks = super().poll(final=final)
            if final:
                self.finals.append(sum(c.lines.height for c in chunks))
            return chunks

    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    follower = Recording([str(log)], max_bytes=4096)
    follower.finals = []
    with Live([str(log)], follower=follower, geoip=()) as live:
        append(log, "".join(line(T0, f"192.0.2.{n % 200}") for n in range(3000)))
        out = io.StringIO()
        write_jsonl(live, out, refresh=0.0, duration=0)
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["overview"]["requests"] == 3000
    assert follower.finals == [0]


def test_input_problems_are_warnings_of_the_view(tmp_path: Path) -> None:
    """A followed file replaced by a directory: one warning, kept for the
    screen (which must not have stderr written over it), no exception."""
    log = tmp_path / "access.log"
    log.write_text(line(T0), encoding="utf-8")
    said: list[str] = []
    with Live([str(log)], on_warning=said.append, geoip=()) as live:
        append(log, line(T0) * 3)
        assert live.poll().lines == 3
        log.unlink()
        log.mkdir()
        live.poll()
        live.poll()
        view = live.view("all")
    assert len(said) == 1
    assert said[0].startswith(f"{log}: ")
    assert view.warnings == said
    assert view.summary.overview["requests"].item() == 3


def test_errors_per_second_start_at_400(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line(T0), encoding="utf-8")
    clock = Clock(T0)
    with Live([str(log)], clock=clock, geoip=()) as live:
        append(log, "".join(line(T0, status=s) for s in (200, 399, 400, 499, 500, 599)))
        tick = live.poll()
        view = live.view("1m")
    assert (tick.lines, tick.requests, tick.errors) == (6, 6, 4)
    assert view.history[-1] == (T0, 6, 4)
    overview = view.summary.overview
    assert overview["status_4xx"].item() == 2
    assert overview["status_5xx"].item() == 2
