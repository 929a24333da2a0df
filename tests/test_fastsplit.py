"""The C road for plain files (`pplog._fastsplit`, `pplog._splitc`).

A plain file read with a format's C split must give the very rows polars
gives: the lines cut alike, every parsed column equal, rejects included. Each
test compares the two roads on the same file: `sources.scan_lines(...,
split=fmt)` (the C road, what `summarize` and `read_log` take) against
`sources.scan_lines(...)` without it (polars alone).
"""

from __future__ import annotations

import gzip
import os
import re
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import pplog
from helpers import CORPORA, SAMPLES, both_roads, parse_frame, run_pplog
from pplog import _fastsplit, sources
from pplog.batch import reader
from pplog.formats import PRESETS, SHAPES, LogFormat, Variable
from pplog.schema import LINE, OFFSET, TEXT, TOO_LONG

# every shape nginx formats itself, in one default-escaped format
CUSTOM = LogFormat.from_string(
    '$remote_addr $pipe [$time_iso8601] $msec "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time "$upstream_addr" '
    '"$upstream_status" $upstream_cache_status $server_addr:$server_port '
    '$connection "$http_x_forwarded_for" $remote_user',
    name="custom",
)
FORMATS = [PRESETS["combined"], PRESETS["main"], PRESETS["elb_log"], CUSTOM]
# the per-format properties: elb_log (PROXY protocol, the benchmark's) and the
# custom layout (every kind of field) in the default run, all four with -m slow
EACH_FORMAT = [
    f if f.name in ("elb_log", CUSTOM.name) else pytest.param(f, marks=pytest.mark.slow)
    for f in FORMATS
]


@pytest.fixture(autouse=True)
def _c_split_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PPLOG_NO_C_SPLIT", raising=False)


def test_the_c_split_is_built() -> None:
    """The package builds its extension (`pyproject.toml`); CI must run it."""
    from pplog import _splitc

    assert callable(_splitc.lines)
    assert _fastsplit.available()


def test_it_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x"\n'
    )
    monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
    assert not _fastsplit.available()
    lines, _ = sources.scan_lines(sources.expand([log]), split=PRESETS["combined"])
    assert lines.collect_schema().names() == list(sources.LINES_SCHEMA)


def test_every_shape_has_c_code() -> None:
    """A shape without C code would send its formats to polars silently."""
    assert set(SHAPES.values()) <= set(_fastsplit.SHAPE_IDS)
    for fmt in (*PRESETS.values(), CUSTOM):
        if fmt.kind == "nginx" and fmt.plan.segments is not None:
            assert _fastsplit.program(fmt) is not None, fmt.name


SHAPE_TEXT = st.text(
    alphabet=string.digits + '-+.:/, TZp_ABCHIMSTabcdefJanFebNov"é\u0663',
    max_size=30,
)


@pytest.mark.parametrize("pattern", sorted(set(SHAPES.values())))
@given(text=SHAPE_TEXT)
@settings(max_examples=300, deadline=None)
def test_shapes_match_their_regexes(pattern: str, text: str) -> None:
    """The C check never takes what the regex refuses, and on ASCII text it
    takes exactly what the regex takes (`\\d` in polars' regex also takes
    other scripts' digits: the C check leaves those to polars)."""
    from pplog import _splitc

    c = _splitc.shape(_fastsplit.SHAPE_IDS[pattern], text.encode())
    regex = re.fullmatch(f"(?:{pattern})", text) is not None
    if c:
        assert regex, text
    if text.isascii():
        assert c == regex, text


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        b"\n\n",
        b"a",
        b"a\n",
        b"a\nb",
        b"a\n\nb\n",
        b"\xef\xbb\xbfbom first\nsecond\n",
        b"x" * 50 + b"\n" + b"y" * 13 + b"\nz\n",
        "caf\u00e9 \u2603 line\n".encode(),
    ],
)
@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_lines_are_cut_as_polars_cuts_them(
    tmp_path: Path, content: bytes, block: int
) -> None:
    """Line numbers, byte offsets and text, whatever the blocks' size (a block
    smaller than a line grows to hold it)."""
    log = tmp_path / "a.log"
    log.write_bytes(content)
    src = sources.expand([log])[0]
    c_road = _fastsplit.scan(log, src.name, PRESETS["combined"], block_bytes=block)
    assert c_road is not None
    got = c_road.select(list(sources.LINES_SCHEMA)).collect()
    want = sources._polars_lines(src).collect()
    assert_frame_equal(got, want)


@given(
    lines=st.lists(
        st.text(alphabet="ab \u00e9", max_size=40).map(str.encode), max_size=30
    ),
    last_newline=st.booleans(),
    block=st.integers(1, 120),
    slack=st.integers(1, 16),
)
@settings(max_examples=300, deadline=None)
def test_ranges_cut_lines_as_polars_does(
    lines: list[bytes], last_newline: bool, block: int, slack: int
) -> None:
    """Each range is read on its own (`pread`) and keeps the lines that start
    in it: whatever the sizes of ranges and lines, and however little is read
    past a range's end at first, every line comes once, whole, numbered."""
    import tempfile

    content = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "a.log"
        log.write_bytes(content)
        src = sources.expand([log])[0]
        saved = _fastsplit._SLACK
        _fastsplit._SLACK = slack
        try:
            c_road = _fastsplit.scan(
                log, src.name, PRESETS["combined"], block_bytes=block
            )
            assert c_road is not None
            got = c_road.select(list(sources.LINES_SCHEMA)).collect()
        finally:
            _fastsplit._SLACK = saved
        assert_frame_equal(got, sources._polars_lines(src).collect())


def test_a_file_is_read_as_it_was_when_judged(tmp_path: Path) -> None:
    """Lines written after the scan was planned, or a file cut short since,
    do not move the ranges: the bytes up to the size it had, or what is left."""
    log = tmp_path / "a.log"
    log.write_bytes(b"one\ntwo\nthree\n")
    src = sources.expand([log])[0]
    c_road = _fastsplit.scan(log, src.name, PRESETS["combined"], block_bytes=5)
    assert c_road is not None
    with log.open("ab") as f:
        f.write(b"four\n")
    assert c_road.collect()[TEXT].to_list() == ["one", "two", "three"]
    log.write_bytes(b"one\ntw")
    got = c_road.collect()
    assert got[TEXT].to_list() == ["one", "tw"]
    assert got[LINE].to_list() == [1, 2]


@pytest.mark.parametrize(
    "damage",
    [
        b"cr\r\n",  # polars' reader would drop the CR, the Python reader keeps it
        b"a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00b\n",
        b"\xff\xfe not UTF-8\n",
        b"x" * ((1 << 20) + 5) + b"\n",  # past LINE_LIMIT: cut by the Python reader
    ],
    ids=["cr", "hole", "not-utf8", "too-long"],
)
@pytest.mark.parametrize("at", [0, 3])
def test_the_python_reader_takes_over_at_the_first_block_it_must_read(
    tmp_path: Path, damage: bytes, at: int
) -> None:
    """Only a file's head is judged before the C road reads it: from the first
    block with text polars' reader would not read as the Python reader does,
    the Python reader reads the rest, and the rows are the ones it gives for
    the whole file. The blocks before keep their C split."""
    fmt = PRESETS["combined"]
    good = b'1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"\n'
    log = tmp_path / "a.log"
    log.write_bytes(good * at + damage + good * 4)
    src = sources.expand([log])[0]
    python_road = sources._python_lines([src], None, None).collect()
    lines, _ = sources.scan_lines([src], split=fmt)  # one block, all Python's
    assert_frame_equal(lines.select(list(sources.LINES_SCHEMA)).collect(), python_road)
    lines = _fastsplit.scan(log, src.name, fmt, block_bytes=len(good))
    assert lines is not None
    got = lines.select(list(sources.LINES_SCHEMA)).collect()
    assert_frame_equal(got, python_road)
    taken = lines.select(pl.col(_fastsplit.ok_column(fmt)).fill_null(False)).collect()
    assert taken.to_series().sum() == at
    assert_frame_equal(
        parse_frame(lines, fmt).collect(),
        parse_frame(python_road.lazy(), fmt).collect(),
    )


def test_the_scan_honours_projection_filters_and_limits(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 101)))
    src = sources.expand([log])[0]
    c_road = _fastsplit.scan(log, src.name, PRESETS["combined"], block_bytes=64)
    assert c_road is not None
    assert c_road.head(3).select(LINE).collect()[LINE].to_list() == [1, 2, 3]
    kept = c_road.filter(pl.col(LINE) > 97).select(LINE, TEXT).collect()
    assert kept.rows() == [(98, "line 98"), (99, "line 99"), (100, "line 100")]
    offsets = c_road.select(OFFSET).collect()[OFFSET]
    assert offsets[:3].to_list() == [0, 7, 14]


# ------------------------------------------------------------------ generated lines

_NASTY = st.text(alphabet=' "-[]:/.,+0123456789aZT_p?=\\xé\u0663', max_size=12)


def _valid(var: Variable) -> st.SearchStrategy[str]:
    """Values nginx could have written for `var` (or free text)."""
    digits = st.integers(0, 10**6).map(str)
    two = st.integers(0, 99).map(lambda n: f"{n:02d}")
    by_name: dict[str, st.SearchStrategy[str]] = {
        "time_local": st.builds(
            lambda d, m, y, h, mi, s, z: f"{d}/{m}/{y}:{h}:{mi}:{s} {z}",
            two,
            st.sampled_from(["Jan", "Feb", "Nov", "nov", "Xyz"]),
            st.sampled_from(["2026", "0000", "9999", "1969"]),
            two,
            two,
            two,
            st.sampled_from(["+0000", "-0330", "+2400", "+0099"]),
        ),
        "time_iso8601": st.builds(
            lambda frac, zone: f"2026-11-20T10:20:30{frac}{zone}",
            st.sampled_from(["", ".5", ".123456"]),
            st.sampled_from(["Z", "+00:00", "-0330", "+05:30"]),
        ),
        "msec": st.sampled_from(["1763632830.123", "0.000", "17", "1.2.3"]),
        "request_time": st.sampled_from(["0.005", "-", "12", ".5"]),
        "status": st.sampled_from(["200", "404", "-", "99", "2000"]),
        "pipe": st.sampled_from(["p", ".", "x"]),
        "remote_addr": st.sampled_from(["1.2.3.4", "2001:db8::1", "-", "-x", "unix:"]),
        "server_addr": st.sampled_from(["10.0.0.1", "::1", "a:b"]),
        "server_port": st.sampled_from(["80", "", "-", "8o"]),
        "upstream_addr": st.sampled_from(
            ["10.0.0.1:80", "10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80", "-", "a,,b"]
        ),
        "upstream_status": st.sampled_from(["200", "502, 200", "-", "200 : 404"]),
        "upstream_cache_status": st.sampled_from(["HIT", "MISS", "-", "hit", ""]),
        "request": st.sampled_from(
            [
                "GET / HTTP/1.1",
                "GET /a?b=c&d HTTP/1.1",
                "POST /x HTTP/2.0",
                "GET /sp ace HTTP/1.0",
                "get / HTTP/1.1",
                "CONNECT host:443 HTTP/1.1",
                "GET http://h/p?q HTTP/1.1",
                "-",
                "\\x16\\x03\\x01",
            ]
        ),
    }
    if var.name in by_name:
        return by_name[var.name]
    if var.name in SHAPES:  # counters, ports
        return st.one_of(digits, st.just("-"))
    return st.sampled_from(
        ["-", "", "Mozilla/5.0 (X11; Linux)", "a - b [c] d", "x\\x22y"]
    )


@st.composite
def _line(draw: st.DrawFn, fmt: LogFormat) -> str:
    parts = []
    for tok in fmt.tokens:
        if isinstance(tok, Variable):
            parts.append(draw(st.one_of(_valid(tok), _valid(tok), _NASTY)))
        else:
            parts.append(tok.text)
    line = "".join(parts)
    if draw(st.integers(0, 9)) == 0:  # damage: cut, or an extra quote
        cut = draw(st.integers(0, len(line)))
        line = line[:cut] + draw(st.sampled_from(["", '"', " ", "-"]))
    return line


@pytest.mark.parametrize("fmt", EACH_FORMAT, ids=lambda f: f.name)
@given(data=st.data())
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_generated_lines_give_the_same_rows(
    tmp_path: Path, fmt: LogFormat, data: st.DataObject
) -> None:
    lines = data.draw(st.lists(_line(fmt), min_size=1, max_size=25))
    log = tmp_path / f"{fmt.name}.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    by_c, by_polars, _ = both_roads([log], fmt)
    assert_frame_equal(by_c, by_polars)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_well_formed_lines_are_taken_by_the_c_split(
    tmp_path: Path, fmt: LogFormat
) -> None:
    """The C split is not refusing everything (which would pass the test
    above): a line with ordinary values is taken."""
    values = {
        "time_local": "20/Nov/2026:10:20:30 +0000",
        "time_iso8601": "2026-11-20T10:20:30+00:00",
        "msec": "1763634030.000",
        "request_time": "0.005",
        "status": "200",
        "pipe": ".",
        "remote_addr": "1.2.3.4",
        "proxy_protocol_addr": "1.2.3.4",
        "server_addr": "10.0.0.1",
        "server_port": "80",
        "upstream_addr": "10.0.0.2:80",
        "upstream_status": "200",
        "upstream_cache_status": "HIT",
        "request": "GET /a?b HTTP/1.1",
    }
    line = "".join(
        values.get(t.name, "7" if t.name in SHAPES else "x y")
        if isinstance(t, Variable)
        else t.text
        for t in fmt.tokens
    )
    log = tmp_path / "a.log"
    log.write_text(line + "\n" + line + "\n")
    by_c, by_polars, taken = both_roads([log], fmt)
    assert taken == 2
    assert by_c["reject_reason"].null_count() == 2
    assert_frame_equal(by_c, by_polars)


def test_files_read_by_other_roads_mix_with_the_c_road(tmp_path: Path) -> None:
    """A gzip file (the Python reader) beside a plain one: one frame, same rows."""
    line = (
        '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /{} HTTP/1.1" 200 1 "-" "ua"\n'
    )
    plain = tmp_path / "a.log"
    plain.write_text("".join(line.format(i) for i in range(5)))
    packed = tmp_path / "b.log.gz"
    packed.write_bytes(
        gzip.compress("".join(line.format(i) for i in range(5, 9)).encode())
    )
    by_c, by_polars, taken = both_roads([plain, packed], PRESETS["combined"])
    assert taken == 5
    assert by_c.height == 9
    assert_frame_equal(by_c, by_polars)


def _corpus_files() -> list[Path]:
    files = sorted(SAMPLES.glob("*.log"))
    for rel in (
        "beats-nginx/access.log",
        "beats-nginx/test.log",
        "beats-nginx/test-with-host.log",
        "goaccess/vcombined_ci_sample.log",
        "lnav/logfile_access_log.0",
        "lnav/logfile_access_log.1",
        "lnav/logfile_bad_access_log.0",
        "logstash-patterns/httpd_combinedlog_cases.log",
        "nasty/nasty_lines.log",
    ):
        if (CORPORA / rel).is_file():
            files.append(CORPORA / rel)
    return files


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_corpora_give_the_same_rows(path: Path, fmt: LogFormat) -> None:
    """Real logs of other tools and pplog's samples (read in place), under
    every format (most lines of a file are rejects under the formats it is
    not in). A file polars cannot read itself takes the Python reader on
    both roads, which the test then checks too."""
    by_c, by_polars, _ = both_roads([path], fmt)
    assert_frame_equal(by_c, by_polars)
    assert_frame_equal(*both_roads([path], fmt, decode=False)[:2])


def _split_both_ways(
    path: Path, fmt: LogFormat, block_bytes: int
) -> tuple[list[pl.DataFrame | None], list[pl.DataFrame | None]]:
    """`split_ranges` of `path` with values as views into the text, and with
    each column's values in a buffer of its own (`values=True`)."""
    from pplog.clientip import ProxyPolicy

    policy = ProxyPolicy(trusted=["10.0.0.0/8", "2001:db8::/32"], recursive=True)
    got = []
    for values in (False, True):
        with path.open("rb") as f:
            split = _fastsplit.split_ranges(
                f.fileno(),
                0,
                path.stat().st_size,
                fmt,
                block_bytes=block_bytes,
                policy=policy,
                values=values,
            )
            got.append([df for df, _, _ in split])
    return got[0], got[1]


@pytest.mark.parametrize("fmt", EACH_FORMAT, ids=lambda f: f.name)
@given(data=st.data(), block_bytes=st.sampled_from([97, 1 << 20]))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_values_in_buffers_of_their_own_are_the_same_values(
    tmp_path: Path, fmt: LogFormat, data: st.DataObject, block_bytes: int
) -> None:
    """`values=True` (what `ingest` reads with) changes where the values are
    held, nothing else: every column (the fields, the request's parts, the
    trust decisions) equals the views' column, in ranges and in blocks."""
    lines = data.draw(st.lists(_line(fmt), min_size=1, max_size=25))
    log = tmp_path / f"{fmt.name}.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    views, own = _split_both_ways(log, fmt, block_bytes)
    assert len(views) == len(own)
    for a, b in zip(views, own, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert_frame_equal(a, b)
    block = log.read_bytes()
    a = _fastsplit.block_frame("a.log", block, 1, 0, fmt)
    b = _fastsplit.block_frame("a.log", block, 1, 0, fmt, values=True)
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert_frame_equal(a, b)


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_values_in_buffers_of_their_own_on_the_corpora(
    path: Path, fmt: LogFormat
) -> None:
    views, own = _split_both_ways(path, fmt, 1 << 12)
    assert [a is None for a in views] == [b is None for b in own]
    for a, b in zip(views, own, strict=True):
        if a is not None and b is not None:
            assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("request_line", "parts"),
    [
        ("GET /a?b=c HTTP/1.1", ("GET", "/a", "b=c", "HTTP/1.1")),
        ("GET /a? HTTP/1.1", ("GET", "/a", "", "HTTP/1.1")),
        ("POST /x", ("POST", "/x", None, None)),
        ("M-SEARCH_X /?q?r HTTP/2.0", ("M-SEARCH_X", "/", "q?r", "HTTP/2.0")),
        ("GET /" + "x" * 40 + "?" + "y" * 20 + " HTTP/1.0", "long"),
        # nginx before 1.21.1 let spaces into the target
        ("GET /sp ace HTTP/1.1", ("GET", "/sp ace", None, "HTTP/1.1")),
        ("GET / HTTP/1.1 HTTP/1.1", ("GET", "/ HTTP/1.1", None, "HTTP/1.1")),
        ("GET  /two  HTTP/1.1  ", ("GET", "/two", None, "HTTP/1.1")),
        ("GET /a\\x22b HTTP/1.1", ("GET", "/a\\x22b", None, "HTTP/1.1")),  # as logged
        ("GET / HTTP/1.10", ("GET", "/", None, "HTTP/1.10")),
        ("GET / HTTP/1.", ("GET", "/ HTTP/1.", None, None)),
        ("GET http://h.example/p?q HTTP/1.1", ("GET", "/p", "q", "HTTP/1.1")),
        ("GET https://h.example HTTP/1.1", ("GET", "/", None, "HTTP/1.1")),
        ("GET s+x.y-z://h?q#f", ("GET", "", "q#f", None)),  # only "" is "/"
        ("OPTIONS * HTTP/1.1", ("OPTIONS", "*", None, "HTTP/1.1")),
        ("OPTIONS ** HTTP/1.1", (None, None, None, None)),
        ("CONNECT h.example:443 HTTP/1.1", (None, None, None, None)),
        ("GET HTTP/1.1", (None, None, None, None)),
        ("get / HTTP/1.1", (None, None, None, None)),
        ("GET", (None, None, None, None)),
        ("GET ", (None, None, None, None)),
        ("-", (None, None, None, None)),
        ("", (None, None, None, None)),
        ("GET / HTTP/\u0663.1", None),  # a digit beyond ASCII: polars decides
    ],
)
def test_requests_are_cut_in_c(
    tmp_path: Path, request_line: str, parts: tuple[str | None, ...] | str | None
) -> None:
    """A request of ASCII text is cut in C, as `parse.request_parts` cuts it
    (nginx's accepted shapes, absolute forms without scheme and host, null
    parts where nginx would not parse it); any other takes polars' regex.
    Both roads give the same rows."""
    fmt = PRESETS["elb_log"]
    line = f'1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "{request_line}" 200 1 "-" "ua"\n'
    log = tmp_path / "a.log"
    log.write_text(line)
    lines, _ = sources.scan_lines(sources.expand([log]), split=fmt)
    columns = _fastsplit.request_columns(fmt)
    got = lines.select(list(columns.values())).collect().row(0)
    if parts is None:
        assert got[0] is False
    elif parts == "long":  # views into the block, not inline
        assert got == (True, "GET", "/" + "x" * 40, "y" * 20, "HTTP/1.0")
    else:
        assert got == (True, *parts)
    assert_frame_equal(*both_roads([log], fmt, decode=False)[:2])
    by_c, by_polars, taken = both_roads([log], fmt)
    assert taken == 1
    assert_frame_equal(by_c, by_polars)


_SPACES = st.text(alphabet=" ", max_size=2)
_REQUEST_TEXT = st.text(alphabet="GETHP/ .?*#:+-_1a\\٣", max_size=24) | st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["GET", "get", "M-S_X", "", "-"]),
        _SPACES,
        st.sampled_from(
            ["/", "*", "**", "http://h", "s+x.y-z://h", "h:443", "HTTP/1.1", ""]
        ),
        st.text(alphabet="/?#a *", max_size=6),
        _SPACES,
        st.sampled_from(
            ["HTTP/1.1", "HTTP/1.10", "HTTP/1.", "HTTP/٣.1", "", "x HTTP/2.0"]
        ),
        _SPACES,
    ),
)


@given(requests=st.lists(_REQUEST_TEXT, min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_generated_requests_are_cut_as_polars_cuts_them(requests: list[str]) -> None:
    """The C request parser against polars' regex and shape checks, on
    requests built from the characters their rules turn on."""
    import tempfile

    fmt = PRESETS["elb_log"]
    line = '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "{}" 200 1 "-" "ua"\n'
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "a.log"
        log.write_text("".join(line.format(r) for r in requests))
        by_c, by_polars, _ = both_roads([log], fmt, decode=False)
    assert_frame_equal(by_c, by_polars)


def test_a_variable_named_like_a_request_part_keeps_its_column(tmp_path: Path) -> None:
    """`$request_method` beside `$request`'s own parts: no column is taken twice."""
    fmt = LogFormat.from_string(
        '$remote_addr "$request" "$request_method" "$method" $status', name="parts"
    )
    columns = [*_fastsplit.value_columns(fmt).values()]
    columns += _fastsplit.request_columns(fmt).values()
    assert len(set(columns)) == len(columns)
    log = tmp_path / "a.log"
    log.write_text('1.2.3.4 "GET /a?b HTTP/1.1" "GET" "x" 200\n')
    by_c, by_polars, taken = both_roads([log], fmt)
    assert taken == 1
    assert by_c.select("request_method", "method", "path").row(0) == (
        "GET",
        "GET",
        "/a",
    )
    assert_frame_equal(by_c, by_polars)


_NAMES = ("offset", "text", "too_long", "ok")  # the columns without a program


@given(
    data=st.binary(max_size=40)
    | st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | st.text(alphabet="ab\r\x00\né", max_size=30).map(str.encode)
)
@settings(max_examples=800, deadline=None)
def test_blocks_that_are_not_plain_text_are_told(data: bytes) -> None:
    """The C check takes what Python's strict UTF-8 decoder takes (no
    overlong forms, no surrogates, nothing past U+10FFFF), as polars does,
    without a NUL or a CR (which the Python reader reads otherwise)."""
    from pplog import _splitc

    try:
        data.decode("utf-8")
        valid = b"\x00" not in data and b"\r" not in data
    except UnicodeDecodeError:
        valid = False
    got = _splitc.lines(data, 0, None, 0, 1 << 20, _NAMES)
    assert (got is not None) == valid


@pytest.mark.parametrize(
    ("block", "limit", "taken"),
    [
        (b"abc\nabcdef\n", 6, True),
        (b"abc\nabcdef\n", 5, False),
        (b"abc\nabcdef", 5, False),  # the last line, without its newline
        (b"abcdef\nabc", 5, False),
    ],
)
def test_blocks_with_a_line_over_the_limit_are_told(
    block: bytes, limit: int, taken: bool
) -> None:
    from pplog import _splitc

    assert (_splitc.lines(block, 0, None, 0, limit, _NAMES) is not None) == taken


def test_a_file_that_stopped_being_utf8_is_read_as_the_python_reader_reads_it(
    tmp_path: Path,
) -> None:
    """A log judged UTF-8 can change before it is read: a block that is not
    any more gets `\\xHH` text as the Python reader gives, and polars' parse."""
    fmt = PRESETS["combined"]
    good = b'1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"\n'
    bad = good.replace(b"GET /", b"GET /\xff\xc0")
    log = tmp_path / "a.log"
    log.write_bytes(good * 3 + bad + good * 2)
    src = sources.expand([log])[0]
    c_road = _fastsplit.scan(log, src.name, fmt, block_bytes=len(good) * 2)
    assert c_road is not None
    python_road = sources._python_lines([src], None, None)
    assert_frame_equal(
        c_road.select(list(sources.LINES_SCHEMA)).collect(), python_road.collect()
    )
    rows = parse_frame(c_road, fmt).collect()
    assert rows["path"].to_list()[3] == "/\\xFF\\xC0"
    assert_frame_equal(rows, parse_frame(python_road, fmt).collect())


def _python(code: str, **env: str) -> str:
    """What `code` prints in a fresh interpreter with `env` added."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_the_c_road_hands_its_columns_over_without_pyarrow(tmp_path: Path) -> None:
    """The C code exports each block's columns through the Arrow C data
    interface, which polars imports: a summary of a large plain file does not
    import pyarrow (and numpy, and its BLAS threads), 0.1 s of CPU."""
    line = (
        '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /{} HTTP/1.1" 200 1 "-" "ua"\n'
    )
    log = tmp_path / "a.log"
    log.write_text("".join(line.format(i) for i in range(300)))
    code = (
        "import sys\n"
        "from pplog import summarize, tasks\n"
        "tasks.IN_MEMORY_BYTES = 0  # the C road\n"
        f"s = summarize({str(log)!r}, format='combined')\n"
        "assert s.overview_dict()['requests'] == 300\n"
        "print('pyarrow' in sys.modules)\n"
    )
    assert _python(code) == "False"


@pytest.mark.parametrize(("limit", "c_road"), [(1 << 30, False), (0, True)])
def test_the_summary_takes_the_c_road_for_inputs_it_spools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, limit: int, c_road: bool
) -> None:
    """Rows of an input up to `tasks.IN_MEMORY_BYTES` are held in memory,
    where the C road's columns kept more of the text alive: polars reads
    those; larger plain files (spooled) take the C road. Same tables."""
    from pplog import summarize, tasks
    from pplog.outputs.json import chunks

    line = (
        '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /{} HTTP/1.1" 200 1 "-" "ua"\n'
    )
    log = tmp_path / "a.log"
    log.write_text("".join(line.format(i % 7) for i in range(500)))
    calls: list[Path] = []
    scan = _fastsplit.scan

    def spy(path: Path, *args: object, **kwargs: object) -> object:
        calls.append(path)
        return scan(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_fastsplit, "scan", spy)
    monkeypatch.setattr(tasks, "IN_MEMORY_BYTES", limit)
    got = "".join(chunks(summarize(log, format="combined", top=0)))
    assert bool(calls) == c_road
    monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
    assert "".join(chunks(summarize(log, format="combined", top=0))) == got


def test_one_thread_splits_where_polars_reads(tmp_path: Path) -> None:
    """With polars on one thread (`--jobs 1`) the blocks are split inline,
    not on a pool: the same lines, in order, limits honoured."""
    log = tmp_path / "a.log"
    line = (
        '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /{} HTTP/1.1" 200 1 "-" "ua"\n'
    )
    log.write_text("".join(line.format(i) for i in range(300)))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import polars as pl\n"
        "from pplog import _fastsplit\n"
        "from pplog.formats import PRESETS\n"
        "assert pl.thread_pool_size() == 1\n"
        "_fastsplit.ThreadPoolExecutor = None  # a pool would fail here\n"
        f"lf = _fastsplit.scan(Path({str(log)!r}), 'a', PRESETS['combined'], block_bytes=500)\n"
        "df = lf.collect()\n"
        "assert df['line'].to_list() == list(range(1, 301)), df['line']\n"
        "assert lf.head(7).collect().height == 7\n"
        "print('ok')\n"
    )
    assert _python(code, POLARS_MAX_THREADS="1") == "ok"


@given(
    lines=st.lists(
        st.sampled_from(
            [
                b'1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /a?b HTTP/1.1" 200 1 "-" "ua"',
                b'5.6.7.8 - u [20/Nov/2026:00:00:01 +0100] "POST /x\\x22y" 404 0 "r" "b\\\\c"',
                b"",
                b"garbage line",
                b"\xef\xbb\xbfbom first",
                b"caf\xc3\xa9",
                b"cr\r",
                b"\xff not UTF-8",
                b"a\x00b",
            ]
        ),
        max_size=12,
    ),
    line=st.integers(1, 10**6),
    offset=st.integers(0, 10**9),
)
@settings(max_examples=300, deadline=None)
def test_ingest_blocks_split_in_c_parse_as_the_python_reader_gives_them(
    lines: list[bytes], line: int, offset: int
) -> None:
    """`block_frame` (what `ingest` reads a block of plain text with) gives
    `lines_frame`'s lines, or None where that block is not plain text; the
    rows `ingest` stages from it are the same."""
    from pplog.pipeline.opening import collected_rows
    from pplog.sources import lines_frame

    fmt = PRESETS["combined"]
    data = b"".join(x + b"\n" for x in lines)
    want = lines_frame("a.log", data, line, offset)
    got = _fastsplit.block_frame("a.log", data, line, offset, fmt, values=True)
    try:
        plain = bool(data) and b"\r" not in data and b"\x00" not in data
        data.decode("utf-8")
    except UnicodeDecodeError:
        plain = False
    assert (got is not None) == plain
    if got is None:
        return
    assert_frame_equal(got.select(want.columns), want)
    assert_frame_equal(
        collected_rows(got.lazy(), fmt, classify=False),
        collected_rows(want.lazy(), fmt, classify=False),
    )


def test_a_line_too_long_for_the_c_road_is_not_read_whole(tmp_path: Path) -> None:
    """A range whose last line runs past `LINE_LIMIT` is left to the Python
    reader (which keeps 8 KiB of it) as soon as that much of it is read: a
    line of 64 MiB, or of a whole file without newlines, is not held."""
    log = tmp_path / "a.log"
    with log.open("wb") as f:
        f.write(b"first\n")
        for _ in range(64):
            f.write(b"x" * (1 << 20))
        f.write(b"\nlast\n")
    code = (
        "import os, resource\n"
        "from pplog import _splitc\n"
        f"fd = os.open({str(log)!r}, os.O_RDONLY)\n"
        "size = os.fstat(fd).st_size\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "names = ('offset', 'text', 'too_long', 'ok')\n"
        "got = _splitc.read(fd, 0, 2 << 20, size, 64 << 10, None, 0, 1 << 20, names)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(got[1], (after - before) // 1024)\n"
    )
    count, grown = _python(code).split()
    assert count == "-1"  # not for the C road: the Python reader takes it
    assert int(grown) < 16  # MiB: not the 64 MiB line
    src = sources.expand([log])[0]
    c_road = _fastsplit.scan(log, src.name, PRESETS["combined"], block_bytes=1 << 20)
    assert c_road is not None
    got = c_road.select(list(sources.LINES_SCHEMA)).collect()
    assert_frame_equal(got, sources._python_lines([src], None, None).collect())
    assert got[TOO_LONG].to_list() == [False, True, False]


_INGEST_LINES = [
    b'1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /a?b HTTP/1.1" 200 1 "-" "ua"',
    b'5.6.7.8 - u [20/Nov/2026:00:00:01 +0100] "POST /x\\x22y" 404 0 "r" "b\\\\c"',
    b'9.9.9.9 - - [20/Nov/2026:00:00:02 +0000] "GET /caf\\xC3\\xA9 HTTP/1.1" 200 5 "-" "\\xFF"',
    b"",
    b"garbage line",
    b"caf\xc3\xa9",
    b"cr\r",
    b"\xff not UTF-8",
    b"\x00\x00\x00"
    + b'1.2.3.4 - - [20/Nov/2026:00:00:03 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',
    b"y" * ((1 << 20) + 10),
]


def _ingested(
    dataset: Path,
) -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, object]]]:
    """Rows, rejects and checkpoints of `dataset`, without run-specific ids."""
    import json

    def frame(kind: str) -> pl.DataFrame:
        files = sorted(dataset.glob(f"{kind}/**/*.parquet"))
        if not files:
            return pl.DataFrame()
        rows = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
        rows = rows.drop("stream_id", "run_id", strict=False)
        return rows.sort(LINE)

    path = dataset / "_pplog" / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {"checkpoints": []}
    skip = {"stream_id", "first_seen", "last_seen", "hint"}
    checkpoints = [
        {k: v for k, v in c.items() if k not in skip} for c in state["checkpoints"]
    ]
    return frame("requests"), frame("rejects"), checkpoints


@pytest.mark.slow  # 9 s of examples
@given(
    lines=st.lists(st.sampled_from(range(len(_INGEST_LINES))), max_size=14),
    cut=st.floats(0, 1),
    newline_at_end=st.booleans(),
    final=st.booleans(),
    block=st.integers(16, 600),
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_ingest_reads_plain_files_in_c_ranges_as_the_python_reader_does(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    lines: list[int],
    cut: float,
    newline_at_end: bool,
    final: bool,
    block: int,
) -> None:
    """`ingest` reads a plain file in ranges split in C (`reader._c_batches`)
    and hands the rest to the Python reader where it is not plain text (a
    CR, a NUL hole, bytes that are not UTF-8, a line over `LINE_LIMIT`): two
    runs, the file grown in between (perhaps in the middle of a line), give
    the rows, rejects and checkpoints the Python reader alone gives."""
    from pplog.batch.ingest import ingest

    data = b"\n".join(_INGEST_LINES[k] for k in lines)
    if lines and newline_at_end:
        data += b"\n"
    first = data[: int(len(data) * cut)]
    monkeypatch.setattr(reader, "C_BLOCK_BYTES", block)
    got = {}
    work = tmp_path_factory.mktemp("logs")
    log = work / "access.log"
    for road in ("c", "python"):
        if road == "python":
            monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
        dataset = work / road
        log.write_bytes(first)
        options = {"format": "combined", "final": final, "batch_bytes": 3 * block}
        ingest([str(log)], dataset, **options)
        log.write_bytes(data)
        result = ingest([str(log)], dataset, **options)
        got[road] = (*_ingested(dataset), result.rows, result.rejects, result.held)
    c_road, python_road = got["c"], got["python"]
    assert_frame_equal(c_road[0], python_road[0])
    assert_frame_equal(c_road[1], python_road[1])
    assert c_road[2:] == python_road[2:]


def test_ingest_hands_a_file_to_the_python_reader_where_it_stops_being_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The C ranges read up to the first range that is not plain text; the
    Python reader reads from that range's first line on, and every line is
    staged once, in order."""
    from pplog.batch import identity
    from pplog.batch.ingest import ingest

    line = (
        '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /{} HTTP/1.1" 200 1 "-" "ua"\n'
    )
    head = "".join(line.format(i) for i in range(40)).encode()
    tail = "".join(line.format(i) for i in range(40, 80)).encode()
    log = tmp_path / "access.log"
    log.write_bytes(head + b"carriage\r return\n" + tail)
    monkeypatch.setattr(reader, "C_BLOCK_BYTES", 256)
    ranges: list[int] = []
    python_from: list[int] = []
    split, read_from = _fastsplit.split_ranges, identity.read_from

    def counted(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for got in split(*args, **kwargs):  # type: ignore[arg-type]
            ranges.append(got[1])
            yield got

    def python(cand: object, offset: int, piece: int):  # type: ignore[no-untyped-def]
        python_from.append(offset)
        return read_from(cand, offset, piece)  # type: ignore[arg-type]

    monkeypatch.setattr(_fastsplit, "split_ranges", counted)
    monkeypatch.setattr(identity, "read_from", python)
    result = ingest([str(log)], tmp_path / "ds", format="combined", batch_bytes=1024)
    assert result.rows == 80 and result.rejects == 1
    rows, rejects, checkpoints = _ingested(tmp_path / "ds")
    assert rows[LINE].to_list() == [*range(1, 41), *range(42, 82)]
    assert rejects[LINE].to_list() == [41]
    assert checkpoints[0]["offset"] == log.stat().st_size
    # the C road read the first lines, the Python reader the range with the
    # CR on: from the first line that starts in that range
    assert 0 < sum(c for c in ranges if c > 0) < 41
    starts = [m.end() for m in re.finditer(b"\n", head)]
    assert len(python_from) == 1 and python_from[0] in starts[-4:]


_PEERS = [
    "10.0.0.1",
    "10.9.8.7",
    "8.8.8.8",
    "192.168.1.1",
    "2001:db8::5",
    "fd00::1",
    "fe80::1",
    "::1",
    "010.0.0.1",
    "2001:DB8::5",
    "unix:",
    "-",
    # addresses the header also names: `$remote_addr` that nginx's realip
    # took from it (not an untrusted peer's ignored header)
    "1.2.3.4",
    "203.0.113.9",
    "2001:db8::1",
]
_TOKENS = [
    "10.0.0.2",
    "172.16.5.4",
    "1.2.3.4",
    "203.0.113.9",
    "192.168.0.7",
    "2001:db8::1",
    "2001:db8:0:0:1::1",
    "2001:db8::1:0:0:1",
    "fc00::9",
    "fd12:3456::1",
    "2001:DB8::1",
    "::ffff:1.2.3.4",
    "[2001:db8::1]",
    "[2001:db8::1]:443",
    "1.2.3.4:80",
    "01.2.3.4",
    "255.255.255.255",
    "unknown",
    "1.2.3",
]


def _main_log(directory: Path, lines: list[tuple[str, str]]) -> Path:
    """A `main` log of (peer, X-Forwarded-For) lines in `directory`."""
    log = directory / "access.log"
    log.write_text(
        "".join(
            f'{peer} - - [20/Nov/2026:00:00:00 +0000] "GET /{k} HTTP/1.1" 200 1 '
            f'"-" "ua" "{xff}"\n'
            for k, (peer, xff) in enumerate(lines)
        )
    )
    return log


@st.composite
def _forwarded_for(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["-", "", " 1.2.3.4", ",1.2.3.4", "1.2.3.4,"]))
    tokens = draw(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=5))
    text = tokens[0]
    for token in tokens[1:]:
        text += draw(st.sampled_from([", ", ",", " ", ",,", " , "])) + token
    return text


@pytest.mark.slow  # 13 s of examples; test_ipaddr's C address checks stay
@given(
    lines=st.lists(st.tuples(st.sampled_from(_PEERS), _forwarded_for()), max_size=30),
    trusted=st.one_of(
        st.none(),
        st.lists(
            st.sampled_from(
                ["10.0.0.0/8", "10.0.0.1", "172.16.0.0/12", "2001:db8::/32"]
                + ["fc00::/7", "::1", "0.0.0.0/0", "::/0", "unix:", "203.0.113.9/32"]
            ),
            max_size=4,
        ),
    ),
    recursive=st.booleans(),
    header=st.sampled_from(["auto", "X-Forwarded-For"]),
)
@settings(max_examples=300, deadline=None)
def test_trust_decisions_made_in_c_are_the_ones_clientip_makes(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[tuple[str, str]],
    trusted: list[str] | None,
    recursive: bool,
    header: str,
) -> None:
    """Where the C split decides the client as it reads a line (every
    address the walk reads plain: `_fastsplit.realip`), it decides what
    `clientip` decides, for any peer, header, trusted ranges and recursion;
    the other lines are left to `clientip`."""
    from pplog.clientip import ProxyPolicy, attribute, realip_marker, with_pair_key
    from pplog.pipeline import parse_lines

    fmt = PRESETS["main"]
    policy = ProxyPolicy(trusted=trusted, recursive=recursive, header=header)
    log = _main_log(tmp_path_factory.mktemp("realip"), lines)
    src = sources.expand([log])
    outputs = ["line", "client_ip", "client_ip_source", "forwarded_by_untrusted"]
    got = {}
    for road, split in (("c", fmt), ("polars", None)):
        frame, _ = sources.scan_lines(src, split=split, policy=policy)
        rows = with_pair_key(parse_lines(frame, fmt, decode=False), policy)
        if road == "c" and lines:
            marker = realip_marker(policy, fmt.fields)
            assert marker is not None
            decided = rows.select(pl.col(marker).sum()).collect().item()
            got["decided"] = decided
        attributed = attribute(rows, policy, eager_decisions=True)
        got[road] = attributed.select(outputs).collect().sort("line")
    assert_frame_equal(got["c"], got["polars"])


def test_the_c_split_decides_plain_addresses(tmp_path: Path) -> None:
    """Lines whose peer and forwarded addresses are plain are decided as they
    are split: the rows carry the decision, and `clientip` decides no pair."""
    from pplog.clientip import ProxyPolicy, realip_marker
    from pplog.pipeline import parse_lines

    fmt = PRESETS["main"]
    log = tmp_path / "access.log"
    row = '{} - - [20/Nov/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" "{}"\n'
    log.write_text(
        row.format("10.0.0.1", "1.2.3.4")
        + row.format("10.0.0.1", "2001:db8::1, 10.0.0.9")
        + row.format("8.8.8.8", "1.2.3.4")
        + row.format("10.0.0.1", "-")
        + row.format("10.0.0.1", "[2001:db8::1]:80")  # left to clientip
        + row.format("10.0.0.1", ", ".join(["10.0.0.2"] * 64))  # MAX_HOPS
        + row.format("10.0.0.1", ", ".join(["10.0.0.2"] * 65))  # left to clientip
        # what nginx's realip wrote: the address it took from the header
        + row.format("203.0.113.9", "203.0.113.9, 10.0.0.5")
        + row.format("203.0.113.9", "203.0.113.9, 198.51.100.1")  # not taken
    )
    policy = ProxyPolicy()
    marker = realip_marker(policy, fmt.fields)
    assert marker is not None
    lines, _ = sources.scan_lines(sources.expand([log]), split=fmt, policy=policy)
    rows = parse_lines(lines, fmt, decode=False).collect()
    assert rows[marker].to_list() == [True] * 4 + [False, True, False, True, True]
    decided = rows.filter(pl.col(marker))
    assert decided[f"{marker}.client"].to_list() == [
        "1.2.3.4",
        "2001:db8::1",
        "8.8.8.8",
        "10.0.0.1",
        "10.0.0.2",
        "203.0.113.9",
        "203.0.113.9",
    ]
    assert decided[f"{marker}.header"].to_list() == [True, True] + [False] * 2 + [
        True,
        False,
        False,
    ]
    untrusted = decided[f"{marker}.untrusted"].to_list()
    assert untrusted == [False] * 2 + [True] + [False] * 3 + [True]
    # the attribution of every line is `clientip`'s
    from pplog.clientip import attribute

    outputs = ["line", "client_ip", "client_ip_source", "forwarded_by_untrusted"]
    both = [
        attribute(frame.lazy(), policy, eager_decisions=True)
        .select(outputs)
        .collect()
        .sort("line")
        for frame in (rows.drop(pl.selectors.starts_with("_realip_")), rows)
    ]
    assert_frame_equal(both[0], both[1])


def test_the_spool_keeps_the_header_of_the_rows_the_c_split_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary's spool keeps X-Forwarded-For only where the C split did
    not decide the client (the only rows whose attribution reads it after
    the spool), and the tables are those of lines split without C."""
    from pplog import summarize, tasks
    from pplog.clientip import ProxyPolicy, realip_marker
    from pplog.outputs.json import chunks

    fmt = PRESETS["main"]
    pairs = [
        ("10.0.0.1", "1.2.3.4"),
        ("10.0.0.1", "2001:db8::1, 10.0.0.9"),
        ("8.8.8.8", "1.2.3.4"),
        ("10.0.0.1", "[2001:db8::1]:80"),  # left to clientip
        ("10.0.0.1", ", ".join(["10.0.0.2"] * 65)),  # left to clientip
        ("10.0.0.1", "5.6.7.8"),
    ]
    log = _main_log(tmp_path, pairs * 3)
    marker = realip_marker(ProxyPolicy(), fmt.fields)
    assert marker is not None
    spools: list[pl.DataFrame] = []
    spooled = tasks.spooled

    def spy(*args: object, **kwargs: object) -> pl.LazyFrame:
        out = spooled(*args, **kwargs)  # type: ignore[arg-type]
        spools.append(out.collect())
        return out

    monkeypatch.setattr(tasks, "spooled", spy)
    monkeypatch.setattr(tasks, "IN_MEMORY_BYTES", 0)  # the C road, spooled
    got = "".join(chunks(summarize(log, format="main", top=0)))
    (spool,) = spools
    undecided = spool.filter(~pl.col(marker))
    assert sorted(undecided.get_column("http_x_forwarded_for")) == sorted(
        [pairs[3][1], pairs[4][1]] * 3
    )
    assert (
        spool.filter(pl.col(marker)).get_column("http_x_forwarded_for").null_count()
        == 12
    )
    monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
    assert "".join(chunks(summarize(log, format="main", top=0))) == got


@pytest.mark.slow  # 9 s of examples
@given(
    lines=st.lists(st.tuples(st.sampled_from(_PEERS), _forwarded_for()), max_size=30),
    recursive=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_collected_rows_take_the_c_decisions_as_clientip_makes_them(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[tuple[str, str]],
    recursive: bool,
) -> None:
    """`read_log`'s and `ingest`'s road (`collected_rows`, `attributed`)
    over lines split in C with a policy: the decided rows take the C
    decisions, the others are decided per pair, and the rows are those of
    lines split without one."""
    from pplog.clientip import ProxyPolicy, realip_marker
    from pplog.pipeline import collected_rows

    fmt = PRESETS["main"]
    policy = ProxyPolicy(recursive=recursive)
    log = _main_log(tmp_path_factory.mktemp("rows"), lines)
    src = sources.expand([log])
    with_c, _ = sources.scan_lines(src, split=fmt, policy=policy)
    marker = realip_marker(policy, fmt.fields)
    assert marker is not None
    if lines:
        assert f"{marker}.ok" in with_c.collect_schema().names()
    without, _ = sources.scan_lines(src, split=fmt)
    assert_frame_equal(
        collected_rows(with_c, fmt, policy=policy, classify=False),
        collected_rows(without, fmt, policy=policy, classify=False),
    )


def test_ingest_of_a_main_log_takes_the_c_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ingest` of an X-Forwarded-For log read in C ranges: the rows (plain
    chains decided in C, the others by `clientip`) are the Python reader's."""
    from pplog.batch.ingest import ingest

    row = '{} - - [20/Nov/2026:00:00:{:02d} +0000] "GET /{} HTTP/1.1" 200 1 "-" "ua" "{}"\n'
    chains = ["1.2.3.4", "2001:db8::1, 10.0.0.9", "-", "[::1]:80", "010.1.1.1, 1.2.3.4"]
    peers = ["10.0.0.1", "8.8.8.8", "fd00::1"]
    text = "".join(
        row.format(peers[k % 3], k % 60, k, chains[k % 5]) for k in range(300)
    )
    log = tmp_path / "access.log"
    log.write_text(text)
    monkeypatch.setattr(reader, "C_BLOCK_BYTES", 4096)
    got = {}
    for road in ("c", "python"):
        if road == "python":
            monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
        ingest([str(log)], tmp_path / road, format="main", batch_bytes=8192)
        got[road] = _ingested(tmp_path / road)
    assert_frame_equal(got["c"][0], got["python"][0])
    assert got["c"][0].height == 300
    assert got["c"][0]["client_ip"].n_unique() > 3


def test_ingest_in_c_ranges_drops_a_file_rewritten_while_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `copytruncate` rotation while ingest reads a file in C ranges (read
    out of order, a few ahead): the ranges read after it hold the new content
    at the old offsets. The run checks the file after each batch's ranges
    (`identity.check_unchanged`), drops the stream, and the next run reads
    the rotated copy and the new content, each line exactly once."""
    import shutil

    from pplog.batch.ingest import ingest

    line = (
        '1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /{} HTTP/1.1" 200 1 "-" "ua"\n'
    )
    log = tmp_path / "access.log"
    log.write_text("".join(line.format(i) for i in range(200)))
    monkeypatch.setattr(reader, "C_BLOCK_BYTES", 512)
    split = _fastsplit.split_ranges
    rotated: list[bool] = []

    def rotating(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for k, got in enumerate(split(*args, **kwargs)):  # type: ignore[arg-type]
            if k == 1 and not rotated:  # logrotate's copytruncate, nginx writes on
                shutil.copyfile(log, tmp_path / "access.log.1")
                with log.open("r+") as f:
                    f.truncate(0)
                    f.write("".join(line.format(i) for i in range(1000, 1100)))
                rotated.append(True)
            yield got

    monkeypatch.setattr(_fastsplit, "split_ranges", rotating)
    pattern = str(tmp_path / "access.log*")
    first = ingest([pattern], tmp_path / "ds", format="combined", batch_bytes=2048)
    assert rotated
    assert first.warnings.get("file_errors") == 1, first.warnings
    second = ingest([pattern], tmp_path / "ds", format="combined", batch_bytes=2048)
    assert not second.problems
    rows, _, _ = _ingested(tmp_path / "ds")
    paths = rows["path"].to_list()
    expected = [f"/{i}" for i in [*range(200), *range(1000, 1100)]]
    assert sorted(paths) == sorted(expected)


@pytest.fixture(scope="module")
def portable_splitc(tmp_path_factory: pytest.TempPathFactory) -> Any:  # noqa: ANN401
    """`_splitc.c` built without SSE2, as on machines other than x86-64: its
    marks (every newline and quote of a block, see `mark_block`) are found
    eight bytes at a time in plain C instead."""
    import importlib.util
    import shlex
    import sysconfig

    out = (
        tmp_path_factory.mktemp("portable")
        / f"_splitc{sysconfig.get_config_var('EXT_SUFFIX')}"
    )
    source = Path(_fastsplit.__file__).with_name("_splitc.c")
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    build = [*cc, "-O2", "-shared", "-fPIC", "-U__SSE2__", f"-I{include}"]
    subprocess.run([*build, str(source), "-o", str(out)], check=True, timeout=120)
    spec = importlib.util.spec_from_file_location("_splitc", out)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fmt", EACH_FORMAT, ids=lambda f: f.name)
@given(data=st.data())
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_the_portable_marks_split_as_the_sse2_marks_do(
    portable_splitc: Any, fmt: LogFormat, data: st.DataObject
) -> None:
    """Newlines and quotes on either side of every 64-byte word boundary,
    the last word short, non-ASCII and damaged lines: the block is split
    alike (or refused alike) by both builds."""
    from pplog import _splitc

    lines = data.draw(st.lists(_line(fmt), max_size=12))
    pads = data.draw(
        st.lists(st.integers(0, 70), min_size=len(lines), max_size=len(lines))
    )
    text = "\n".join(
        line.replace('"', '"' + "x" * pad, 1)
        for line, pad in zip(lines, pads, strict=True)
    )
    text += data.draw(st.sampled_from(["", "\n", "\n\n", "tail", "\r\n", "\x00"]))
    block = text.encode()
    built = _fastsplit.program(fmt)
    assert built is not None
    prog, columns = built
    names = tuple(_fastsplit._c_schema(fmt))
    args = (block, 0, prog, len(columns), 1 << 20, names)
    fast, portable = _splitc.lines(*args), portable_splitc.lines(*args)
    assert (fast is None) == (portable is None)
    if fast is not None:
        assert fast[0] == portable[0]
        assert_frame_equal(
            pl.DataFrame(_fastsplit._Capsules(fast[1])),
            pl.DataFrame(_fastsplit._Capsules(portable[1])),
        )


def test_a_format_of_more_fields_than_the_c_split_fills(tmp_path: Path) -> None:
    """nginx has no limit on a format's variables; `_splitc.c` fills 40. A
    format of 44 had its ranges refused by the C split: `ingest` left every
    line for a next run that never came, and `summarize` of a file past
    128 MiB stopped with an unexpected failure. Such a format is polars'."""
    from pplog.formats import LogFormat

    names = [f"$http_x_h{i}" for i in range(40)]
    fmt_text = '$remote_addr [$time_local] "$request" $status ' + " ".join(
        f'"{n}"' for n in names
    )
    fmt = LogFormat.from_string(fmt_text)
    assert len(fmt.fields) == 44
    assert _fastsplit.program(fmt) is None
    line = (
        '203.0.113.{i} [08/Dec/2026:03:00:00 +0000] "GET /{i} HTTP/1.1" 200 '
        + " ".join(f'"v{j}"' for j in range(40))
    )
    log = tmp_path / "access.log"
    log.write_text("".join(line.format(i=i % 200) + "\n" for i in range(300)))
    ds = tmp_path / "ds"
    result = run_pplog(
        "ingest", str(log), "--dataset", str(ds), "--log-format", fmt_text, "--final"
    )
    assert result.returncode == 0, result.stderr
    assert "wait for the next run" not in result.stderr
    rows = pplog.scan_dataset(ds).collect()
    assert rows.height == 300
    assert rows["http_x_h39"].unique().to_list() == ["v39"]
