r"""The `common` and `combined` presets read Apache's backslash escapes.

Apache (since 2.0.46, `ap_escape_logitem`) writes a `"` inside a logged value
as `\"`, a backslash as `\\`, whitespace as `\n`, `\t`, ... and other bytes as
`\xhh`. nginx writes every backslash as `\x5C` and every `"` as `\x22`, so a
backslash in nginx's output is always followed by `x`: reading Apache's
escapes changes nothing nginx wrote. The tests below check both sides: Apache
lines parse and decode, and every nginx line of the corpora parses exactly as
with a plain nginx `log_format` of the same text. A user's own `log_format`
keeps nginx's escaping only.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from helpers import CORPORA, parse_lines
from pplog.cli import cli
from pplog.formats import PRESETS, LogFormat
from pplog.parse import parse
from pplog.sources import lines_frame

# Apache's `common` line from the issue: `\"` inside the request.
APACHE_COMMON = (
    r'172.17.0.1 - - [29/Sep/2021:12:37:05 +0000] "GET /a?x[\"y\"]=1 HTTP/1.1" 404 196'
)
# varnishncsa 4.1.1 output, which escapes as Apache does (varnish-cache#1868).
VARNISHNCSA = (
    r'::1 - - [07/Mar/2016:21:40:04 +0100] "GET http://localhost:6081/\" HTTP/1.1" '
    r'404 281 "-" "\""'
)
# Every escape Apache writes, in a combined line.
APACHE_ALL = (
    r'192.0.2.7 - - [29/Sep/2021:12:37:06 +0000] "GET /q?s=\"a b\" HTTP/1.1" 200 5 '
    r'"http://ex.example/\\x41" "say \"hi\"\ttab\nnl\\ \xc3\xa9 end\\"'
)


def test_apache_quote_in_the_request_parses() -> None:
    row = one_row(APACHE_COMMON, "common")
    assert row["reject_reason"] is None
    assert row["request"] == 'GET /a?x["y"]=1 HTTP/1.1'
    assert (row["method"], row["path"], row["query"], row["protocol"]) == (
        "GET",
        "/a",
        'x["y"]=1',
        "HTTP/1.1",
    )
    assert (row["remote_addr"], row["status"], row["body_bytes_sent"]) == (
        "172.17.0.1",
        404,
        196,
    )


def test_every_apache_escape_is_decoded() -> None:
    row = one_row(APACHE_ALL, "combined")
    assert row["reject_reason"] is None
    assert row["path"] == "/q"
    assert row["query"] == 's="a b"'
    assert row["http_referer"] == "http://ex.example/\\x41"  # `\\x41`: text, not A
    assert row["http_user_agent"] == 'say "hi"\ttab\nnl\\ é end\\'

    row = one_row(VARNISHNCSA, "combined")
    assert row["reject_reason"] is None
    assert (row["path"], row["http_user_agent"]) == ('/"', '"')


def test_raw_keeps_the_line_as_written(tmp_path: Path) -> None:
    bad = APACHE_COMMON.replace("404", "4o4")
    df = parse_lines(tmp_path, [bad], format="common")
    assert df.item(0, "reject_reason") == "no_match"
    assert df.item(0, "raw") == bad


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        # the user's own nginx log_format, even with the text of a preset
        (LogFormat.from_string(PRESETS["combined"].format), VARNISHNCSA),
        (LogFormat.from_string(PRESETS["common"].format), APACHE_COMMON),
        (PRESETS["main"], VARNISHNCSA + ' "-"'),
        (PRESETS["elb_log"], VARNISHNCSA),
    ],
    ids=["log_format-combined", "log_format-common", "main", "elb_log"],
)
def test_nginx_formats_stay_strict(fmt: LogFormat, line: str) -> None:
    assert parsed([line], fmt).item(0, "reject_reason") == "no_match"


def test_nginx_escaped_backslash_and_quote_keep_their_meaning() -> None:
    # nginx 1.22.1 logging `GET /a?x[\"y\"]=1` (backslashes sent by the client)
    line = (
        r'127.0.0.1 - - [05/Dec/2026:02:52:46 +0000] "GET /a?x[\x5C\x22y\x5C\x22]=1 '
        r'HTTP/1.1" 200 3 "-" "back\x5Cslash \x5C\x5C \x5Cx41"'
    )
    row = one_row(line, "combined")
    assert row["query"] == 'x[\\"y\\"]=1'
    assert row["http_user_agent"] == "back\\slash \\\\ \\x41"


NGINX_CORPORA = [
    "beats-nginx/access.log",
    "beats-nginx/test.log",
    "beats-nginx/test-with-host.log",
    "vrl/vrl_nginx_access_inputs.log",
    "nasty/nasty_lines.log",
    "lnav/logfile_access_log.0",
    "lnav/logfile_shop_access_log.0",
    "elastic-examples/apache_logs",
    "goaccess/vcombined_ci_sample.log",
]


@pytest.mark.parametrize("preset", ["combined", "common"])
def test_corpora_parse_as_with_nginx_escaping_only(preset: str) -> None:
    # none of these lines has an Apache backslash escape: every row, rejects
    # included, must be what a plain nginx log_format of the same text gives
    strict = LogFormat.from_string(PRESETS[preset].format, name=preset)
    for rel in NGINX_CORPORA:
        data = (CORPORA / rel).read_bytes()
        frame = lines_frame(rel, data, 1, 0).lazy()
        for decode in (True, False):
            assert_frame_equal(
                parse(frame, PRESETS[preset], decode=decode).collect(),
                parse(frame, strict, decode=decode).collect(),
            )


def test_summarize_reads_apache_lines(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    lines = [APACHE_ALL, VARNISHNCSA, APACHE_ALL.replace("200 5", "404 5")]
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        cli, ["summarize", str(path), "--format", "combined", "--to", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["overview"]["rejected"] == 0
    assert doc["overview"]["requests"] == 3
    errors = {(r["status"], r["path"]): r["requests"] for r in doc["errors"]}
    assert errors == {(404, '/"'): 1, (404, "/q"): 1}
    agents = {r["http_user_agent"] for r in doc["user_agents"]}
    assert agents == {'"', 'say "hi"\ttab\nnl\\ é end\\'}


def test_summarize_reads_the_common_line(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text(APACHE_COMMON + "\n")
    result = CliRunner().invoke(cli, ["summarize", str(path), "--to", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["overview"]["format"] == "common"
    assert doc["overview"]["rejected"] == 0
    assert [(r["status"], r["path"]) for r in doc["errors"]] == [(404, "/a")]


def parsed(lines: list[str], fmt: LogFormat) -> pl.DataFrame:
    data = ("\n".join(lines) + "\n").encode()
    return parse(lines_frame("access.log", data, 1, 0).lazy(), fmt).collect()


def one_row(line: str, preset: str) -> dict[str, object]:
    return parsed([line], PRESETS[preset]).row(0, named=True)
