"""`CONNECT host:port` is a request line nginx refuses: its target is not a path.

nginx parses no method or target from an authority-form request line (it
answers 400 and logs `$request_method` and `$request_uri` as `-`), so pplog
leaves `method`, `path`, `query` and `protocol` null and the errors table
shows such lines with the other unparsable ones, not as a path. A CONNECT
with an origin-form target (`CONNECT /x`) is parsed by nginx (405) and keeps
its parts.

The differential test runs a real nginx and compares pplog's split of
`$request` with nginx's own `$request_method`, `$request_uri` and
`$server_protocol` for every line.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
from helpers import parse_lines
from pplog.cli import cli
from realproc import free_ports, require_binary, send, stop, wait_listening

# As nginx 1.22.1 logged it (combined) after `CONNECT example.com:443 HTTP/1.1`.
CONNECT_LINE = (
    '127.0.0.1 - - [05/Dec/2026:02:52:46 +0000] "CONNECT example.com:443 HTTP/1.1" '
    '400 157 "-" "-"'
)
SERVED = '127.0.0.1 - - [05/Dec/2026:02:52:47 +0000] "GET /a HTTP/1.1" 404 153 "-" "-"'


def test_authority_form_has_no_request_parts(tmp_path: Path) -> None:
    df = parse_lines(tmp_path, [CONNECT_LINE], format="combined")
    row = df.row(0, named=True)
    assert row["reject_reason"] is None  # a request nginx answered: not a reject
    assert row["request"] == "CONNECT example.com:443 HTTP/1.1"
    assert row["status"] == 400
    parts = (row["method"], row["path"], row["query"], row["protocol"])
    assert parts == (None, None, None, None)


def test_errors_table_shows_connect_as_a_bad_request_line(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text("\n".join([CONNECT_LINE] * 3 + [SERVED]) + "\n")
    runner = CliRunner()
    result = runner.invoke(
        cli, ["summarize", str(path), "--format", "combined", "--to", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["overview"]["rejected"] == 0
    assert doc["overview"]["requests"] == 4
    errors = {(r["status"], r["path"]): r["requests"] for r in doc["errors"]}
    assert errors == {(400, None): 3, (404, "/a"): 1}
    assert all(r["path"] != "example.com:443" for r in doc["paths"])

    result = runner.invoke(
        cli, ["summarize", str(path), "--format", "combined", "--no-color"]
    )
    assert result.exit_code == 0, result.output
    assert "(bad request line)" in result.stdout
    assert "example.com:443" not in result.stdout


# ----------------------------------------------------------------- real nginx

LOG_FORMAT = '"$request" $status "$request_method" "$request_uri" "$server_protocol"'
REQUESTS = [
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"CONNECT example.com:443\r\n\r\n",
    b"CONNECT 192.0.2.1:8443 HTTP/1.0\r\n\r\n",
    b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"CONNECT http://example.com/p?q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /ok?a=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
]


def _config(root: Path, port: int) -> str:
    temp = "\n".join(
        f"    {name}_temp_path {root}/{name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
{temp}
    log_format parts '{LOG_FORMAT}';
    server {{
        listen 127.0.0.1:{port};
        access_log {root}/parts.log parts;
        access_log {root}/combined.log combined;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nginx = require_binary("nginx", "nginx-light")
    root = tmp_path_factory.mktemp("nginx-connect")
    for _attempt in range(5):
        (port,) = free_ports(1)
        (root / "nginx.conf").write_text(_config(root, port))
        command = [nginx, "-p", f"{root}/", "-c", str(root / "nginx.conf")]
        command += ["-g", "daemon off; master_process off;"]
        proc = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ,
        )
        try:
            deadline = time.monotonic() + 10
            if wait_listening(proc, [("127.0.0.1", port)], deadline):
                for request in REQUESTS:
                    send(port, request)
                return root
        finally:
            stop(proc)
    pytest.fail("nginx did not start", pytrace=False)


@pytest.mark.nginx
def test_parts_follow_what_real_nginx_parsed(nginx_logs: Path) -> None:
    df = pplog.read_log(
        nginx_logs / "parts.log", log_format=LOG_FORMAT, include_rejects=True
    ).sort("line")
    assert df.height == len(REQUESTS)
    assert df.get_column("reject_reason").null_count() == df.height
    for row in df.iter_rows(named=True):
        target = row["path"]
        if target is not None and row["query"] is not None:
            target += "?" + row["query"]
        got = (row["method"], target, row["protocol"])
        if row["request_method"] is None:  # nginx parsed nothing
            assert got == (None, None, None), row["request"]
        else:
            want = (row["request_method"], row["request_uri"], row["server_protocol"])
            assert got == want, row["request"]
    statuses = dict(zip(df["request"], df["status"], strict=True))
    assert statuses["CONNECT example.com:443 HTTP/1.1"] == 400
    assert statuses["CONNECT /x HTTP/1.1"] == 405


@pytest.mark.nginx
def test_real_connect_lines_in_the_errors_table(nginx_logs: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["summarize", str(nginx_logs / "combined.log"), "--format", "combined"]
        + ["--to", "json", "--top", "0"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["overview"]["rejected"] == 0
    errors = {(r["status"], r["path"]): r["requests"] for r in doc["errors"]}
    # the four authority-form lines and `GET example.com:443` have no path
    assert errors[(400, None)] == 5
    assert errors[(405, "/x")] == 1
    assert not any(p and ":443" in p for _, p in errors)
    paths = pl.DataFrame(doc["paths"])
    assert "/ok" in paths.get_column("path").to_list()
