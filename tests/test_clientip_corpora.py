"""Attribution against third-party conformance cases: realclientip-go and nginx-tests.

Read in place from ../shared/corpora. realclientip-go is a Go library whose
"rightmost trusted range" strategy is nginx's `real_ip_recursive on`; where the
two libraries differ, pplog follows nginx, and each such case is listed below
with nginx's answer and the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pplog.clientip import ProxyPolicy, attribute

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
RCIG = CORPORA / "realclientip-go" / "realclientip_go_cases.json"
NGINX_TESTS = CORPORA / "nginx-tests" / "nginx_tests_realip_proxy_protocol_logging.json"

pytestmark = pytest.mark.skipif(not RCIG.exists(), reason="shared corpora not present")

# name -> (what nginx's realip gives, why it differs from realclientip-go)
NGINX_DIFFERS = {
    "Fail: no non-trusted IP": (
        "2.2.2.2",
        "nginx takes the leftmost address when every entry is trusted",
    ),
    "Fail: rightmost non-trusted IP invalid": (
        "2.2.2.2",
        "nginx stops at the token that does not parse and keeps the last good one",
    ),
    "Fail: rightmost non-trusted IP unspecified": (
        "::",
        "nginx accepts :: as an address",
    ),
    "Many kinds of ranges": (
        "4.4.4.8",
        "an IPv4 address never matches an IPv6 range (::ffff:4.4.4.4/124) in nginx",
    ),
    "Peer garbage: walks header as normal": (
        None,
        "nginx has no unparsable peers; an untrusted peer keeps its own address",
    ),
    "Peer empty: walks header as normal": (None, "as above"),
    "Peer Unix socket: walks header as normal": (
        None,
        "a UNIX-socket peer is trusted in nginx only with set_real_ip_from unix:",
    ),
    "Peer unspecified IP: walks header as normal": (
        "0.0.0.0",
        "0.0.0.0 is not trusted",
    ),
    "Peer untrusted IPv6 with zone: returns peer with zone": (
        None,
        "nginx peers carry no zone; the text is not an address pplog accepts",
    ),
}


# realclientip-go matches header names case-insensitively; pplog's options are
# nginx's spellings.
_HEADER = {"x-forwarded-for": "X-Forwarded-For", "forwarded": "Forwarded"}

# Other strategies: where pplog's address rules (nginx's) differ from the Go library's.
OTHER_DIFFERS = {
    "Fail: zero value at count index": (
        "0.0.0.0",
        "nginx's parser accepts 0.0.0.0; the Go library refuses unspecified addresses",
    ),
    "IPv6 with port and zone": (
        "6.6.6.6",
        "nginx refuses zone ids (%zone) in addresses",
    ),
    "IPv6 with port and zone, no quotes": ("6.6.6.6", "as above"),
    "IPv4-mapped IPv6": (
        "::ffff:188.0.2.128",
        "pplog prints mapped addresses as nginx does",
    ),
    "IPv4-mapped IPv6 with port": ("::ffff:188.0.2.128", "as above"),
    "IPv4-mapped IPv6 in IPv6 (hex) form": ("::ffff:188.21.0.6", "as above"),
    "NAT64 IPv4-mapped IPv6": (
        "3.3.3.3",
        "pplog counts the NAT64 prefix 64:ff9b::/96 as special, not public",
    ),
}


def _header(name: str) -> str:
    return _HEADER.get(name.lower(), name)


def _cases(group: str) -> list[dict[str, Any]]:
    if not RCIG.exists():
        return []
    return json.loads(RCIG.read_text())["cases"][group]


def _frame(args: dict[str, Any], peer: str) -> pl.LazyFrame:
    headers = args["headers"]
    return pl.LazyFrame(
        {
            "realip_remote_addr": [peer],
            "http_x_forwarded_for": [
                ", ".join(headers.get("X-Forwarded-For", [])) or None
            ],
            "http_forwarded": [", ".join(headers.get("Forwarded", [])) or None],
        },
        schema={
            c: pl.String
            for c in ("realip_remote_addr", "http_x_forwarded_for", "http_forwarded")
        },
    )


def _peer(args: dict[str, Any]) -> tuple[str, list[str]]:
    """The peer pplog sees; realclientip-go omits it when it is irrelevant."""
    remote = args.get("remoteAddr")
    if remote is None:
        return "127.0.0.1", ["127.0.0.1/32"]  # a trusted balancer in front
    host = remote.rsplit(":", 1)[0] if remote.count(":") == 1 else remote
    if host.startswith("[") and "]" in host:
        host = host[1 : host.index("]")]
    return host, []


RANGE_CASES = [
    c
    for c in _cases("TestRightmostTrustedRangeStrategy")
    if "wantErr" not in c and not isinstance(c["args"].get("trustedRanges"), dict)
]


@pytest.mark.parametrize("case", RANGE_CASES, ids=[c["name"] for c in RANGE_CASES])
def test_rightmost_trusted_range_is_nginx_recursive(case: dict[str, Any]) -> None:
    args = case["args"]
    peer, extra = _peer(args)
    trusted = [*(args.get("trustedRanges") or []), *extra]
    header = _header(args["headerName"])
    policy = ProxyPolicy(trusted=trusted, header=header, recursive=True)
    row = attribute(_frame(args, peer), policy).collect().row(0, named=True)
    expected: str | None = case["want"] or None
    if case["name"] in NGINX_DIFFERS:
        expected = NGINX_DIFFERS[case["name"]][0]
        if expected is None:  # the peer itself, as nginx leaves it
            assert row["client_ip_source"] in (None, "realip_remote_addr")
            return
    if expected is None:  # nothing usable in the header: the peer stays
        assert row["client_ip"] == peer
        return
    assert row["client_ip"] == expected


COUNT_CASES = [
    c for c in _cases("TestRightmostTrustedCountStrategy") if "wantErr" not in c
]


@pytest.mark.parametrize("case", COUNT_CASES, ids=[c["name"] for c in COUNT_CASES])
def test_rightmost_trusted_count_is_the_hops_strategy(case: dict[str, Any]) -> None:
    args = case["args"]
    policy = ProxyPolicy(
        trusted=["127.0.0.1/32"],
        header=_header(args["headerName"]),
        strategy="hops",
        hops=args["trustedCount"],
    )
    row = attribute(_frame(args, "127.0.0.1"), policy).collect().row(0, named=True)
    if case["name"] in OTHER_DIFFERS:
        assert row["client_ip"] == OTHER_DIFFERS[case["name"]][0]
    elif case["want"]:
        assert row["client_ip"] == case["want"]
    else:  # realclientip-go gives up; pplog keeps the peer and says so
        assert row["client_ip_source"] == "realip_remote_addr"


LEFTMOST_CASES = [
    c for c in _cases("TestLeftmostNonPrivateStrategy") if "wantErr" not in c
]


@pytest.mark.parametrize(
    "case", LEFTMOST_CASES, ids=[c["name"] for c in LEFTMOST_CASES]
)
def test_leftmost_non_private(case: dict[str, Any]) -> None:
    args = case["args"]
    policy = ProxyPolicy(header=_header(args["headerName"]), strategy="leftmost-public")
    row = attribute(_frame(args, "127.0.0.1"), policy).collect().row(0, named=True)
    if case["name"] in OTHER_DIFFERS:
        assert row["client_ip"] == OTHER_DIFFERS[case["name"]][0]
    elif case["want"]:
        assert row["client_ip"] == case["want"]
    else:
        assert row["client_ip_source"] == "realip_remote_addr"


def test_nginx_tests_realip_facts() -> None:
    """nginx's own tests: recursive off takes the last element, on skips trusted ones."""
    if not NGINX_TESTS.exists():
        pytest.skip("nginx-tests corpus not present")
    trusted = ["127.0.0.1/32", "10.0.1.0/24"]

    def walk(xff: str, *, recursive: bool) -> str:
        frame = pl.LazyFrame(
            {"realip_remote_addr": ["127.0.0.1"], "http_x_forwarded_for": [xff]}
        )
        policy = ProxyPolicy(
            trusted=trusted, header="X-Forwarded-For", recursive=recursive
        )
        return attribute(frame, policy).collect().item(0, "client_ip")

    assert walk("192.0.2.1, 10.0.1.1, 127.0.0.1", recursive=False) == "127.0.0.1"
    assert walk("10.0.1.1, 192.0.2.1, 127.0.0.1", recursive=True) == "192.0.2.1"
    assert walk("127.0.0.1:123", recursive=False) == "127.0.0.1"
    text = NGINX_TESTS.read_text()
    assert "192.0.2.1" in text  # the facts above come from this file
