"""Lines holding NUL bytes are `binary` rejects, never requests.

nginx escapes every control byte it logs (`"\\x00"` is four characters of
text), so a NUL byte in a line is not something nginx wrote: the hole that
logrotate's copytruncate leaves, or a damaged block. Such a line is counted
and kept (`raw`), and none of its fields is read.

The parse-level tests feed `parse` through `sources.lines_frame`, the real line
splitter, so they do not depend on how a whole file with NULs is opened.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from helpers import CORPORA
from pplog.cli import cli
from pplog.formats import PRESETS, LogFormat
from pplog.parse import parse
from pplog.sources import lines_frame

# Real nginx output, read in place: Filebeat's nginx fixtures (the first 12
# lines are plain combined; the 13th has a virtual host in front).
NGINX_LINES = (CORPORA / "beats-nginx" / "access.log").read_text().splitlines()[:12]
ALB_LINE = (CORPORA / "vrl" / "vrl_aws_alb_inputs.log").read_text().splitlines()[0]
HOLE = "\x00" * 4096  # what copytruncate leaves where the writer's offset was


def parsed(lines: list[str], fmt: LogFormat) -> pl.DataFrame:
    data = ("\n".join(lines) + "\n").encode()
    return parse(lines_frame("access.log", data, 1, 0).lazy(), fmt).collect()


def test_nul_lines_are_binary_rejects_with_every_field_null() -> None:
    good = NGINX_LINES[0]
    lines = [
        good,
        HOLE + good,  # the hole, then the line written after the truncation
        HOLE,  # only the hole
        good.replace("GET / ", "GET /\x00 "),  # a NUL inside a value
        "\x00",
    ]
    df = parsed(lines, PRESETS["combined"])
    # the line after a hole is kept (the reader strips the NUL run before it)
    assert df.get_column("reject_reason").to_list() == [None, None, *["binary"] * 3]
    assert df.get_column("raw").to_list()[2:] == lines[2:]  # the line is kept, whole
    assert df.item(0, "remote_addr") == "77.179.66.156"
    assert df.item(1, "remote_addr") == "77.179.66.156"
    rejects = df.slice(2)
    for name in df.columns:
        if name in (
            "source",
            "line",
            "offset",
            "raw",
            "reject_reason",
            "line_too_long",
        ):
            continue
        assert rejects.get_column(name).null_count() == len(rejects), name


def test_binary_comes_before_every_other_reason() -> None:
    good = NGINX_LINES[0]
    lines = [
        "not a \x00 log line",  # else no_match
        good.replace("25/Oct/2016", "31/Feb/2016") + "\x00",  # else bad_time
        good.replace(" 200 612 ", " 200 99999999999999999999999\x00 "),
    ]
    df = parsed(lines, PRESETS["combined"])
    assert df.get_column("reject_reason").to_list() == ["binary"] * 3


def test_nginx_escaped_nul_is_text_not_binary() -> None:
    # a PROXY v2 header sent to a plain listener: nginx logs `"\x00" 400`
    line = r'10.0.1.5 - - [14/Mar/2025:09:26:53 +0000] "\x00" 400 157 "-" "-"'
    df = parsed([line], PRESETS["combined"])
    assert df.item(0, "reject_reason") is None
    assert df.item(0, "request") == "\x00"
    assert df.item(0, "status") == 400


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        (PRESETS["elb_log"], NGINX_LINES[1]),
        (PRESETS["alb"], ALB_LINE),
        (
            LogFormat.from_string(
                'escape=json {"addr":"$remote_addr","request":"$request"}'
            ),
            '{"addr":"203.0.113.7","request":"GET / HTTP/1.1"}',
        ),
    ],
    ids=["elb_log", "alb", "json"],
)
def test_every_format_rejects_binary(fmt: LogFormat, line: str) -> None:
    df = parsed([line, line.replace(" ", "\x00 ", 1), HOLE], fmt)
    assert df.get_column("reject_reason").to_list() == [None, "binary", "binary"]
    assert df.item(1, "request") is None


def test_summarize_counts_binary_lines(tmp_path: Path) -> None:
    # enough good lines that the NULs are not in the first block of the file
    good = NGINX_LINES * 40
    bad = [HOLE, NGINX_LINES[0].replace("GET / ", "GET /\x00 ")]
    path = tmp_path / "access.log"
    path.write_text("\n".join([*good, *bad]) + "\n")
    result = CliRunner().invoke(
        cli, ["summarize", str(path), "--format", "combined", "--to", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    overview = doc["overview"]
    assert overview["lines"] == len(good) + 2
    assert overview["requests"] == len(good)
    assert overview["rejected"] == 2
    assert overview["rejected_by_reason"] == {"binary": 2}
    samples = doc["reject_samples"]
    assert [(s["line"], s["reject_reason"]) for s in samples] == [
        (len(good) + 1, "binary"),
        (len(good) + 2, "binary"),
    ]
    # the sample is cut, as every raw line in a report is (--rejects keeps it whole)
    assert samples[0]["raw"] == HOLE[:2000] + f"… ({len(HOLE):,} bytes)"
    # no request was made of the NULs: every client is a real address
    assert all("\x00" not in (c["client_ip"] or "") for c in doc["clients"])


@pytest.mark.parametrize("nuls", [10_000, 2 << 20], ids=["10k", "2MiB"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_nul_run_that_ends_the_file_is_one_binary_reject(
    tmp_path: Path, nuls: int, gz: bool
) -> None:
    """The size a crash leaves past the last write: the lines before it are
    read, and the run is one `binary` reject (counted, as the README says),
    however long, plain or compressed."""
    import gzip

    line = (
        b'127.0.0.2 - - [07/Dec/2026:18:22:10 +0000] "GET / HTTP/1.1" 200 1 "-" "c"\n'
    )
    data = line * 3 + b"\0" * nuls
    log = tmp_path / ("access.log.gz" if gz else "access.log")
    log.write_bytes(gzip.compress(data) if gz else data)
    argv = ["summarize", str(log), "--format", "combined", "--to", "json"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    ov = json.loads(result.stdout)["overview"]
    assert (ov["lines"], ov["requests"]) == (4, 3)
    assert ov["rejected_by_reason"] == {"binary": 1}
