"""Turning lines into typed columns: values, escapes, times, requests, rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
from helpers import parse_lines
from pplog.cli import cli

LINE = (
    '203.0.113.7 - - [27/Nov/2026:06:01:02 +0000] "GET /a/b?x=1&y=2 HTTP/1.1" '
    '200 512 "https://www.example.com/" "curl/8.5.0"'
)


def one(tmp_path: Path, line: str, **kwargs: object) -> dict[str, object]:
    df = parse_lines(tmp_path, [line], **kwargs)
    assert df.height == 1
    return df.row(0, named=True)


def test_combined_line_is_typed(tmp_path: Path) -> None:
    row = one(tmp_path, LINE, format="combined")
    assert row["reject_reason"] is None
    assert row["remote_addr"] == "203.0.113.7"
    assert row["remote_user"] is None
    assert row["time"] == datetime(2026, 11, 27, 6, 1, 2, tzinfo=UTC)
    assert (row["method"], row["path"], row["query"], row["protocol"]) == (
        "GET",
        "/a/b",
        "x=1&y=2",
        "HTTP/1.1",
    )
    assert row["status"] == 200
    assert row["body_bytes_sent"] == 512
    assert row["client_ip"] == "203.0.113.7"
    assert row["client_ip_source"] == "remote_addr"
    assert (row["source"], row["line"], row["offset"]) == (
        str(tmp_path / "access.log"),
        1,
        0,
    )


def test_dtypes_follow_the_contract(tmp_path: Path) -> None:
    df = parse_lines(tmp_path, [LINE], format="combined")
    assert df.schema["status"] == pl.UInt16
    assert df.schema["body_bytes_sent"] == pl.UInt64
    assert df.schema["time"] == pl.Datetime("us", "UTC")
    assert df.schema["line"] == pl.UInt64


def test_dash_is_null_and_empty_stays_empty(tmp_path: Path) -> None:
    line = '203.0.113.7 - - [27/Nov/2026:06:01:02 +0000] "" 400 0 "" "-"'
    row = one(tmp_path, line, format="combined")
    assert row["reject_reason"] is None
    assert row["request"] == ""
    assert row["method"] is None and row["path"] is None
    assert row["http_referer"] == ""
    assert row["http_user_agent"] is None


@pytest.mark.parametrize(
    ("escaped", "decoded"),
    [
        (r"a\x22b", 'a"b'),
        (r"back\x5Cslash", "back\\slash"),
        (r"tab\x09x", "tab\tx"),
        (r"del\x7F", "del\x7f"),
        (r"caf\xC3\xA9", "café"),
        (r"bad\xFF\xFEend", r"bad\xFF\xFEend"),  # not UTF-8: stays escaped
        (r"\x5Cx41", r"\x41"),  # an escaped backslash is not decoded twice
        (r"\xF0\x9F\x98\x80 ok", "\U0001f600 ok"),
    ],
)
def test_nginx_escapes_are_decoded(tmp_path: Path, escaped: str, decoded: str) -> None:
    line = LINE.replace('"curl/8.5.0"', f'"{escaped}"')
    assert one(tmp_path, line, format="combined")["http_user_agent"] == decoded


def test_remote_user_with_spaces_and_brackets(tmp_path: Path) -> None:
    line = LINE.replace(" - - [", r" - ann [x] smith\x22 [")
    row = one(tmp_path, line, format="combined")
    assert row["reject_reason"] is None
    assert row["remote_user"] == 'ann [x] smith"'
    assert row["time"] == datetime(2026, 11, 27, 6, 1, 2, tzinfo=UTC)


def test_touching_variables_in_a_quoted_format_split_by_their_shapes(
    tmp_path: Path,
) -> None:
    # no literal between the two values: the cheap split cannot apply, the
    # segment's regex splits them (an address has no spaces, a port is digits)
    fmt = '$remote_addr:$remote_port$remote_user "$request" $status'
    row = one(tmp_path, '203.0.113.9:4431- "GET /x HTTP/1.1" 204', log_format=fmt)
    assert row["reject_reason"] is None
    assert (row["remote_addr"], row["remote_port"]) == ("203.0.113.9", 4431)
    assert row["path"] == "/x"
    assert row["status"] == 204


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("27/Nov/2026:06:01:02 +0000", datetime(2026, 11, 27, 6, 1, 2, tzinfo=UTC)),
        ("27/Nov/2026:06:01:02 -0700", datetime(2026, 11, 27, 13, 1, 2, tzinfo=UTC)),
        ("27/Nov/2026:06:01:02 +0530", datetime(2026, 11, 27, 0, 31, 2, tzinfo=UTC)),
        ("27/Nov/2026:06:01:02 -0930", datetime(2026, 11, 27, 15, 31, 2, tzinfo=UTC)),
        ("01/Jan/2027:00:30:00 +0100", datetime(2026, 12, 31, 23, 30, 0, tzinfo=UTC)),
    ],
)
def test_time_local_offsets_are_honoured(
    tmp_path: Path, stamp: str, utc: datetime
) -> None:
    line = LINE.replace("27/Nov/2026:06:01:02 +0000", stamp)
    assert one(tmp_path, line, format="combined")["time"] == utc


def test_every_month_name(tmp_path: Path) -> None:
    months = [
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    ]
    lines = [LINE.replace("27/Nov/2026", f"01/{m}/2026") for m in months]
    df = parse_lines(tmp_path, lines, format="combined")
    assert df.get_column("time").dt.month().to_list() == list(range(1, 13))


def test_impossible_date_is_a_bad_time_reject(tmp_path: Path) -> None:
    line = LINE.replace("27/Nov/2026", "31/Feb/2026")
    assert one(tmp_path, line, format="combined")["reject_reason"] == "bad_time"


def test_iso8601_and_msec(tmp_path: Path) -> None:
    fmt = "$time_iso8601 $msec $request_time $status"
    row = one(
        tmp_path, "2026-11-27T07:01:02+01:00 1795762862.250 0.125 200", log_format=fmt
    )
    assert row["time"] == datetime.fromtimestamp(1795762862.25, UTC)  # msec wins
    assert row["request_time"] == pytest.approx(0.125)
    row = one(
        tmp_path, "2026-11-27T07:01:02+01:00 200", log_format="$time_iso8601 $status"
    )
    assert row["time"] == datetime(2026, 11, 27, 6, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("request_line", "parts"),
    [
        ("GET /x HTTP/2.0", ("GET", "/x", None, "HTTP/2.0")),
        ("GET /x", ("GET", "/x", None, None)),  # HTTP/0.9
        ("GET /a b HTTP/1.1", ("GET", "/a b", None, "HTTP/1.1")),  # nginx < 1.21.1
        ("GET http://h.example/p?q HTTP/1.1", ("GET", "/p", "q", "HTTP/1.1")),
        ("GET http://h.example HTTP/1.1", ("GET", "/", None, "HTTP/1.1")),
        # nginx answers an authority-form target 400 and parses no part of it
        ("CONNECT h.example:443 HTTP/1.1", (None, None, None, None)),
        ("CONNECT /x HTTP/1.1", ("CONNECT", "/x", None, "HTTP/1.1")),  # 405
        ("OPTIONS * HTTP/1.0", ("OPTIONS", "*", None, "HTTP/1.0")),
        ("get / HTTP/1.1", (None, None, None, None)),
        (r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03", (None, None, None, None)),
        ("PROXY TCP4 198.51.100.22 203.0.113.7 35646 80", (None, None, None, None)),
        (r"\x00", (None, None, None, None)),
        ("GET /?a=1?b HTTP/1.1", ("GET", "/", "a=1?b", "HTTP/1.1")),
    ],
)
def test_request_line_split(
    tmp_path: Path, request_line: str, parts: tuple[object, ...]
) -> None:
    row = one(
        tmp_path,
        LINE.replace("GET /a/b?x=1&y=2 HTTP/1.1", request_line),
        format="combined",
    )
    assert row["reject_reason"] is None
    assert (row["method"], row["path"], row["query"], row["protocol"]) == parts
    assert row["request"] is not None


@pytest.mark.parametrize(
    "status", ["000", "009", "400", "408", "414", "444", "499", "505", "999"]
)
def test_any_three_digit_status(tmp_path: Path, status: str) -> None:
    row = one(tmp_path, LINE.replace(" 200 512 ", f" {status} 512 "), format="combined")
    assert row["status"] == int(status)


def test_upstream_lists_are_typed(tmp_path: Path) -> None:
    fmt = '$status "$upstream_addr" "$upstream_status" "$upstream_response_time"'
    lines = [
        '200 "10.0.3.7:8080, 10.0.3.8:8080 : 10.0.4.2:9000" "502, 200 : 200" "0.001, 0.020 : 0.004"',
        '200 "-" "-" "-"',
        '504 "unix:/run/app.sock" "-" "-, 0.010"',
        '200 "[2001:db8::5]:8080" "200" "0.100"',
    ]
    df = parse_lines(tmp_path, lines, log_format=fmt)
    assert df.get_column("reject_reason").null_count() == 4
    assert df.schema["upstream_status"] == pl.List(pl.UInt16)
    assert df.schema["upstream_response_time"] == pl.List(pl.Float64)
    assert df.get_column("upstream_addr").to_list()[0] == [
        "10.0.3.7:8080",
        "10.0.3.8:8080",
        "10.0.4.2:9000",
    ]
    assert df.get_column("upstream_status").to_list()[0] == [502, 200, 200]
    assert df.get_column("upstream_addr").to_list()[1] is None
    assert df.get_column("upstream_response_time").to_list()[2] == [None, 0.010]
    assert df.get_column("upstream_addr").to_list()[3] == ["[2001:db8::5]:8080"]


def test_upstream_numbers_nginx_never_writes_are_rejects(tmp_path: Path) -> None:
    """nginx writes an upstream time as digits with a fraction, a count or a
    status as digits, `-` where there is none: `nan`, `inf` and `1e999` had
    been read as NaN and infinity (percentiles `nan`, JSON with `NaN`, which
    is no JSON), `0x10`, `1_000` and a count past 2**64 as nulls that no
    reject counted."""
    fmt = '$status "$upstream_status" "$upstream_response_time" $upstream_bytes_sent'
    good = [
        '200 "502, 200 : 200" "0.001, 0.020 : 0.004" 10, 20 : 30',
        '200 "-" "-, 0.010" -',
        '200 "200" "123456789012345.5" 18446744073709551',
    ]
    bad = [
        '200 "200" "nan" 1',
        '200 "200" "inf, 0.1" 1',
        '200 "200" "1e999" 1',
        '200 "200" "0.5" 0x10',
        '200 "200" "0.5" 1_000',
        '200 "200" "0.5" 99999999999999999999',
        '200 "2000" "0.5" 1',
        '200 "200" "1234567890123456" 1',
        '200 "200" "0.5" -1',
    ]
    df = parse_lines(tmp_path, good + bad, log_format=fmt)
    assert df.get_column("reject_reason").to_list() == [None] * 3 + ["no_match"] * 9
    assert df.get_column("upstream_response_time").to_list()[:3] == [
        [0.001, 0.020, 0.004],
        [None, 0.010],
        [123456789012345.5],
    ]
    assert df.get_column("upstream_bytes_sent").to_list()[2] == [18446744073709551]
    doc = tmp_path / "summary.json"
    result = CliRunner().invoke(
        cli,
        ["summarize", str(tmp_path / "access.log"), "--log-format", fmt]
        + ["--to", "json", "-o", str(doc)],
    )
    assert result.exit_code == 0, result.output
    text = doc.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert json.loads(text)["overview"]["rejected"] == 9


def test_json_escape_mode(tmp_path: Path) -> None:
    fmt = 'escape=json {"ua":"$http_user_agent","u":"$remote_user","s":$status}'
    line = r'{"ua":"a\"b\\c\u0001\n","u":"","s":200}'
    row = one(tmp_path, line, log_format=fmt)
    assert row["reject_reason"] is None
    assert row["http_user_agent"] == 'a"b\\c\x01\n'
    assert row["remote_user"] == ""
    assert row["status"] == 200


def test_default_mode_line_with_a_raw_quote_is_rejected(tmp_path: Path) -> None:
    line = r'{"ua":"a\"b","s":200}'
    row = one(tmp_path, line, log_format='{"ua":"$http_user_agent","s":$status}')
    assert row["reject_reason"] == "no_match"


def test_rejects_keep_the_raw_line_and_reason(tmp_path: Path) -> None:
    lines = [
        LINE,
        "garbage here",
        "",
        LINE.replace(" 200 512 ", " 200 99999999999999999999999 "),
    ]
    df = parse_lines(tmp_path, lines, format="combined")
    assert df.get_column("reject_reason").to_list() == [
        None,
        "no_match",
        "blank_line",
        "bad_number",
    ]
    assert df.get_column("raw").to_list()[1] == "garbage here"
    assert df.get_column("line").to_list() == [1, 2, 3, 4]


def test_quote_count_mismatch_is_a_reject_not_a_shift(tmp_path: Path) -> None:
    line = LINE.replace('"curl/8.5.0"', '"cu"rl"')  # a raw quote nginx never writes
    assert one(tmp_path, line, format="combined")["reject_reason"] == "no_match"


def test_elb_log_takes_client_from_proxy_protocol(tmp_path: Path) -> None:
    lines = [
        LINE.replace("203.0.113.7", "198.51.100.22"),
        LINE.replace("203.0.113.7", "-", 1),
    ]
    df = parse_lines(tmp_path, lines, format="elb_log")
    assert df.get_column("client_ip").to_list() == ["198.51.100.22", None]
    assert df.get_column("client_ip_source").to_list() == ["proxy_protocol", None]


def test_auto_detection_prefers_elb_log_when_first_field_is_dash(
    tmp_path: Path,
) -> None:
    from pplog.pipeline import detect_format

    fmt, ok = detect_format([LINE, LINE.replace("203.0.113.7", "-", 1)])
    assert (fmt.name, ok) == ("elb_log", 2)
    fmt, ok = detect_format([LINE])
    assert fmt.name == "combined"
    fmt, ok = detect_format([LINE + ' "198.51.100.1"'])
    assert fmt.name == "main"


ALB = (
    "https 2025-03-14T09:26:53.481223Z app/shop-prod/7f3a9c2e1b0d4e55 "
    "2001:db8:4006:812::200e:51514 10.0.3.7:8080 0.001 0.014 0.000 200 200 412 1290 "
    '"GET https://shop.example.com:443/api/v1/items?page=2 HTTP/1.1" "okhttp/4.12.0" '
    "TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:eu-west-1:111122223333:"
    'targetgroup/shop-api/0a1b2c3d4e5f6071 "Root=1-67d3f5ad-0123456789abcdef01234567" '
    '"shop.example.com" "arn:aws:acm:eu-west-1:111122223333:certificate/0000" 3 '
    '2025-03-14T09:26:53.466000Z "forward" "-" "-" "10.0.3.7:8080" "200" "-" "-" '
    "TID_0123456789abcdef0123456789abcdef future1 future2"
)


def test_alb_layout(tmp_path: Path) -> None:
    row = one(tmp_path, ALB, format="alb")
    assert row["reject_reason"] is None
    assert row["remote_addr"] == "2001:db8:4006:812::200e"  # split at the last colon
    assert row["remote_port"] == 51514
    assert row["status"] == 200
    assert row["path"] == "/api/v1/items"
    assert row["query"] == "page=2"
    assert row["time"] == datetime(2025, 3, 14, 9, 26, 53, 481223, tzinfo=UTC)
    assert row["extra"] == "future1 future2"
    assert row["target_port_list"] == "10.0.3.7:8080"
    assert row["redirect_url"] is None
    assert row["request_time"] == pytest.approx(0.015)


def test_clb_tcp_listener_line(tmp_path: Path) -> None:
    line = (
        "2025-03-14T09:26:54.000118Z shop-classic 198.51.100.22:51520 10.0.3.7:443 "
        '0.000512 0.000031 0.000040 - - 517 3050 "- - - " "-" '
        "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2"
    )
    row = one(tmp_path, line, format="clb")
    assert row["reject_reason"] is None
    assert row["status"] is None
    assert row["method"] is None
    assert row["remote_addr"] == "198.51.100.22"


@pytest.mark.parametrize(
    ("request_line", "parts"),
    [
        (
            "GET  /two-spaces-before HTTP/1.1",
            ("GET", "/two-spaces-before", None, "HTTP/1.1"),
        ),
        (
            "GET /two-spaces-after  HTTP/1.1",
            ("GET", "/two-spaces-after", None, "HTTP/1.1"),
        ),
        ("GET /trailing-space HTTP/1.1 ", ("GET", "/trailing-space", None, "HTTP/1.1")),
        ("GET /minor-10 HTTP/1.10", ("GET", "/minor-10", None, "HTTP/1.10")),
        ("GET /sp-query?a=1  HTTP/1.0", ("GET", "/sp-query", "a=1", "HTTP/1.0")),
        ("GET /zero-nine-sp ", ("GET", "/zero-nine-sp", None, None)),
        ("GET ", (None, None, None, None)),
        # one-character targets: the protocol is not swallowed into the target
        ("GET / HTTP/1.1 ", ("GET", "/", None, "HTTP/1.1")),
        ("GET /  HTTP/1.1", ("GET", "/", None, "HTTP/1.1")),
        ("OPTIONS * HTTP/1.1", ("OPTIONS", "*", None, "HTTP/1.1")),
        ("GET /a b HTTP/1.0", ("GET", "/a b", None, "HTTP/1.0")),
        ("GET http://example.com HTTP/1.1", ("GET", "/", None, "HTTP/1.1")),
    ],
)
def test_request_lines_nginx_accepts_with_odd_spacing(
    tmp_path: Path, request_line: str, parts: tuple[object, ...]
) -> None:
    row = one(
        tmp_path,
        LINE.replace("GET /a/b?x=1&y=2 HTTP/1.1", request_line),
        format="combined",
    )
    assert (row["method"], row["path"], row["query"], row["protocol"]) == parts


def test_json_mode_missing_values_are_empty_and_raw_bytes_survive(
    tmp_path: Path,
) -> None:
    fmt = 'escape=json {"up":"$upstream_addr","rt":$upstream_response_time,"ua":"$http_user_agent"}'
    data = b'{"up":"","rt":,"ua":"\xff\\"x\\u0001"}\n'
    path = tmp_path / "j.log"
    path.write_bytes(data)
    from pplog import read_log

    row = read_log(path, log_format=fmt, include_rejects=True).row(0, named=True)
    assert row["reject_reason"] is None
    assert row["upstream_addr"] is None and row["upstream_response_time"] is None
    assert row["http_user_agent"] == '\\xFF"x\x01'


def test_msec_past_the_year_9999_is_a_bad_time(tmp_path: Path) -> None:
    """Before, such a `$msec` overflowed the cast and every command stopped with
    an unexpected failure (an `ingest` cron job on every later run too)."""
    df = parse_lines(
        tmp_path,
        [
            '1.2.3.4 99999999999999999999.000 "GET / HTTP/1.1" 200',
            '1.2.3.4 253402300800.000 "GET / HTTP/1.1" 200',
            '1.2.3.4 1764892800.123 "GET / HTTP/1.1" 200',
        ],
        log_format='$remote_addr $msec "$request" $status',
    )
    assert df.get_column("reject_reason").to_list() == ["bad_time", "bad_time", None]
    assert df.item(2, "time") == datetime(2025, 12, 5, 0, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("escape", "decoder", "value", "decoded"),
    [
        ("default", "_decode_default", "caf\\xC3\\xA9 \\x22q\\x22", 'café "q"'),
        ("json", "_decode_series", 'caf\\u00e9 \\"q\\"', 'café "q"'),
    ],
)
def test_a_collected_frame_is_decoded_one_call_per_column(
    monkeypatch: pytest.MonkeyPatch,
    escape: str,
    decoder: str,
    value: str,
    decoded: str,
) -> None:
    """A collected frame is decoded with one Python call per column however
    many chunks it holds, not one per chunk (a 196k-row batch in 17 chunks:
    32 ms against 13 ms), and every value is decoded."""
    from pplog import _unescape
    from pplog.formats import LogFormat
    from pplog.parse import late_decoding

    fmt = LogFormat.from_string(
        f'escape={escape} $remote_addr [$time_local] "$request" $status '
        '"$http_referer" "$http_user_agent"'
    )
    real = getattr(_unescape, decoder)
    calls: list[int] = []

    def counted(series: pl.Series, *rest: object) -> pl.Series:
        calls.append(series.len())
        return real(series, *rest)

    monkeypatch.setattr(_unescape, decoder, counted)
    texts = ["request", "http_referer", "http_user_agent"]
    chunk = pl.DataFrame({c: [value, "plain", None] for c in texts})
    frame = pl.concat([chunk] * 5, rechunk=False)
    assert frame.n_chunks() == 5
    out = frame.with_columns(late_decoding(fmt))
    assert calls == [15] * len(texts)
    for c in texts:
        assert out.get_column(c).to_list() == [decoded, "plain", None] * 5


def test_a_size_past_off_t_is_a_bad_number(tmp_path: Path) -> None:
    """nginx writes sizes as off_t: 2**63 - 1 at most. A larger one is a
    damaged line; read as a size, one of 1e19 beside another wrapped the
    byte sums past 2**64 (1,553,255,926,290,448,384 for 2e19)."""
    line = (
        '203.0.113.1 - - [08/Dec/2026:03:00:00 +0000] "GET / HTTP/1.1" 200 {n} "-" "c"'
    )
    sizes = [2**63 - 1, 2**63, 10**19, 10**19, 7]
    df = parse_lines(tmp_path, [line.format(n=n) for n in sizes], format="combined")
    assert df.get_column("reject_reason").to_list() == [
        None,
        "bad_number",
        "bad_number",
        "bad_number",
        None,
    ]
    assert df.get_column("body_bytes_sent").to_list()[::4] == [2**63 - 1, 7]
    ov = pplog.summarize(tmp_path / "access.log", format="combined").overview_dict()
    assert ov["bytes"] == 2**63 + 6


def test_a_variable_logged_twice_is_typed_twice(tmp_path: Path) -> None:
    """A variable logged twice fills `status` and `status_2`: the second had
    stayed text ('200', '502, 200'), the first typed. Lines as nginx 1.22
    wrote them for this format."""
    fmt = (
        '$remote_addr "$http_user_agent" $status "$http_user_agent" $status '
        '$request_time $request_time "$upstream_status" "$upstream_status" '
        '$msec $msec "$http_referer"'
    )
    lines = [
        '127.0.0.1 "caf\\xC3\\xA9 \\x5C \\x22q\\x22" 200 "caf\\xC3\\xA9 \\x5C \\x22q\\x22" '
        '200 0.000 0.000 "200" "200" 1796702816.141 1796702816.141 "-"',
        '127.0.0.1 "curl/7.88.1" 502 "curl/7.88.1" 502 0.004 0.004 "502, 200" '
        '"502, 200" 1796702816.148 1796702816.148 "-"',
    ]
    df = parse_lines(tmp_path, lines, log_format=fmt)
    assert df.get_column("reject_reason").null_count() == 2
    for name in (
        "status",
        "request_time",
        "upstream_status",
        "msec",
        "http_user_agent",
    ):
        assert df.schema[f"{name}_2"] == df.schema[name], name
        assert df[f"{name}_2"].to_list() == df[name].to_list(), name
    assert df["upstream_status_2"].to_list()[1] == [502, 200]
    assert df["http_user_agent_2"].to_list()[0] == 'café \\ "q"'
