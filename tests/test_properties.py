"""Round trips: render random records the way nginx does, parse them back."""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import pplog

FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time "$http_x_forwarded_for" ${msec}'
)
MONTHS = [
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


def nginx_escape(value: str | None) -> str:
    """nginx escape=default: `-` for missing, `\\xHH` for control, quote, backslash, >= 0x7F."""
    if value is None:
        return "-"
    out = []
    for b in value.encode("utf-8"):
        if b < 0x20 or b in (0x22, 0x5C) or b >= 0x7F:
            out.append(f"\\x{b:02X}")
        else:
            out.append(chr(b))
    return "".join(out)


def expected_text(value: str | None) -> str | None:
    return None if value in (None, "-") else value


# any Unicode text that UTF-8 can carry (lone surrogates cannot be encoded)
chars = st.characters(blacklist_categories=("Cs",))
texts = st.one_of(st.none(), st.text(chars, max_size=40))
users = st.one_of(
    st.none(), st.text(chars, min_size=1, max_size=20).filter(lambda s: s != "-")
)
addresses = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), st.just("unix:")
)
paths = st.text(
    alphabet=st.characters(blacklist_characters=" ?#", blacklist_categories=("Cs",)),
    max_size=30,
).map(lambda s: "/" + s)
records = st.fixed_dictionaries(
    {
        "remote_addr": addresses,
        "remote_user": users,
        "time": st.datetimes(
            min_value=datetime(1990, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.just(UTC),
        ).map(lambda d: d.replace(microsecond=0)),
        "offset": st.integers(min_value=-12 * 60, max_value=14 * 60).map(
            lambda m: m - m % 15
        ),
        "method": st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "PROPFIND"]),
        "path": paths,
        "query": st.one_of(
            st.none(), st.text(chars, max_size=20).filter(lambda s: " " not in s)
        ),
        "status": st.integers(min_value=0, max_value=999),
        # off_t: nginx writes no more
        "bytes": st.integers(min_value=0, max_value=2**63 - 1),
        "referer": texts,
        "agent": texts,
        "request_time": st.integers(min_value=0, max_value=10**7).map(
            lambda ms: ms / 1000
        ),
        "xff": texts,
    }
)


def render(r: dict) -> str:  # type: ignore[type-arg]
    local = r["time"] + timedelta(minutes=r["offset"])
    sign = "+" if r["offset"] >= 0 else "-"
    hh, mm = divmod(abs(r["offset"]), 60)
    stamp = f"{local.day:02d}/{MONTHS[local.month - 1]}/{local.year}:{local:%H:%M:%S} {sign}{hh:02d}{mm:02d}"
    target = r["path"] + ("" if r["query"] is None else "?" + r["query"])
    request = f"{r['method']} {target} HTTP/1.1"
    msec = f"{int(r['time'].timestamp())}.000"
    return (
        f"{r['remote_addr']} - {nginx_escape(r['remote_user'])} [{stamp}] "
        f'"{nginx_escape(request)}" {r["status"]:03d} {r["bytes"]} '
        f'"{nginx_escape(r["referer"])}" "{nginx_escape(r["agent"])}" '
        f'{r["request_time"]:.3f} "{nginx_escape(r["xff"])}" {msec}'
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=30))
def test_render_then_parse_round_trips(batch: list[dict]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        path.write_text("\n".join(render(r) for r in batch) + "\n", encoding="utf-8")
        df = pplog.read_log(path, log_format=FORMAT, include_rejects=True)
    assert df.height == len(batch)
    for r, row in zip(batch, df.iter_rows(named=True), strict=True):
        assert row["reject_reason"] is None, row["raw"]
        assert row["remote_addr"] == r["remote_addr"]
        assert row["remote_user"] == expected_text(r["remote_user"])
        assert row["time"] == r["time"]
        assert row["time_local"] is not None
        assert (row["method"], row["path"], row["query"]) == (
            r["method"],
            r["path"],
            r["query"],
        )
        assert row["status"] == r["status"]
        assert row["body_bytes_sent"] == r["bytes"]
        assert row["http_referer"] == expected_text(r["referer"])
        assert row["http_user_agent"] == expected_text(r["agent"])
        assert row["request_time"] == r["request_time"]
        assert row["http_x_forwarded_for"] == expected_text(r["xff"])


# Request lines as nginx may log them: odd spacing, `*`, absolute and
# authority forms, lowercase methods, protocols that are not the last token.
METHODS = ["GET", "OPTIONS", "CONNECT", "PUT_X", "get", "", "-"]
TARGETS = [
    "/",
    "/a",
    "/a?b=1",
    "/x?",
    "/a b",
    "*",
    "?q",
    "http://h",
    "https://example.com:8443/p?x",
    "host:443",
    "HTTP/1.1",
    "é",
    "",
]
PROTOCOLS = ["HTTP/1.1", "HTTP/1.0", "HTTP/1.10", "HTTP/2.0", "HTTP/1.1x", ""]
SPACES = ["", " ", " ", "  "]


def reference_request_parts(request: str) -> tuple[str | None, ...]:
    """nginx's split of a request line, written out by hand (see parse.request_parts)."""
    nothing = (None, None, None, None)
    m = re.match(r"^([A-Z][A-Z_-]*) +(.*)$", request)
    if not m:
        return nothing
    method, rest = m.group(1), m.group(2).rstrip(" ")
    protocol = re.search(r" +(HTTP/\d+\.\d+)$", rest)
    target = rest[: protocol.start()] if protocol else rest
    if not target:
        return nothing
    scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target)
    # origin-form, absolute-form, and `*` (nginx refuses it, Apache serves it);
    # not authority-form: nginx answers `CONNECT host:443` 400, whatever the method
    if not (target.startswith("/") or target == "*" or scheme):
        return nothing
    if scheme:  # absolute form: scheme and host go
        target = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", "", target) or "/"
    path, sep, query = target.partition("?")
    return method, path, query if sep else None, protocol.group(1) if protocol else None


requests = st.tuples(
    st.sampled_from(METHODS),
    st.sampled_from(SPACES),
    st.sampled_from(TARGETS),
    st.sampled_from(SPACES),
    st.sampled_from(PROTOCOLS),
    st.sampled_from(SPACES),
).map("".join)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests, min_size=1, max_size=40))
def test_request_lines_split_as_nginx_does(batch: list[str]) -> None:
    line = '203.0.113.9 - - [27/Nov/2026:06:01:02 +0000] "{}" 200 1 "-" "t"'
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        path.write_text("\n".join(line.format(r) for r in batch) + "\n")
        df = pplog.read_log(path, format="combined", include_rejects=True)
    got = df.select("method", "path", "query", "protocol").rows()
    assert got == [reference_request_parts(r) for r in batch]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none()
        | st.lists(
            st.sampled_from(
                ["a", "\\", "\\x41", "\\x5Cx41", "\\x5c", "\\xC3\\xA9", "\\xE2\\x82"]
                + ["\\xff", "\\x0A", "\\xZZ", "é", " ", "\\x22", "\\xc3\\xa9"]
            ),
            max_size=8,
        ).map("".join),
        min_size=1,
        max_size=40,
    )
)
def test_column_decoding_is_value_decoding(values: list[str | None]) -> None:
    # the column decoder (vectorised for ASCII escapes, Python for bytes
    # >= 0x80, only values with a backslash touched) against decoding each
    # value on its own
    from pplog._unescape import _decode_default, decode_xhh

    series = pl.Series("v", values, dtype=pl.String)
    expected = [None if v is None else decode_xhh(v) for v in values]
    assert _decode_default(series).to_list() == expected


# Lines in several formats and escapings, with damage: `read_log` (parsed in
# batches, then decoded, split, attributed and classified once per column)
# must give `scan_log`'s rows (all of it per batch, lazily) exactly.
_READ_FORMATS = {
    "default": FORMAT,
    "json": (
        'escape=json $remote_addr - $remote_user [$time_local] "$request" $status '
        '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time '
        '"$http_x_forwarded_for" ${msec}'
    ),
    "uri": '$remote_addr [$time_local] "$request_uri" $status "$http_user_agent"',
    "combined": "combined",
    "apache": "combined",  # with Apache's \" and \\ escapes in the lines
}
_DAMAGE = st.sampled_from(
    [
        "",
        "garbage",
        '1.2.3.4 - - [x] "GET / HTTP/1.1" 200 1 "-" "-"',
        '"\\x22\\xC3\\xA9\\xFF\\x5Cx41 \\" \\\\',
        "GET /a b c HTTP/1.1",
        "\x00binary",
    ]
)


def _as_json_escaped(line: str) -> str:
    r"""nginx's default escapes rewritten as escape=json ones (\"-style)."""
    return re.sub(r"\\x([0-9A-F]{2})", lambda m: f"\\u00{m.group(1)}", line)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(_READ_FORMATS)),
    st.lists(st.one_of(records.map(render), _DAMAGE), min_size=1, max_size=25),
    st.sampled_from([None, ["0.0.0.0/0"], ["10.0.0.0/8"]]),
)
def test_read_log_gives_scan_logs_rows(
    kind: str, lines: list[str], trusted: list[str] | None
) -> None:
    if kind == "json":
        lines = [_as_json_escaped(line) for line in lines]
    if kind == "apache":
        lines = [
            line.replace("\\x22", '\\"').replace("\\x5C", "\\\\") for line in lines
        ]
    spec = _READ_FORMATS[kind]
    options = {"format": spec} if " " not in spec else {"log_format": spec}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for rejects in (False, True):
            got = pplog.read_log(
                path, trusted=trusted, include_rejects=rejects, **options
            )
            lazy = pplog.scan_log(
                path, trusted=trusted, include_rejects=rejects, **options
            )
            assert_frame_equal(got, lazy.collect(engine="streaming"))


_ESCAPED_PIECES = st.sampled_from(
    ["a", "\\", "\\x41", "\\x5Cx41", "\\x5c", "\\xC3\\xA9", "\\xE2\\x82", "\\xff"]
    + ["\\x0A", "\\xZZ", "é", " ", "\\x22", "\\xc3\\xa9", '\\"', "\\\\", "\\/"]
    + ["\\n", "\\t", "\\b", "\\u0041", "\\u001f", "\\u001F", "\\u007F", "\\u00e9"]
    + ["\\u00E9", "\\ud83d\\ude00", "\\ud83d", "\\u12", "\\u0", "\\q", "\\\\u0041"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none() | st.lists(_ESCAPED_PIECES, max_size=8).map("".join),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_streaming_decoders_are_value_decoding(
    values: list[str | None], batch: int
) -> None:
    """The expressions that decode in streaming batches (ASCII escapes in
    polars, the rest in Python) against decoding each value on its own, for
    both escapings, over batches of `batch` rows."""
    from pplog._unescape import (
        decode_default,
        decode_json,
        decode_json_escapes,
        decode_xhh,
    )

    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    chunks = pl.concat(
        [frame.slice(i, batch) for i in range(0, frame.height, batch)], rechunk=False
    ).lazy()
    for decode, one in (
        (decode_default, decode_xhh),
        (decode_json, decode_json_escapes),
    ):
        got = chunks.select(decode(pl.col("v"))).collect(engine="streaming")
        expected = [None if v is None else one(v) for v in values]
        assert got.to_series().to_list() == expected


def _xhh_by_handler(data: bytes) -> str:
    """UTF-8 decoding with each byte of each invalid sequence written as
    `\\xHH` by an error handler: what `decode_bytes` must give."""
    import codecs

    def handler(err: UnicodeError) -> tuple[str, int]:
        assert isinstance(err, UnicodeDecodeError)
        bad = err.object[err.start : err.end]
        return "".join(f"\\x{b:02X}" for b in bad), err.end

    codecs.register_error("test-xhh", handler)
    return data.decode("utf-8", "test-xhh")


_UTF8_PIECES = st.sampled_from(
    [
        b"a",
        b"\\",
        b"\xc3\xa9",
        b"\xc3",
        b"\xa9",
        b"\xed\xb2\x80",
        b"\xf0\x9f\x98",
        b"\x80",
        b"\xff",
        b"\xe2\x82\xac",
        b"\xf4\x90\x80\x80",
        b"\x00",
        b"x5C",
    ]
)


@given(
    data=st.one_of(
        st.binary(max_size=60), st.lists(_UTF8_PIECES, max_size=20).map(b"".join)
    )
)
@settings(max_examples=500, deadline=None)
def test_bytes_decode_as_utf8_with_the_rest_escaped(data: bytes) -> None:
    """`decode_bytes` (surrogates written as escapes) gives what an error
    handler writing each invalid byte as `\\xHH` gives: the same invalid
    bytes (truncated sequences, encoded surrogates, bytes above U+10FFFF)."""
    from pplog.sources import decode_bytes

    assert decode_bytes(data) == _xhh_by_handler(data)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["a", "\\", "\\x", "x", "é", "\U0001f600", "5C"]),
            st.integers(0, 255).map(lambda b: f"\\x{b:02X}"),
            st.integers(0, 255).map(lambda b: f"\\x{b:02x}"),
        ),
        max_size=30,
    ).map("".join)
)
@settings(max_examples=500, deadline=None)
def test_xhh_decoding_is_one_pass_over_the_escapes(value: str) -> None:
    """`decode_xhh`: every `\\xHH` the byte HH, in one pass (the bytes an
    escape gives are not read again), then `decode_bytes`."""
    from pplog._unescape import decode_xhh

    raw = re.sub(
        rb"\\x([0-9A-Fa-f]{2})",
        lambda m: bytes([int(m.group(1), 16)]),
        value.encode("utf-8"),
    )
    assert decode_xhh(value) == _xhh_by_handler(raw)
