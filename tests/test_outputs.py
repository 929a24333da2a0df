"""Outputs on hostile and large results: one escaping rule, bounded memory, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import pplog
from helpers import SAMPLES, parse_lines
from pplog._text import UNSAFE_CHARS, escape_json, json_safe
from pplog.cli import cli
from pplog.outputs import ReportOptions
from pplog.outputs import json as json_output
from pplog.outputs._format import RAW_LIMIT, shown
from pplog.outputs.doctor import write_findings
from pplog.outputs.html import HtmlReporter
from pplog.outputs.json import JsonReporter
from pplog.outputs.json import _array as json_array
from pplog.reports import Summary
from pplog.reports.doctor import diagnose

ELB = SAMPLES / "elb-access.log"
LINE = '203.0.113.{n} - - [20/Nov/2026:00:00:{s:02d} +0000] "GET {path} HTTP/1.1" 200 10 "{ref}" "{ua}"'

# One of each class the escaping rule covers: C0, DEL, C1 (U+009B is a
# one-byte CSI), bidi controls, zero-width characters, a tag character, the
# line separator, and the other characters shown as nothing (Unicode's
# default-ignorable ones: `/adm\u00ADin` would be a second `/admin`), a
# variation selector past U+E0080 among them (`_text.rare_in`).
HOSTILE = {
    "C0 escape": "\x1b",
    "DEL": "\x7f",
    "C1 CSI": "\x9b",
    "Arabic letter mark": "\u061c",
    "right-to-left override": "\u202e",
    "right-to-left isolate": "\u2067",
    "zero-width space": "\u200b",
    "byte order mark": "\ufeff",
    "tag letter A": "\U000e0041",
    "line separator": "\u2028",
    "soft hyphen": "\u00ad",
    "Hangul filler": "\u3164",
    "Mongolian vowel separator": "\u180e",
    "variation selector 16": "\ufe0f",
    "variation selector 17": "\U000e0100",
}


def _nginx_escaped(text: str) -> str:
    """A value as nginx's default escaping writes it: bytes >= 0x7F and C0 as \\xHH."""
    return "".join(
        f"\\x{b:02X}" if b < 0x20 or b >= 0x7F or b in b'"\\' else chr(b)
        for b in text.encode()
    )


def hostile_log(tmp_path: Path) -> Path:
    """Every class in a path, a user agent and a referrer, and raw in rejected lines."""
    lines = []
    for i, char in enumerate(HOSTILE.values()):
        value = _nginx_escaped(f"a{char}b")
        path = f"/p{_nginx_escaped(char)}"
        lines.append(LINE.format(n=i, s=i, path=path, ref=value, ua=value))
        lines.append(f"not a log line {char} {i}")
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return log


def _assert_inert(text: str, where: str) -> None:
    for name, char in HOSTILE.items():
        assert char not in text, f"{name} raw in {where}"


def _summarize(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, ["summarize", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


# --------------------------------------------------------------------------------------
# One escaping rule, every output


def test_every_output_escapes_every_class(tmp_path: Path) -> None:
    log = hostile_log(tmp_path)
    runner = CliRunner()
    base = [str(log), "--format", "combined", "--top", "0"]
    terminal = _summarize(runner, *base, "--width", "200")
    _assert_inert(terminal, "the terminal")
    assert r"/p\u202E" in terminal and r"\U000E0041" in terminal
    doc_text = _summarize(runner, *base, "--to", "json")
    _assert_inert(doc_text, "the JSON")
    doc = json.loads(doc_text)  # the escapes are JSON's: the data is intact
    paths = {p["path"] for p in doc["paths"]}
    assert paths == {f"/p{c}" for c in HOSTILE.values()}
    assert [r["raw"] for r in doc["reject_samples"]] == [
        f"not a log line {c} {i}" for i, c in enumerate(HOSTILE.values())
    ][:5]
    rejects = tmp_path / "rejects.jsonl"
    _summarize(
        runner, *base, "--to", "csv", "--to", "html", "-o", str(tmp_path / "out"),
        "--rejects", str(rejects),
    )  # fmt: skip
    for written in (tmp_path / "out").iterdir():
        _assert_inert(written.read_text(encoding="utf-8"), written.name)
    with (tmp_path / "out" / "user_agents.csv").open(encoding="utf-8") as f:
        agents = {row["http_user_agent"] for row in csv.DictReader(f)}
    assert r"a\u202Eb" in agents and r"a\x1Bb" in agents
    text = rejects.read_text(encoding="utf-8")
    _assert_inert(text, "--rejects")
    raws = [json.loads(line)["raw"] for line in text.splitlines()]
    assert raws == [f"not a log line {c} {i}" for i, c in enumerate(HOSTILE.values())]


def test_doctor_json_and_text_escape_every_class(tmp_path: Path) -> None:
    runner = CliRunner()
    log = tmp_path / "access.log"
    log.write_text(
        "".join(
            f'10.0.1.5 - - [27/Nov/2026:06:01:02 +0000] "PROXY TCP4 198.51.100.22 '
            f'203.0.113.7 35646 80" 400 157 "-" "{char}"\n'
            for char in HOSTILE.values()
        ),
        encoding="utf-8",
    )
    for to in ("json", "terminal"):
        args = ["doctor", str(log), "--format", "combined", "--to", to]
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 3, result.output  # found problems (the PROXY lines)
        _assert_inert(result.stdout, f"doctor --to {to}")
    result = runner.invoke(
        cli, ["doctor", str(log), "--format", "combined", "--to", "json"]
    )
    examples = json.loads(result.stdout)["findings"][0]["examples"]
    assert examples[0].endswith(f'"{HOSTILE["C0 escape"]}"')  # decoded: intact


def test_a_busy_dataset_and_a_format_shown_are_escaped(tmp_path: Path) -> None:
    """The message for a dataset another run holds (`compact`, `ingest -v`)
    names the dataset and quotes the lock file, and `pplog formats` shows
    the format it was given: text pplog did not write, escaped as every
    other message escapes it."""
    import fcntl
    import os

    hostile = "\x1b]0;TITLE\x07\x1b[31m\x9b\u202e"
    ds = tmp_path / f"ds{hostile}"
    log = tmp_path / "access.log"
    log.write_text(LINE.format(n=1, s=1, path="/", ref="-", ua="curl") + "\n")
    runner = CliRunner()
    ingest = ["ingest", str(log), "--dataset", str(ds), "--format", "combined"]
    assert runner.invoke(cli, ingest).exit_code == 0
    fd = os.open(ds / "_pplog" / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # not stuck
        os.write(fd, f"pid 1 {hostile} since {now}\n".encode())
        for args in (["compact", str(ds)], [*ingest, "-v"]):
            result = runner.invoke(cli, args)
            assert result.exit_code == 0, result.output
            assert "skipped" in result.stderr
            _assert_inert(result.stderr, args[0])
            assert result.stderr.count("\\x1B]0;TITLE") == 2  # the name and the lock
    finally:
        os.close(fd)
    shown = runner.invoke(
        cli, ["formats", "--log-format", f'$remote_addr {hostile} "$request" $status']
    )
    assert shown.exit_code == 0, shown.output
    _assert_inert(shown.stdout, "pplog formats")
    assert "\\x1B]0;TITLE" in shown.stdout
    assert shown.stdout.splitlines()[0].startswith("name:")  # still line by line


def test_csv_guard_looks_past_blanks_and_control_characters(tmp_path: Path) -> None:
    agents = ["\x00=HYPERLINK(1)", " \t=1+1", "\r@SUM(1)", "\u00a0-2+3", "=1", "ok=1"]
    lines = [
        LINE.format(n=i, s=i, path="/", ref="-", ua=_nginx_escaped(ua))
        for i, ua in enumerate(agents)
    ]
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    _summarize(
        CliRunner(), str(log), "--format", "combined", "--to", "csv", "-o", str(out)
    )
    text = (out / "user_agents.csv").read_text(encoding="utf-8")
    assert not any(ord(c) < 0x20 and c != "\n" for c in text)
    with (out / "user_agents.csv").open(encoding="utf-8") as f:
        cells = {row["http_user_agent"] for row in csv.DictReader(f)}
    assert cells == {
        r"\x00=HYPERLINK(1)",  # starts with a backslash now: no formula
        r" \x09=1+1",
        r"\x0D@SUM(1)",
        "'\u00a0-2+3",
        "'=1",
        "ok=1",
    }


# --------------------------------------------------------------------------------------
# Raw lines are cut in reports, whole in --rejects


def test_long_rejected_line_is_cut_in_every_report(tmp_path: Path) -> None:
    long = "x" * 9_000 + "é"  # 9,002 bytes
    log = tmp_path / "access.log"
    log.write_text(LINE.format(n=1, s=1, path="/", ref="-", ua="-") + f"\n{long}\n")
    runner = CliRunner()
    marker = f"{'x' * RAW_LIMIT}… (9,002 bytes)"
    base = [str(log), "--format", "combined"]
    doc = json.loads(_summarize(runner, *base, "--to", "json"))
    assert doc["reject_samples"][0]["raw"] == marker
    page = tmp_path / "r.html"
    rejects = tmp_path / "rejects.jsonl"
    _summarize(
        runner, *base, "--to", "html", "-o", str(page), "--rejects", str(rejects)
    )
    assert marker in page.read_text(encoding="utf-8")
    assert "x" * (RAW_LIMIT + 1) not in page.read_text(encoding="utf-8")
    assert json.loads(rejects.read_text())["raw"] == long


# --------------------------------------------------------------------------------------
# Memory follows the slice, not the table


def _wide_summary(rows: int) -> Summary:
    """A summary whose clients table has `rows` distinct, long rows."""
    base = pplog.summarize(str(ELB), top=3)
    clients = pl.DataFrame(
        {
            "client_ip": [f"2001:db8::{i:x}" for i in range(rows)],
            "requests": pl.Series(range(rows), dtype=pl.UInt64),
            "bytes": pl.Series(range(rows), dtype=pl.UInt64),
            "last_time": [datetime(2026, 11, 20, tzinfo=UTC)] * rows,
            "top_user_agent": [
                f"Mozilla/5.0 agent number {i} " * 4 for i in range(rows)
            ],
        }
    )
    base.clients = clients
    return base


@pytest.mark.parametrize("reporter", [JsonReporter(), HtmlReporter()])
def test_writers_stream_large_tables(reporter: object, tmp_path: Path) -> None:
    summary = _wide_summary(60_000)
    out = tmp_path / "report"
    tracemalloc.start()
    try:
        reporter.write(summary, ReportOptions(out=out))  # type: ignore[attr-defined]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = out.stat().st_size
    assert size > 16_000_000
    assert peak < size / 4, (peak, size)  # one string of the page alone is `size`


def test_json_is_what_json_dumps_writes() -> None:
    summary = pplog.summarize(str(ELB), top=0)
    stream = _Stream()
    JsonReporter().write(summary, ReportOptions(stream=stream))
    doc = {"overview": summary.overview_dict()}
    doc.update({name: table.to_dicts() for name, table in summary.tables().items()})
    doc["reject_samples"] = summary.reject_samples.to_dicts()

    def iso(value: object) -> str:
        assert isinstance(value, datetime)
        return value.isoformat().replace("+00:00", "Z")

    expected = json.dumps(doc, default=iso, ensure_ascii=False, indent=2) + "\n"
    assert "".join(stream.parts) == expected
    assert len(stream.parts) > 10


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | st.text(st.characters(exclude_categories=["Cs"])),
            st.none() | st.integers(-(2**63), 2**63 - 1),
            st.none() | st.floats(allow_nan=False, allow_infinity=False),
            st.none() | st.booleans(),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_json_rows_are_laid_out_as_indented_json_dumps(
    rows: list[tuple[object, ...]],
) -> None:
    # the C encoder's rows, re-indented, against Python's indenting encoder:
    # strings with braces, commas, quotes, newlines and unsafe characters
    schema = {"s": pl.String, "i": pl.Int64, "f": pl.Float64, "b": pl.Boolean}
    df = pl.DataFrame(rows, schema=schema, orient="row")
    expected = json.dumps(df.to_dicts(), ensure_ascii=False, indent=2)
    expected = "[\n  " + escape_json(expected[2:-2]).replace("\n", "\n  ") + "\n  ]"
    assert "".join(json_array(df)) == expected  # the C encoder (few rows)
    saved = json_output.POLARS_MIN_ROWS
    json_output.POLARS_MIN_ROWS = 1  # and polars, as for large tables
    try:
        assert "".join(json_array(df)) == expected
    finally:
        json_output.POLARS_MIN_ROWS = saved
    _assert_inert(expected, "the reference")


def test_json_safe_finds_every_character_escape_json_escapes() -> None:
    # the vectorised check that lets a table skip `escape_json`: a character
    # it missed would reach the JSON raw
    chars = [c for c in UNSAFE_CHARS if escape_json(c) != c]
    assert len(chars) > 100
    frame = pl.DataFrame({"n": range(len(chars)), "s": [f"a{c}b" for c in chars]})
    for i in range(len(chars)):
        assert not json_safe(frame.slice(i, 1)), repr(chars[i])
    # C0 is the encoder's to escape; other text needs nothing
    assert json_safe(
        pl.DataFrame({"s": ["é 日本 🚀", "\x1b[31m", None], "n": [1, 2, 3]})
    )


class _Stream:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)


# --------------------------------------------------------------------------------------
# --top: whole tables for csv and parquet, the top rows elsewhere


@pytest.mark.parametrize(
    "log", ["elb-access.log", "main-access.log", "combined-access.log", "rotated"]
)
def test_cutting_a_whole_summary_gives_the_top_summary(log: str) -> None:
    whole = pplog.summarize(str(SAMPLES / log), top=0)
    top = pplog.summarize(str(SAMPLES / log), top=3)
    cut = shown(whole, 3)
    assert cut.tables().keys() == top.tables().keys()
    for name, table in top.tables().items():
        assert_frame_equal(cut.tables()[name], table, check_exact=True)
    assert whole.clients.height > 3


def test_parquet_gets_whole_tables_and_the_terminal_its_top(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    args = [str(ELB), "--width", "120", "--to", "terminal", "--to", "parquet"]
    terminal = _summarize(runner, *args, "-o", str(out))
    clients = pl.read_parquet(out / "clients.parquet")
    assert clients.height == 350  # every client (and the rows without an address)
    assert pl.read_parquet(out / "paths.parquet").height == 1442
    assert "Top clients (health checkers not counted) (top 10)" in terminal
    explicit = tmp_path / "five"
    _summarize(runner, str(ELB), "--to", "parquet", "--top", "5", "-o", str(explicit))
    assert pl.read_parquet(explicit / "clients.parquet").height == 5
    # json and html keep their default next to parquet
    both = tmp_path / "both"
    _summarize(runner, str(ELB), "--to", "json", "--to", "csv", "-o", str(both))
    alone = _summarize(runner, str(ELB), "--to", "json")
    assert (both / "summary.json").read_text(encoding="utf-8") == alone
    assert len(pl.read_csv(both / "clients.csv")) == 350


# --------------------------------------------------------------------------------------
# Extreme times, usage errors, all outputs or none


def test_a_timeline_from_year_1_to_9998(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '203.0.113.1 - - [30/Dec/9998:23:59:59 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
        '203.0.113.2 - - [01/Jan/0001:00:00:00 +0000] "GET /x HTTP/1.1" 200 1 "-" "-"\n'
    )
    runner = CliRunner()
    out = tmp_path / "out"
    base = [str(log), "--format", "combined"]
    _summarize(runner, *base, "--to", "json", "--to", "html", "-o", str(out))
    page = (out / "summary.html").read_text(encoding="utf-8")
    assert "time (UTC), 0001-01-01 00:00:00 to +100" in page  # past 9999: polars
    assert json.loads((out / "summary.json").read_text())["overview"]["first_time"] == (
        "0001-01-01T00:00:00Z"
    )
    terminal = _summarize(runner, *base, "--width", "100")
    assert "time:     0001-01-01 00:00:00 → 9998-12-30 23:59:59 UTC" in terminal
    assert "Timeline (200y per bar" in terminal


def test_times_python_cannot_hold_reach_every_output(tmp_path: Path) -> None:
    summary = pplog.summarize(str(ELB), top=3)
    far = pl.lit(10**18 * 5, pl.Int64).cast(pl.Datetime("us", "UTC"))
    summary.overview = summary.overview.with_columns(far.alias("last_time"))
    summary.clients = summary.clients.with_columns(far.alias("last_time"))
    stream = _Stream()
    JsonReporter().write(summary, ReportOptions(stream=stream))
    doc = json.loads("".join(stream.parts))
    assert doc["overview"]["last_time"] == "+160413-09-10T08:53:20Z"
    assert doc["clients"][0]["last_time"] == "+160413-09-10T08:53:20Z"
    HtmlReporter().write(summary, ReportOptions(out=tmp_path / "r.html"))
    assert "+160413-09-10 08:53:20" in (tmp_path / "r.html").read_text()
    text = io.StringIO()
    terminal = pplog.outputs.get("terminal")
    terminal.write(summary, ReportOptions(stream=text, width=200))
    assert "→ +160413-09-10 08:53:20 UTC" in text.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "10000000y"], "longer than 10000y"),
        (["--interval", "9" * 40 + "s"], "is not a duration"),
        (
            ["--client-strategy", "hops", "--trusted-hops", "99999999999999999999"],
            "not in the range 1<=x<=64",
        ),
    ],
)
def test_huge_option_values_are_usage_errors(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pplog", "summarize", str(ELB), *args, "--to", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "unexpected" not in proc.stderr


@pytest.mark.parametrize(("opening", "closing"), [("{b = ", "}"), ("[", "]")])
def test_deeply_nested_config_is_a_usage_error(
    opening: str, closing: str, tmp_path: Path
) -> None:
    config = tmp_path / "pplog.toml"
    config.write_text(f"a = {opening * 5000}1{closing * 5000}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pplog", "ingest", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "nests tables or arrays too deeply" in proc.stderr


def test_a_failing_output_leaves_no_other_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}\n")  # from an earlier run: kept as it was
    (out / ".paths.csv.pplog-tmp").mkdir()  # the csv output cannot write there
    args = ["summarize", str(ELB), "--to", "json", "--to", "csv", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "cannot write" in result.output and "paths.csv" in result.output
    assert (out / "summary.json").read_text() == "{}\n"
    assert sorted(p.name for p in out.iterdir()) == [
        ".paths.csv.pplog-tmp",
        "summary.json",
    ]


# --------------------------------------------------------------------------------------
# Doctor's text


def test_doctor_text_lines_up_and_has_no_trailing_spaces(tmp_path: Path) -> None:
    lines = [
        '10.0.1.5 - - [10/Oct/2025:13:55:36 +0000] "PROXY TCP4 198.51.100.22 '
        '10.0.1.20 35646 80" 400 157 "-" "-"',
        '198.51.100.9 - - [10/Oct/2025:13:55:36 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"',
    ]
    findings = diagnose(parse_lines(tmp_path, lines, format="combined"))
    assert [f.code for f in findings] == [
        "proxy-header-on-plain-listener",
        "tls-on-plain-listener",
    ]
    findings[0].message += "\nsecond line of the message"
    buffer = io.StringIO()
    write_findings(findings, buffer)  # 80 columns: not a terminal
    rows = buffer.getvalue().splitlines()
    assert all(row == row.rstrip() for row in rows)
    assert all(len(row) <= 80 for row in rows)
    block = rows[: rows.index("")]
    assert block[0] == "ERROR proxy-header-on-plain-listener  (1)"
    fix = next(i for i, row in enumerate(block) if row.startswith("  fix: "))
    examples = next(i for i, row in enumerate(block) if row.startswith("  e.g. "))
    message = block[1:fix]
    assert len(message) > 2 and "  second line of the message" in message
    assert all(row.startswith("  ") and row[2] != " " for row in message)
    assert examples - fix > 1  # the fix wrapped, each line under its first word
    assert all(
        row.startswith(" " * 7) and row[7] != " " for row in block[fix + 1 : examples]
    )
