"""The command line: output, exit codes, errors, and log content kept harmless."""

from __future__ import annotations

import gzip
import json
import lzma
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pplog.cli import cli

LINE = '{ip} - - [27/Nov/2026:06:0{m}:02 +0000] "GET {path} HTTP/1.1" {status} 100 "-" "curl/8.5.0"'


def write_log(path: Path) -> Path:
    lines = [
        LINE.format(ip="203.0.113.7", m=1, path="/a", status=200),
        LINE.format(ip="203.0.113.7", m=2, path="/a", status=404),
        LINE.format(ip="198.51.100.9", m=3, path="/b", status=503),
        "not a log line",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_json_shape(runner: CliRunner, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    result = runner.invoke(
        cli,
        ["summarize", str(log), "--format", "combined", "--to", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    ov = doc["overview"]
    assert {
        k: ov[k] for k in ("lines", "requests", "rejected", "clients", "bytes")
    } == {
        "lines": 4,
        "requests": 3,
        "rejected": 1,
        "clients": 2,
        "bytes": 300,
    }
    assert ov["first_time"] == "2026-11-27T06:01:02Z"
    assert ov["last_time"] == "2026-11-27T06:03:02Z"
    assert ov["rejected_by_reason"] == {"no_match": 1}
    assert doc["clients"][0] == {
        "client_ip": "203.0.113.7",
        "requests": 2,
        "bytes": 200,
        "errors_4xx": 1,
        "errors_5xx": 0,
        "paths": 1,
        "first_time": "2026-11-27T06:01:02Z",
        "last_time": "2026-11-27T06:02:02Z",
        "top_user_agent": "curl/8.5.0",
    }
    assert [p["path"] for p in doc["paths"]] == ["/a", "/b"]
    assert [(e["status"], e["path"]) for e in doc["errors"]] == [
        (404, "/a"),
        (503, "/b"),
    ]
    assert doc["reject_samples"][0]["line"] == 4


def test_top_zero_keeps_all_rows(runner: CliRunner, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    args = ["summarize", str(log), "--format", "combined", "--to", "json"]
    one = json.loads(runner.invoke(cli, [*args, "--top", "1"]).stdout)
    every = json.loads(runner.invoke(cli, [*args, "--top", "0"]).stdout)
    assert (len(one["clients"]), len(every["clients"])) == (1, 2)


def test_terminal_report_and_auto_detection(runner: CliRunner, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    result = runner.invoke(
        cli, ["summarize", str(log), "--width", "120"], catch_exceptions=False
    )
    assert result.exit_code == 0
    out = result.stdout
    assert "pplog combined  (auto-detected: 3 of 4 sample lines fit)" in out
    assert "lines:    4   requests: 3   rejected: 1 (no_match 1)" in out
    assert "203.0.113.7" in out and "/b" in out
    assert "access.log:4 no_match: not a log line" in out


def test_hostile_log_content_never_reaches_the_terminal_raw(
    runner: CliRunner, tmp_path: Path
) -> None:
    evil = LINE.format(
        ip="203.0.113.7", m=1, path=r"/\x1B[2J\x1B]0;pwn\x07[red]x[/red]", status=404
    )
    evil_reject = "\x1b[31mraw escape in a bad line\u202e"
    (tmp_path / "access.log").write_text(evil + "\n" + evil_reject + "\n")
    result = runner.invoke(
        cli,
        [
            "summarize",
            str(tmp_path / "access.log"),
            "--format",
            "combined",
            "--width",
            "150",
        ],
    )
    assert result.exit_code == 0
    out = result.stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert r"/\x1B[2J\x1B]0;pwn\x07[red]x[/red]" in out  # shown escaped, markup inert
    assert r"\x1B[31mraw escape in a bad line\u202E" in out


def test_csv_and_parquet_outputs(runner: CliRunner, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    out = tmp_path / "out"
    result = runner.invoke(
        cli,
        [
            "summarize",
            str(log),
            "--format",
            "combined",
            "--to",
            "csv",
            "--to",
            "parquet",
            "-o",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    clients = pl.read_parquet(out / "clients.parquet")
    assert clients.get_column("client_ip").to_list() == ["203.0.113.7", "198.51.100.9"]
    assert pl.read_csv(out / "paths.csv").get_column("requests").to_list() == [2, 1]
    assert not list(out.glob(".*pplog-tmp"))


def test_rejects_file_keeps_every_bad_line(runner: CliRunner, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(
        cli, ["summarize", str(log), "--format", "combined", "--rejects", str(rejects)]
    )
    assert result.exit_code == 0
    rows = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert rows == [
        {
            "source": str(log),
            "line": 4,
            "offset": log.read_bytes().index(b"not a log"),
            "reject_reason": "no_match",
            "raw": "not a log line",
        }
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["summarize", "/nonexistent/access.log"],
            1,
            "Error: no such file: `/nonexistent/access.log`",
        ),
        (
            ["summarize", "{log}", "--format", "nope"],
            1,
            "Error: unknown log format preset `nope`",
        ),
        (
            ["summarize", "{log}", "--log-format", "$remote_addr $"],
            1,
            "Error: `$` without a variable name",
        ),
        (["summarize", "{log}", "--top", "-1"], 2, "Invalid value for '--top'"),
        (
            ["summarize", "{log}", "--to", "json", "--to", "terminal"],
            2,
            "both write to stdout",
        ),
        (
            ["summarize", "{log}", "--to", "csv"],
            2,
            "Error: --to csv writes files: give a directory with -o",
        ),
        (
            ["summarize", "{log}", "--log-format-name", "x"],
            2,
            "needs an nginx configuration",
        ),
        (["summarize", "{garbage}"], 1, "Error: no preset fits"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    runner: CliRunner, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    log = write_log(tmp_path / "access.log")
    garbage = tmp_path / "garbage.log"
    garbage.write_text("hello\nworld\n")
    argv = [a.format(log=log, garbage=garbage) for a in args]
    result = runner.invoke(cli, argv)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_broken_file_is_one_stderr_line_and_the_run_goes_on(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    broken = tmp_path / "access.log.1.gz"
    blob = gzip.compress(log.read_bytes() * 2000)
    broken.write_bytes(blob[: len(blob) // 2])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pplog",
            "summarize",
            str(broken),
            str(log),
            "--format",
            "combined",
            "--to",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"pplog: warning: {broken}: stopped at byte")
    assert json.loads(proc.stdout)["overview"]["requests"] > 3


def test_stdin_is_read_once_for_every_table(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pplog",
            "summarize",
            "-",
            "--format",
            "combined",
            "--to",
            "json",
        ],
        input=log.read_text(),
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(proc.stdout)
    assert doc["overview"]["lines"] == 4
    assert len(doc["clients"]) == 2 and len(doc["paths"]) == 2


def test_formats_command(runner: CliRunner) -> None:
    listing = runner.invoke(cli, ["formats"]).output
    assert "elb_log" in listing and "alb" in listing
    shown = runner.invoke(cli, ["formats", "elb_log"]).output
    assert "columns: proxy_protocol_addr, remote_user" in shown
    custom = runner.invoke(
        cli, ["formats", "--log-format", "$remote_user $http_x_forwarded_for"]
    )
    assert "warning:" in custom.output
    assert runner.invoke(cli, ["formats", "nope"]).exit_code == 1


def test_every_command_has_help_with_examples(runner: CliRunner) -> None:
    for command in ([], ["summarize"], ["formats"]):
        result = runner.invoke(cli, [*command, "-h"])
        assert result.exit_code == 0
        assert "Examples:" in result.output


def test_doctor_json_and_terminal(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '10.0.1.5 - - [27/Nov/2026:06:01:02 +0000] "PROXY TCP4 198.51.100.22 203.0.113.7 '
        '35646 80" 400 157 "-" "-"\n'
        '198.51.100.9 - - [27/Nov/2026:06:01:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n'
    )
    result = runner.invoke(
        cli, ["doctor", str(log), "--format", "combined", "--to", "json"]
    )
    assert result.exit_code == 3, result.output  # an error finding: found problems
    findings = json.loads(result.stdout)["findings"]
    assert [(f["code"], f["count"]) for f in findings] == [
        ("proxy-header-on-plain-listener", 1)
    ]
    assert findings[0]["examples"][0].endswith('400 157 "-" "-"')
    text = runner.invoke(cli, ["doctor", str(log), "--format", "combined"]).stdout
    assert "proxy-header-on-plain-listener  (1)" in text
    assert runner.invoke(cli, ["doctor"]).exit_code == 2


def test_hostile_inputs_are_rejects_or_errors_never_tracebacks(tmp_path: Path) -> None:
    odd = tmp_path / "odd.log"
    odd.write_bytes(
        b"\xef\xbb\xbf"  # a BOM before the first line
        + LINE.format(ip="203.0.113.7", m=1, path="/a", status=200).encode()
        + b"\n"
        + b'203.0.113.9 - - [31/Dec/9999:23:59:59 -1200] "GET / HTTP/1.1" 200 1 "-" "-"\n'
        + b'203.0.113.9 - - [20/Nov/0000:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pplog",
            "summarize",
            str(odd),
            "--format",
            "combined",
            "--to",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    ov = json.loads(proc.stdout)["overview"]
    assert (ov["requests"], ov["rejected_by_reason"]) == (1, {"bad_time": 2})
    assert json.loads(proc.stdout)["clients"][0]["client_ip"] == "203.0.113.7"  # no BOM
    empty = subprocess.run(
        [sys.executable, "-m", "pplog", "summarize", ""],
        capture_output=True,
        text=True,
        check=False,
    )
    assert empty.returncode == 1
    assert empty.stderr.startswith("Error: an empty path was given")


def test_outputs_write_through_symlinks(runner: CliRunner, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    args = [
        "summarize",
        str(log),
        "--format",
        "combined",
        "--to",
        "json",
        "-o",
        str(link),
    ]
    assert runner.invoke(cli, args).exit_code == 0
    assert link.is_symlink()
    assert json.loads(target.read_text())["overview"]["lines"] == 4


def test_stdin_format_is_detected(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    proc = subprocess.run(
        [sys.executable, "-m", "pplog", "summarize", "-", "--to", "json"],
        input=log.read_text(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["overview"]["format"] == "combined"


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress])
def test_compressed_stdin_format_is_detected(
    compress: Callable[[bytes], bytes],
) -> None:
    """`cat access.log.gz | pplog summarize -`: the lines the buffered bytes
    decompress to are detected (they were not peeked into: combined was
    assumed and an elb_log was all rejects)."""
    log = Path(__file__).resolve().parent.parent / "sample_logs" / "elb-access.log"
    proc = subprocess.run(
        [sys.executable, "-m", "pplog", "summarize", "-", "--to", "json"],
        input=compress(log.read_bytes()),
        capture_output=True,
        check=True,
    )
    overview = json.loads(proc.stdout)["overview"]
    assert overview["format"] == "elb_log"
    assert overview["requests"] == overview["lines"] == 3000


def test_doctor_says_when_nothing_parsed(runner: CliRunner, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log")
    result = runner.invoke(cli, ["doctor", str(log), "--format", "alb", "--to", "json"])
    codes = [f["code"] for f in json.loads(result.stdout)["findings"]]
    assert codes == ["no-lines-parsed"]


# Runs the command line in a fresh interpreter and says, after it, how many
# objects the collector had set aside and how many it still tracks.
_GC_RUN = """
import gc, sys
sys.argv = ["pplog", *sys.argv[1:]]
import pplog.cli
try:
    pplog.cli.main()
finally:
    print(gc.get_freeze_count(), len(gc.get_objects()), file=sys.stderr)
"""


def test_the_command_line_sets_what_its_imports_made_aside(tmp_path: Path) -> None:
    # polars', click's and pplog's objects live until exit: frozen, the
    # collection at exit does not walk them (2M-line summary: 50-83 -> 30-35
    # ms from the output to the end of the process)
    log = write_log(tmp_path / "access.log")
    done = subprocess.run(
        [sys.executable, "-c", _GC_RUN, "summarize", str(log), "--to", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout)["overview"]["requests"] == 3
    frozen, tracked = map(int, done.stderr.split())
    assert frozen > 20_000  # the imports' objects
    assert tracked < frozen  # what the run itself made is still collected


@pytest.mark.parametrize("color", ["--color", "--no-color"])
def test_the_progress_bar_follows_no_color(tmp_path: Path, color: str) -> None:
    """On a terminal `--no-color` left the report plain but the progress bar
    on stderr coloured (hundreds of SGR sequences); it is plain too."""
    import os
    import pty
    import re

    log = tmp_path / "access.log"
    line = '203.0.113.{} - - [07/Dec/2026:18:22:10 +0000] "GET /{} HTTP/1.1" 200 1 "-" "t"\n'
    log.write_text("".join(line.format(i % 250, i) for i in range(300_000)))
    main, child = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pplog", "summarize", str(log), "--top", "1", color],
        stdout=subprocess.DEVNULL,
        stderr=child,
        env=env,
    )
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 0
    assert b"reading" in out  # the bar was drawn
    styled = re.findall(rb"\x1b\[[0-9;]*[1-9][0-9;]*m", out)
    assert bool(styled) == (color == "--color"), out[-300:]
