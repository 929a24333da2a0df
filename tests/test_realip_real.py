r"""Differential test: pplog's `client_ip` against nginx's realip module.

A module-scoped fixture starts a real nginx (foreground, single process,
`-g 'daemon off; master_process off;'`, prefix in a tmp dir, free loopback
ports), the way `tests/test_nginx_real.py` does. nginx itself is the oracle:
for every request it logs both its TCP peer (`$realip_remote_addr`), the header
realip read (`$http_x_forwarded_for`, `$http_x_real_ip`, `$proxy_protocol_addr`)
and the result (`$remote_addr`). pplog reads the same log with the same
`set_real_ip_from` / `real_ip_header` / `real_ip_recursive` settings and its
`client_ip` must be exactly what nginx wrote in `$remote_addr` (spec section 2).

1. X-Forwarded-For: two server blocks, `real_ip_recursive on` and `off`, with
   the same trusted ranges. Seeded-random requests come over raw sockets from
   several 127.x source addresses (trusted and not) and from ::1, with XFF
   chains mixing trusted and untrusted IPv4/IPv6 in every spelling nginx reads
   (spec 2.3, 7.5.25), garbage tokens, odd separators, and sometimes two XFF
   header lines. A smaller X-Real-IP pair of servers does the same for
   `real_ip_header X-Real-IP`.
2. PROXY protocol through a real HAProxy (`send-proxy` and `send-proxy-v2`),
   clients connecting from several 127.x addresses and ::1; plus raw v1/v2
   headers sent by the test itself with spellings HAProxy never produces; plus
   an nginx server that does not trust HAProxy.
3. Early-rejected requests (400, spec 2.6 / 7.5.27): realip never ran, so
   `$remote_addr` is the proxy; pplog must name the real client (the address
   the test connected from, or what nginx gave the same request when it ran).

Inputs that nginx treats differently depending on how they were split into
header lines, although the log shows the same joined text, are not generated:
in a request with two XFF lines the second line is never empty and never
starts with a separator (the log cannot tell `a` + `,b` from `a, ,b`).

Expectations come from the nginx that runs, so they follow its version: for
example a bare `[v6]` token (no port) is an address only since nginx 1.27.3,
and Debian 12's nginx 1.22 rejects it.

Skipped when nginx or haproxy is missing, unless ``PPLOG_REQUIRE_NGINX=1`` (set
by ``.ci/run``, which installs both), which turns the skip into a failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import pplog
from helpers import run_pplog
from pplog.clientip import ProxyPolicy
from realproc import (
    free_ports,
    report,
    require_binary,
    send,
    start_nginx,
    stop,
    temp_paths,
    wait_listening,
)

pytestmark = pytest.mark.nginx

SEED = int(os.environ.get("PPLOG_REALIP_SEED", "20250611"))
N_XFF = int(os.environ.get("PPLOG_REALIP_RANDOM", "300"))

# --------------------------------------------------------------------------------------
# Trust settings, identical for nginx and pplog

# `::ffff:198.51.100.0/120` is an IPv6 range over IPv4-mapped addresses: nginx
# tests a mapped address against IPv4 ranges only (`ngx_cidr_match`), so this
# range never trusts anything; pplog must agree.
XFF_TRUSTED = [
    "127.0.0.1/32",
    "127.0.0.8/29",
    "10.0.0.0/8",
    "2001:db8::/32",
    "::1/128",
    "::ffff:198.51.100.0/120",
]
PP_TRUSTED = ["127.0.0.0/8"]
PP_UNTRUSTED = ["10.0.0.0/8"]  # haproxy connects from 127.0.0.1: not trusted

XFF_FORMAT = (
    '$realip_remote_addr "$http_x_forwarded_for" $remote_addr $status '
    '"$request_uri" $remote_port'
)
XRIP_FORMAT = (
    '$realip_remote_addr "$http_x_real_ip" $remote_addr $status '
    '"$request_uri" $remote_port'
)
PP_FORMAT = (
    "$realip_remote_addr $proxy_protocol_addr $remote_addr $status "
    '"$request_uri" $proxy_protocol_port $remote_port'
)
_LINE = {
    "xff": re.compile(
        r'^(?P<peer>\S+) "(?P<header>[^"]*)" (?P<remote>\S+) (?P<status>\d{3}) '
        r'"(?P<uri>[^"]*)" (?P<port>\S*)$'
    ),
    "pp": re.compile(
        r"^(?P<peer>\S+) (?P<header>\S+) (?P<remote>\S+) (?P<status>\d{3}) "
        r'"(?P<uri>[^"]*)" (?P<ppport>\S*) (?P<port>\S*)$'
    ),
}


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_V6 = _has_ipv6_loopback()

# Client source addresses: Linux accepts any 127/8 address on lo.
TRUSTED_SOURCES = ["127.0.0.1", "127.0.0.9", "127.0.0.15"] + (["::1"] if HAS_V6 else [])
UNTRUSTED_SOURCES = ["127.0.0.2", "127.0.0.16", "127.5.6.7"]


# --------------------------------------------------------------------------------------
# Random X-Forwarded-For values


def _v4(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def _trusted_addr(rng: random.Random) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    r = rng.random()
    if r < 0.40:
        return _v4(
            f"10.{rng.randrange(256)}.{rng.choice([0, 0, 1, 7, 200])}.{rng.randrange(1, 255)}"
        )
    if r < 0.50:
        return _v4("127.0.0.1")
    if r < 0.60:
        return _v4(f"127.0.0.{rng.randrange(8, 16)}")
    if r < 0.78:
        return ipaddress.IPv6Address(
            f"2001:db8:{rng.choice(['0', '0', 'a', 'ffff'])}::{rng.randrange(1, 65536):x}"
        )
    if r < 0.86:
        return ipaddress.IPv6Address("::1")
    # an IPv4-mapped address inside 10/8: trusted through the IPv4 range
    return ipaddress.IPv6Address(
        f"::ffff:10.{rng.randrange(256)}.0.{rng.randrange(1, 255)}"
    )


def _untrusted_addr(
    rng: random.Random,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    choices: list[Callable[[], str]] = [
        lambda: f"203.0.113.{rng.randrange(1, 255)}",
        lambda: f"198.51.100.{rng.randrange(1, 255)}",
        lambda: f"192.0.2.{rng.randrange(0, 256)}",
        lambda: rng.choice(["8.8.4.4", "11.0.0.1", "9.255.255.255", "0.0.0.0"]),
        lambda: rng.choice(["127.0.0.2", "127.0.0.16", "127.0.0.7", "127.1.0.1"]),
        lambda: f"2001:db9::{rng.randrange(1, 65536):x}",
        lambda: f"2600:1f18:{rng.randrange(65536):x}::{rng.randrange(1, 99)}",
        lambda: rng.choice(["fe80::1", "::", "::2", "2001:db7:ffff::1"]),
        # mapped, inside the IPv6 range ::ffff:198.51.100.0/120 (never trusted)
        lambda: f"::ffff:198.51.100.{rng.randrange(1, 255)}",
        lambda: f"::ffff:203.0.113.{rng.randrange(1, 255)}",
    ]
    return ipaddress.ip_address(rng.choice(choices)())


def _port(rng: random.Random) -> str:
    return str(rng.choice([1, 80, 443, 8080, 51234, 65535, rng.randrange(1, 65536)]))


def _render(
    rng: random.Random, addr: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> str:
    """One spelling of `addr` that nginx's `ngx_parse_addr_port` reads (or not)."""
    if isinstance(addr, ipaddress.IPv4Address):
        octets = str(addr).split(".")
        r = rng.random()
        if r < 0.50:
            return str(addr)
        if r < 0.66:
            return f"{addr}:{_port(rng)}"
        if r < 0.76:  # leading zeros: decimal for nginx
            return ".".join(o.zfill(rng.choice([1, 2, 3])) for o in octets)
        if r < 0.82:  # empty octets count as 0 (`1..2.3`)
            return ".".join("" if o == "0" else o for o in octets)
        if r < 0.88:
            return f"[{addr}]:{_port(rng)}"
        if r < 0.94:
            return ".".join(o.zfill(3) for o in octets) + f":{_port(rng)}"
        return f"::ffff:{addr}"
    compressed = addr.compressed
    r = rng.random()
    if r < 0.35:
        return compressed
    if r < 0.50:
        return compressed.upper()
    if r < 0.60:
        return addr.exploded if rng.random() < 0.5 else addr.exploded.upper()
    if r < 0.82:
        return f"[{compressed}]:{_port(rng)}"
    if r < 0.90:
        return f"[{compressed.upper()}]:{_port(rng)}"
    return f"[{compressed}]"  # accepted by nginx 1.27.3+ only


# Tokens nginx rejects, or reads in its own lenient way (spec 2.3).
ODD_TOKENS = [
    "unknown",
    "-",
    "_obf",
    "_hidden",
    "255.255.255.255",
    "255.255.255.255:80",
    "203.0.113.7:0",
    "[2001:db8::7]:0",
    "10.1.1.1:65536",
    "10.1.1.1:99999999999999999999",
    "10.1.1.1:",
    ":80",
    "10.1.1",
    "10.1.1.1.1",
    "256.1.1.1",
    "10.1.1.1:80:90",
    "10.1.1.1:080",
    "203.0.113.8:00443",
    "10.1.1.1:+80",
    "10.1.1.1:8_0",
    "10.1.1.1:-1",
    "...",
    "10.1.2.",
    ".1.2.3",
    "0000000010.0.0.1",
    "0.0.0.0:1",
    "garbage",
    "for=203.0.113.9",
    '"203.0.113.9"',
    "203.0.113.9;proto=http",
    "a\\b",
    "fe80::1%eth0",
    "2001:db8::1/64",
    "2001:db8::7:443",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]:8080",
    "::FFFF:7F00:1",
    "::ffff:a00:1",
    "::ffff:010.001.002.003",
    "::ffff:1..2.3",
    "::255.255.255.255",
    "::ffff:255.255.255.255",
    "::10.1.2.3",
    ":1::2",
    "::1:",
    "1::2:",
    ":1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:1.2.3.4",
    "1::2::3",
    "12345::1",
    "g::1",
    ":::",
    "[::1]",
    "[::1]]:80",
    "[]:80",
    "[::1]x80",
    "[::1]:",
    "[10.1.1.1]:80",
    "[203.0.113.5]:80",
    "[2001:db8::1",
    "2001:db8::1]:80",
    "\t10.1.1.1",
    "10.1.1.1\t",
    "\u0661.2.3.4",  # Arabic-Indic digit one
    "\uff11\uff10.0.0.1",  # fullwidth "10"
    "10.0.0.1:\uff18\uff10",  # fullwidth port
    "10.0.0.1:\u0668\u0660",
    "caf\u00e9",
]

SEPARATORS = [", "] * 10 + [","] * 3 + [" "] * 2 + [",,", ", ,", " ,", "  ", " , "]
SUFFIXES = [",", ", ", ",,", " ,", ", ,"]
XFF_NAMES = [b"X-Forwarded-For"] * 6 + [b"x-forwarded-for", b"X-FORWARDED-FOR"]


def _token(rng: random.Random, trusted_bias: float) -> str:
    r = rng.random()
    if r < trusted_bias:
        return _render(rng, _trusted_addr(rng))
    if r < 0.82:
        return _render(rng, _untrusted_addr(rng))
    return rng.choice(ODD_TOKENS)


def _join(rng: random.Random, tokens: list[str]) -> str:
    out = tokens[0]
    for tok in tokens[1:]:
        out += rng.choice(SEPARATORS) + tok
    return out


def random_xff(rng: random.Random) -> list[str] | None:
    """The XFF header lines of one request (None: no XFF header)."""
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.09:
        return [""]
    if rng.random() < 0.05:  # a long chain, past any fixed lookahead
        n = rng.randint(17, 26)
        tokens = [
            _token(rng, 0.75) if i < 3 else _render(rng, _trusted_addr(rng))
            for i in range(n)
        ]
        if rng.random() < 0.5:
            tokens[rng.randrange(0, 3)] = _render(rng, _untrusted_addr(rng))
    else:
        n = rng.choice([1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6])
        tokens = [_token(rng, 0.45) for _ in range(n)]
    if len(tokens) >= 2 and rng.random() < 0.15:
        cut = rng.randrange(1, len(tokens))
        lines = [_join(rng, tokens[:cut]), _join(rng, tokens[cut:])]
        if rng.random() < 0.3:
            lines[0] += rng.choice(SUFFIXES)
    else:
        lines = [_join(rng, tokens)]
    if rng.random() < 0.05:  # first line only: see the module docstring
        lines[0] = rng.choice([",", ", ", ",,"]) + lines[0]
    if rng.random() < 0.10:
        lines[-1] += rng.choice(SUFFIXES)
    return lines


# --------------------------------------------------------------------------------------
# Requests and sockets


@dataclass
class Sent:
    """One request as sent: for failure messages."""

    uri: str
    source: str
    headers: list[tuple[bytes, bytes]]
    note: str = ""

    def describe(self) -> str:
        hdrs = ", ".join(f"{n.decode()}: {v!r}" for n, v in self.headers) or "(none)"
        note = f" [{self.note}]" if self.note else ""
        return f"from {self.source}{note}; headers {hdrs}"


def _send(
    source: str, host: str, port: int, data: bytes, local_ports: list[int] | None = None
) -> bytes:
    """Send from `source`; lines of error statuses may come late (see `_wait_lines`)."""
    return send(port, data, host=host, source=source, local_ports=local_ports)


def _request(uri: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [f"GET {uri} HTTP/1.1".encode(), b"Host: localhost"]
    lines += [n + b": " + v for n, v in headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


# --------------------------------------------------------------------------------------
# nginx


@dataclass
class Nginx:
    root: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    version: str = ""

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def error_log(self) -> str:
        text = ""
        for name in ("stderr.log", "error.log"):
            if (self.root / name).exists():
                text += (self.root / name).read_text(errors="replace")
        return text[-3000:]


# name -> (log format, extra directives, listen options, listen on ::1 too)
SERVERS: dict[str, tuple[str, str, str, bool]] = {
    "xff_on": (
        "xff",
        "real_ip_header X-Forwarded-For; real_ip_recursive on;",
        "",
        True,
    ),
    "xff_off": (
        "xff",
        "real_ip_header X-Forwarded-For; real_ip_recursive off;",
        "",
        True,
    ),
    "xff_bad": (
        "xff",
        "real_ip_header X-Forwarded-For; real_ip_recursive on;",
        "",
        True,
    ),
    "xrip_off": ("xrip", "real_ip_header X-Real-IP; real_ip_recursive off;", "", True),
    "xrip_on": ("xrip", "real_ip_header X-Real-IP; real_ip_recursive on;", "", True),
    "pp_v1": ("pp", "real_ip_header proxy_protocol;", "proxy_protocol", False),
    "pp_v2": ("pp", "real_ip_header proxy_protocol;", "proxy_protocol", False),
    "pp_untrusted": ("pp", "real_ip_header proxy_protocol;", "proxy_protocol", False),
    "pp_bad": ("pp", "real_ip_header proxy_protocol;", "proxy_protocol", False),
}


def _trusted_for(server: str) -> list[str]:
    if server == "pp_untrusted":
        return PP_UNTRUSTED
    if server.startswith("pp_"):
        return PP_TRUSTED
    return XFF_TRUSTED


def _nginx_config(root: Path, ports: dict[str, int]) -> str:
    servers = []
    for name, (fmt, directives, listen_opts, v6) in SERVERS.items():
        listen = f"        listen 127.0.0.1:{ports[name]} {listen_opts};\n"
        if v6 and HAS_V6:
            listen += f"        listen [::1]:{ports[name]} {listen_opts};\n"
        trust = "".join(f"        set_real_ip_from {c};\n" for c in _trusted_for(name))
        servers.append(
            f"    server {{\n{listen}        server_name {name};\n{trust}"
            f"        {directives}\n"
            f"        access_log {root / (name + '.log')} {fmt};\n"
            f'        location / {{\n            return 200 "ok\\n";\n        }}\n'
            f"    }}\n"
        )
    temp = "".join(
        f"    {kind}_temp_path {root / ('tmp_' + kind)};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;

events {{
    worker_connections 512;
}}

http {{
{temp}    default_type text/plain;
    client_header_timeout 5s;
    keepalive_timeout 5s;
    server_tokens off;
    log_format xff '{XFF_FORMAT}';
    log_format xrip '{XRIP_FORMAT}';
    log_format pp '{PP_FORMAT}';
    access_log off;

{"".join(servers)}}}
"""


def _start_nginx(binary: str, root: Path) -> Nginx:
    help_text = subprocess.run(
        [binary, "-h"], capture_output=True, check=False, timeout=30
    ).stderr.decode(errors="replace")
    early_log = ["-e", str(root / "error.log")] if "-e filename" in help_text else []
    for _attempt in range(5):
        ports = dict(zip(SERVERS, free_ports(len(SERVERS), v6=HAS_V6), strict=True))
        conf = root / "nginx.conf"
        conf.write_text(_nginx_config(root, ports), encoding="utf-8")
        for old in root.glob("*.log"):
            old.unlink()
        command = [binary, "-p", f"{root}/", *early_log, "-c", str(conf)]
        command += ["-g", "daemon off; master_process off;"]
        with (root / "stderr.log").open("wb") as err:
            proc = subprocess.Popen(  # noqa: S603
                command, stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        # probe only plain-HTTP ports: a probe on a proxy_protocol port is an error-log line
        probes = [("127.0.0.1", p) for n, p in ports.items() if not n.startswith("pp_")]
        if wait_listening(proc, probes, time.monotonic() + 10):
            time.sleep(0.1)  # all listeners are opened together
            version = subprocess.run(
                [binary, "-v"], capture_output=True, check=False, timeout=30
            ).stderr.decode(errors="replace")
            return Nginx(root, ports, proc, version.strip().rsplit(" ", 1)[-1])
        stop(proc, signal.SIGQUIT)
    text = Nginx(root, {}, proc).error_log()
    pytest.fail(f"nginx did not start:\n{text}", pytrace=False)


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    binary = require_binary("nginx", "nginx-light")
    server = _start_nginx(binary, tmp_path_factory.mktemp("realip"))
    try:
        yield server
    finally:
        stop(server.proc, signal.SIGQUIT)


# --------------------------------------------------------------------------------------
# Reading back and comparing


@dataclass
class Result:
    server: str
    sent: dict[str, Sent]  # by URI
    lines: list[str]  # raw log lines
    parsed: list[dict[str, str]]  # our regex reading of each raw line
    frame: pl.DataFrame  # pplog's reading
    replies: list[bytes] = field(default_factory=list)
    order: list[Sent] = field(default_factory=list)  # as sent, for lines without a URI
    nginx_version: str = ""
    # the summary's road: lines split in C, trust decisions made there where
    # every address is plain, the rest by `clientip` (`_fastsplit.realip`)
    as_read: pl.DataFrame | None = None


def _as_read(path: Path, fmt: str, policy: ProxyPolicy) -> pl.DataFrame:
    """Rows of `path` as `pplog summarize` attributes them, by line."""
    from pplog import sources
    from pplog.clientip import attribute, with_pair_key
    from pplog.formats import LogFormat
    from pplog.pipeline import parse_lines

    log_format = LogFormat.from_string(fmt)
    lines, _ = sources.scan_lines(
        sources.expand([path]), split=log_format, policy=policy
    )
    rows = with_pair_key(parse_lines(lines, log_format, decode=False), policy)
    return attribute(rows, policy, eager_decisions=True).collect().sort("line")


def _wait_lines(path: Path, total: int, timeout: float = 5.0) -> None:
    """Wait until the log holds `total` lines.

    A line is normally written before nginx closes the connection, but after
    a pipelined request nginx may close lazily (lingering close) and log only
    once the peer has gone, just after our read returned.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= total:
            return
        time.sleep(0.02)


def _read_back(
    nginx: Nginx,
    server: str,
    sent: list[Sent],
    replies: list[bytes],
    start: int = 0,
    **options: object,
) -> Result:
    """pplog's and our own reading of `server`'s log from line `start` on."""
    path = nginx.log(server)
    _wait_lines(path, start + len(sent))
    data = path.read_bytes() if path.exists() else b""
    lines = data.decode("ascii").split("\n")[:-1]
    kind = "pp" if server.startswith("pp_") else "xff"
    parsed = []
    for line in lines:
        m = _LINE[kind].match(line)
        assert m is not None, f"{server}: unexpected log line {line!r}"
        parsed.append(m.groupdict())
    fmt = {"pp": PP_FORMAT, "xff": XFF_FORMAT}[kind]
    if server.startswith("xrip_"):
        fmt = XRIP_FORMAT
    policy = pplog.clientip.ProxyPolicy(
        trusted=_trusted_for(server),
        header=str(options.get("real_ip_header", "auto")),
        recursive=bool(options.get("recursive", True)),
        # `[addr]` without a port is accepted from nginx 1.27.3 on
        bare_brackets=_version(nginx.version) >= (1, 27, 3),
    )
    frame = pplog.read_log(path, log_format=fmt, policy=policy, include_rejects=True)
    if "line" in frame.columns:
        frame = frame.sort("line")
    res = Result(
        server,
        {s.uri: s for s in sent},
        lines,
        parsed,
        frame,
        replies,
        sent,
        nginx.version,
        as_read=_as_read(path, fmt, policy) if kind == "xff" else None,
    )
    return _tail(res, start) if start else res


def _version(text: str) -> tuple[int, ...]:
    """(1, 22, 1) from "nginx/1.22.1"."""
    numbers = text.rsplit("/", 1)[-1].split(".")
    return tuple(int(n) for n in numbers if n.isdigit())


def _check_parsed(res: Result) -> None:
    assert res.frame.height == len(res.lines), (
        f"{res.server}: pplog returned {res.frame.height} rows for {len(res.lines)} lines"
    )
    if "reject_reason" in res.frame.columns:
        rejects = res.frame.filter(pl.col("reject_reason").is_not_null())
        assert rejects.height == 0, (
            f"{res.server}: pplog rejected lines:\n"
            + "\n".join(
                repr(r) for r in rejects.select("reject_reason", "raw").rows()[:20]
            )
        )
    for col in ("client_ip", "client_ip_source"):
        assert col in res.frame.columns, f"{res.server}: no `{col}` column"


def _mismatches(res: Result, expected: Callable[[int], str | None]) -> list[str]:
    problems = []
    cols = res.frame.select("client_ip", "client_ip_source").rows()
    for i, ((ip, source), rec) in enumerate(zip(cols, res.parsed, strict=True)):
        want = expected(i)
        if ip != want:
            sent = res.sent.get(rec["uri"])
            if sent is None and len(res.order) == len(res.lines):
                sent = res.order[i]
            problems.append(
                f"{res.server} line {i + 1}: nginx $remote_addr={want!r} "
                f"pplog client_ip={ip!r} (client_ip_source={source!r})\n"
                f"    input: {sent.describe() if sent else '?'}\n"
                f"    log:   {res.lines[i]}"
            )
    return problems


def _assert_same_as_nginx(res: Result) -> None:
    _check_parsed(res)
    problems = _mismatches(res, lambda i: res.parsed[i]["remote"])
    assert not problems, report(
        problems, f"lines where pplog differs from {res.nginx_version}"
    )


# --------------------------------------------------------------------------------------
# 1. X-Forwarded-For and X-Real-IP


def _sources(rng: random.Random) -> str:
    return rng.choice(TRUSTED_SOURCES * 3 + UNTRUSTED_SOURCES)


def _send_all(nginx: Nginx, server: str, sent: list[Sent]) -> list[bytes]:
    replies = []
    for s in sent:
        host = "::1" if ":" in s.source else "127.0.0.1"
        replies.append(
            _send(s.source, host, nginx.ports[server], _request(s.uri, s.headers))
        )
    return replies


def _xff_requests(rng: random.Random, tag: str, n: int) -> list[Sent]:
    out = []
    for i in range(n):
        lines = random_xff(rng)
        headers: list[tuple[bytes, bytes]] = []
        if lines is not None:
            headers = [(rng.choice(XFF_NAMES), ln.encode()) for ln in lines]
        if rng.random() < 0.1:  # not the configured header: must not matter
            headers.insert(
                rng.randrange(len(headers) + 1), (b"X-Real-IP", b"203.0.113.99")
            )
        out.append(Sent(f"/{tag}/{i}", _sources(rng), headers))
    return out


@pytest.fixture(scope="module")
def xff(nginx: Nginx) -> dict[str, Result]:
    rng = random.Random(SEED)
    results = {}
    for server, recursive in (("xff_on", True), ("xff_off", False)):
        before = _line_count(nginx, server)
        sent = _xff_requests(rng, server, N_XFF)
        replies = _send_all(nginx, server, sent)
        results[server] = _read_back(
            nginx,
            server,
            sent,
            replies,
            start=before,
            real_ip_header="X-Forwarded-For",
            recursive=recursive,
        )
    return results


@pytest.mark.parametrize("server", ["xff_on", "xff_off"])
def test_xff_nginx_served_everything(xff: dict[str, Result], server: str) -> None:
    res = xff[server]
    assert len(res.lines) == len(res.sent) == N_XFF, res.lines[-3:]
    assert all(r.startswith(b"HTTP/1.1 200") for r in res.replies)
    assert {p["status"] for p in res.parsed} == {"200"}
    # realip really acted on some lines and left others alone
    changed = sum(p["peer"] != p["remote"] for p in res.parsed)
    assert 0.2 * N_XFF < changed < 0.9 * N_XFF, changed
    peers = {p["peer"] for p in res.parsed}
    assert set(UNTRUSTED_SOURCES) <= peers
    if HAS_V6:
        assert "::1" in peers


@pytest.mark.parametrize("server", ["xff_on", "xff_off"])
def test_xff_client_ip_matches_nginx(xff: dict[str, Result], server: str) -> None:
    _assert_same_as_nginx(xff[server])


@pytest.mark.parametrize("server", ["xff_on", "xff_off"])
def test_xff_client_ip_decided_as_read_matches_nginx(
    xff: dict[str, Result], server: str
) -> None:
    """The summary's road (`Result.as_read`): the trust decisions the C split
    makes as it reads the lines, and `clientip`'s for the rest, are nginx's."""
    import dataclasses

    res = xff[server]
    assert res.as_read is not None
    _assert_same_as_nginx(dataclasses.replace(res, frame=res.as_read))


@pytest.mark.parametrize(
    ("server", "recursive"), [("xff_on", True), ("xff_off", False)]
)
def test_read_log_keywords_equal_policy(
    nginx: Nginx, xff: dict[str, Result], server: str, recursive: bool
) -> None:
    """`read_log(trusted=, real_ip_header=, recursive=)` is the same policy.

    The comparisons above go through `ProxyPolicy` (to pick nginx's version
    for `[addr]`); the keywords must give the same attribution as the policy
    with its defaults.
    """
    path = nginx.log(server)
    by_keywords = pplog.read_log(
        path,
        log_format=XFF_FORMAT,
        trusted=XFF_TRUSTED,
        real_ip_header="X-Forwarded-For",
        recursive=recursive,
    )
    by_policy = pplog.read_log(
        path,
        log_format=XFF_FORMAT,
        policy=pplog.clientip.ProxyPolicy(
            trusted=XFF_TRUSTED, header="X-Forwarded-For", recursive=recursive
        ),
    )
    cols = ["client_ip", "client_ip_source"]
    assert by_keywords.height >= N_XFF
    assert by_keywords.select(cols).equals(by_policy.select(cols))


# Spec table 2.4 (peer trusted, 10/8 trusted) plus a few of our own.
WORKED_EXAMPLES = [
    ["203.0.113.7"],
    ["198.51.100.9, 203.0.113.7"],
    ["203.0.113.7, 10.1.1.1"],
    ["10.9.9.9, 10.1.1.1"],
    ["unknown, 10.1.1.1"],
    ["203.0.113.7, unknown"],
    ["203.0.113.7", "10.1.1.1"],
    ["[2001:db8::7]:51234, 10.1.1.1"],
    ["[2001:db9::7]:51234, 10.1.1.1"],
    ["203.0.113.7:0"],
    ["010.001.002.003"],
    ["198.51.100.9 203.0.113.7"],
    ["203.0.113.7,"],
    ["255.255.255.255"],
    ["2001:DB8:0:0::7"],
    ["203.0.113.7, ::ffff:10.1.1.1"],
    ["198.51.100.1, 203.0.113.7, 10.2.2.2, 10.1.1.1"],
    ["203.0.113.7,,10.1.1.1"],
    [",203.0.113.7"],
    [",203.0.113.7, 10.1.1.1"],
    ["1..2.3"],
    ["[2001:db9::1]"],
    ["[10.1.1.1]:80, 203.0.113.7"],
    ["::ffff:198.51.100.7, 10.1.1.1"],
    [", ".join(["10.0.0.1"] * 20)],
    ["203.0.113.9, " + ", ".join(f"10.0.0.{i}" for i in range(1, 21))],
]


def _run_batch(
    nginx: Nginx, server: str, sent: list[Sent], header: str, *, recursive: bool
) -> Result:
    """Send `sent` to `server` and read back just those lines."""
    before = _line_count(nginx, server)
    replies = _send_all(nginx, server, sent)
    res = _read_back(
        nginx,
        server,
        sent,
        replies,
        start=before,
        real_ip_header=header,
        recursive=recursive,
    )
    assert len(res.lines) == len(sent), nginx.error_log()
    return res


@pytest.mark.parametrize(
    ("server", "recursive"), [("xff_on", True), ("xff_off", False)]
)
def test_xff_worked_examples(nginx: Nginx, server: str, recursive: bool) -> None:
    sent = [
        Sent(
            f"/example/{server}/{i}/{src}",
            src,
            [(b"X-Forwarded-For", v.encode()) for v in lines],
        )
        for i, lines in enumerate(WORKED_EXAMPLES)
        for src in ("127.0.0.1", "127.0.0.2")
    ]
    res = _run_batch(nginx, server, sent, "X-Forwarded-For", recursive=recursive)
    _assert_same_as_nginx(res)


SINGLE_TOKENS = [*ODD_TOKENS, "[2001:db9::1]", "::ffff:198.51.100.7", "::ffff:10.1.2.3"]


@pytest.mark.parametrize(
    ("server", "recursive"), [("xff_off", False), ("xff_on", True)]
)
def test_xff_single_tokens(nginx: Nginx, server: str, recursive: bool) -> None:
    """Each odd token on its own line of attack.

    `xff_off`, `TOKEN`: how nginx parses the token itself.
    `xff_on`, `203.0.113.1, TOKEN, 10.1.1.1`: whether the walk, having passed
    the trusted 10.1.1.1, takes the token, trusts it and goes on past it.
    """
    template = "{}" if server == "xff_off" else "203.0.113.1, {}, 10.1.1.1"
    sent = [
        Sent(
            f"/token/{server}/{i}",
            "127.0.0.1",
            [(b"X-Forwarded-For", template.format(token).encode())],
        )
        for i, token in enumerate(SINGLE_TOKENS)
    ]
    res = _run_batch(nginx, server, sent, "X-Forwarded-For", recursive=recursive)
    _assert_same_as_nginx(res)


def _line_count(nginx: Nginx, server: str) -> int:
    path = nginx.log(server)
    return len(path.read_bytes().split(b"\n")) - 1 if path.exists() else 0


def _tail(res: Result, start: int) -> Result:
    return Result(
        res.server,
        res.sent,
        res.lines[start:],
        res.parsed[start:],
        res.frame.slice(start),
        res.replies,
        res.order,
        res.nginx_version,
        None if res.as_read is None else res.as_read.slice(start),
    )


XRIP_VALUES = [
    None,
    "203.0.113.9",
    "2001:DB8::9",
    "2001:db9::9",
    "010.001.002.003",
    "unknown",
    "-",
    "",
    "203.0.113.7, 10.1.1.1",
    "10.9.9.9, 10.1.1.1",
    "203.0.113.7 198.51.100.3",
    "[2001:db8::7]:51234",
    "[2001:db9::7]",
    "203.0.113.7:0",
    "203.0.113.7:8080",
    "255.255.255.255",
    "::ffff:10.1.2.3",
    "1..2.3",
    "203.0.113.7,",
]


@pytest.mark.parametrize(
    ("server", "recursive"), [("xrip_off", False), ("xrip_on", True)]
)
def test_x_real_ip_matches_nginx(nginx: Nginx, server: str, recursive: bool) -> None:
    sent = []
    for i, value in enumerate(XRIP_VALUES):
        for src in (
            "127.0.0.1",
            "127.0.0.9",
            "127.0.0.2",
            *(["::1"] if HAS_V6 else []),
        ):
            headers = [] if value is None else [(b"X-Real-IP", value.encode())]
            if i % 3 == 0:  # an XFF header is not what this server reads
                headers.append((b"X-Forwarded-For", b"198.51.100.77"))
            sent.append(Sent(f"/{server}/{i}/{src}", src, headers))
    res = _run_batch(nginx, server, sent, "X-Real-IP", recursive=recursive)
    assert any(p["peer"] != p["remote"] for p in res.parsed)
    _assert_same_as_nginx(res)


# --------------------------------------------------------------------------------------
# 2. PROXY protocol through HAProxy


@dataclass
class Haproxy:
    proc: subprocess.Popen[bytes]
    # frontend name -> [(listen host, port)]
    binds: dict[str, list[tuple[str, int]]]
    root: Path


# frontend -> (nginx server, send-proxy option, haproxy source address)
FRONTENDS = {
    "fe_v1": ("pp_v1", "send-proxy", "127.0.0.1"),
    "fe_v2": ("pp_v2", "send-proxy-v2", "127.0.0.3"),
    "fe_untrusted": ("pp_untrusted", "send-proxy", "127.0.0.1"),
    "fe_bad": ("pp_bad", "send-proxy", "127.0.0.1"),
}


def _haproxy_config(binds: dict[str, list[tuple[str, int]]], nginx: Nginx) -> str:
    parts = [
        "global\n    maxconn 512\n\n"
        "defaults\n    mode tcp\n    timeout connect 5s\n"
        "    timeout client 10s\n    timeout server 10s\n"
    ]
    for fe, (server, option, source) in FRONTENDS.items():
        bind_lines = "".join(
            f"    bind {'[' + h + ']' if ':' in h else h}:{p}\n" for h, p in binds[fe]
        )
        parts.append(
            f"\nfrontend {fe}\n{bind_lines}    default_backend be_{fe}\n"
            f"\nbackend be_{fe}\n    source {source}\n"
            f"    server s_{fe} 127.0.0.1:{nginx.ports[server]} {option}\n"
        )
    return "".join(parts)


@pytest.fixture(scope="module")
def haproxy(nginx: Nginx) -> Iterator[Haproxy]:
    binary = require_binary("haproxy", "haproxy")
    root = nginx.root / "haproxy"
    root.mkdir(exist_ok=True)
    for _attempt in range(5):
        ports = iter(free_ports(2 * len(FRONTENDS), v6=HAS_V6))
        binds = {
            fe: [("127.0.0.1", next(ports))]
            + ([("::1", next(ports))] if HAS_V6 else [])
            for fe in FRONTENDS
        }
        conf = root / "haproxy.cfg"
        conf.write_text(_haproxy_config(binds, nginx), encoding="utf-8")
        with (root / "stderr.log").open("wb") as err:
            proc = subprocess.Popen(  # noqa: S603
                [binary, "-db", "-f", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        # a bare probe connection makes haproxy open one to nginx, which logs
        # nothing in the access log for a connection without a request
        listening = [hp for fe in binds.values() for hp in fe]
        if wait_listening(proc, listening, time.monotonic() + 10):
            try:
                yield Haproxy(proc, binds, root)
            finally:
                stop(proc, signal.SIGUSR1)  # soft stop
            return
        stop(proc, signal.SIGTERM)
    text = (root / "stderr.log").read_text(errors="replace")[-3000:]
    pytest.fail(f"haproxy did not start:\n{text}", pytrace=False)


def _via_haproxy(
    haproxy: Haproxy, fe: str, sources: list[str], tag: str, rounds: int
) -> tuple[list[Sent], list[bytes]]:
    sent, replies = [], []
    for r in range(rounds):
        for src in sources:
            host = "::1" if ":" in src else "127.0.0.1"
            port = dict(haproxy.binds[fe])[host]
            s = Sent(f"/{tag}/{r}/{src}", src, [], note=f"via haproxy {fe}")
            sent.append(s)
            replies.append(_send(src, host, port, _request(s.uri, s.headers)))
    return sent, replies


def _keepalive_via_haproxy(haproxy: Haproxy, fe: str, src: str, tag: str) -> list[Sent]:
    """Three requests on one connection: all share the connection's PROXY data."""
    sent = [
        Sent(f"/{tag}/ka{i}/{src}", src, [], note=f"keep-alive via {fe}")
        for i in range(3)
    ]
    data = b"".join(
        f"GET {s.uri} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() for s in sent[:-1]
    ) + _request(sent[-1].uri, [])
    host = "::1" if ":" in src else "127.0.0.1"
    reply = _send(src, host, dict(haproxy.binds[fe])[host], data)
    assert reply.count(b"HTTP/1.1 200") == 3, reply[:500]
    return sent


def _v2_header(
    command: int, family: int, src: bytes, dst: bytes, sport: int, dport: int
) -> bytes:
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = (
        src + dst + struct.pack("!HH", sport, dport) if family in (0x11, 0x21) else b""
    )
    return sig + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


# Raw PROXY headers HAProxy never sends (spec 3.1.4, 3.2.5, 7.6.31/33):
# nginx keeps the v1 text verbatim in $proxy_protocol_addr and parses it again
# for realip; pplog must do the same.
RAW_PP = [
    b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 80\r\n",
    b"PROXY TCP4 010.001.002.003 127.0.0.1 40000 80\r\n",
    b"PROXY TCP4 1..2.3 127.0.0.1 40000 80\r\n",
    b"PROXY TCP4 255.255.255.255 127.0.0.1 40000 80\r\n",
    b"PROXY TCP4 203.0.113.9 127.0.0.1 0 80\r\n",
    b"PROXY TCP6 2001:DB8:0:0::1 ::1 40000 80\r\n",
    b"PROXY TCP6 ::FFFF:203.0.113.9 ::1 40000 80\r\n",
    b"PROXY TCP6 0000:0000::0001 ::1 40000 80\r\n",
    b"PROXY TCP4 2001:db8::5 127.0.0.1 40000 80\r\n",
    b"PROXY TCP6 203.0.113.10 ::1 40000 80\r\n",
    b"PROXY TCP4 ::1: 127.0.0.1 40000 80\r\n",
    b"PROXY TCP4 ... 127.0.0.1 40000 80\r\n",
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN 203.0.113.9 127.0.0.1 40000 80\r\n",
    _v2_header(1, 0x11, bytes([203, 0, 113, 11]), bytes([127, 0, 0, 1]), 40001, 80),
    _v2_header(
        1, 0x21, ipaddress.IPv6Address("2001:db8::b").packed, bytes(16), 40002, 80
    ),
    _v2_header(
        1,
        0x21,
        ipaddress.IPv6Address("::ffff:203.0.113.12").packed,
        bytes(16),
        40003,
        80,
    ),
    _v2_header(1, 0x11, bytes([255, 255, 255, 255]), bytes(4), 40004, 80),
    _v2_header(1, 0x11, bytes([10, 0, 0, 1]), bytes(4), 0, 80),
    _v2_header(0, 0x00, b"", b"", 0, 0),  # LOCAL: a health check
]


@pytest.fixture(scope="module")
def pp(nginx: Nginx, haproxy: Haproxy) -> dict[str, Result]:
    clients = [
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.9",
        "127.0.0.200",
        "127.1.2.3",
        "127.255.255.254",
        *(["::1"] if HAS_V6 else []),
    ]
    results = {}
    for fe in ("fe_v1", "fe_v2", "fe_untrusted"):
        server = FRONTENDS[fe][0]
        sent, replies = _via_haproxy(haproxy, fe, clients, server, rounds=4)
        for src in ("127.0.0.44", *(["::1"] if HAS_V6 else [])):
            sent += _keepalive_via_haproxy(haproxy, fe, src, server)
        if fe == "fe_v1":  # raw headers straight to nginx, from trusted sources
            for i, header in enumerate(RAW_PP):
                src = ["127.0.0.1", "127.0.0.77", "127.9.9.9"][i % 3]
                s = Sent(f"/raw/{i}", src, [], note=f"raw PROXY header {header!r}")
                sent.append(s)
                replies.append(
                    _send(
                        src,
                        "127.0.0.1",
                        nginx.ports[server],
                        header + _request(s.uri, []),
                    )
                )
        results[server] = _read_back(
            nginx,
            server,
            sent,
            replies,
            real_ip_header="proxy_protocol",
            recursive=False,
        )
    return results


def test_pp_nginx_logged_everything(pp: dict[str, Result], nginx: Nginx) -> None:
    for server, res in pp.items():
        assert len(res.lines) == len(res.sent), (server, nginx.error_log())
        assert {p["status"] for p in res.parsed} == {"200"}, server
    v1 = pp["pp_v1"].parsed
    # the PROXY header carried the clients' addresses, and realip used them
    assert {"127.0.0.2", "127.1.2.3"} <= {p["header"] for p in v1}
    assert {"127.0.0.2", "127.1.2.3", "10.1.2.3"} <= {p["remote"] for p in v1}
    assert {p["peer"] for p in pp["pp_v2"].parsed} >= {"127.0.0.3"}
    if HAS_V6:
        assert "::1" in {p["remote"] for p in pp["pp_v2"].parsed}
    # not trusted: every line keeps haproxy's address
    assert {p["remote"] for p in pp["pp_untrusted"].parsed} == {"127.0.0.1"}


@pytest.mark.parametrize("server", ["pp_v1", "pp_v2", "pp_untrusted"])
def test_pp_client_ip_matches_nginx(pp: dict[str, Result], server: str) -> None:
    _assert_same_as_nginx(pp[server])


# --------------------------------------------------------------------------------------
# 3. Early-rejected requests: realip never ran (spec 2.6, 7.5.27)

BAD_REQUESTS = [
    b"get /lower HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /bad-host HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n",
    b"GET /v2 HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n",
]


def test_early_rejects_behind_proxy_protocol(nginx: Nginx, haproxy: Haproxy) -> None:
    clients = ["127.0.0.2", "127.0.0.9", "127.3.4.5", *(["::1"] if HAS_V6 else [])]
    sent: list[Sent] = []
    ports: list[int] = []  # our source ports: haproxy passes them on
    for src in clients:
        host = "::1" if ":" in src else "127.0.0.1"
        port = dict(haproxy.binds["fe_bad"])[host]
        for i, data in enumerate(BAD_REQUESTS):
            uri = data.split(b" ")[1].decode()
            sent.append(
                Sent(f"{uri}#{src}#{i}", src, [], note=f"bad request {data[:30]!r}")
            )
            _send(src, host, port, data, ports)
        s = Sent(f"/good/{src}", src, [], note="good request")
        sent.append(s)
        _send(src, host, port, _request(s.uri, []), ports)
    res = _read_back(
        nginx, "pp_bad", sent, [], real_ip_header="proxy_protocol", recursive=False
    )
    _check_parsed(res)
    assert len(res.lines) == len(sent), nginx.error_log()
    # error responses are logged after a lingering close, so lines can come out
    # of order: match each line to its connection by the client port
    by_port = dict(zip(ports, sent, strict=True))
    res.order = [by_port[int(p["ppport"])] for p in res.parsed]
    want = [s.source for s in res.order]
    statuses = [p["status"] for p in res.parsed]
    assert statuses.count("200") == len(clients)
    bad = [i for i, s in enumerate(statuses) if s != "200"]
    assert len(bad) == len(clients) * len(BAD_REQUESTS)
    # the scenario is real: nginx logged haproxy, not the client, for these
    assert {res.parsed[i]["remote"] for i in bad} == {"127.0.0.1"}
    assert {res.parsed[i]["header"] for i in bad} == set(clients)
    problems = _mismatches(res, lambda i: want[i])
    assert not problems, report(
        problems, "lines where pplog does not name the PROXY client"
    )


def test_early_rejects_with_xff(nginx: Nginx) -> None:
    """A 400 carrying XFF: pplog must give what nginx gives the same XFF when served.

    Each XFF value goes twice to the same server from the same peer, in a good
    request (nginx runs realip: the oracle) then in a bad one (`Host: bad
    host`, rejected after the headers were read, so realip never ran).
    """
    values = [
        "203.0.113.7",
        "203.0.113.7, 10.1.1.1",
        "198.51.100.1, 203.0.113.7, 10.2.2.2",
        "[2001:db9::7]:443, 10.1.1.1",
        "unknown, 10.1.1.1",
        "10.9.9.9, 10.1.1.1",
        "garbage",
    ]
    sources = ["127.0.0.1", "127.0.0.9", "127.0.0.2", *(["::1"] if HAS_V6 else [])]
    sent: list[Sent] = []
    for i, value in enumerate(values):
        for src in sources:
            host = "::1" if ":" in src else "127.0.0.1"
            hdr = [(b"X-Forwarded-For", value.encode())]
            good = Sent(f"/pair/{i}/{src}/good", src, hdr)
            bad = Sent(f"/pair/{i}/{src}/bad", src, hdr, note="Host: bad host")
            sent += [good, bad]
            _send(src, host, nginx.ports["xff_bad"], _request(good.uri, hdr))
            # XFF first: nginx stops reading headers at the bad Host
            data = (
                f"GET {bad.uri} HTTP/1.1\r\n".encode()
                + b"X-Forwarded-For: "
                + value.encode()
                + b"\r\nHost: bad host\r\nConnection: close\r\n\r\n"
            )
            _send(src, host, nginx.ports["xff_bad"], data)
    res = _read_back(
        nginx, "xff_bad", sent, [], real_ip_header="X-Forwarded-For", recursive=True
    )
    _check_parsed(res)
    assert len(res.lines) == len(sent)
    statuses = {p["uri"]: p["status"] for p in res.parsed}
    assert statuses == {s.uri: "400" if s.note else "200" for s in sent}
    # each bad line should get what nginx gave its good twin (matched by URI:
    # a 400 is logged after a lingering close, possibly after the next line)
    served = {p["uri"]: p["remote"] for p in res.parsed}
    problems = _mismatches(
        res, lambda i: served[res.parsed[i]["uri"].replace("/bad", "/good")]
    )
    assert not problems, report(
        problems, "lines where pplog differs from nginx (400s: from the good twin)"
    )


def _main_http(root: Path, nginx_v: str) -> str:
    """An nginx configuration's head under `root`, up to inside `http { }`
    with the `main` format defined (the caller adds servers and the `}`)."""
    return f"""
pid {root / "nginx.pid"};
error_log {root / "error.log"};
events {{ worker_connections 64; }}
http {{
{temp_paths(root, nginx_v)}
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';"""


def test_an_address_nginx_realip_wrote_is_not_a_spoofed_header(tmp_path: Path) -> None:
    """nginx configured with care (`set_real_ip_from` the balancer,
    `real_ip_header X-Forwarded-For`) logs the client in `$remote_addr` of the
    `main` format, the header untouched: pplog took that address for an
    untrusted peer whose header it ignored, so every such request counted as
    `forwarded_by_untrusted` and `doctor` warned of forged X-Forwarded-For.
    The same request to a server without realip, from a peer pplog does not
    trust, still counts (what the count is for). Both roads: the Python
    reader and the C split (`scan_lines(split=...)`, a large file's)."""
    from pplog import sources
    from pplog.clientip import attribute
    from pplog.formats import PRESETS
    from pplog.pipeline import parse_lines

    nginx = require_binary("nginx", "nginx-light")
    logs = {"realip": tmp_path / "realip.log", "plain": tmp_path / "plain.log"}

    def config(ports: list[int], nginx_v: str) -> str:
        return (
            _main_http(tmp_path, nginx_v)
            + f"""
    server {{
        listen 127.0.0.1:{ports[0]};
        set_real_ip_from 127.0.0.1;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        access_log {logs["realip"]} main;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{ports[1]};
        access_log {logs["plain"]} main;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
        )

    proc, ports = start_nginx(nginx, tmp_path, config, ports=2)
    chains = ["203.0.113.9", "198.51.100.7, 10.1.2.3", "2001:db8::7, 10.0.0.5"]
    try:
        for port in ports:
            for i, chain in enumerate(chains):
                hdr = [(b"X-Forwarded-For", chain.encode())]
                reply = send(port, _request(f"/r/{i}", hdr), source="127.0.0.1")
                assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
    finally:
        stop(proc)
    logged = logs["realip"].read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in logged] == [
        "203.0.113.9",
        "198.51.100.7",
        "2001:db8::7",
    ]
    # pplog trusts the balancer's range, not loopback: the plain server's
    # peer is an untrusted one that sent a header
    policy = ProxyPolicy(trusted=["10.0.0.0/8"], header="X-Forwarded-For")
    fmt = PRESETS["main"]
    outputs = ["client_ip", "forwarded_by_untrusted"]
    for name, log in logs.items():
        got = {}
        got["python"] = pplog.read_log(log, format="main", policy=policy)
        src = sources.expand([log])
        lines, _ = sources.scan_lines(src, split=fmt, policy=policy)
        rows = parse_lines(lines, fmt, decode=False)
        got["c"] = attribute(rows, policy, eager_decisions=True).collect()
        for road, frame in got.items():
            clients = frame.sort("line").select(outputs).rows()
            if name == "realip":
                expected = [("203.0.113.9", False), ("198.51.100.7", False)]
                expected.append(("2001:db8::7", False))
            else:
                expected = [("127.0.0.1", True)] * 3
            assert clients == expected, (name, road)
    trust = ["--set-real-ip-from", "10.0.0.0/8"]
    for name, log in logs.items():
        done = run_pplog(
            "doctor", str(log), *trust, "--to", "json", "--fail-on", "never"
        )
        assert done.returncode == 0, done.stderr
        codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
        assert ("xff-spoofing" in codes) == (name == "plain"), (name, codes)


def test_nginx_conf_realip_settings_are_each_servers_own(tmp_path: Path) -> None:
    """Two servers log the same format with different `real_ip_recursive`:
    `--nginx-conf` gave both files the first server's settings (the block
    found by format), so the second's clients came out wrong. Each file now
    takes the settings where its `access_log` stands, for `summarize` and
    for `ingest` (which refused any configuration of several formats, and
    now refuses only inputs whose servers attribute differently)."""
    nginx = require_binary("nginx", "nginx-light")
    logs = {k: tmp_path / f"{k}.log" for k in ("on", "off", "elb")}

    def config(ports: list[int], nginx_v: str) -> str:
        servers = "".join(
            f"""
    server {{
        listen 127.0.0.1:{port};
        set_real_ip_from 127.0.0.1;
        set_real_ip_from 127.0.0.3;
        real_ip_header X-Forwarded-For;
        real_ip_recursive {name};
        access_log {logs[name]} main;
        location / {{ return 200 "ok\\n"; }}
    }}"""
            for name, port in zip(("on", "off"), ports, strict=False)
        )
        return (
            _main_http(tmp_path, nginx_v)
            + f"""
    log_format elb_log '$proxy_protocol_addr - $remote_user [$time_local] '
                       '"$request" $status $body_bytes_sent "$http_referer" '
                       '"$http_user_agent"';
    {servers}
    server {{
        listen 127.0.0.1:{ports[2]};
        access_log {logs["elb"]} elb_log;
    }}
}}
"""
        )

    proc, ports = start_nginx(nginx, tmp_path, config, ports=3, listening=2)
    try:
        for port in ports[:2]:
            hdr = [(b"X-Forwarded-For", b"203.0.113.9, 127.0.0.3")]
            reply = send(port, _request("/x", hdr), source="127.0.0.1")
            assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
    finally:
        stop(proc)
    conf = str(tmp_path / "nginx.conf")
    logged = {k: logs[k].read_text().split(" ", 1)[0] for k in ("on", "off")}
    assert logged == {"on": "203.0.113.9", "off": "127.0.0.3"}

    for name in ("on", "off"):
        done = run_pplog(
            "summarize", str(logs[name]), "--nginx-conf", conf, "--to", "json"
        )
        assert done.returncode == 0, done.stderr
        clients = [c["client_ip"] for c in json.loads(done.stdout)["clients"]]
        assert clients == [logged[name]], name
    # both files in one run: each with its own server's settings
    both = run_pplog(
        "summarize", str(logs["on"]), str(logs["off"]), "--nginx-conf", conf,
        "--to", "json", "--top", "0",
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    clients = {c["client_ip"] for c in json.loads(both.stdout)["clients"]}
    assert clients == set(logged.values())
    # ingest: a configuration of two formats, the file's own realip settings
    dataset = tmp_path / "ds"
    done = run_pplog(
        "ingest", str(logs["off"]), "--nginx-conf", conf, "--dataset", str(dataset)
    )
    assert done.returncode == 0, done.stderr
    rows = pl.read_parquet(dataset / "requests" / "**" / "*.parquet")
    assert rows["client_ip"].to_list() == ["127.0.0.3"]
    mixed = run_pplog(
        "ingest", str(logs["on"]), str(logs["off"]), "--nginx-conf", conf,
        "--dataset", str(tmp_path / "ds2"),
    )  # fmt: skip
    assert mixed.returncode == 1
    assert mixed.stderr.startswith("Error: the servers that write"), mixed.stderr
    assert "different realip settings" in mixed.stderr


def _one_server(
    tmp_path: Path, log_format: str, realip: str, chains: list[bytes]
) -> tuple[list[str], dict[str, Any]]:
    """Real nginx with one server logging `log_format` (named `one`, its
    `$remote_addr` last) under the `realip` directives, sent a request for
    each X-Forwarded-For chain; the clients nginx logged, and the JSON of
    `pplog summarize` of the log with `--nginx-conf`."""
    nginx = require_binary("nginx", "nginx-light")
    log = tmp_path / "one.log"

    def config(ports: list[int], nginx_v: str) -> str:
        return (
            _main_http(tmp_path, nginx_v)
            + f"""
    log_format one {log_format};
    server {{
        listen 127.0.0.1:{ports[0]};
        {realip}
        access_log {log} one;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
        )

    proc, ports = start_nginx(nginx, tmp_path, config)
    try:
        for chain in chains:
            reply = send(ports[0], _request("/x", [(b"X-Forwarded-For", chain)]))
            assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
    finally:
        stop(proc)
    logged = [line.split()[-1] for line in log.read_text().splitlines()]
    done = run_pplog(
        "summarize", str(log), "--nginx-conf", str(tmp_path / "nginx.conf"),
        "--to", "json", "--top", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return logged, json.loads(done.stdout)


def test_nginx_conf_read_as_nginx_reads_its_words(tmp_path: Path) -> None:
    """Two spellings real nginx takes and `--nginx-conf` had misread:
    `real_ip_recursive ON` (a flag in any case: it was read as off, the
    clients the walk's last proxy), and a `log_format` of unquoted words
    with `\\t` between variables (nginx unescapes it in bare words as in
    quotes: it was read as `t`, the variables `$remote_addrt` ...). The
    peer is logged first: pplog walks the chain itself."""
    logged, doc = _one_server(
        tmp_path,
        "$realip_remote_addr\\t[$time_local]\\t$request\\t$status\\t"
        "$http_x_forwarded_for\\t$remote_addr",
        "set_real_ip_from 127.0.0.0/8; real_ip_header X-Forwarded-For; "
        "real_ip_recursive ON;",
        [b"203.0.113.9, 127.0.0.3", b"198.51.100.7, 127.0.0.5, 127.0.0.6"],
    )
    assert logged == ["203.0.113.9", "198.51.100.7"]  # nginx walked the chains
    assert doc["overview"]["rejected"] == 0
    assert sorted(c["client_ip"] for c in doc["clients"]) == sorted(logged)


def test_nginx_conf_trusts_a_host_name_as_nginx_resolves_it(tmp_path: Path) -> None:
    """`set_real_ip_from localhost;` is valid nginx (it resolves the name
    when it starts): every run with that configuration had stopped with a
    usage error, the other servers' files unread."""
    logged, doc = _one_server(
        tmp_path,
        '\'$realip_remote_addr "$request" $status "$http_x_forwarded_for" '
        "$remote_addr'",
        "set_real_ip_from localhost; real_ip_header X-Forwarded-For;",
        [b"203.0.113.9"],
    )
    assert logged == ["203.0.113.9"]  # nginx trusted the name
    assert [c["client_ip"] for c in doc["clients"]] == ["203.0.113.9"]
