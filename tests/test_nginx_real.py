r"""Differential test: pplog against logs written by a real nginx.

A module-scoped fixture starts nginx (foreground, single process, `-g 'daemon
off; master_process off;'`) on free 127.0.0.1 ports, with `access_log`s that
record the SAME requests in several formats:

- ``combined.log``: the built-in `combined` format;
- ``main.log``: the stock nginx.conf `main` format (pplog preset ``main``);
- ``custom.log``: a default-escape format with many variables (`CUSTOM_FORMAT`),
  upstream lists included (a proxy with a refused first peer, an internal
  redirect between proxied locations);
- ``json.log``: the same variables as `escape=json`, one JSON object per line;
- ``json_plain.log``: the same without the upstream variables.

nginx runs with TZ set to a zone at -03:30, so times carry a negative,
non-whole-hour offset. Requests are sent over raw sockets, so every byte is
ours: hostile header values, Basic-auth users, binary and PROXY request lines,
odd request-line spacing, and ~200 seeded random requests.

`json.log`, read independently with the standard library, is the oracle for
what pplog must decode from the default-escape logs, and for what pplog reads
back from nginx's own json-mode logs (format taken from the nginx.conf).

Comparison conventions (nginx prints "not found" as `-` in default mode and as
nothing in json mode; a real `-` value cannot be told from "not found"):
json "" <-> pplog null or ""; json "-" <-> pplog null; anything else must be
equal, with invalid UTF-8 written as upper-case `\xHH` text on both sides.

Skipped when no nginx binary exists, unless ``PPLOG_REQUIRE_NGINX=1`` (set by
``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import pplog
from helpers import both_roads
from pplog.formats import PRESETS, LogFormat
from realproc import (
    CLIENT_HELLO,
    IO_TIMEOUT,
    report,
    require_binary,
    send,
    start_nginx,
    stop,
    temp_paths,
)

pytestmark = pytest.mark.nginx

# --------------------------------------------------------------------------------------
# Formats

CUSTOM_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" $request_time $msec '
    '"$http_x_test" $bytes_sent $request_length $remote_port $connection '
    "$connection_requests $pipe $time_iso8601 "
    '"$host" "$request_method" "$request_uri" "$uri" "$args" "$server_protocol" '
    '"$http_cookie" "$http_authorization" "$http_host" "$server_name" $scheme '
    '"$query_string" "$sent_http_content_type" "$upstream_addr" $upstream_status '
    "$upstream_response_time $upstream_connect_time $upstream_header_time "
    "$upstream_bytes_received"
)
CUSTOM_FIELDS = re.findall(r"\$([A-Za-z0-9_]+)", CUSTOM_FORMAT)

COMBINED_FIELDS = [
    "remote_addr",
    "remote_user",
    "time_local",
    "request",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
]

JSON_FORMAT = "{" + ",".join(f'"{name}":"${name}"' for name in CUSTOM_FIELDS) + "}"
# The same without the upstream lists, to see value decoding on every line.
JSON_PLAIN_FIELDS = [n for n in CUSTOM_FIELDS if not n.startswith("upstream_")]
JSON_PLAIN_FORMAT = (
    "{" + ",".join(f'"{name}":"${name}"' for name in JSON_PLAIN_FIELDS) + "}"
)

INTEGER_VARS = {
    "status",
    "body_bytes_sent",
    "bytes_sent",
    "request_length",
    "remote_port",
    "connection",
    "connection_requests",
}
FLOAT_VARS = {"request_time", "msec"}
# pplog types these as lists: `a, b : c` -> [a, b, c], `-` entries -> null
UPSTREAM_VARS = {
    "upstream_addr": str,
    "upstream_status": int,
    "upstream_response_time": float,
    "upstream_connect_time": float,
    "upstream_header_time": float,
    "upstream_bytes_received": int,
}

# The stock nginx.conf `main` format (pplog preset "main").
MAIN_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
)
MAIN_FIELDS = [*COMBINED_FIELDS, "http_x_forwarded_for"]

# The default-escape logs pplog reads: file -> read_log options.
LOGS: dict[str, dict[str, str]] = {
    "custom.log": {"log_format": CUSTOM_FORMAT},
    "combined.log": {"format": "combined"},
    "main.log": {"format": "main"},
}
LOG_FIELDS = {
    "custom.log": CUSTOM_FIELDS,
    "combined.log": COMBINED_FIELDS,
    "main.log": MAIN_FIELDS,
}

# The escape=json logs, by the name of their log_format in the generated nginx.conf.
# json.log is also the oracle (read with the standard library).
JSON_LOGS = {"json.log": "pplog_json", "json_plain.log": "pplog_json_plain"}

# nginx keeps TZ from its environment: a POSIX zone 3h30 west of UTC, so
# `$time_local` carries a negative, non-whole-hour offset (-0330).
NGINX_TZ = "PPL+3:30"


# --------------------------------------------------------------------------------------
# Requests

# Override for local exploration, e.g. PPLOG_NGINX_SEED=7 PPLOG_NGINX_RANDOM=5000.
SEED = int(os.environ.get("PPLOG_NGINX_SEED", "20250314"))
N_RANDOM = int(os.environ.get("PPLOG_NGINX_RANDOM", "200"))


def _basic(userpass: bytes) -> bytes:
    return b"Basic " + base64.b64encode(userpass)


def _get(
    target: bytes = b"/",
    *headers: tuple[bytes, bytes],
    method: bytes = b"GET",
    proto: bytes = b"HTTP/1.1",
    host: bytes | None = b"localhost",
    close: bool = True,
) -> bytes:
    lines = [method + b" " + target + b" " + proto]
    if host is not None:
        lines.append(b"Host: " + host)
    lines.extend(name + b": " + value for name, value in headers)
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


UA = b"User-Agent"
REF = b"Referer"
XT = b"X-Test"
XFF = b"X-Forwarded-For"
AUTH = b"Authorization"
COOKIE = b"Cookie"


def hostile_requests() -> list[bytes]:
    """Hand-written requests that stress escaping and parsing."""
    emoji = "😀".encode()
    return [
        _get(),
        _get(b"/missing/thing"),
        _get(b"/up/first"),
        _get(b"/dead/x"),
        _get(b"/redir/x", (XT, b"redirected")),
        _get(b"/up/q?a=%22b%22&c=\xff", (UA, b"\xff\x22"), (XT, b"\xff up")),
        _get(b"/", (UA, b"curl/8.5.0"), (REF, b"https://example.com/")),
        _get(b"/", (UA, b'say "hi" and "bye"'), (REF, b'"quoted"')),
        _get(b"/", (UA, b"back\\slash \\\\ double \\x41 \\xZZ \\x \\"), (XT, b"\\x41")),
        _get(b"/", (XT, b"\\x5C\\x22\\xFF"), (UA, b"trailing\\")),
        _get(
            b"/",
            (UA, b"ctl \x01 esc \x1b[31m del \x7f tab\tend"),
            (XT, b"\x1f\x08\x0c"),
        ),
        _get(b"/", (UA, "é – 😀 日本語 Ω".encode()), (XT, "naïve café".encode())),
        _get(b"/", (UA, b"bad \xff\xfe utf8"), (XT, b"\xc3 lone lead")),
        _get(b"/", (XT, b"\xed\xa0\x80 surrogate \xc0\xaf overlong \xf4\x90\x80\x80")),
        _get(b"/", (XT, b"\xe2\x82 truncated \xf0\x9f\x98 end\xe2")),
        _get(b"/", (XT, emoji[:2] + emoji + emoji[2:])),
        _get(b"/", (UA, b"Mozilla/5.0 " + b"A" * 10_240)),
        _get(b"/", (UA, ("é" * 3000).encode())),
        _get(b"/", (AUTH, _basic(b"ann smith:pw"))),
        _get(b"/", (AUTH, _basic(b'o"brien:pw'))),
        _get(b"/", (AUTH, _basic(b"ann@example.com:s3cret:with:colons"))),
        _get(b"/", (AUTH, _basic(b"x [y] - z:pw"))),
        _get(b"/", (AUTH, _basic(b'ann - [01/Jan/2020:00:00:00 +0000] "x:pw'))),
        _get(b"/", (AUTH, _basic("jürgen:pw".encode()))),
        _get(b"/", (AUTH, _basic(b"bad\xff\\user\x01:pw"))),
        _get(b"/", (AUTH, _basic(b"-:pw"))),
        _get(b"/", (AUTH, _basic(b":emptyuser"))),
        _get(b"/", (AUTH, _basic(b"nocolon"))),
        _get(b"/", (AUTH, b"Basic !!!notbase64")),
        _get(b"/", (AUTH, b"Bearer abc.def")),
        _get(b"/", (AUTH, _basic(b" :space"))),
        _get(b"/p%20a%22th/%C3%A9?q=%FF%00x&y=%22"),
        _get(b"/caf\xc3\xa9/\xff\xfe?x=\xfe\xc3\xa9"),
        _get(b'/a"b\\c?d="e"\\x41'),
        _get(b'/search?q=a+b&x=%22y%22&z="w"&e=&&='),
        _get(b"/%2e%2e/%2F/../x/./y//z"),
        _get(b"/" + b"long/" * 1000 + b"?" + b"k=v&" * 500),
        _get(b"/a b"),
        _get(b"http://Example.COM:8080/abs?x=1"),
        _get(b"*", method=b"OPTIONS"),
        _get(b"/", method=b"get"),
        _get(b"/", method=b"PATCH"),
        _get(b"/", method=b"HEAD"),
        _get(b"/", method=b"DELETE", proto=b"HTTP/1.0"),
        _get(b"/http10", proto=b"HTTP/1.0", host=None, close=False),
        _get(b"/", proto=b"HTTP/2.0"),
        _get(b"/", proto=b"HTTP/1.9"),
        _get(b"/", proto=b"http/1.1"),
        b"GET /zero-nine\r\n",
        b"GET  /two-spaces-before HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /two-spaces-after  HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /trailing-space HTTP/1.1 \r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET\t/tab HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /minor-10 HTTP/1.10\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /leading-zero HTTP/01.01\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /sp-query?a=1  HTTP/1.0\r\n\r\n",
        b"GET /zero-nine-sp \r\n",
        b"GET / HTTP/1.1\r\nHost: EXAMPLE.org.:8080\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        _get(b"/", (REF, b""), (UA, b"")),
        _get(b"/", (REF, b"-"), (UA, b"-"), (XT, b"-")),
        _get(b"/", (XT, b"   "), (UA, b"  padded  ")),
        _get(
            b"/", (XT, b'x" 200 0 "y'), (UA, b'" - [01/Jan/2020:00:00:00 +0000] "GET')
        ),
        _get(b"/", (XFF, b"192.0.2.1, 198.51.100.2"), (XFF, b"203.0.113.3")),
        _get(b"/", (XT, b"first"), (XT, b"second")),
        _get(b"/", (COOKIE, b'a=1; b="2"'), (COOKIE, b"c=\xff\x01")),
        _get(b"/", (b"Bad Header Name", b"v"), (b"X_Under_Score", b"u")),
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: obs\r\n folded\r\n"
        b"Connection: close\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\nX-Test: bare-lf\nConnection: close\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: nul\x00byte\r\n"
        b"Connection: close\r\n\r\n",
        CLIENT_HELLO,
        b"PROXY TCP4 192.0.2.10 10.0.0.1 56324 443\r\n"
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"PROXY UNKNOWN\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\n",
        b"\r\n\r\nGET /after-blank HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"\x00\x01\x02\x03binary",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"GET /incomplete HTTP/1.1\r\nHost: x\r\n",
        # two pipelined requests on one connection
        _get(b"/pipe1", close=False) + _get(b"/pipe2", (XT, b"pipelined")),
    ]


_SPECIAL_BYTES = bytes(
    sorted(set(b'\x01\x09\x1b"\\\x7f\x80\xa9\xc3\xe2\xf0\x9f\xfe\xff -[]:x0A9Ff%,;'))
)
_SPECIAL_CHUNKS = [
    b"\\x41",
    b"\\x",
    b"\\xZZ",
    b"\\x5C",
    b"\\\\",
    "é".encode(),
    "😀".encode(),
    "日本".encode(),
    b"\xc3",
    b"\xed\xa0\x80",
    b'" ',
    b" - ",
    b" [",
    b"] ",
    b"%22",
    b"%FF",
]


def _random_bytes(rng: random.Random, n: int, *, exclude: bytes = b"") -> bytes:
    """`n`-ish bytes from 0x01-0xFF without CR/LF, biased toward tricky ones."""
    banned = set(b"\r\n") | set(exclude)
    out = bytearray()
    while len(out) < n:
        r = rng.random()
        if r < 0.3:
            out.append(rng.choice(_SPECIAL_BYTES))
        elif r < 0.42:
            out += rng.choice(_SPECIAL_CHUNKS)
        else:
            out.append(rng.randint(1, 255))
        out = bytearray(b for b in out if b not in banned)
    return bytes(out)


def random_requests(rng: random.Random, count: int) -> list[bytes]:
    """Seeded random requests; nginx rejects some of them with 400."""
    out = []
    for i in range(count):
        r = rng.random()
        if r < 0.04:  # a random "request line"
            out.append(_random_bytes(rng, rng.randint(1, 60)) + b"\r\n\r\n")
            continue
        if r < 0.25:
            target = b"/r/" + _random_bytes(rng, rng.randint(0, 40), exclude=b" ")
        elif r < 0.3:
            target = b"/r/" + _random_bytes(rng, rng.randint(0, 40))
        else:
            target = b"/r/%d?i=%d" % (i, i)
        method = rng.choice([b"GET"] * 8 + [b"HEAD", b"POST", b"PUT", b"get"])
        proto = rng.choice([b"HTTP/1.1"] * 6 + [b"HTTP/1.0"])
        headers: list[tuple[bytes, bytes]] = []
        for name in (UA, REF, XT, XFF, COOKIE):
            if rng.random() < 0.6:
                headers.append((name, _random_bytes(rng, rng.randint(0, 80))))
        if rng.random() < 0.4:
            user = _random_bytes(rng, rng.randint(0, 20))
            headers.append((AUTH, _basic(user + b":" + _random_bytes(rng, 5))))
        rng.shuffle(headers)
        if rng.random() < 0.05:
            target = b"/missing/" + target
        out.append(_get(target, *headers, method=method, proto=proto))
    return out


# --------------------------------------------------------------------------------------
# nginx


def _config(root: Path, port: int, backend: int, dead: int, nginx_v: str) -> str:
    temp = temp_paths(root, nginx_v)
    return f"""\
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;

events {{
    worker_connections 256;
}}

http {{
{temp}
    default_type text/plain;
    large_client_header_buffers 8 64k;
    client_header_timeout 5s;
    client_body_timeout 5s;
    keepalive_timeout 5s;
    lingering_timeout 1s;
    lingering_time 2s;
    server_tokens off;

    log_format pplog_custom '{CUSTOM_FORMAT}';
    log_format pplog_json escape=json '{JSON_FORMAT}';
    log_format pplog_json_plain escape=json '{JSON_PLAIN_FORMAT}';
    log_format main '{MAIN_FORMAT}';

    access_log {root / "combined.log"} combined;
    access_log {root / "custom.log"} pplog_custom;
    access_log {root / "json.log"} pplog_json;
    access_log {root / "main.log"} main;
    access_log {root / "json_plain.log"} pplog_json_plain;

    upstream flaky {{
        server 127.0.0.1:{dead} max_fails=0;
        server 127.0.0.1:{backend} max_fails=0;
    }}

    # the upstream target: not logged, so every log line is a client request
    server {{
        listen 127.0.0.1:{backend};
        server_name backend;
        access_log off;
        location / {{
            return 200 "up\n";
        }}
        location /b404/ {{
            return 404;
        }}
    }}

    server {{
        listen 127.0.0.1:{port} default_server;
        server_name localhost;

        location / {{
            return 200 "ok\\n";
        }}
        location /missing/ {{
            return 404;
        }}
        # upstream lists: a refused attempt then a good one ("a, b" / "502, 200")
        location /up/ {{
            proxy_next_upstream error timeout http_502;
            proxy_pass http://flaky;
        }}
        location /dead/ {{
            proxy_pass http://127.0.0.1:{dead};
        }}
        # an internal redirect to another proxied location ("a : b, c")
        location /redir/ {{
            proxy_intercept_errors on;
            error_page 404 = /up/after-redirect;
            proxy_pass http://127.0.0.1:{backend}/b404/;
        }}
    }}
}}
"""


# --------------------------------------------------------------------------------------
# The json oracle

_SURROGATE = re.compile("[\udc80-\udcff]")


def _xhh(value: str) -> str:
    """Surrogate-escaped bytes -> `\\xHH` text (pplog's convention)."""
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02X}", value)


def read_json_log(path: Path) -> list[dict[str, str]]:
    records = []
    data = path.read_bytes()
    assert data.endswith(b"\n") or not data
    for raw in data.split(b"\n")[:-1]:
        obj = json.loads(raw.decode("utf-8", "surrogateescape"))
        records.append({k: _xhh(v) for k, v in obj.items()})
    return records


# --------------------------------------------------------------------------------------
# Fixture


@dataclass(repr=False)
class Run:
    root: Path
    sent: int
    replies: list[bytes]
    json: list[dict[str, str]]
    frames: dict[str, pl.DataFrame]  # default-escape logs as read by pplog, by name
    lines: dict[str, list[bytes]]  # the same logs' raw lines
    error_log: str


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return data.split(b"\n")[:-1] if data else []


def _start_nginx(nginx: str, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """nginx in the foreground on fresh ports; its proc and client port."""

    def remove_logs() -> None:
        for name in (*LOGS, *JSON_LOGS, "error.log", "stderr.log"):
            (root / name).unlink(missing_ok=True)

    proc, (port, _backend, _dead) = start_nginx(
        nginx,
        root,
        lambda p, nginx_v: _config(root, p[0], p[1], p[2], nginx_v),
        ports=3,
        listening=2,
        env={"TZ": NGINX_TZ},
        before=remove_logs,
    )
    return proc, port


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    nginx = require_binary("nginx", "nginx-light")
    root = tmp_path_factory.mktemp("nginx")
    proc, port = _start_nginx(nginx, root)
    requests = hostile_requests() + random_requests(random.Random(SEED), N_RANDOM)
    try:
        replies = [send(port, r) for r in requests]
    finally:
        stop(proc)

    frames = {}
    for name, options in LOGS.items():
        frame = pplog.read_log(root / name, **options, include_rejects=True)
        frames[name] = frame.sort("line")
    return Run(
        root=root,
        sent=len(requests),
        replies=replies,
        json=read_json_log(root / "json.log"),
        frames=frames,
        lines={name: _lines(root / name) for name in LOGS},
        error_log=(root / "error.log").read_text(errors="replace"),
    )


# --------------------------------------------------------------------------------------
# Comparison helpers


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"...<{len(text)} chars>"


def _upstream_list(js: str, kind: type) -> list[Any] | None:
    """The list pplog should give for an upstream variable (spec section 1.5)."""
    if js in ("", "-"):
        return None
    entries = [e for group in js.split(" : ") for e in group.split(", ")]
    return [None if e == "-" else kind(e) for e in entries]


def _same(pp: Any, js: str, var: str) -> bool:
    if var in UPSTREAM_VARS:
        want = _upstream_list(js, UPSTREAM_VARS[var])
        if want is None or pp is None:
            return want is None and pp is None
        return len(pp) == len(want) and all(
            (a is None and b is None)
            or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9))
            if isinstance(b, float)
            else a == b
            for a, b in zip(pp, want, strict=True)
        )
    if var in INTEGER_VARS:
        if js in ("", "-"):
            return pp is None
        return pp is not None and int(js) == pp
    if var in FLOAT_VARS:
        if js in ("", "-"):
            return pp is None
        return pp is not None and math.isclose(float(js), pp, abs_tol=1e-9)
    if js == "":
        return pp is None or pp == ""
    if js == "-":
        return pp is None
    return bool(pp == js)


def _mismatches(run: Run, which: str, fields: list[str]) -> list[str]:
    problems = []
    rows = run.frames[which].select(fields).rows()
    raw_lines = run.lines[which]
    for i, (row, rec) in enumerate(zip(rows, run.json, strict=True)):
        for var, pp in zip(fields, row, strict=True):
            if not _same(pp, rec[var], var):
                raw = raw_lines[i].decode("ascii", "backslashreplace")
                problems.append(
                    f"{which} line {i + 1} ${var}: pplog={_short(pp)} "
                    f"nginx(json)={_short(rec[var])}\n    raw: {_short(raw, 400)}"
                )
    return problems


# --------------------------------------------------------------------------------------
# Tests


def test_nginx_logged_the_requests(run: Run) -> None:
    # One line per connection that carried a byte (two for the pipelined
    # pair); allow a little slack for nginx versions that log fewer edge cases.
    assert len(run.json) >= run.sent - 3, run.error_log[-2000:]
    timeouts = [i for i, r in enumerate(run.replies) if r.endswith(b"<timeout>")]
    assert not timeouts, f"requests {timeouts} got no reply in {IO_TIMEOUT}s"
    statuses = {int(r["status"]) for r in run.json}
    assert {200, 400, 404, 502, 505} <= statuses
    # the upstream paths really produced lists and separators
    addrs = [r["upstream_addr"] for r in run.json]
    assert any(", " in a for a in addrs)
    assert any(" : " in a for a in addrs)
    # and nginx really ran in the zone we gave it
    assert run.json[0]["time_local"].endswith(" -0330")


def test_same_number_of_lines_in_every_log(run: Run) -> None:
    for name, lines in run.lines.items():
        assert len(lines) == len(run.json), name
        assert run.frames[name].height == len(lines), name


def test_default_escape_logs_are_ascii(run: Run) -> None:
    # default escaping leaves no byte >= 0x7F and no control byte in the file
    for name, lines in run.lines.items():
        bad = [ln for ln in lines if re.search(rb"[^\x20-\x7e]", ln)]
        assert not bad, f"{name}: {_short(bad[:3], 1000)}"


@pytest.mark.parametrize("which", list(LOGS))
def test_every_default_line_parses(run: Run, which: str) -> None:
    rejects = run.frames[which].filter(pl.col("reject_reason").is_not_null())
    problems = [
        f"line {line} ({reason}): {_short(raw, 600)}"
        for line, reason, raw in rejects.select("line", "reject_reason", "raw").rows()
    ]
    assert not problems, report(problems, f"{which} lines rejected by pplog")


@pytest.mark.parametrize("which", list(LOGS))
def test_values_match_nginx_json(run: Run, which: str) -> None:
    problems = _mismatches(run, which, LOG_FIELDS[which])
    assert not problems, report(
        problems, f"{which} values differ from nginx's json log"
    )


def test_types(run: Run) -> None:
    for name, frame in run.frames.items():
        schema = frame.schema
        assert schema["status"] == pl.UInt16, name
        assert schema["body_bytes_sent"] == pl.UInt64, name
        assert schema["time"] == pl.Datetime("us", "UTC"), name
        assert frame["status"].null_count() == 0, name
        assert frame["body_bytes_sent"].null_count() == 0, name
        assert frame["time"].null_count() == 0, name
    custom = run.frames["custom.log"]
    schema = custom.schema
    for name in ("bytes_sent", "request_length", "connection", "connection_requests"):
        assert schema[name] == pl.UInt64, name
    assert schema["remote_port"] == pl.UInt16
    assert schema["request_time"] == pl.Float64
    assert schema["msec"] == pl.Float64
    assert schema["upstream_addr"] == pl.List(pl.String)
    assert schema["upstream_status"] == pl.List(pl.UInt16)
    assert schema["upstream_response_time"] == pl.List(pl.Float64)
    assert schema["upstream_bytes_received"] == pl.List(pl.UInt64)
    for name in ("request_time", "bytes_sent", "msec", "request_length"):
        assert custom[name].null_count() == 0, name


@pytest.mark.parametrize("which", list(LOGS))
def test_time_equals_msec(run: Run, which: str) -> None:
    frame = run.frames[which]
    problems = []
    for i, (ts, rec) in enumerate(zip(frame["time"].to_list(), run.json, strict=True)):
        msec = float(rec["msec"])
        if ts is None or int(ts.timestamp()) != math.floor(msec):
            problems.append(f"line {i + 1}: time={ts} msec={rec['msec']}")
        elif which == "custom.log" and abs(ts.timestamp() - msec) > 0.0005:
            problems.append(f"line {i + 1}: time={ts} msec={rec['msec']} (sub-second)")
    assert not problems, report(problems, f"{which} `time` values differ from $msec")


def test_request_parts_of_served_requests(run: Run) -> None:
    # For requests nginx served, pplog's split of $request must agree with
    # nginx's own $request_method, $server_protocol, $request_uri and $args.
    problems = []
    cols = run.frames["custom.log"].select(
        "method", "path", "query", "protocol", "request"
    )
    for i, (parts, rec) in enumerate(zip(cols.rows(), run.json, strict=True)):
        if rec["status"] not in ("200", "404", "502"):
            continue
        method, path, query, protocol, request = parts
        target = None if path is None else path + ("" if query is None else "?" + query)
        # nginx keeps a space that ends the line in $server_protocol ("HTTP/1.1 ")
        protocol_want = rec["server_protocol"].rstrip(" ")
        want = (rec["request_method"], rec["request_uri"], rec["args"], protocol_want)
        got = (method, target, query or "", protocol or "")
        if got != want:
            problems.append(
                f"line {i + 1}: request={_short(request)}\n"
                f"    pplog (method, path?query, query, protocol)={_short(got, 300)}\n"
                f"    nginx (method, request_uri, args, protocol)={_short(want, 300)}"
            )
    assert not problems, report(problems, "request-part differences")


@pytest.mark.parametrize("which", list(JSON_LOGS))
def test_json_mode_log_read_by_pplog(run: Run, which: str) -> None:
    # pplog reading nginx's own escape=json output, format taken from the
    # nginx.conf that wrote it, must agree with the standard-library reading.
    frame = pplog.read_log(
        run.root / which,
        nginx_conf=run.root / "nginx.conf",
        log_format_name=JSON_LOGS[which],
        include_rejects=True,
    ).sort("line")
    lines = _lines(run.root / which)
    assert frame.height == len(lines) == len(run.json)
    problems = [
        f"line {line} ({reason}): {_short(raw, 400)}"
        for line, reason, raw in frame.filter(pl.col("reject_reason").is_not_null())
        .select("line", "reject_reason", "raw")
        .rows()
    ]
    fields = CUSTOM_FIELDS if which == "json.log" else JSON_PLAIN_FIELDS
    accepted = frame.with_row_index("_i").filter(pl.col("reject_reason").is_null())
    rows = accepted.select("_i", *fields).rows()
    for i, *values in rows:
        rec = run.json[i]
        for var, pp in zip(fields, values, strict=True):
            if not _same(pp, rec[var], var):
                raw = lines[i].decode("utf-8", "backslashreplace")
                problems.append(
                    f"line {i + 1} ${var}: pplog={_short(pp)} "
                    f"nginx(json)={_short(rec[var])}\n    raw: {_short(raw, 400)}"
                )
    assert not problems, report(problems, f"{which} problems (rejects, then values)")


@pytest.mark.parametrize("which", list(LOGS))
def test_the_c_split_gives_the_rows_polars_gives(run: Run, which: str) -> None:
    """Real nginx lines, hostile ones included, through the C road for plain
    files (`pplog._fastsplit`) and through polars alone: the same rows."""
    options = LOGS[which]
    fmt = (
        LogFormat.from_string(options["log_format"])
        if "log_format" in options
        else PRESETS[options["format"]]
    )
    by_c, by_polars, taken = both_roads([run.root / which], fmt)
    assert_frame_equal(by_c, by_polars)
    assert taken > 0
    if "format" in options:
        # a preset's line the C split leaves to polars is a reject, holds a
        # backslash (nginx's `\xHH`, which Apache's escapes of `combined`
        # rewrite first), or has a value holding its next literal (a user
        # `x [y] - z`): a handful of the hostile requests here
        plain = by_polars.filter(pl.col("reject_reason").is_null())
        if fmt.apache_escapes:
            plain = plain.filter(~pl.col("raw").str.contains("\\", literal=True))
        assert taken >= 0.9 * plain.height > 0
