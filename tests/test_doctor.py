r"""`pplog doctor`: the error-log reader and every finding, on made-up lines and
on logs written by a real nginx (and a real HAProxy) driven into each situation.

The real-process part starts nginx on free 127.0.0.1 ports with one server (and
one access log) per situation, so each log's expected counts are exact:

========  ==================  ==============================================
log       listener            traffic
========  ==================  ==============================================
plain     plain, combined     TLS ClientHello x3, GET from 127.0.0.3 x2
pp        proxy_protocol,     GET without header x4, bare CRLF x1 (error
          elb_log             log), PROXY UNKNOWN x3, good header x2,
                              double header x2, v2 version 1, v2 too large,
                              malformed v1 (error log)
xff       plain, realip from  XFF from 127.0.0.2 x4 (untrusted), from
          127.0.0.1 only      127.0.0.1 x3 (trusted), none from .2 x2
hv1       plain, combined     HAProxy `send-proxy` x5
hv2       plain, combined     HAProxy `send-proxy-v2` x4
hok       proxy_protocol      HAProxy `send-proxy` x3 (the correct setup)
hlb       plain, combined     HAProxy `mode http`, no forwardfor x5
========  ==================  ==============================================

Skipped without nginx (the HAProxy cases: without haproxy) unless
``PPLOG_REQUIRE_NGINX=1`` (set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
import pplog.tasks
from helpers import CORPORA, SAMPLES, parse_lines
from pplog.cli import cli
from pplog.clientip import ProxyPolicy
from pplog.errors import SourceError
from pplog.formats.errorlog import ERROR_LOG_SCHEMA, read_error_log
from pplog.outputs._format import RAW_LIMIT, cut_raw
from pplog.reports.doctor import EXAMPLE_CHARS, Finding, diagnose, to_dict
from realproc import (
    CLIENT_HELLO,
    find_binary,
    free_ports,
    require_binary,
    send,
    stop,
    temp_paths,
    wait_listening,
)

T = "[10/Oct/2025:13:55:36 +0000]"
ET = "2025/03/14 09:26:53"
CTX = "while reading PROXY protocol, client: 10.0.1.5, server: 0.0.0.0:80"


def _combined(addr: str, request: str, status: int = 200, ua: str = "-") -> str:
    return f'{addr} - - {T} "{request}" {status} 157 "-" "{ua}"'


def _counts(findings: list[Finding]) -> dict[str, int]:
    return {f.code: f.count for f in findings}


def _by_code(findings: list[Finding]) -> dict[str, Finding]:
    return {f.code: f for f in findings}


# --------------------------------------------------------------------------------------
# Error-log reader


def _write(tmp_path: Path, data: bytes, name: str = "error.log") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_single_line_entries_with_context(tmp_path: Path) -> None:
    data = (
        f"{ET} [error] 31#31: *8812 broken header: "
        f'"GET /healthz HTTP/1.1" {CTX}\n'
        f"{ET} [error] 31#32: *9 connect() failed (111: Connection refused) while "
        "connecting to upstream, client: 198.51.100.7, server: example.com, "
        'request: "GET /api?q=1 HTTP/1.1", upstream: "http://10.0.2.9:8080/api?q=1", '
        'host: "example.com", referrer: "https://example.com/"\n'
        f'{ET} [notice] 1#1: using the "epoll" event method\n'
    ).encode()
    df = read_error_log(_write(tmp_path, data))
    assert df.schema == ERROR_LOG_SCHEMA
    assert df.height == 3
    first, second, third = df.rows(named=True)
    assert first["line"] == 1
    assert str(first["time"]) == "2025-03-14 09:26:53"
    assert df.schema["time"] == pl.Datetime("us")  # naive: nginx logs local time
    assert (first["level"], first["pid"], first["tid"], first["connection"]) == (
        "error",
        31,
        31,
        8812,
    )
    assert first["message"] == (
        'broken header: "GET /healthz HTTP/1.1" while reading PROXY protocol'
    )
    assert (first["client"], first["server"], first["request"]) == (
        "10.0.1.5",
        "0.0.0.0:80",
        None,
    )
    assert second["tid"] == 32
    assert second["message"] == (
        "connect() failed (111: Connection refused) while connecting to upstream"
    )
    assert second["client"] == "198.51.100.7"
    assert second["server"] == "example.com"
    assert second["request"] == "GET /api?q=1 HTTP/1.1"
    assert second["upstream"] == "http://10.0.2.9:8080/api?q=1"
    assert second["host"] == "example.com"
    assert second["referrer"] == "https://example.com/"
    assert third["connection"] is None
    assert third["level"] == "notice"
    assert third["message"] == 'using the "epoll" event method'
    assert third["client"] is None
    assert third["line"] == 3


def test_multi_line_broken_header_before_1_23_2(tmp_path: Path) -> None:
    # nginx < 1.23.2 printed the whole buffer, CR LF included
    data = (
        f'{ET} [error] 31#31: *1 broken header: "GET /healthz HTTP/1.1\r\n'
        "Host: 10.0.1.20\r\n"
        "User-Agent: ELB-HealthChecker/1.0\r\n"
        "\r\n"
        f'" {CTX}\n'
        f'{ET} [error] 31#31: *2 broken header: "" {CTX}\n'
    ).encode()
    df = read_error_log(_write(tmp_path, data))
    assert df.height == 2
    assert df["line"].to_list() == [1, 6]
    assert df["connection"].to_list() == [1, 2]
    assert df["message"][0] == (
        'broken header: "GET /healthz HTTP/1.1\nHost: 10.0.1.20\n'
        'User-Agent: ELB-HealthChecker/1.0\n\n" while reading PROXY protocol'
    )
    assert df["client"].to_list() == ["10.0.1.5", "10.0.1.5"]
    assert df["server"].to_list() == ["0.0.0.0:80", "0.0.0.0:80"]
    # `broken header: ""` (nginx >= 1.23.2, or a cut-off v2 signature)
    assert df["message"][1] == 'broken header: "" while reading PROXY protocol'


def test_raw_binary_bytes(tmp_path: Path) -> None:
    # the error log is not escaped: TLS bytes, invalid UTF-8 and a NUL (the v2
    # signature that nginx 1.22 prints raw) near the start of the file
    data = (
        f'{ET} [error] 31#31: *1 broken header: "\r\n\r\n\x00\r\nQUIT\n" {CTX}\n'
    ).encode() + (
        f'{ET} [error] 31#31: *2 broken header: "'.encode()
        + b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\xff\xfe"
        + f'" {CTX}\n'.encode()
    )
    df = read_error_log(_write(tmp_path, data))
    assert df.height == 2
    assert df["line"].to_list() == [1, 6]
    assert df["message"][0] == (
        'broken header: "\n\n\x00\nQUIT\n" while reading PROXY protocol'
    )
    assert df["message"][1] == (
        'broken header: "\x16\x03\x01\x00\\xA5\x01\x00\x00\\xA1\x03\x03\\xFF\\xFE" '
        "while reading PROXY protocol"
    )
    assert df["client"].to_list() == ["10.0.1.5", "10.0.1.5"]


def test_compressed_and_several_files(tmp_path: Path) -> None:
    old = (
        f'{ET} [error] 1#1: *1 broken header: "GET / HTTP/1.1\r\nHost: x\r\n'
    ).encode()  # the file ends inside an entry
    new = b"continued?\n" + f"{ET} [warn] 2#2: *3 something\n".encode()
    (tmp_path / "error.log.1.gz").write_bytes(gzip.compress(old))
    _write(tmp_path, new)
    df = read_error_log([tmp_path / "error.log.1.gz", tmp_path / "error.log"])
    assert df.height == 3
    # continuation never crosses files; leading lines form their own entry
    assert df["source"].to_list() == [
        str(tmp_path / "error.log.1.gz"),
        str(tmp_path / "error.log"),
        str(tmp_path / "error.log"),
    ]
    assert df["message"][0] == 'broken header: "GET / HTTP/1.1\nHost: x'
    assert df["time"][1] is None
    assert df["level"][1] is None
    assert df["message"][1] == "continued?"
    assert df["line"].to_list() == [1, 1, 2]


def test_empty_and_missing(tmp_path: Path) -> None:
    df = read_error_log(_write(tmp_path, b""))
    assert df.height == 0
    assert df.schema == ERROR_LOG_SCHEMA
    assert diagnose(None, df) == []
    with pytest.raises(SourceError, match="no such file"):
        read_error_log(tmp_path / "nope.log")


# --------------------------------------------------------------------------------------
# Access-log findings on made-up lines


def test_proxy_v1_header_on_plain_listener(tmp_path: Path) -> None:
    lines = [
        _combined("10.0.1.5", "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80", 400),
        _combined("198.51.100.9", "GET / HTTP/1.1"),
        _combined("10.0.1.5", "PROXY TCP6 2001:db8::1 2001:db8::2 35646 80", 400),
        _combined("10.0.1.6", "PROXY UNKNOWN", 400),
        _combined("10.0.1.6", "PROXY TCP4 198.51.100.23 10.0.1.20 35647 80", 400),
        'garbage "PROXY TCP4 1.2.3.4 5.6.7.8 1 2" 400',  # rejected: not counted
        _combined("198.51.100.9", "GET /PROXY TCP4 HTTP/1.1", 404),
    ]
    rows = parse_lines(tmp_path, lines, format="combined")
    findings = diagnose(rows)
    assert _counts(findings) == {"proxy-header-on-plain-listener": 4}
    (finding,) = findings
    assert finding.severity == "error"
    assert finding.message.startswith("4 requests began with a PROXY protocol v1")
    assert "listen 80 proxy_protocol;" in finding.fix
    assert "real_ip_header proxy_protocol;" in finding.fix
    path = tmp_path / "access.log"
    assert finding.examples == [
        f"{path}:1: {lines[0]}",
        f"{path}:3: {lines[2]}",
        f"{path}:4: {lines[3]}",
    ]


def test_proxy_v2_header_on_plain_listener(tmp_path: Path) -> None:
    lines = [
        _combined("10.0.1.5", "\\x00", 400),
        _combined("10.0.1.5", "\\x00", 400),
        _combined("10.0.1.5", "\\x00\\x01", 400),  # not the v2 signature
        _combined("198.51.100.9", "GET / HTTP/1.1"),
    ]
    rows = parse_lines(tmp_path, lines, format="combined")
    findings = diagnose(rows)
    assert _counts(findings) == {"proxy-v2-header-on-plain-listener": 2}
    assert "proxy_protocol_v2.enabled" in findings[0].fix


def test_double_proxy_header(tmp_path: Path) -> None:
    fmt = (
        '$proxy_protocol_addr $remote_addr [$time_local] "$request" $status '
        '$body_bytes_sent "$http_user_agent"'
    )
    lines = [
        f'198.51.100.22 10.0.1.5 {T} "PROXY TCP4 203.0.113.7 10.0.1.20 1 80" 400 157 "-"',
        f'198.51.100.22 10.0.1.5 {T} "\\x00" 400 157 "-"',
        f'- 10.0.1.5 {T} "PROXY TCP4 203.0.113.7 10.0.1.20 1 80" 400 157 "-"',
        f'198.51.100.22 10.0.1.5 {T} "GET / HTTP/1.1" 200 3 "-"',
    ]
    rows = parse_lines(tmp_path, lines, log_format=fmt)
    findings = diagnose(rows)
    assert _counts(findings) == {
        "double-proxy-header": 2,
        "proxy-header-on-plain-listener": 1,
    }
    # errors first, then warnings
    assert [f.code for f in findings] == [
        "proxy-header-on-plain-listener",
        "double-proxy-header",
    ]


def test_tls_on_plain_listener(tmp_path: Path) -> None:
    hello = "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03\\x9AQ"
    lines = [
        _combined("198.51.100.9", hello, 400),
        _combined("198.51.100.8", "\\x16\\x03\\x01", 400),
        _combined("198.51.100.8", "\\x16\\x03\\x01", 200),  # not a 400: not counted
        _combined("198.51.100.8", "\\x16\\x02", 400),
        _combined("198.51.100.9", "GET / HTTP/1.1"),
    ]
    rows = parse_lines(tmp_path, lines, format="combined")
    assert _counts(diagnose(rows)) == {"tls-on-plain-listener": 2}


def test_missing_client_address(tmp_path: Path) -> None:
    lines = [
        _combined("-", "GET /healthz HTTP/1.1", ua="ELB-HealthChecker/2.0"),
        _combined("-", "GET / HTTP/1.1"),
        _combined("198.51.100.9", "GET / HTTP/1.1"),
        _combined("-", "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80", 400),
        _combined("-", "GET / HTTP/1.1", ua="ELB-HealthChecker/2.0"),
    ]
    rows = parse_lines(tmp_path, lines, format="elb_log")
    findings = _by_code(diagnose(rows))
    assert _counts(list(findings.values())) == {
        "missing-client-address": 3,
        # the PROXY line is a signature row: counted there only
        "proxy-header-on-plain-listener": 1,
    }
    missing = findings["missing-client-address"]
    assert missing.severity == "info"
    assert "`$proxy_protocol_addr` was `-`" in missing.message
    assert "2 requests came from health checkers" in missing.message
    assert [e.split(": ", 1)[0] for e in missing.examples] == [
        f"{tmp_path / 'access.log'}:{n}" for n in (1, 2, 5)
    ]


@pytest.mark.parametrize("realip", [True, False])
def test_a_balancers_health_checks_are_no_balancer_clients(
    tmp_path: Path, realip: bool
) -> None:
    """A quiet site behind an ALB: the balancer's own health checks (from its
    address, whatever realip does) outnumber the requests. With realip on,
    the requests name their clients: nothing to say (it was an ERROR at 62%
    of all requests). Without it (`combined`, no X-Forwarded-For logged),
    every request names the balancer: still the error, its share taken over
    the requests alone."""
    ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
    clients = ["203.0.113.21"] * 3 + ["198.51.100.22"] * 2
    lines = [
        _combined(c if realip else "10.0.1.5", "GET / HTTP/1.1", ua=ua) for c in clients
    ]
    lines += [
        _combined("10.0.1.5", "GET /health HTTP/1.1", ua="ELB-HealthChecker/2.0")
    ] * 8
    rows = parse_lines(tmp_path, lines, format="combined")
    policy = ProxyPolicy(trusted=["10.0.0.0/8"])
    assert pplog.summarize(rows, policy=policy).overview_dict()["health_checks"] == 8
    found = diagnose(rows, policy=policy)
    if realip:
        assert found == []
    else:
        (finding,) = found
        assert (finding.code, finding.count) == ("balancer-addresses-as-clients", 5)
        assert finding.message.startswith(
            "5 requests (100% of all requests but health checks) credited to 1 address"
        )


def test_one_vhost_without_realip_in_a_directory_is_found(tmp_path: Path) -> None:
    """`pplog doctor /var/log/nginx/`: one vhost without realip (every
    request names the balancer) beside a healthy one with more requests.
    The share is judged log by log: the directory's 40% had hidden it."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "shop.access.log").write_text(
        "".join(_combined(f"203.0.113.{i}", "GET / HTTP/1.1") + "\n" for i in range(30))
    )
    (logs / "api.access.log").write_text(
        "".join(
            _combined("10.0.0.5", f"GET /v1/{i} HTTP/1.1") + "\n" for i in range(20)
        )
    )
    result = CliRunner().invoke(cli, ["doctor", str(logs), "--to", "json"])
    assert result.exit_code == 3, result.output
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["code"], finding["count"]) == ("balancer-addresses-as-clients", 20)
    assert finding["message"].startswith(
        f"20 requests (100% of all requests of `{logs}/api.access.log`) credited to "
        "1 address"
    )
    assert all("api.access.log" in e for e in finding["examples"])


def test_a_chain_cut_short_by_recursive_off_is_named(tmp_path: Path) -> None:
    """`real_ip_recursive off` with a chain through two of one's own proxies:
    nginx takes the header's last address, a proxy. The finding said realip
    was not configured or the format logged no client, neither of which is
    so; it names the setting."""
    line = (
        '10.0.0.5 - - [08/Dec/2026:03:25:10 +0000] "GET / HTTP/1.1" 200 3 "-" "c" '
        '"203.0.113.31, 10.0.0.5"'
    )
    policy = ProxyPolicy(
        trusted=["10.0.0.0/8"], header="X-Forwarded-For", recursive=False
    )
    rows = parse_lines(tmp_path, [line] * 5, format="main", policy=policy)
    assert rows["client_ip"].to_list() == ["10.0.0.5"] * 5  # as nginx has it
    (finding,) = diagnose(rows, policy=policy)
    assert finding.code == "balancer-addresses-as-clients"
    assert "With `real_ip_recursive off`, realip takes the header's last address" in (
        finding.message
    )
    assert "not configured" not in finding.message
    assert "real_ip_recursive on;" in finding.fix


def test_proxy_lines_from_clients_hint_at_a_second_header(tmp_path: Path) -> None:
    """On a plain listener the balancer sends PROXY lines, from its own
    (trusted) address. PROXY lines from a client's address are what a
    working `proxy_protocol` listener logs for a second header, when the log
    is `elb_log` (its first field `$proxy_protocol_addr`), which `combined`
    reads alike: the finding says so before its fix breaks the listener."""
    proxy = "PROXY TCP4 9.9.9.9 10.0.0.1 1 80"
    lines = [_combined("10.0.1.5", proxy, 400)] * 2
    lines += [_combined("203.0.113.71", proxy, 400)] * 3
    rows = parse_lines(tmp_path, lines, format="combined")
    (finding,) = diagnose(rows)
    assert (finding.code, finding.count) == ("proxy-header-on-plain-listener", 5)
    assert "3 of them came from addresses outside the trusted proxy ranges" in (
        finding.message
    )
    assert "--format elb_log" in finding.message
    balancer = parse_lines(tmp_path, lines[:2], format="combined")
    (alone,) = diagnose(balancer)
    assert "elb_log" not in alone.message
    as_elb = parse_lines(tmp_path, lines[2:], format="elb_log")
    assert [f.code for f in diagnose(as_elb)] == ["double-proxy-header"]


def test_missing_client_address_everywhere(tmp_path: Path) -> None:
    lines = [_combined("-", "GET / HTTP/1.1")] * 4
    rows = parse_lines(tmp_path, lines, format="elb_log")
    (finding,) = diagnose(rows)
    assert finding.code == "missing-client-address"
    assert finding.count == 4
    assert "every request is affected" in finding.message


def test_balancer_addresses_as_clients(tmp_path: Path) -> None:
    lines = [
        _combined("10.0.1.5", "GET / HTTP/1.1"),
        _combined("10.0.1.6", "GET /a HTTP/1.1"),
        _combined("10.0.1.5", "GET /b HTTP/1.1"),
        _combined("198.51.100.9", "GET / HTTP/1.1"),
    ]
    rows = parse_lines(tmp_path, lines, format="combined")
    (finding,) = diagnose(rows)
    assert (finding.code, finding.count) == ("balancer-addresses-as-clients", 3)
    assert finding.message.startswith(
        "3 requests (75% of all requests) credited to 2 addresses"
    )
    assert "neither `$proxy_protocol_addr` nor `$http_x_forwarded_for`" in (
        finding.message
    )
    assert "real_ip_header X-Forwarded-For;" in finding.fix


def test_balancer_share_threshold_and_policy(tmp_path: Path) -> None:
    lines = [
        _combined("10.0.1.5", "GET / HTTP/1.1"),
        _combined("10.9.9.9", "GET / HTTP/1.1"),
        _combined("198.51.100.9", "GET / HTTP/1.1"),
        _combined("198.51.100.8", "GET / HTTP/1.1"),
    ]
    policy = ProxyPolicy(trusted=["10.0.1.0/24"])
    rows = parse_lines(tmp_path, lines, format="combined", policy=policy)
    assert diagnose(rows, policy=policy) == []  # 1 of 4: under 50%
    (finding,) = diagnose(rows, policy=policy, balancer_share=0.25)
    assert finding.count == 1  # 10.9.9.9 is not in the policy's ranges
    # the default policy trusts every private range: 2 of 4
    (default,) = diagnose(rows)
    assert default.count == 2


def test_addresses_are_parsed_once_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the trusted-range test read a field of the parsed addresses per range,
    # and polars ran the parser once per read: 12 to 24 times a batch, half
    # of `pplog doctor`'s 15 s on 2M lines
    from pplog import _ipaddr
    from pplog.reports import lb

    calls: list[int] = []
    parse = _ipaddr._info_series

    def counted(values: pl.Series, bare_brackets: bool = True) -> pl.Series:  # noqa: FBT001, FBT002
        calls.append(len(values))
        return parse(values, bare_brackets)

    from pplog.reports import doctor

    monkeypatch.setattr(_ipaddr, "_info_series", counted)
    tested: list[str] = []
    addr_in = doctor.addr_in

    def counted_in(text: str, networks: tuple[_ipaddr.Network, ...]) -> bool:
        tested.append(text)
        return addr_in(text, networks)

    # doctor keeps each address's answer: every distinct address tested once
    monkeypatch.setattr(doctor, "addr_in", counted_in)
    lines = [_combined(f"10.0.{i % 7}.{i % 200}", "GET / HTTP/1.1") for i in range(500)]
    rows = parse_lines(tmp_path, lines, format="combined")
    (finding,) = diagnose(rows)
    assert finding.code == "balancer-addresses-as-clients"
    assert sorted(tested) == sorted({f"10.0.{i % 7}.{i % 200}" for i in range(500)})
    calls.clear()
    peers = pl.DataFrame({"peer": ["10.0.0.1", "198.51.100.1", None]})
    table = peers.with_columns(pl.lit(1, pl.UInt64).alias("requests"))
    trusted = lb.finish(table.pipe(_lb_columns), None).get_column("trusted")
    assert trusted.to_list() == [True, False, None]
    assert 1 <= len(calls) <= 2, calls


def _lb_columns(table: pl.DataFrame) -> pl.DataFrame:
    from pplog.reports import lb

    missing = [c for c in lb.COLUMNS if c not in table.columns and c != "trusted"]
    return table.with_columns(pl.lit(0, pl.UInt64).alias(c) for c in missing)


def test_xff_spoofing(tmp_path: Path) -> None:
    lines = [
        f'203.0.113.9 - - {T} "GET / HTTP/1.1" 200 3 "-" "-" "6.6.6.6"',
        f'10.0.0.2 - - {T} "GET / HTTP/1.1" 200 3 "-" "-" "198.51.100.7"',
        f'203.0.113.9 - - {T} "GET / HTTP/1.1" 200 3 "-" "-" "-"',
        f'203.0.113.8 - - {T} "GET / HTTP/1.1" 200 3 "-" "-" "1.1.1.1, 10.0.0.3"',
    ]
    rows = parse_lines(
        tmp_path,
        lines,
        format="main",
        trusted=["10.0.0.0/8"],
        real_ip_header="X-Forwarded-For",
    )
    (finding,) = diagnose(rows, policy=ProxyPolicy(trusted=["10.0.0.0/8"]))
    assert (finding.code, finding.count) == ("xff-spoofing", 2)
    assert finding.message.startswith("2 requests from 2 untrusted peers")
    assert "set_real_ip_from" in finding.fix


def test_clean_log_has_no_findings(tmp_path: Path) -> None:
    lines = [_combined("198.51.100.9", "GET / HTTP/1.1")] * 3
    assert diagnose(parse_lines(tmp_path, lines, format="combined")) == []
    assert to_dict([]) == {"findings": []}


def test_lazy_input_without_raw_lines(tmp_path: Path) -> None:
    lines = [
        _combined("10.0.1.5", "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80", 400),
        _combined("198.51.100.9", "GET / HTTP/1.1"),
    ]
    parse_lines(tmp_path, lines, format="combined")
    path = tmp_path / "access.log"
    lf = pplog.scan_log(path, format="combined")  # no `raw`, no `reject_reason`
    (finding,) = diagnose(lf)
    assert finding.count == 1
    assert finding.examples == [
        f'{path}:1: 10.0.1.5 "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80" 400'
    ]


def test_order_and_json(tmp_path: Path) -> None:
    lines = [
        *[_combined("198.51.100.9", "\\x16\\x03\\x01", 400)] * 3,
        _combined("10.0.1.5", "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80", 400),
        *[_combined("198.51.100.9", "GET / HTTP/1.1")] * 4,
    ]
    rows = parse_lines(tmp_path, lines, format="combined")
    findings = diagnose(rows)
    # severity first: the 1 error before the 3 warnings
    assert [(f.code, f.count) for f in findings] == [
        ("proxy-header-on-plain-listener", 1),
        ("tls-on-plain-listener", 3),
    ]
    out = to_dict(findings)
    assert [list(d) for d in out["findings"]] == [
        ["code", "severity", "count", "message", "fix", "examples"]
    ] * 2
    assert out["findings"][1]["severity"] == "warning"
    assert len(out["findings"][1]["examples"]) == 3


# --------------------------------------------------------------------------------------
# AWS load-balancer logs: the balancer wrote the line, `client` is the client

ALB_LOG = CORPORA / "vrl" / "vrl_aws_alb_inputs.log"
CLB_LOG = CORPORA / "logstash-patterns" / "elb_access_log_cases.log"
PRIVATE = r"^(?:10|192\.168)\."


@pytest.mark.parametrize(
    ("path", "fmt", "private", "lines"),
    [(ALB_LOG, "alb", 9, 13), (CLB_LOG, "clb", 3, 4)],
)
def test_aws_layouts_name_the_client(
    path: Path, fmt: str, private: int, lines: int
) -> None:
    rows = pplog.read_log(path, format=fmt, include_rejects=True)
    # an internal balancer: most clients are private addresses, and that is right
    assert rows["reject_reason"].null_count() == lines
    assert rows["client_ip"].str.contains(PRIVATE).sum() == private
    assert diagnose(rows) == []
    result = CliRunner().invoke(
        cli, ["doctor", str(path), "--format", fmt, "--to", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"findings": []}


def test_aws_rows_next_to_nginx_rows(tmp_path: Path) -> None:
    # a directory of both (each file read with its own format): only nginx's
    # rows are nginx's business
    alb = pplog.read_log(ALB_LOG, format="alb", include_rejects=True)
    lines = [
        _combined("10.0.1.5", "GET / HTTP/1.1"),
        _combined("10.0.1.6", "GET /a HTTP/1.1"),
        _combined("10.0.1.5", "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80", 400),
        _combined("198.51.100.9", "GET / HTTP/1.1"),
    ]
    nginx = parse_lines(tmp_path, lines, format="combined")
    rows = pl.concat([alb, nginx], how="diagonal_relaxed")
    findings = _by_code(diagnose(rows))
    assert _counts(list(findings.values())) == {
        "balancer-addresses-as-clients": 2,
        "proxy-header-on-plain-listener": 1,
    }
    # the share is of nginx's requests, not diluted by the balancer's own lines
    assert findings["balancer-addresses-as-clients"].message.startswith(
        "2 requests (50% of the requests nginx logged) credited to 2 addresses"
    )
    assert all(
        e.startswith(str(tmp_path)) for f in findings.values() for e in f.examples
    )


# --------------------------------------------------------------------------------------
# Examples are cut like the terminal's raw lines


def test_long_examples_are_cut(tmp_path: Path) -> None:
    long = _combined(
        "10.0.1.5", "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80", 400, "é" * 100_000
    )
    short = _combined("10.0.1.6", "PROXY TCP4 198.51.100.23 10.0.1.20 35647 80", 400)
    rows = parse_lines(tmp_path, [long, short], format="combined")
    (finding,) = diagnose(rows)
    path = tmp_path / "access.log"
    assert len(long.encode()) == len(long) + 100_000 == 200_102  # 2 bytes an "é"
    assert finding.examples == [
        f"{path}:1: {long[:EXAMPLE_CHARS]}… (200,102 bytes)",
        f"{path}:2: {short}",  # short lines stay whole
    ]
    # the outputs' cut for raw lines, word for word
    assert finding.examples[0] == f"{path}:1: {cut_raw(long)}"
    assert EXAMPLE_CHARS == RAW_LIMIT
    exactly = _combined("10.0.1.5", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", 400, "é")
    exactly = exactly.replace("é", "é" * (EXAMPLE_CHARS - len(exactly) + 1))
    assert len(exactly) == EXAMPLE_CHARS  # at the limit: whole
    (finding,) = diagnose(parse_lines(tmp_path, exactly, format="combined"))
    assert finding.examples == [f"{path}:1: {exactly}"]


def test_long_error_log_examples_are_cut(tmp_path: Path) -> None:
    body = "GET /" + "a" * 5000 + " HTTP/1.1"
    data = f'{ET} [error] 31#31: *1 broken header: "{body}" {CTX}\n'.encode()
    entries = read_error_log(_write(tmp_path, data))
    (finding,) = diagnose(None, entries)
    raw = entries["raw"][0]
    assert len(raw) > 5000
    assert finding.examples == [
        f"{tmp_path / 'error.log'}:1: {raw[:EXAMPLE_CHARS]}… "
        f"({len(raw.encode()):,} bytes)"
    ]


# --------------------------------------------------------------------------------------
# Exit status: 3 when problems were found


def test_exit_status_follows_fail_on(tmp_path: Path) -> None:
    runner = CliRunner()
    logs = {
        "proxy.log": _combined(
            "10.0.1.5", "PROXY TCP4 198.51.100.22 10.0.1.20 35646 80", 400
        ),
        "tls.log": _combined("198.51.100.9", "\\x16\\x03\\x01", 400),
    }
    for name, line in logs.items():
        (tmp_path / name).write_text(line + "\n")
    error = [str(tmp_path / "proxy.log"), "--format", "combined"]
    warning = [str(tmp_path / "tls.log"), "--format", "combined"]
    for args, fail_on, code in [
        (error, [], 3),  # default: --fail-on error
        (error, ["--fail-on", "error"], 3),
        (error, ["--fail-on", "warning"], 3),  # errors are at least warnings
        (error, ["--fail-on", "never"], 0),
        (warning, [], 0),
        (warning, ["--fail-on", "warning"], 3),
        (warning, ["--fail-on", "never"], 0),
    ]:
        for to in ("json", "terminal"):
            result = runner.invoke(cli, ["doctor", *args, *fail_on, "--to", to])
            assert result.exit_code == code, (args, fail_on, to, result.output)
            # the findings are written whatever the status
            assert "-on-plain-listener" in result.stdout
    # a clean log, a log that cannot be read, and bad usage keep their codes
    clean = tmp_path / "clean.log"
    clean.write_text(_combined("198.51.100.9", "GET / HTTP/1.1") + "\n")
    args = ["doctor", str(clean), "--format", "combined", "--fail-on", "warning"]
    assert runner.invoke(cli, args).exit_code == 0
    missing = runner.invoke(cli, ["doctor", str(tmp_path / "nope.log")])
    assert missing.exit_code == 1
    assert missing.output.startswith("Error: ")
    assert runner.invoke(cli, ["doctor", *error, "--fail-on", "info"]).exit_code == 2


def test_help_documents_the_exit_status() -> None:
    text = CliRunner().invoke(cli, ["doctor", "--help"]).output
    assert "--fail-on [error|warning|never]" in text
    assert "3  found problems: a finding at least as severe as --fail-on" in text
    assert "1  could not run" in text


# --------------------------------------------------------------------------------------
# Error-log findings on made-up lines


def test_error_log_findings(tmp_path: Path) -> None:
    data = b"".join(
        [
            f'{ET} [error] 31#31: *1 broken header: "GET /healthz HTTP/1.1" {CTX}\n'.encode(),
            f'{ET} [error] 31#31: *2 broken header: "" {CTX}\n'.encode(),
            # nginx < 1.23.2: the whole buffer, over several lines
            f'{ET} [error] 31#31: *3 broken header: "HEAD / HTTP/1.0\r\n'
            f'Host: x\r\n\r\n" {CTX}\n'.encode(),
            f'{ET} [error] 31#31: *4 broken header: "'.encode()
            + b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
            + f'" {CTX}\n'.encode(),
            f'{ET} [error] 31#31: *5 broken header: "\r\n\r\n\x00\r\nQUIT\n" {CTX}\n'.encode(),
            f'{ET} [error] 31#31: *6 broken header: "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n'
            f'" {CTX}\n'.encode(),
            f"{ET} [error] 31#31: *7 unknown PROXY protocol version: 1 {CTX}\n".encode(),
            f"{ET} [error] 31#31: *8 header is too large {CTX}\n".encode(),
            f"{ET} [error] 31#31: *9 header is too large\n".encode(),  # not PROXY
            f'{ET} [error] 31#31: *10 open() "/srv/x" failed (2: No such file or '
            'directory), client: 1.2.3.4, server: x, request: "GET /x HTTP/1.1", '
            'host: "x"\n'.encode(),
        ]
    )
    entries = read_error_log(_write(tmp_path, data))
    findings = diagnose(None, entries)
    assert _counts(findings) == {
        "plain-request-on-proxy-listener": 5,
        "proxy-header-malformed": 1,
        "proxy-protocol-version": 1,
        "proxy-header-too-large": 1,
    }
    plain = _by_code(findings)["plain-request-on-proxy-listener"]
    assert plain.severity == "error"
    assert plain.message == (
        "5 connections to a `proxy_protocol` listener from 1 address did not start "
        "with a PROXY header (`broken header`), so nginx closed them without an "
        "access-log line: 2 with an HTTP request line (as HTTP health checks send); "
        "2 empty, CR/LF only or a cut-off PROXY v2 signature; 1 with a TLS handshake"
    )
    assert "health" in plain.fix
    log = tmp_path / "error.log"
    assert [e.split(": ", 1)[0] for e in plain.examples] == [
        f"{log}:1",
        f"{log}:2",
        f"{log}:3",
    ]
    assert plain.examples[2].endswith(
        'broken header: "HEAD / HTTP/1.0\nHost: x\n\n" while reading PROXY '
        "protocol, client: 10.0.1.5, server: 0.0.0.0:80"
    )
    assert findings[0].code == "plain-request-on-proxy-listener"


def test_an_entry_without_its_client_counts_no_address(tmp_path: Path) -> None:
    """An entry cut before `client:` (nginx's 1 MiB line, a hand-written
    line) was counted as one more address ("from 2 addresses")."""
    data = (
        f'{ET} [error] 31#31: *1 broken header: "GET / HTTP/1.1" {CTX}\n'
        f'{ET} [error] 31#31: *2 broken header: "GET / HTTP/1.1" {CTX}\n'
        f'{ET} [error] 31#31: *3 broken header: "GET / HTTP/1.1"\n'
    ).encode()
    (plain,) = diagnose(None, read_error_log(_write(tmp_path, data)))
    assert plain.count == 3
    assert "3 connections to a `proxy_protocol` listener from at least 1 address " in (
        plain.message
    )
    # none names its client: no count of addresses at all ("from 0 addresses")
    cut = f'{ET} [error] 31#31: *3 broken header: "GET / HTTP/1.1"\n'.encode()
    (plain,) = diagnose(None, read_error_log(_write(tmp_path, cut * 2)))
    assert "2 connections to a `proxy_protocol` listener did not start" in (
        plain.message
    )


def test_an_access_log_given_as_the_error_log_is_said(tmp_path: Path) -> None:
    """`--error-log access.log` (arguments swapped) said "No ... problems
    found" and exited 0, with nothing on stderr; an empty error log (a
    healthy server's) is no warning."""
    empty = tmp_path / "error.log"
    empty.write_bytes(b"")
    runner = CliRunner()
    swapped = runner.invoke(
        cli, ["doctor", "--error-log", str(SAMPLES / "elb-access.log")]
    )
    assert swapped.exit_code == 0, swapped.output
    assert (
        f"pplog: warning: {SAMPLES / 'elb-access.log'}: no nginx error-log entries"
        in swapped.stderr
    )
    assert "an access log is given as PATH" in swapped.stderr
    quiet = runner.invoke(cli, ["doctor", "--error-log", str(empty)])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    # beside a real error log, or an empty one, the access log alone is named
    entry = f'{ET} [error] 31#31: *1 broken header: "" {CTX}\n'.encode()
    real = _write(tmp_path, entry, "real-error.log")
    blank = tmp_path / "blank.log"
    blank.write_bytes(b"\n\n  \n")
    access = str(SAMPLES / "elb-access.log")
    for others in ([real], [empty], [blank]):
        args = [a for o in others for a in ("--error-log", str(o))]
        mixed = runner.invoke(cli, ["doctor", *args, "--error-log", access])
        warned = [w for w in mixed.stderr.splitlines() if "error-log entries" in w]
        assert warned == [
            f"pplog: warning: {access}: no nginx error-log entries (`YYYY/MM/DD "
            "hh:mm:ss [level] ...`): nothing was diagnosed from it; an access log "
            "is given as PATH"
        ], mixed.stderr


# --------------------------------------------------------------------------------------
# Real nginx and HAProxy

GET = b"GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V2_ADDRS = bytes([127, 0, 0, 9, 127, 0, 0, 1]) + b"\x30\x39\x00\x50"

ELB_LOG = (
    '$proxy_protocol_addr - $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent"'
)
XFF_LOG = (
    '$remote_addr $realip_remote_addr [$time_local] "$request" $status '
    '$body_bytes_sent "$http_x_forwarded_for"'
)
# log name -> (listen options, log_format name, extra server directives)
SERVERS = {
    "plain": ("", "combined", ""),
    "pp": (" proxy_protocol", "elb", ""),
    "xff": (
        "",
        "xff",
        "set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;",
    ),
    "hv1": ("", "combined", ""),
    "hv2": ("", "combined", ""),
    "hok": (" proxy_protocol", "elb", ""),
    "hlb": ("", "combined", ""),
}
# HAProxy frontend -> (nginx server it feeds, mode, server options)
FRONTENDS = {
    "hv1": ("tcp", "send-proxy"),
    "hv2": ("tcp", "send-proxy-v2"),
    "hok": ("tcp", "send-proxy"),
    "hlb": ("http", ""),
}
LOOPBACK_ONLY = ProxyPolicy(trusted=["127.0.0.1/32"])


def _send(port: int, data: bytes, source: str = "127.0.0.1") -> bytes:
    return send(port, data, source=source)


def _nginx_conf(root: Path, ports: dict[str, int], nginx_v: str) -> str:
    temp = temp_paths(root, nginx_v)
    servers = "\n".join(
        f"""    server {{
        listen 127.0.0.1:{ports[name]}{listen};
        access_log {root / (name + ".log")} {fmt};
        {extra}
        location / {{ return 200 "ok\\n"; }}
    }}"""
        for name, (listen, fmt, extra) in SERVERS.items()
    )
    return f"""\
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} error;
events {{ worker_connections 256; }}
http {{
{temp}
    client_header_timeout 5s;
    keepalive_timeout 5s;
    lingering_timeout 1s;
    lingering_time 2s;
    log_format elb '{ELB_LOG}';
    log_format xff '{XFF_LOG}';
{servers}
}}
"""


def _haproxy_conf(ports: dict[str, int], fronts: dict[str, int], probe: int) -> str:
    # In `mode tcp` HAProxy connects to nginx, PROXY header and all, as soon as
    # a client connects: readiness is probed on a frontend that only rejects.
    parts = [
        "defaults",
        "    timeout connect 5s",
        "    timeout client 5s",
        "    timeout server 5s",
        "frontend fe_probe",
        "    mode tcp",
        f"    bind 127.0.0.1:{probe}",
        "    tcp-request connection reject",
    ]
    for name, (mode, options) in FRONTENDS.items():
        parts += [
            f"frontend fe_{name}",
            f"    mode {mode}",
            f"    bind 127.0.0.1:{fronts[name]}",
            f"    default_backend be_{name}",
            f"backend be_{name}",
            f"    mode {mode}",
            f"    server nginx 127.0.0.1:{ports[name]} {options}",
        ]
    return "\n".join(parts) + "\n"


def _start(
    command: list[str], root: Path, name: str, ports: list[int]
) -> subprocess.Popen[bytes] | None:
    with (root / f"{name}.stderr").open("wb") as err:
        proc = subprocess.Popen(  # noqa: S603
            command, stdin=subprocess.DEVNULL, stdout=err, stderr=err
        )
    listening = [("127.0.0.1", p) for p in ports]
    if wait_listening(proc, listening, time.monotonic() + 10):
        return proc
    stop(proc, signal.SIGKILL)
    return None


@dataclass
class Lab:
    root: Path
    haproxy: str | None = None  # None when haproxy ran, else why not
    replies: dict[str, list[bytes]] = field(default_factory=dict)

    def rows(self, name: str, **options: object) -> pl.DataFrame:
        return pplog.read_log(  # type: ignore[arg-type]
            self.root / f"{name}.log", include_rejects=True, **options
        )

    def text(self, name: str) -> str:
        return (self.root / name).read_text(errors="replace")


def _raw_traffic(ports: dict[str, int]) -> dict[str, list[bytes]]:
    pp, plain, xff = ports["pp"], ports["plain"], ports["xff"]
    sent: dict[str, list[bytes]] = {}
    sent["plain"] = [_send(plain, CLIENT_HELLO, "127.0.0.3") for _ in range(3)]
    sent["plain"] += [_send(plain, GET, "127.0.0.3") for _ in range(2)]
    good = b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 80\r\n"
    sent["pp"] = [_send(pp, GET) for _ in range(4)]  # broken header (GET ...)
    sent["pp"].append(_send(pp, b"\r\n"))  # broken header (CR LF only)
    sent["pp"] += [_send(pp, b"PROXY UNKNOWN\r\n" + GET) for _ in range(3)]
    sent["pp"] += [_send(pp, good + GET) for _ in range(2)]
    second = b"PROXY TCP4 198.51.100.1 127.0.0.1 40001 80\r\n"
    sent["pp"] += [_send(pp, good + second + GET) for _ in range(2)]
    sent["pp"].append(_send(pp, V2_SIG + b"\x11\x11\x00\x0c" + V2_ADDRS + GET))
    sent["pp"].append(_send(pp, V2_SIG + b"\x21\x11\x01\x00" + V2_ADDRS))
    sent["pp"].append(_send(pp, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n" + GET))
    spoof = GET.replace(b"Host: x", b"Host: x\r\nX-Forwarded-For: 6.6.6.6")
    relayed = GET.replace(b"Host: x", b"Host: x\r\nX-Forwarded-For: 198.51.100.7")
    sent["xff"] = [_send(xff, spoof, "127.0.0.2") for _ in range(4)]
    sent["xff"] += [_send(xff, relayed, "127.0.0.1") for _ in range(3)]
    sent["xff"] += [_send(xff, GET, "127.0.0.2") for _ in range(2)]
    return sent


HAPROXY_COUNTS = {"hv1": 5, "hv2": 4, "hok": 3, "hlb": 5}


def _haproxy_traffic(
    lab: Lab, ports: dict[str, int], haproxy_bin: str | None
) -> subprocess.Popen[bytes] | None:
    if haproxy_bin is None:
        lab.haproxy = "no haproxy binary found (apt-get install haproxy)"
        return None
    probe, *free = free_ports(len(FRONTENDS) + 1)
    fronts = dict(zip(FRONTENDS, free, strict=True))
    conf = lab.root / "haproxy.cfg"
    conf.write_text(_haproxy_conf(ports, fronts, probe), encoding="utf-8")
    command = [haproxy_bin, "-db", "-f", str(conf)]
    proc = _start(command, lab.root, "haproxy", [probe])
    if proc is None:
        lab.haproxy = "haproxy did not start:\n" + lab.text("haproxy.stderr")[-2000:]
        return None
    for name, n in HAPROXY_COUNTS.items():
        lab.replies[name] = [_send(fronts[name], GET, "127.0.0.3") for _ in range(n)]
    return proc


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    nginx = require_binary("nginx", "nginx-light")
    root = tmp_path_factory.mktemp("doctor")
    nginx_v = subprocess.run(
        [nginx, "-V"], capture_output=True, check=False, timeout=30
    ).stderr.decode(errors="replace")
    proc = None
    for _attempt in range(5):
        ports = dict(zip(SERVERS, free_ports(len(SERVERS)), strict=True))
        conf = root / "nginx.conf"
        conf.write_text(_nginx_conf(root, ports, nginx_v), encoding="utf-8")
        command = [nginx, "-p", f"{root}/", "-e", str(root / "error.log")]
        command += ["-c", str(conf), "-g", "daemon off; master_process off;"]
        proc = _start(command, root, "nginx", list(ports.values()))
        if proc is not None:
            break
    if proc is None:
        pytest.fail("nginx did not start:\n" + (root / "nginx.stderr").read_text())
    # the readiness probes above were empty connections: nginx logs nothing for them
    lab = Lab(root)
    haproxy = None
    try:
        lab.replies.update(_raw_traffic(ports))
        haproxy_bin = find_binary("haproxy")
        haproxy = _haproxy_traffic(lab, ports, haproxy_bin)
    finally:
        if haproxy is not None:
            stop(haproxy, signal.SIGUSR1)  # soft stop
        stop(proc)
    return lab


def _need_haproxy(lab: Lab) -> None:
    if lab.haproxy is not None:
        if os.environ.get("PPLOG_REQUIRE_NGINX") == "1":
            pytest.fail(f"PPLOG_REQUIRE_NGINX=1 but {lab.haproxy}", pytrace=False)
        pytest.skip(lab.haproxy)


@pytest.mark.nginx
def test_real_tls_on_plain_listener(lab: Lab) -> None:
    rows = lab.rows("plain", format="combined")
    assert rows.height == 5, lab.text("plain.log")
    assert _counts(diagnose(rows, policy=LOOPBACK_ONLY)) == {"tls-on-plain-listener": 3}


@pytest.mark.nginx
def test_real_plain_requests_on_proxy_listener(lab: Lab) -> None:
    entries = read_error_log(lab.root / "error.log")
    findings = diagnose(None, entries)
    assert _counts(findings) == {
        "plain-request-on-proxy-listener": 5,
        "proxy-protocol-version": 1,
        "proxy-header-too-large": 1,
        "proxy-header-malformed": 1,
    }, lab.text("error.log")
    plain = _by_code(findings)["plain-request-on-proxy-listener"]
    assert "4 with an HTTP request line" in plain.message
    assert "1 empty, CR/LF only" in plain.message
    broken = entries.filter(pl.col("message").str.starts_with("broken header"))
    assert broken["client"].unique().to_list() == ["127.0.0.1"]
    assert broken["level"].unique().to_list() == ["error"]
    # nginx < 1.23.2 logs the whole buffer: one entry over several lines
    first = broken.row(0, named=True)
    assert first["message"].startswith('broken header: "GET /r HTTP/1.1')
    assert first["message"].endswith('" while reading PROXY protocol')


@pytest.mark.nginx
def test_real_proxy_listener_access_log(lab: Lab) -> None:
    rows = lab.rows("pp", format="elb_log")
    # PROXY UNKNOWN x3, good x2, double x2; the broken headers never get here
    assert rows.height == 7, lab.text("pp.log")
    assert _counts(diagnose(rows, policy=LOOPBACK_ONLY)) == {
        "missing-client-address": 3,
        "double-proxy-header": 2,
    }
    # the good and the double headers: the first header names the client
    assert rows["client_ip"].drop_nulls().to_list() == ["203.0.113.9"] * 4


@pytest.mark.nginx
def test_real_xff_from_untrusted_peer(lab: Lab) -> None:
    rows = lab.rows(
        "xff",
        log_format=XFF_LOG,
        trusted=["127.0.0.1/32"],
        real_ip_header="X-Forwarded-For",
    )
    assert rows.height == 9, lab.text("xff.log")
    # pplog attributes exactly as nginx's realip did
    assert rows["client_ip"].to_list() == rows["remote_addr"].to_list()
    assert _counts(diagnose(rows, policy=LOOPBACK_ONLY)) == {"xff-spoofing": 4}


@pytest.mark.nginx
def test_real_haproxy_send_proxy_to_plain_listener(lab: Lab) -> None:
    _need_haproxy(lab)
    rows = lab.rows("hv1", format="combined")
    assert rows.height == 5, lab.text("hv1.log")
    assert rows["request"].str.starts_with("PROXY TCP4 127.0.0.3 ").all()
    findings = diagnose(rows, policy=LOOPBACK_ONLY)
    assert _counts(findings) == {"proxy-header-on-plain-listener": 5}
    assert all(r.startswith(b"HTTP/1.1 400 ") for r in lab.replies["hv1"])


@pytest.mark.nginx
def test_real_haproxy_send_proxy_v2_to_plain_listener(lab: Lab) -> None:
    _need_haproxy(lab)
    rows = lab.rows("hv2", format="combined")
    assert rows.height == 4, lab.text("hv2.log")
    assert rows["request"].to_list() == ["\x00"] * 4
    findings = diagnose(rows, policy=LOOPBACK_ONLY)
    assert _counts(findings) == {"proxy-v2-header-on-plain-listener": 4}


@pytest.mark.nginx
def test_real_haproxy_correct_setup_is_clean(lab: Lab) -> None:
    _need_haproxy(lab)
    rows = lab.rows("hok", format="elb_log")
    assert rows.height == 3, lab.text("hok.log")
    assert rows["client_ip"].to_list() == ["127.0.0.3"] * 3
    assert diagnose(rows, policy=LOOPBACK_ONLY) == []


@pytest.mark.nginx
def test_real_haproxy_http_without_forwarding(lab: Lab) -> None:
    _need_haproxy(lab)
    rows = lab.rows("hlb", format="combined")
    assert rows.height == 5, lab.text("hlb.log")
    (finding,) = diagnose(rows, policy=LOOPBACK_ONLY)
    assert (finding.code, finding.count) == ("balancer-addresses-as-clients", 5)
    assert "(100% of all requests) credited to 1 address" in finding.message


@pytest.mark.nginx
def test_real_exit_status(lab: Lab) -> None:
    # what nginx wrote: TLS handshakes on a plain listener (warnings) and
    # plain requests on a proxy_protocol listener (an error, in the error log)
    runner = CliRunner()
    plain = ["doctor", str(lab.root / "plain.log"), "--format", "combined"]
    plain += ["--set-real-ip-from", "127.0.0.1/32", "--to", "json"]
    result = runner.invoke(cli, plain)
    assert result.exit_code == 0, result.output
    codes = [(f["code"], f["severity"]) for f in json.loads(result.stdout)["findings"]]
    assert codes == [("tls-on-plain-listener", "warning")]
    assert runner.invoke(cli, [*plain, "--fail-on", "warning"]).exit_code == 3
    # through the real entry point, as cron runs it
    error_log = str(lab.root / "error.log")
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pplog", "doctor", "--error-log", error_log],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("ERROR plain-request-on-proxy-listener  (5)")
    assert proc.stderr == ""
    never = ["doctor", "--error-log", error_log, "--fail-on", "never"]
    assert runner.invoke(cli, never).exit_code == 0


def _findings(*args: str) -> list[tuple[str, int]]:
    result = CliRunner().invoke(cli, ["doctor", *args, "--to", "json"])
    assert result.exit_code in (0, 3), result.output
    return [(f["code"], f["count"]) for f in json.loads(result.stdout)["findings"]]


@pytest.mark.nginx
def test_doctor_of_a_log_directory_reads_its_error_logs(
    lab: Lab, tmp_path: Path
) -> None:
    """`pplog doctor /var/log/nginx/`: the error logs in it (a rotated set,
    written by real nginx) are read as error logs, as `--error-log` reads
    them; each file once, however it is named."""
    d = tmp_path / "nginx"
    d.mkdir()
    for name in ("pp", "plain"):
        (d / f"{name}.log").write_bytes((lab.root / f"{name}.log").read_bytes())
    errors = (lab.root / "error.log").read_bytes()
    (d / "error.log").write_bytes(errors)
    old = errors.replace(b"2026/", b"2025/")  # the same entries, a year earlier
    (d / "error.log.1.gz").write_bytes(gzip.compress(old))
    trust = ["--set-real-ip-from", "127.0.0.1/32"]
    accessed = [str(d / "pp.log"), str(d / "plain.log")]
    rotated = [str(d / "error.log.1.gz"), str(d / "error.log")]
    given = _findings(
        *accessed, *trust, "--error-log", rotated[0], "--error-log", rotated[1]
    )
    assert ("plain-request-on-proxy-listener", 10) in given
    result = CliRunner().invoke(cli, ["doctor", str(d), *trust, "--to", "json"])
    assert result.exit_code == 3, result.output
    assert "error log" not in result.stderr  # no warning: read as what it is
    found = [(f["code"], f["count"]) for f in json.loads(result.stdout)["findings"]]
    assert found == given
    # named again with --error-log, through a link: still read once
    link = tmp_path / "current-error.log"
    link.symlink_to(d / "error.log")
    again = _findings(str(d), *trust, "--error-log", str(link))
    assert again == given
    # a format forced for the access logs leaves the error logs error logs
    (d / "pp.log").unlink()
    forced = _findings(str(d), *trust, "--format", "combined")
    assert ("plain-request-on-proxy-listener", 10) in forced
    # an error log alone, given as an access log
    alone = _findings(rotated[1])
    assert alone == _findings("--error-log", rotated[1])
    assert ("plain-request-on-proxy-listener", 5) in alone


def test_trusted_answers_kept_across_batches_are_the_per_batch_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """doctor's trusted-range test over many streaming batches, keeping at
    most 3 answers (most batches overflow them), against the expression."""
    from pplog._ipaddr import addr_in_networks
    from pplog.clientip import ProxyPolicy
    from pplog.reports import doctor

    monkeypatch.setattr(doctor, "_KEPT", 3)
    policy = ProxyPolicy(trusted=["10.0.0.0/8", "2001:db8::/32", "unix:"])
    texts = [
        "10.1.2.3", "203.0.113.9", "2001:db8::1", "[2001:db8::2]", "::ffff:10.0.0.1",
        "unix:", "010.1.2.3", "255.255.255.255", "junk", "", None, "2001:DB8::1",
    ]  # fmt: skip
    values = [texts[(i * 5) % len(texts)] for i in range(2000)]
    frame = pl.DataFrame({"a": values}, schema={"a": pl.String})
    batches = pl.concat([frame.slice(i, 37) for i in range(0, 2000, 37)], rechunk=False)
    got = (
        batches.lazy()
        .select(doctor._trusted(pl.col("a"), policy))
        .collect(engine="streaming")
    )
    expected = frame.select(addr_in_networks(pl.col("a"), policy.networks))
    assert got.to_series().to_list() == expected.to_series().to_list()


def test_stdin_of_a_log_that_needs_trust_decisions_is_read_whole(
    tmp_path: Path,
) -> None:
    """The trust decisions of an X-Forwarded-For log read the rows twice:
    from stdin, the second read found nothing, and `pplog doctor -` said no
    problem where the same file has three. The rows of `scan_log("-")` were
    none, and its temporary copy of stdin is gone when the process ends."""
    log = Path(__file__).resolve().parent.parent / "sample_logs" / "main-access.log"
    command = [sys.executable, "-m", "pplog", "doctor", "--format", "main"]
    on_file = subprocess.run(
        [*command, str(log), "--to", "json"], capture_output=True, check=False
    )
    on_stdin = subprocess.run(
        [*command, "-", "--to", "json"],
        input=log.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert on_file.returncode == on_stdin.returncode == 3, on_stdin.stderr
    codes = [f["code"] for f in json.loads(on_file.stdout)["findings"]]
    assert len(codes) == 3
    assert [f["code"] for f in json.loads(on_stdin.stdout)["findings"]] == codes
    script = (
        "import glob, tempfile, pplog; "
        "lf = pplog.scan_log('-', format='main'); "
        "df = lf.collect(); "
        "assert lf.collect().equals(df), 'read again: not the same rows'; "
        "print(df.height, df.get_column('client_ip').n_unique(), "
        "len(glob.glob(tempfile.gettempdir() + '/pplog-stdin-*')))"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=log.read_bytes(),
        capture_output=True,
        check=True,
        env=env,
    )
    rows, clients, copies = proc.stdout.split()
    expected = pplog.read_log(log, format="main")
    assert int(rows) == expected.height == 2000
    assert int(clients) == expected.get_column("client_ip").n_unique()
    assert copies == b"1"  # while the frame is read; then deleted at exit
    assert list(tmp_path.glob("pplog-stdin-*")) == []


@pytest.mark.parametrize("from_stdin", [False, True])
def test_an_empty_access_log_is_said_to_be_empty(
    tmp_path: Path, *, from_stdin: bool
) -> None:
    """`zcat missing.gz | pplog doctor -` or a log just rotated: "no problems
    found" alone read as a clean bill; a warning now says nothing was read
    (the findings and the exit status stay those of no finding)."""
    empty = tmp_path / "access.log"
    empty.write_bytes(b"")
    target = "-" if from_stdin else str(empty)
    proc = subprocess.run(
        [sys.executable, "-m", "pplog", "doctor", target, "--to", "json"],
        input=b"",
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"findings": []}
    name = "<stdin>" if from_stdin else str(empty)
    assert proc.stderr.decode().strip() == (
        f"pplog: warning: {name}: no lines to read: nothing was diagnosed from the "
        "access log"
    )


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["elb_log", "main", "combined"])
def test_the_c_split_gives_the_findings_polars_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, *, packed: bool
) -> None:
    """`doctor` reads plain files, and a compressed file's blocks, through
    the C split (before: polars' reader and expressions, 4.1 s for the 2M
    elb_log against 1.9 s). With the corpus' nasty lines and the samples'
    balancer problems among the lines, the findings (counts, examples and
    their line numbers) are those of the polars road (`PPLOG_NO_C_SPLIT`)."""
    name = {"elb_log": "elb", "main": "main", "combined": "combined"}[fmt]
    data = (SAMPLES / f"{name}-access.log").read_bytes()
    nasty = (CORPORA / "nasty" / "nasty_lines.log").read_bytes()
    text = data + nasty + data
    log = tmp_path / ("access.log.1.gz" if packed else "access.log")
    log.write_bytes(gzip.compress(text) if packed else text)
    runs = {}
    split: list[str] = []  # the C split's functions called
    which = "block_frame" if packed else "split_ranges"
    real = getattr(pplog._fastsplit, which)

    def counted(*args: object, **kwargs: object) -> object:
        split.append(which)
        return real(*args, **kwargs)

    monkeypatch.setattr(pplog._fastsplit, which, counted)
    # plain files take the C road past `IN_MEMORY_BYTES`, as `summarize`'s do
    monkeypatch.setattr(pplog.tasks, "IN_MEMORY_BYTES", 0)
    for road in ("c", "polars"):
        if road == "polars":
            monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
        args = ["doctor", str(log), "--format", fmt, "--to", "json"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code in (0, 3), result.output
        runs[road] = result.stdout
        if road == "c":
            assert split, "the C split was not used"
    assert runs["c"] == runs["polars"]
    assert json.loads(runs["c"])["findings"]


@pytest.mark.parametrize(
    "options",
    [[], ["--set-real-ip-from", "10.0.1.0/24"], ["--no-real-ip-recursive"]],
    ids=["default", "narrow", "not-recursive"],
)
def test_x_forwarded_for_is_decided_reading_the_log_twice_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str]
) -> None:
    """A `main` log's rows were attributed by `attribute`'s lazy plan: the
    distinct (peer, header) pairs of every row, twice, then the join, each
    reading and splitting the log again (2M lines: 7.2 s). The C split's
    decisions are now taken as they are and the rows it left undecided (a
    bracketed address with a port, `unknown`, an empty entry, 70 hops)
    decided from one pass over them: the log is read twice, and the
    findings (spoofed headers among them, 156 to 1,313 by the options) are
    those of the polars road (`PPLOG_NO_C_SPLIT`)."""
    odd = [
        "[2001:db8::1]:443",
        "unknown",
        "203.0.113.9, , 10.0.0.1",
        ", ".join(f"10.0.{i}.{i}" for i in range(70)),
        "198.51.100.7:8080, 10.1.2.3",
        "not an address",
    ]
    lines = (SAMPLES / "main-access.log").read_text(encoding="utf-8").splitlines()
    text = []
    for n, line in enumerate(lines):
        head, _, _ = line.rpartition(" ")
        if n % 7 == 0:  # left to `clientip` by the C split
            line = f'{head} "{odd[n // 7 % len(odd)]}"'
        elif n % 11 == 0:  # a header from a peer outside the trusted ranges
            line = line.replace("10.0.", "198.51.", 1)
        text.append(line + "\n")
    log = tmp_path / "access.log"
    log.write_text("".join(text), encoding="utf-8")
    reads: list[int] = []
    real = pplog._fastsplit.split_ranges

    def counted(*args: object, **kwargs: object) -> object:
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pplog._fastsplit, "split_ranges", counted)
    monkeypatch.setattr(pplog.tasks, "IN_MEMORY_BYTES", 0)
    args = ["doctor", str(log), "--format", "main", "--to", "json", *options]
    c_road = CliRunner().invoke(cli, args)
    assert c_road.exit_code in (0, 3), c_road.output
    assert len(reads) == 2  # the rows the C split left undecided, then all
    monkeypatch.setenv("PPLOG_NO_C_SPLIT", "1")
    polars_road = CliRunner().invoke(cli, args)
    assert c_road.stdout == polars_road.stdout
    codes = {f["code"] for f in json.loads(c_road.stdout)["findings"]}
    assert "xff-spoofing" in codes
