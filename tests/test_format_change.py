"""A `log_format` changed on a running server, with real nginx.

An administrator adds `$http_x_forwarded_for` to the format (`combined` to
`main`) and restarts nginx: after the next rotation `access.log` is in the
new format and `access.log.1` in the old; without one, the live file holds
both, the old lines first. nginx then goes back to `combined` without a
rotation. Each file (or part of one) is read with the format its own lines
are in; before, the set's one detected format turned every line of the
other into a `no_match` reject (300 of 400 lines in a user's report).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import pplog
from helpers import run_pplog
from pplog.errors import PplogWarning
from realproc import require_binary, send, start_nginx, stop, temp_paths

MAIN = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
)
# a format of the administrator's own, which no preset reads
TIMED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time'
)
# (format, requests): `access.log` is longer than what detection reads of
# its head, so its last lines are read from its end
PHASES = (("combined", 30), ("main", 250), ("combined", 30))


def _conf(root: Path, fmt: str) -> object:
    def config(ports: list[int], nginx_v: str) -> str:
        return f"""\
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} error;
events {{ worker_connections 64; }}
http {{
{temp_paths(root, nginx_v)}
    log_format main '{MAIN}';
    log_format timed '{TIMED}';
    server {{
        listen 127.0.0.1:{ports[0]};
        access_log {root / "access.log"} {fmt};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

    return config


def _run_phase(nginx: str, root: Path, fmt: str, phase: int, n: int) -> None:
    proc, ports = start_nginx(nginx, root, _conf(root, fmt))  # type: ignore[arg-type]
    try:
        for i in range(n):
            request = (
                f"GET /p{phase}/{i % 4} HTTP/1.1\r\nHost: x\r\n"
                f"X-Forwarded-For: 203.0.113.{phase * 50 + i % 7}\r\n"
                "Connection: close\r\n\r\n"
            )
            assert send(ports[0], request.encode()).startswith(b"HTTP/1.1 200")
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`access.log.1`: phase 0 (`combined`); `access.log`: phase 1 (`main`),
    then phase 2 (`combined` again, nginx restarted without a rotation)."""
    nginx = require_binary("nginx", "nginx-light")
    root = tmp_path_factory.mktemp("format_change")
    for phase, (fmt, n) in enumerate(PHASES):
        _run_phase(nginx, root, fmt, phase, n)
        if phase == 0:
            (root / "access.log").rename(root / "access.log.1")
    return root


def _summary(*paths: Path, options: tuple[str, ...] = ()) -> dict[str, object]:
    result = run_pplog(
        "summarize", *map(str, paths), "--to", "json", "--top", "0", *options
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.nginx
def test_every_member_and_part_is_read_with_its_own_format(logs: Path) -> None:
    live, old = logs / "access.log", logs / "access.log.1"
    written = sum(n for _, n in PHASES)
    lines = live.read_text().splitlines()
    assert len(lines) == PHASES[1][1] + PHASES[2][1]
    assert lines[0].endswith('"203.0.113.50"') and lines[-1].count('"') == 6
    for order in ((live, old), (old, live)):
        data = _summary(*order)
        ov = data["overview"]
        assert isinstance(ov, dict)
        assert (ov["lines"], ov["requests"], ov["rejected"]) == (written, written, 0)
        seen = [
            (Path(f["source"]).name, f["format"], f["detection"]) for f in ov["formats"]
        ]
        parts = [(name, fmt) for name, fmt, _ in seen]
        expected = [("access.log", "main"), ("access.log", "combined")]
        expected.insert(0 if order[0] == old else 2, ("access.log.1", "combined"))
        assert parts == expected, seen
        notes = [note for name, _, note in seen if name == "access.log"]
        n_main = PHASES[1][1]
        assert notes[0].endswith(f"; lines 1 to {n_main}")
        assert notes[1].endswith(f"log_format changed: lines {n_main + 1} on")
        # the `main` part's clients are its X-Forwarded-For addresses (nginx
        # trusts nothing here; pplog's default trusts loopback): the others
        # are the peer, 127.0.0.1
        clients = Counter({c["client_ip"]: c["requests"] for c in data["clients"]})
        assert clients["127.0.0.1"] == PHASES[0][1] + PHASES[2][1]
        assert (
            sum(v for k, v in clients.items() if k.startswith("203.0.113.")) == n_main
        )


@pytest.mark.nginx
def test_the_parts_are_the_lines_each_format_reads(logs: Path) -> None:
    """Each part's rows are those of its format forced on the whole file,
    with the file's own line numbers and offsets."""
    rows = pplog.read_log(logs / "access.log", include_rejects=True)
    assert rows["reject_reason"].null_count() == rows.height
    assert rows["line"].to_list() == list(range(1, rows.height + 1))
    for fmt, part in (
        ("main", rows.head(PHASES[1][1])),
        ("combined", rows.tail(PHASES[2][1])),
    ):
        forced = pplog.read_log(logs / "access.log", format=fmt, include_rejects=True)
        forced = forced.filter(forced["reject_reason"].is_null())
        assert forced["offset"].to_list() == part["offset"].to_list()
        assert forced["client_ip"].to_list() == part["client_ip"].to_list()


@pytest.mark.nginx
def test_the_terminal_and_html_name_each_part(logs: Path, tmp_path: Path) -> None:
    wide = {**os.environ, "COLUMNS": "400"}
    result = run_pplog("summarize", str(logs / "access.log"), "--no-progress", env=wide)
    assert result.returncode == 0, result.stderr
    n_main = PHASES[1][1]
    assert "(2 formats, by input and part: combined, main)" in result.stdout
    assert f"main: {logs / 'access.log'} (lines 1 to {n_main})" in result.stdout
    assert f"(log_format changed: lines {n_main + 1} on)" in result.stdout
    html = tmp_path / "r.html"
    result = run_pplog(
        "summarize", str(logs / "access.log"), "--to", "html", "-o", str(html)
    )
    assert result.returncode == 0, result.stderr
    assert f"access.log (lines 1 to {n_main})" in html.read_text()


def _lines(fmt: str, n: int, start: int = 0) -> str:
    line = '10.0.0.1 - - [07/Dec/2026:10:{m:02d}:{s:02d} +0000] "GET /a/{i} HTTP/1.1" 200 5 "-" "c"'
    xff = ' "203.0.113.{c}"' if fmt == "main" else ""
    return "".join(
        line.format(m=(start + i) // 60 % 60, s=(start + i) % 60, i=i % 9)
        + xff.format(c=i % 200)
        + "\n"
        for i in range(n)
    )


KEYS = ["line", "offset", "client_ip"]


def _forced(log: Path) -> pl.DataFrame:
    """The rows `combined` and `main`, each forced on the whole of `log`,
    read, by line: what reading its parts must give."""
    return pl.concat(
        pplog.read_log(log, format=fmt).select(KEYS) for fmt in ("combined", "main")
    ).sort("line")


@pytest.mark.parametrize(
    ("parts", "cut"),
    [
        # read whole by detection: its last lines are the head's
        ((("combined", 150), ("main", 30)), 151),
        # longer: its last lines read from its end
        ((("combined", 3000), ("main", 2000)), 3001),
        # the new format the most of its head: its first lines are the old
        ((("combined", 40), ("main", 3000)), 41),
    ],
)
def test_a_plain_file_is_cut_where_its_format_changed(
    tmp_path: Path, parts: tuple[tuple[str, int], ...], cut: int
) -> None:
    text = "".join(_lines(fmt, n, 100 * k) for k, (fmt, n) in enumerate(parts))
    log = tmp_path / "access.log"
    log.write_text(text)
    data = _summary(log)
    ov = data["overview"]
    assert isinstance(ov, dict)
    total = sum(n for _, n in parts)
    assert (ov["requests"], ov["rejected"]) == (total, 0)
    formats = [(f["format"], f["detection"]) for f in ov["formats"]]
    assert [f for f, _ in formats] == [fmt for fmt, _ in parts]
    assert formats[0][1].endswith(f"lines 1 to {cut - 1:,}")
    assert formats[1][1].endswith(f"lines {cut:,} on")
    rows = pplog.read_log(log, include_rejects=True)
    assert rows["line"].to_list() == list(range(1, total + 1))
    assert rows["reject_reason"].null_count() == total


def test_a_lone_compressed_file_is_read_line_by_line_when_its_end_is_seen(
    tmp_path: Path,
) -> None:
    """A compressed file's bytes cannot be read from an offset, so it is not
    cut: where detection saw all of it (its head is the whole file), each
    line is read by the format that reads it. A larger one given alone is
    not inflated to see its end: its lines in the other format stay
    rejects, counted."""
    import gzip

    text = _lines("combined", 150) + _lines("main", 30)
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(text.encode()))
    ov = _summary(tmp_path / "a.log.gz")["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (180, 0)
    text = _lines("combined", 300) + _lines("main", 30)
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(text.encode()))
    ov = _summary(tmp_path / "b.log.gz")["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (300, 30)


def test_a_few_damaged_lines_at_the_end_do_not_cut_a_file(tmp_path: Path) -> None:
    """Garbage at a file's end (fewer than half its last lines fit, but no
    preset fits them either) is not a format change."""
    line = '10.0.0.1 - - [07/Dec/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "c"\n'
    (tmp_path / "a.log").write_text(line * 300 + "\x16\x03garbage line\n" * 40)
    data = _summary(tmp_path / "a.log")
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"], ov["format"]) == (300, 40, "combined")


def test_samples_rotated_set_is_unchanged(tmp_path: Path) -> None:
    """A rotation set of one format is still one format, one group."""
    root = Path(__file__).resolve().parents[1] / "sample_logs" / "rotated"
    shutil.copytree(root, tmp_path / "r")
    data = _summary(tmp_path / "r")
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert ov["format"] != "mixed" and ov["rejected"] == 0


@pytest.mark.nginx
def test_ingest_names_the_format_of_the_newest_lines(
    logs: Path, tmp_path: Path
) -> None:
    """A dataset holds one format: a first run over the changed log is
    refused with the format its next lines will have, and takes it given."""
    ds = tmp_path / "ds"
    paths = [str(logs / "access.log.1"), str(logs / "access.log")]
    result = run_pplog("ingest", *paths, "--dataset", str(ds))
    assert result.returncode == 1
    (message,) = result.stderr.splitlines()
    assert message.startswith(
        f"Error: the log format of `{logs / 'access.log'}` changed"
    )
    assert "pass --format combined, the format of its newest lines" in message
    n_main = PHASES[1][1]
    assert (
        f"access.log (log_format changed: lines {n_main + 1} on), "
        f"{logs / 'access.log.1'}: combined" in message
    )
    result = run_pplog("ingest", *paths, "--dataset", str(ds), "--format", "combined")
    # the older lines were said to be rejects: not told of again
    assert (result.returncode, result.stderr) == (0, "")
    ov = _summary(ds)["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (PHASES[0][1] + PHASES[2][1], n_main)


@pytest.mark.nginx
def test_ingest_warns_when_new_lines_fit_another_format(
    logs: Path, tmp_path: Path
) -> None:
    """Cron's ingest after nginx's log_format changed: every new line was a
    reject without a word (exit 0, quiet); the run now says so on stderr,
    which cron mails, each run until the log is read with its format."""
    live = tmp_path / "access.log"
    lines = (logs / "access.log").read_text().splitlines(keepends=True)
    n_main = PHASES[1][1]
    live.write_text((logs / "access.log.1").read_text())
    ds = tmp_path / "ds"
    first = run_pplog("ingest", str(live), "--dataset", str(ds))
    assert (first.returncode, first.stderr) == (0, "")
    with live.open("a") as f:
        f.writelines(lines[:n_main])
    second = run_pplog("ingest", str(live), "--dataset", str(ds))
    assert second.returncode == 0
    assert second.stderr == (
        f"pplog: warning: {live}: {n_main} lines read this run fit `main`, not this "
        "dataset's `combined` (was nginx's log_format changed?); they are kept as "
        f"rejects: ingest {live} into a --dataset of its own with --format main\n"
    )
    with live.open("a") as f:
        f.writelines(lines[n_main:])  # back to combined: nothing to say
    third = run_pplog("ingest", str(live), "--dataset", str(ds))
    assert (third.returncode, third.stderr) == (0, "")
    ov = _summary(ds)["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (PHASES[0][1] + PHASES[2][1], n_main)


@pytest.mark.nginx
def test_top_reads_the_new_format_from_the_poll_it_comes_in(
    logs: Path, tmp_path: Path
) -> None:
    """`pplog top` on a log whose format changes while it follows it: the
    new lines were all rejects until top was restarted; the poll they come
    in reads them in their format, says so once, and the lines after too."""
    from pplog.outputs.json import one_line
    from pplog.run.live import Live

    live_log = tmp_path / "access.log"
    live_log.write_text((logs / "access.log.1").read_text() * 10)  # decided for good
    lines = (logs / "access.log").read_text().splitlines(keepends=True)
    n_main = PHASES[1][1]
    said: list[str] = []
    with Live([str(live_log)], geoip=(), on_warning=said.append) as live:
        assert live.poll().lines == 0  # top starts at the end
        with live_log.open("a") as f:
            f.writelines(lines[:100])
        assert live.poll().requests == 100
        with live_log.open("a") as f:
            f.writelines(lines[100:n_main])
        assert live.poll().requests == n_main - 100
        got = json.loads(one_line(live.view("all").summary))
    ov = got["overview"]
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (n_main, n_main, 0)
    assert [f["format"] for f in ov["formats"]] == ["main"]
    assert said == [
        f"{live_log}: its new lines are in `main`, not `combined` (nginx's "
        "log_format changed?): read as `main` from now on"
    ]


def test_a_file_of_long_lines_is_cut_where_its_format_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines longer than a bisection step's bytes (5 KB URLs): each step
    reads on to the first line that starts after it. Before, the search
    stopped there and read the rest of the file at once to judge it line
    by line (3 MB here; a whole log in general)."""
    asked: list[int] = []
    real = pplog.sources.lines_at

    def lines_at(src: object, start: int, size: int) -> object:
        asked.append(size)
        return real(src, start, size)  # type: ignore[arg-type]

    monkeypatch.setattr(pplog.sources, "lines_at", lines_at)
    head = '10.0.0.1 - - [07/Dec/2026:10:00:00 +0000] "GET /{u} HTTP/1.1" 200 5 "-" "c"'
    log = tmp_path / "access.log"
    with log.open("w") as f:
        for i in range(300):
            f.write(head.format(u="a" * 5000 + str(i)) + "\n")
        for i in range(300):
            f.write(head.format(u="b" * 5000 + str(i)) + f' "203.0.113.{i}"\n')
    summary = pplog.summarize(str(log), geoip=())
    ov = summary.overview.row(0, named=True)
    assert (ov["requests"], ov["rejected"]) == (600, 0)
    assert [f["format"] for f in summary.formats] == ["combined", "main"]
    assert summary.formats[1]["detection"].endswith("lines 301 on")
    assert max(asked) <= pplog.sources.LINE_LIMIT


def _follow(
    log: Path,
    polls: list[list[str]],
    before_first: Callable[[], object] | None = None,
    **options: object,
) -> tuple[dict[str, object], list[str]]:
    """`Live` on `log` (started at its end, with `options`), one poll per
    list of lines appended (`before_first` run before the first); the `all`
    view's overview and the warnings."""
    from pplog.outputs.json import one_line
    from pplog.run.live import Live

    said: list[str] = []
    with Live([str(log)], geoip=(), on_warning=said.append, **options) as live:
        assert live.poll().lines == 0
        for k, lines in enumerate(polls):
            if k == 0 and before_first is not None:
                before_first()
            with log.open("a") as f:
                f.writelines(lines)
            live.poll()
        got = json.loads(one_line(live.view("all").summary))
    return got["overview"], said


@pytest.mark.nginx
def test_top_switches_in_the_poll_of_the_reload(logs: Path, tmp_path: Path) -> None:
    """The reload inside one poll: its first lines in the old format, then
    the new, and old workers' lines among the new ones for a while. The
    format was taken from the poll's first lines, which were the old
    format's: no switch, 1,200 of 1,350 lines rejected (a sweep's figures).
    Now from the rejects; each line is read by the format that reads it."""
    old = (logs / "access.log.1").read_text().splitlines(keepends=True)
    new = (logs / "access.log").read_text().splitlines(keepends=True)[: PHASES[1][1]]
    log = tmp_path / "access.log"
    log.write_text("".join(old) * 10)
    mixed = old[:10] + [
        x for pair in zip(new[:20], old[10:30], strict=True) for x in pair
    ]
    poll = mixed + new[20:]
    ov, said = _follow(log, [poll])
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (len(poll), len(poll), 0)
    assert len(said) == 1 and "read as `main` from now on" in said[0]


def test_top_switches_on_a_quiet_server(tmp_path: Path) -> None:
    """Three new lines a poll: the rejects are counted over polls, so the
    switch comes once ten are seen (the lines before it stay rejects)."""
    log = tmp_path / "access.log"
    log.write_text(_lines("combined", 300))
    new = _lines("main", 15, 400).splitlines(keepends=True)
    ov, said = _follow(log, [new[i : i + 3] for i in range(0, 15, 3)])
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (15, 6, 9)
    assert len(said) == 1
    # a line of the old format among them starts the count again
    log.write_text(_lines("combined", 300))
    polls = [new[0:3], new[3:6], _lines("combined", 1).splitlines(True), new[6:9]]
    ov, said = _follow(log, polls)
    assert (ov["lines"], ov["requests"], ov["rejected"], said) == (10, 1, 9, [])


def test_ingest_warns_a_quiet_server_too(tmp_path: Path) -> None:
    """Cron every five minutes on a quiet server: a few lines a run. The
    warning waited for 10 rejects in one run, so it never came (48 rejects
    over 8 runs in a sweep); 3 are enough when the last lines read are
    rejects."""
    live = tmp_path / "access.log"
    live.write_text(_lines("combined", 300))
    ds = tmp_path / "ds"
    assert run_pplog("ingest", str(live), "--dataset", str(ds)).stderr == ""
    new = _lines("main", 12, 400).splitlines(keepends=True)
    for run in range(4):
        with live.open("a") as f:
            f.writelines(new[run * 3 : run * 3 + 3])
        result = run_pplog("ingest", str(live), "--dataset", str(ds))
        assert result.returncode == 0
        assert "3 lines read this run fit `main`" in result.stderr, run


def test_ingest_of_a_directory_names_the_changed_log(tmp_path: Path) -> None:
    """`ingest /var/log/nginx/`: the empty `error.log` nginx keeps there made
    the refusal the one for inputs of two formats, naming one file twice."""
    d = tmp_path / "nginx"
    d.mkdir()
    (d / "access.log").write_text(_lines("combined", 300) + _lines("main", 100, 400))
    (d / "error.log").write_text("")
    result = run_pplog("ingest", str(d), "--dataset", str(tmp_path / "ds"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: the log format of `{d / 'access.log'}`")
    assert "pass --format main, the format of its newest lines" in result.stderr


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda b: b.replace(b'"c"', b'"c\xff"', 1), id="not-utf8"),
        pytest.param(
            lambda b: b.replace(b"\n", b"\n" + b"\0" * 4096, 1), id="nul-hole"
        ),
    ],
)
def test_a_file_not_plain_text_is_cut_too(tmp_path: Path, damage: object) -> None:
    """A file the fast readers leave to the Python reader (CRLF, a byte that
    is not UTF-8, a hole) was not cut, and its 300 lines in the new format
    were rejects: each part has the rows its format forced on the whole
    file gives, with the file's line numbers and offsets."""
    text = (_lines("combined", 300) + _lines("main", 300, 400)).encode()
    log = tmp_path / "access.log"
    log.write_bytes(damage(text))  # type: ignore[operator]
    keys = ["line", "offset", "client_ip", "reject_reason"]
    cut = pplog.read_log(log, include_rejects=True).select(keys).sort("offset")
    forced = [
        pplog.read_log(log, format=fmt, include_rejects=True)
        .filter(pl.col("reject_reason").is_null())
        .select(keys)
        for fmt in ("combined", "main")
    ]
    assert cut.height == 600
    assert cut.equals(pl.concat(forced).sort("offset"))


def _interleaved(old: int, both: int, new: int) -> str:
    """`old` combined lines, then `both` of each format interleaved at
    random (nginx's old workers after a reload), then `new` main lines."""
    import random

    rng = random.Random(7)
    c = _lines("combined", old + both).splitlines(keepends=True)
    m = _lines("main", both + new, 1000).splitlines(keepends=True)
    zone = c[old:] + m[:both]
    rng.shuffle(zone)
    return "".join(c[:old] + zone + m[both:])


def test_lines_of_both_formats_after_a_reload_are_each_read(tmp_path: Path) -> None:
    """After `nginx -s reload`, the old workers finish their requests in the
    old format among the new workers' lines (600 lines under load with real
    nginx). One cut left those on the wrong side rejects (269 of 20,000);
    the lines where both formats come are read line by line."""
    log = tmp_path / "access.log"
    log.write_text(_interleaved(300, 150, 300))
    data = _summary(log)
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (900, 900, 0)
    notes = [f["detection"] for f in ov["formats"]]
    assert len(notes) == 4
    # each group of the lines in both formats says how its format was found
    how, said = zip(*(note.rsplit("; ", 1) for note in notes), strict=True)
    assert said[1] == said[2] and said[1].endswith("in both formats")
    assert (how[1], how[2]) == (how[0], how[3]) and how[0] != how[3]
    assert pplog.read_log(log).select(KEYS).sort("line").equals(_forced(log))
    jobs = run_pplog("summarize", str(log), "--to", "json", "--top", "0", "--jobs", "2")
    assert json.loads(jobs.stdout)["overview"] == ov


def test_top_keeps_every_line_when_a_rotation_comes_with_the_change(
    tmp_path: Path,
) -> None:
    """The poll reads the end of the renamed file and the new one, both
    under the name `access.log`: the rows kept from the old format and
    those read again were matched on line numbers alone, and the new
    file's lines numbered like the old file's last ones were lost (420 of
    425, a review's repro)."""
    from pplog.outputs.json import one_line
    from pplog.run.live import Live

    log = tmp_path / "access.log"
    log.write_text(_lines("combined", 300))
    said: list[str] = []
    with Live([str(log)], geoip=(), on_warning=said.append) as live:
        live.poll()
        with log.open("a") as f:
            f.write(_lines("combined", 5, 300) + _lines("main", 20, 305))
        log.rename(tmp_path / "access.log.1")
        log.write_text(_lines("main", 400, 1000))
        live.poll()
        live.poll()
        ov = json.loads(one_line(live.view("all").summary))["overview"]
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (425, 425, 0)
    assert len(said) == 1


def test_a_files_parts_are_read_in_its_order(tmp_path: Path) -> None:
    """A cut file's last part was merged into the group of an earlier input
    of its format, and read before the file's first part."""
    (tmp_path / "x.log").write_text(_lines("main", 50))
    (tmp_path / "y.log").write_text(_lines("combined", 100) + _lines("main", 100, 200))
    rows = pplog.read_log([str(tmp_path / "x.log"), str(tmp_path / "y.log")])
    y = rows.filter(pl.col("source").str.ends_with("y.log"))["line"].to_list()
    assert y == list(range(1, 201))


def test_the_progress_of_a_cut_file_has_one_total(tmp_path: Path) -> None:
    """Each part told its own bytes as the total: the bar went back and
    forth and ended near 290%."""
    log = tmp_path / "access.log"
    log.write_text(_interleaved(300, 50, 300))
    told: list[tuple[int, int | None]] = []
    pplog.summarize(str(log), geoip=(), on_progress=lambda n, t: told.append((n, t)))
    totals = {t for _, t in told}
    assert len(totals) == 1
    (total,) = totals
    assert total is not None and sum(n for n, _ in told) == total


def test_no_part_without_lines(tmp_path: Path) -> None:
    """Lines of both formats that run to the file's end leave no empty last
    part (`lines 262 on` of a 261-line file)."""
    log = tmp_path / "access.log"
    log.write_text(
        _lines("combined", 200) + _lines("main", 60, 300) + _lines("combined", 1, 900)
    )
    ov = _summary(log)["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (261, 0)
    notes = [f["detection"] for f in ov["formats"]]
    assert notes[0].endswith("lines 1 to 200")
    assert all(note.endswith("in both formats") for note in notes[1:]), notes


def _compress(kind: str, data: bytes) -> bytes:
    import gzip

    import zstandard

    return gzip.compress(data) if kind == "gz" else zstandard.compress(data)


@pytest.mark.nginx
@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_a_compressed_member_whose_format_changed_is_read_line_by_line(
    logs: Path, tmp_path: Path, kind: str
) -> None:
    """After logrotate's `compress`, the file of the day nginx's format
    changed is a compressed member: its first lines in one format, its last
    in the other. It cannot be cut at an offset; it is inflated twice and
    each line read by the format that reads it. Before, its lines in the
    newer format were `no_match` rejects for as long as the member was kept
    (30 of the 310 here)."""
    changed = (logs / "access.log").read_bytes()  # `main`, then `combined`
    (tmp_path / f"access.log.1.{kind}").write_bytes(_compress(kind, changed))
    shutil.copy(logs / "access.log.1", tmp_path / "access.log")  # `combined`
    member = tmp_path / f"access.log.1.{kind}"
    total = PHASES[0][1] + PHASES[1][1] + PHASES[2][1]
    data = _summary(tmp_path)
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (total, total, 0)
    seen = [
        (Path(f["source"]).name, f["format"], f["detection"]) for f in ov["formats"]
    ]
    assert [(n, f) for n, f, _ in seen] == [
        (member.name, "main"),
        (member.name, "combined"),
        ("access.log", "combined"),
    ], seen
    assert seen[0][2].endswith("; lines in main")
    assert seen[1][2].endswith("log_format changed: lines in combined")
    # each part's rows are its format's, forced on the whole member
    rows = pplog.read_log(tmp_path, include_rejects=True)
    rows = rows.filter(pl.col("source") == str(member))
    assert (
        rows["reject_reason"].null_count() == rows.height == len(changed.splitlines())
    )
    assert rows.select(KEYS).sort("line").equals(_forced(member))
    jobs = run_pplog(
        "summarize", str(tmp_path), "--to", "json", "--top", "0", "--jobs", "2"
    )
    assert json.loads(jobs.stdout)["overview"] == ov
    wide = {**os.environ, "COLUMNS": "400"}
    result = run_pplog("summarize", str(tmp_path), "--no-progress", env=wide)
    assert f"{member} (log_format changed: lines in combined)" in result.stdout


def test_members_of_one_format_are_not_inflated_to_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a compressed member whose first lines are in another format than
    the next newer member's is inflated to see its end: a rotation set of
    one format, or one changed at a rotation, costs no more than before."""
    import gzip

    from pplog import sources
    from pplog.pipeline.detect import resolve_groups

    looked: list[str] = []
    real = sources.last_lines_inflated

    def spy(src: sources.Source, size: int) -> list[str]:
        looked.append(Path(src.name).name)
        return real(src, size)

    monkeypatch.setattr(sources, "last_lines_inflated", spy)
    for k in (2, 3):
        gz = gzip.compress(_lines("combined", 400).encode())
        (tmp_path / f"access.log.{k}.gz").write_bytes(gz)
    (tmp_path / "access.log.1").write_text(_lines("combined", 400))
    (tmp_path / "access.log").write_text(_lines("main", 400))
    groups = resolve_groups(sources.expand(str(tmp_path)))
    assert looked == []
    assert all(g.zone is None for g in groups)
    (tmp_path / "access.log.1").write_text(_lines("main", 400))
    groups = resolve_groups(sources.expand(str(tmp_path)))
    assert looked == ["access.log.2.gz"]  # changed at a rotation: not within
    assert all(g.zone is None for g in groups)
    assert sorted(
        (Path(s.name).name, g.format.name if g.format else None)
        for g in groups
        for s in g.sources
    ) == [
        ("access.log", "main"),
        ("access.log.1", "main"),
        ("access.log.2.gz", "combined"),
        ("access.log.3.gz", "combined"),
    ]


# with a configuration: `access.log.2` before the change, `access.log.1` the
# day of it (nginx restarted with the new configuration), `access.log` after
CONF_PHASES = (("combined", 40), ("combined", 30), ("timed", 250), ("timed", 20))


@pytest.fixture(scope="module")
def conf_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rotations of a log whose `access_log` went from `combined` to
    `timed`; `nginx.conf` is the configuration nginx runs now."""
    nginx = require_binary("nginx", "nginx-light")
    root = tmp_path_factory.mktemp("conf_change")
    for phase, (fmt, n) in enumerate(CONF_PHASES):
        _run_phase(nginx, root, fmt, phase, n)
        if phase in (0, 2):
            (root / "access.log").rename(root / f"access.log.{2 if phase == 0 else 1}")
    return root


def _parts(data: dict[str, object]) -> list[tuple[str, str, str]]:
    ov = data["overview"]
    assert isinstance(ov, dict)
    return [
        (Path(f["source"]).name, f["format"], f["detection"]) for f in ov["formats"]
    ]


@pytest.mark.nginx
def test_nginx_conf_reads_the_lines_before_its_format_with_a_preset(
    conf_logs: Path, tmp_path: Path
) -> None:
    """`--nginx-conf` gives a file the format of the `access_log` that
    writes it: the format of now. The members and lines written before the
    administrator's own format came in (`combined`) were read with it and
    were every one a `no_match` reject (70 of 340 here); they are read with
    the preset that reads them, as without a configuration."""
    logs = [conf_logs / n for n in ("access.log.2", "access.log.1", "access.log")]
    conf = str(conf_logs / "nginx.conf")
    data = _summary(*logs, options=("--nginx-conf", conf))
    total = sum(n for _, n in CONF_PHASES)
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (total, total, 0)
    seen = _parts(data)
    assert [(n, f) for n, f, _ in seen] == [
        ("access.log.2", "combined"),
        ("access.log.1", "combined"),
        ("access.log.1", "timed"),
        ("access.log", "timed"),
    ], seen
    n_old = CONF_PHASES[1][1]
    assert seen[1][2].endswith(f"log_format changed after: lines 1 to {n_old}")
    assert seen[2][2] == f"{seen[3][2]}; lines {n_old + 1} on"
    assert seen[3][2] == f"log_format `timed` of its access_log in {conf}"
    # the `timed` lines are nginx's own: each has its request time
    rows = pplog.read_log(logs, nginx_conf=conf)
    assert rows.height == total
    assert rows["request_time"].null_count() == total - sum(
        n for f, n in CONF_PHASES if f == "timed"
    )


@pytest.mark.nginx
def test_nginx_conf_reads_a_compressed_member_of_the_change(
    conf_logs: Path, tmp_path: Path
) -> None:
    """The day of the change compressed by logrotate, read with a
    configuration: each of its lines by the format that reads it."""
    import gzip

    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(conf_logs / "access.log", logs / "access.log")
    shutil.copy(conf_logs / "access.log.2", logs / "access.log.3")
    day = (conf_logs / "access.log.1").read_bytes()
    (logs / "access.log.2.gz").write_bytes(gzip.compress(day))
    conf = str(conf_logs / "nginx.conf")
    data = _summary(logs, options=("--nginx-conf", conf))
    total = sum(n for _, n in CONF_PHASES)
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (total, 0)
    assert [(n, f) for n, f, _ in _parts(data)] == [
        ("access.log.3", "combined"),
        ("access.log.2.gz", "combined"),
        ("access.log.2.gz", "timed"),
        ("access.log", "timed"),
    ]


@pytest.mark.nginx
def test_ingest_with_nginx_conf_keeps_the_configurations_format(
    conf_logs: Path, tmp_path: Path
) -> None:
    """A dataset holds one format: with `--nginx-conf`, the format of the
    `access_log` (the lines to come), as before the lines in another were
    read apart by `summarize`; the older ones are kept as rejects, and the
    run says which preset reads them."""
    logs = [conf_logs / n for n in ("access.log.2", "access.log.1", "access.log")]
    conf = str(conf_logs / "nginx.conf")
    ds = tmp_path / "ds"
    result = run_pplog(
        "ingest", *map(str, logs), "--nginx-conf", conf, "--dataset", str(ds)
    )
    assert result.returncode == 0, result.stderr
    assert "fit `combined`, not this dataset's `timed`" in result.stderr
    ov = _summary(ds)["overview"]
    assert isinstance(ov, dict)
    timed = sum(n for f, n in CONF_PHASES if f == "timed")
    assert (ov["requests"], ov["rejected"]) == (
        timed,
        sum(n for _, n in CONF_PHASES) - timed,
    )


def _gz(path: Path, text: str) -> None:
    import gzip

    path.write_bytes(gzip.compress(text.encode()))


def test_a_rotation_set_with_no_line_beside_others(tmp_path: Path) -> None:
    """A quiet vhost's set after logrotate, every member empty, beside a log
    with lines: its compressed members are not looked at for a change (the
    run had stopped with an unexpected failure), in `summarize`, `doctor`
    and `ingest`."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_text(_lines("combined", 30))
    (logs / "quiet-access.log").write_text("")
    (logs / "quiet-access.log.1").write_text("")
    _gz(logs / "quiet-access.log.2.gz", "")
    assert _summary(logs)["overview"]["requests"] == 30
    doctor = run_pplog("doctor", str(logs))
    assert doctor.returncode in (0, 3), doctor.stderr
    assert "unexpected" not in doctor.stderr
    ingest = run_pplog(
        "ingest", str(logs / "quiet-access.log*"), "--dataset", str(tmp_path / "ds")
    )
    assert ingest.returncode == 0, ingest.stderr


@pytest.mark.parametrize("given", ["dir", "empty-between", "gz-only"])
def test_the_compressed_member_of_the_change_is_found_past_what_tells_nothing(
    tmp_path: Path, given: str
) -> None:
    """The member of the change is compared with the next newer member that
    has lines: an empty rotation (a quiet day, logrotate's `ifempty`; the
    live log just rotated) tells nothing. When only the compressed
    rotations are given, the newest of them is looked into. Its `main`
    lines were 300 `no_match` rejects in both cases."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _gz(logs / "access.log.4.gz", _lines("combined", 400))
    _gz(logs / "access.log.3.gz", _lines("combined", 300) + _lines("main", 300, 300))
    _gz(logs / "access.log.2.gz", "")
    (logs / "access.log.1").write_text(_lines("main", 250) if given == "dir" else "")
    (logs / "access.log").write_text("")
    if given == "dir":
        (logs / "access.log.2.gz").unlink()
    inputs = [str(logs / "access.log.*.gz")] if given == "gz-only" else [str(logs)]
    data = _summary(*map(Path, inputs))
    ov = data["overview"]
    assert isinstance(ov, dict)
    total = 1000 + (250 if given == "dir" else 0)
    assert (ov["requests"], ov["rejected"]) == (total, 0)
    parts = [(n, f) for n, f, _ in _parts(data) if n == "access.log.3.gz"]
    assert parts == [("access.log.3.gz", "combined"), ("access.log.3.gz", "main")]


def test_a_damaged_member_of_the_change_is_told_of_once(tmp_path: Path) -> None:
    """The member of the change is read twice: its damage is said once, and
    the progress counts its bytes once."""
    import gzip

    logs = tmp_path / "logs"
    logs.mkdir()
    whole = gzip.compress((_lines("combined", 3000) + _lines("main", 3000)).encode())
    (logs / "access.log.1.gz").write_bytes(whole[: len(whole) * 3 // 4])
    (logs / "access.log").write_text(_lines("main", 300))
    result = run_pplog("summarize", str(logs), "--to", "json", "--top", "0")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("compressed data ends early") == 1, result.stderr
    ov = json.loads(result.stdout)["overview"]
    assert len(ov["unreadable"]) == 1
    assert ov["rejected"] <= 1  # the line the damage cut, at most
    seen: list[tuple[int, int | None]] = []
    with pytest.warns(PplogWarning) as warned:
        pplog.summarize(logs, on_progress=lambda n, total: seen.append((n, total)))
    assert len(warned) == 1
    size = sum(p.stat().st_size for p in logs.iterdir())
    assert {total for _, total in seen} == {size}
    assert sum(n for n, _ in seen) <= size


@pytest.mark.nginx
def test_a_member_no_preset_reads_is_told_of(conf_logs: Path) -> None:
    """Without a configuration, the members written after nginx took a
    format of the administrator's own are read with their set's format,
    what it reads of them read, the rest `no_match` rejects as before; each
    such member is now told of once, with what to pass to read it, where
    before nothing said why 270 of 340 lines were rejects. The oldest
    member (40 lines) decides the set's format from its own lines when
    topping its sample up with the newer members' gives no preset: the run
    stopped with `no preset fits access.log.2` (70 of 200 sample lines)."""
    logs = [conf_logs / n for n in ("access.log.2", "access.log.1", "access.log")]
    result = run_pplog("summarize", *map(str, logs), "--to", "json", "--top", "0")
    assert result.returncode == 0, result.stderr
    ov = json.loads(result.stdout)["overview"]
    timed = sum(n for f, n in CONF_PHASES if f == "timed")
    assert (ov["format"], ov["rejected"]) == ("combined", timed)
    told = result.stderr.splitlines()
    n_old = CONF_PHASES[1][1]
    assert told == [
        f"pplog: warning: {logs[1]}: {n_old} of its first 200 lines fit `combined`, "
        "its rotation set's format, and no preset reads them (was nginx's "
        "log_format changed to one of its own, or is the file damaged?); the "
        "lines `combined` does not read are counted as rejects: pass --nginx-conf "
        "/etc/nginx/nginx.conf (or --log-format 'ITS log_format') to read them "
        "with nginx's own format",
        f"pplog: warning: {logs[2]}: 0 of its first {CONF_PHASES[3][1]} lines fit "
        "`combined`, its rotation set's format, and no preset reads them (was "
        "nginx's log_format changed to one of its own, or is the file damaged?); "
        "the lines `combined` does not read are counted as rejects: pass "
        "--nginx-conf /etc/nginx/nginx.conf (or --log-format 'ITS log_format') to "
        "read them with nginx's own format",
    ], told
    jobs = run_pplog(
        "summarize", *map(str, logs), "--to", "json", "--top", "0", "--jobs", "2"
    )
    assert jobs.stderr.splitlines() == told
    assert json.loads(jobs.stdout)["overview"] == ov


def test_ingest_names_every_member_of_a_changed_log(tmp_path: Path) -> None:
    """A first run over compressed rotations only, the middle one the day
    of the change: the refusal names each member in each format, the one
    read line by line with the lines of each, where it named the member
    plainly as `main` and left the newest out."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _gz(logs / "access.log.3.gz", _lines("combined", 300))
    _gz(logs / "access.log.2.gz", _lines("combined", 300) + _lines("main", 300, 300))
    _gz(logs / "access.log.1.gz", _lines("main", 300))
    ds = tmp_path / "ds"
    result = run_pplog("ingest", f"{logs}/*", "--dataset", str(ds), "--final")
    assert result.returncode == 1
    p = f"{logs}/access.log"
    assert result.stderr == (
        f"Error: the log format of `{p}` changed ({p}.3.gz, {p}.2.gz (lines in "
        f"combined): combined; {p}.2.gz (log_format changed: lines in main), "
        f"{p}.1.gz: main); a dataset holds one format: pass --format main, the "
        "format of its newest lines (lines in another are kept as rejects)\n"
    )


@pytest.mark.nginx
def test_ingest_warns_when_new_lines_fit_no_preset(
    conf_logs: Path, tmp_path: Path
) -> None:
    """Cron's ingest after nginx took a format of the administrator's own:
    its lines fit no preset, and every new line was a reject without a
    word (exit 0, quiet); the run now says so, with what to pass."""
    live = tmp_path / "access.log"
    live.write_text((conf_logs / "access.log.2").read_text())  # `combined`
    ds = tmp_path / "ds"
    first = run_pplog("ingest", str(live), "--dataset", str(ds))
    assert (first.returncode, first.stderr) == (0, "")
    timed = (conf_logs / "access.log").read_text()  # nginx's own `timed` lines
    with live.open("a") as f:
        f.write(timed)
    second = run_pplog("ingest", str(live), "--dataset", str(ds))
    assert second.returncode == 0
    n = len(timed.splitlines())
    assert second.stderr == (
        f"pplog: warning: {live}: {n} lines read this run fit neither this "
        "dataset's `combined` nor any preset (was nginx's log_format changed to "
        f"one of its own?); they are kept as rejects: ingest {live} into a "
        "--dataset of its own with --nginx-conf /etc/nginx/nginx.conf\n"
    )


# a change undone without a rotation: `combined`, `main` for a while, `combined`
REVERT_PHASES = (("combined", 300), ("main", 100), ("combined", 300))


@pytest.fixture(scope="module")
def revert_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nginx = require_binary("nginx", "nginx-light")
    root = tmp_path_factory.mktemp("format_revert")
    for phase, (fmt, n) in enumerate(REVERT_PHASES):
        _run_phase(nginx, root, fmt, phase, n)
    return root / "access.log"


@pytest.mark.nginx
def test_a_change_undone_within_a_file_is_read_with_both_formats(
    revert_log: Path,
) -> None:
    """nginx given `main`, then `combined` again, the file not rotated: its
    first and last lines agree, and its `main` lines were 100 `no_match`
    rejects. Lines at offsets inside a file are judged too; the stretch in
    the other format is cut out and read with it."""
    data = _summary(revert_log)
    ov = data["overview"]
    assert isinstance(ov, dict)
    total = sum(n for _, n in REVERT_PHASES)
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (total, total, 0)
    seen = _parts(data)
    first, middle = REVERT_PHASES[0][1], REVERT_PHASES[1][1]
    assert [(f, note.rsplit("; ", 1)[-1]) for _, f, note in seen] == [
        ("combined", f"lines 1 to {first}"),
        ("main", f"log_format changed: lines {first + 1} to {first + middle}"),
        ("combined", f"log_format changed back: lines {first + middle + 1} on"),
    ], seen
    assert "from lines inside it" in seen[1][2]
    assert pplog.read_log(revert_log).select(KEYS).equals(_forced(revert_log))


@pytest.mark.parametrize("where", ["inside", "near-the-end"])
def test_lines_of_both_formats_at_a_change_and_its_undoing_are_each_read(
    tmp_path: Path, where: str
) -> None:
    """After each reload, the old workers' lines among the new: both
    stretches read line by line, every line once, by its format; a stretch
    past the last probe is found from it to the end."""
    import random

    rng = random.Random(3)
    c = _lines("combined", 12000).splitlines(keepends=True)
    m = _lines("main", 3000, 20000).splitlines(keepends=True)
    first = 6000 if where == "inside" else 11500
    z1, z2 = c[first : first + 40] + m[:40], m[-40:] + c[first + 40 : first + 80]
    rng.shuffle(z1)
    rng.shuffle(z2)
    tail = c[first + 80 :] if where == "inside" else c[first + 80 : first + 130]
    log = tmp_path / "access.log"
    log.write_text("".join(c[:first] + z1 + m[40:-40] + z2 + tail))
    total = first + 80 + len(m) + len(tail)
    data = _summary(log)
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (total, 0)
    assert pplog.read_log(log).select(KEYS).sort("line").equals(_forced(log))
    jobs = run_pplog("summarize", str(log), "--to", "json", "--top", "0", "--jobs", "2")
    assert json.loads(jobs.stdout)["overview"] == ov


@pytest.mark.nginx
def test_ingest_refuses_a_log_nginx_writes_in_a_format_of_its_own(
    conf_logs: Path, tmp_path: Path
) -> None:
    """The newest member of a set in no preset: every line to come would be
    a reject. Before, the run stopped at the set's sample (`no preset fits`);
    with the oldest member's own lines deciding, it committed the live
    file's lines as rejects without a word. It refuses, saying what to pass,
    and `--nginx-conf` takes it."""
    logs = [conf_logs / n for n in ("access.log.2", "access.log.1", "access.log")]
    ds = tmp_path / "ds"
    result = run_pplog("ingest", *map(str, logs), "--dataset", str(ds))
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: no preset reads `{logs[2]}`, the newest of its rotation set, whose "
        "older lines are `combined` (was nginx's log_format changed to one of its "
        "own?); a dataset holds one format: pass --nginx-conf /etc/nginx/nginx.conf "
        "(or --log-format 'ITS log_format') to read its lines\n"
    )
    assert not (ds / "requests").exists()


@pytest.mark.nginx
def test_nginx_conf_reads_a_file_alone_written_before_the_change(
    conf_logs: Path,
) -> None:
    """A rotation from before the change, given alone with the configuration
    of now: its lines were every one a reject (its set's other members
    were not there to tell it apart)."""
    conf = str(conf_logs / "nginx.conf")
    data = _summary(conf_logs / "access.log.2", options=("--nginx-conf", conf))
    ov = data["overview"]
    assert isinstance(ov, dict)
    n = CONF_PHASES[0][1]
    assert (ov["requests"], ov["rejected"], ov["format"]) == (n, 0, "combined")


@pytest.mark.nginx
def test_the_notebook_is_told_of_a_member_no_preset_reads(conf_logs: Path) -> None:
    """`read_log` of one set (one group) warned of nothing."""
    logs = [conf_logs / n for n in ("access.log.2", "access.log.1", "access.log")]
    with pytest.warns(PplogWarning) as warned:
        rows = pplog.read_log(logs)
    told = sorted(str(w.message).split(": ", 1)[0] for w in warned)
    assert told == sorted(map(str, logs[1:]))
    assert rows.height == CONF_PHASES[0][1] + CONF_PHASES[1][1]


def test_an_inputs_warnings_are_told_by_its_first_part() -> None:
    """A task cut for workers (`--jobs`, a cluster) tells each input's
    warnings once, from the part that reads its first lines: the cluster
    said each as many times as the task had parts (8 times in a sweep)."""
    from pplog.clientip import ProxyPolicy
    from pplog.formats import PRESETS
    from pplog.run import cluster
    from pplog.sources import Source
    from pplog.tasks import Task

    a, b = Source("a.log", Path("a.log")), Source("b.log", Path("b.log"))
    task = Task(
        (a, b), PRESETS["combined"], ProxyPolicy(), warnings=(("b.log", "told"),)
    )
    parts = [task.of(p, first=i == 0) for i, p in enumerate([b, b, a])]
    assert [p.warnings for p in parts] == [(("b.log", "told"),), (), ()]
    shared = cluster.split([task])
    assert [t.warnings for t in shared] == [(), (("b.log", "told"),)]


@pytest.mark.nginx
def test_top_with_nginx_conf_reads_the_configuration_again(
    conf_logs: Path, tmp_path: Path
) -> None:
    """`top --nginx-conf` kept the format the configuration gave when it
    started: after nginx was reloaded with a format of its own, every new
    line was a reject, with nothing said. Once ten are, the configuration
    is read again and its format taken for the file."""
    log = tmp_path / "access.log"
    log.write_text((conf_logs / "access.log.2").read_text())  # `combined`
    conf = tmp_path / "nginx.conf"
    text = (conf_logs / "nginx.conf").read_text()
    conf.write_text(
        text.replace(f"{conf_logs / 'access.log'} timed", f"{log} combined")
    )

    def reload() -> None:  # what the administrator edits before the reload
        conf.write_text(text.replace(str(conf_logs / "access.log"), str(log)))

    new = (conf_logs / "access.log.1").read_text().splitlines(keepends=True)[-60:]
    polls = [new[i : i + 5] for i in range(0, 60, 5)]
    ov, said = _follow(log, polls, reload, nginx_conf=str(conf))
    # the first poll's 5 stay rejects: the second makes ten, and is read again
    assert (ov["lines"], ov["requests"], ov["rejected"]) == (60, 55, 5)
    assert said == [
        f"{log}: its new lines are in `timed`, not `combined` (nginx's log_format "
        "changed?): read as `timed` from now on"
    ]


def test_a_stretch_of_alternating_formats_is_found_line_by_line(
    tmp_path: Path,
) -> None:
    """A reload to `main` and one back soon after, under load: the two
    formats alternate for the whole stretch (old and new workers), so no
    probe had more than half its lines in `main`, and the 800 were rejects
    (652 in a sweep with real nginx). A probe's lines are judged one by
    one: half of them that only `main` reads is a change."""
    c = _lines("combined", 9600).splitlines(keepends=True)
    m = _lines("main", 800, 20000).splitlines(keepends=True)
    both = [x for pair in zip(c[4000:4800], m, strict=True) for x in pair]
    log = tmp_path / "access.log"
    log.write_text("".join(c[:4000] + both + c[4800:]))
    ov = _summary(log)["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (10400, 0)
    assert pplog.read_log(log).select(KEYS).sort("line").equals(_forced(log))


@pytest.mark.parametrize("undone", [False, True], ids=["changed", "undone"])
def test_a_change_found_in_a_file_not_cut_is_told_of(
    tmp_path: Path, undone: bool
) -> None:
    """A copytruncate hole at a file's start: it is not cut where its
    format changed (its bytes are not read apart), and its lines in the
    other format are rejects, as before; it is now said, once."""
    log = tmp_path / "access.log"
    text = _lines("combined", 3000) + _lines("main", 3000, 4000)
    text += _lines("combined", 3000, 8000) if undone else ""
    log.write_bytes(b"\0" * (200 << 10) + text.encode())
    result = run_pplog("summarize", str(log), "--to", "json", "--top", "0")
    assert result.returncode == 0, result.stderr
    ov = json.loads(result.stdout)["overview"]
    assert ov["rejected"] >= 3000
    assert result.stderr.count(f"pplog: warning: {log}: its log_format changed") == 1
    assert "so it is not read apart where it changed: its lines in `main`" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("first", "middle", "last"), [(15, 3000, 6000), (25, 9000, 25)]
)
def test_a_stretch_that_begins_in_the_first_lines(
    tmp_path: Path, first: int, middle: int, last: int
) -> None:
    """The second format from line 16 on: the head (200 lines) is mostly
    in it, so the file was read with it and cut where the first came back,
    its first lines rejects. Its first and last lines agree: the file is
    the first format's, with a stretch of the second cut out."""
    log = tmp_path / "access.log"
    log.write_text(
        _lines("combined", first)
        + _lines("main", middle, 10000)
        + _lines("combined", last, 20000)
    )
    data = _summary(log)
    ov = data["overview"]
    assert isinstance(ov, dict)
    total = first + middle + last
    assert (ov["requests"], ov["rejected"]) == (total, 0)
    assert [(f, note.rsplit("; ", 1)[-1]) for _, f, note in _parts(data)] == [
        ("combined", f"lines 1 to {first}"),
        ("main", f"log_format changed: lines {first + 1:,} to {first + middle:,}"),
        ("combined", f"log_format changed back: lines {first + middle + 1:,} on"),
    ]


def test_an_old_workers_line_well_after_the_reload_is_read(tmp_path: Path) -> None:
    """A download that began before the reload is logged, in the old format,
    when it ends: 2,000 lines after the change in a sweep. The search for
    the lines in both formats stopped at the first 64 KiB without one; it
    goes on for 1 MiB past the last now."""
    c = _lines("combined", 10001).splitlines(keepends=True)
    m = _lines("main", 5000, 20000).splitlines(keepends=True)
    log = tmp_path / "access.log"
    log.write_text("".join(c[:5000] + m[:2000] + c[5000:5001] + m[2000:] + c[5001:]))
    ov = _summary(log)["overview"]
    assert isinstance(ov, dict)
    assert (ov["requests"], ov["rejected"]) == (15001, 0)
